//! promptmill-engine: everything between a job's settings and its results, with no command-line
//! types (the `promptmill` crate parses flags into the settings these modules take).
//!
//! In the order a run meets them:
//!
//! - [`source`] is the input a job reads and what to make of it; [`prepare`] turns rows into
//!   request bodies (asking the job's family); [`load`] reads them all into the checkpoint.
//! - [`store`] is the SQLite checkpoint: the job record, every row's state, the runs, the
//!   attempts; its writer thread records outcomes in grouped commits (`finish_durable`).
//! - [`pipeline`] is the one worker loop: claims rows, holds them under [`limits`] (RPM, TPM,
//!   given or learned from the server's headers) and an adaptive window of requests on the wire,
//!   sends them through an [`api::Transport`], retries by `promptmill_core::retry`, records
//!   outcomes; [`api::classify`] is the one verdict table, for live replies and Batch result
//!   lines alike.
//! - [`batch`] drives a provider's Batch API through the same checkpoint and verdicts.
//! - [`estimate`] is the dry run; [`budget`] keeps a run's money; [`ceiling`] prints the cost
//!   before the money; [`stats`], [`progress`], [`summary`] and [`report`] tell how it goes and
//!   went; [`shutdown`] turns signals into a clean stop; [`output`] exports results;
//!   [`joblock`] keeps one process per job.
//!
//! No import cycle between these modules (`python3 ../shared/tools/modcycles.py
//! crates/engine/src`); they stand on `promptmill-core` only.

pub mod api;
pub mod batch;
pub mod budget;
pub mod cache;
pub mod ceiling;
pub mod estimate;
pub mod joblock;
pub mod limits;
pub mod load;
pub mod output;
pub mod pipeline;
pub mod prepare;
pub mod progress;
pub mod report;
pub mod shutdown;
pub mod source;
pub mod stats;
pub mod store;
pub mod summary;
