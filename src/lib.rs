//! promptmill: push large files of prompts through OpenAI-compatible APIs, within the provider's
//! limits, checkpointed so that no row is lost or paid for twice.
//!
//! The repository is a Cargo workspace of three crates, each depending only on those below it:
//!
//! - `promptmill-core` (`crates/core`): the persisted job record and its settings ([`job`]), the
//!   API families behind the `ApiFamily` trait ([`family`]), where requests go ([`provider`],
//!   [`base_url`]), input readers ([`input`]), templates ([`template`]), token counting
//!   ([`tokens`]) and prices ([`models`]), and the rules every created file follows ([`files`],
//!   [`paths`]), with [`secret`], [`error`], [`retry`], [`stall`], [`confirm`]. Its modules are
//!   re-exported here under their own names.
//! - `promptmill-mock` (`crates/mock`): the local OpenAI-compatible server ([`mock`]), which
//!   depends on no other promptmill crate, so it checks the wire formats independently of the
//!   code that sends them.
//! - `promptmill` (this crate, `src/`): the engine and the command line.
//!
//! This crate's modules, in the order a run meets them:
//!
//! - [`cli`] parses the command line (clap stays there: `cli/choices.rs` names the domain
//!   enums the flags take); [`config`] validates it into the settings the rest sees, with the
//!   settings of a [`profile`] under the flags given.
//! - [`commands`] holds the subcommands; `run` reads like the plot of a job.
//! - [`prepare`] turns rows into request bodies; [`load`] reads them all into the checkpoint.
//! - [`store`] is the SQLite checkpoint: the job, every row's state, the runs; its writer thread
//!   records outcomes in grouped commits.
//! - [`pipeline`] is the worker loop: claims rows, holds them under [`limits`] (RPM, TPM, given or
//!   learned from the server's headers; pauses when a limit is spent) and an adaptive window of
//!   requests on the wire (`pipeline::adaptive`), sends them through an [`api::Transport`],
//!   retries by [`retry`], records outcomes; [`api::classify`] is the one verdict table, for
//!   live replies and Batch result lines alike.
//! - [`batch`] drives a provider's Batch API through the same checkpoint.
//! - [`estimate`] is the dry run; [`budget`] keeps a run's money; [`ceiling`] prints the cost
//!   before the money; [`stats`], [`progress`], [`summary`] and [`report`] report; [`shutdown`]
//!   turns signals into a clean stop; [`output`] exports results; [`joblock`] keeps one process
//!   per job (a lock on the checkpoint file and one beside the output).
//!
//! No two top-level modules of a crate import each other, directly or through others
//! (`python3 ../shared/tools/modcycles.py DIR` for `src`, `crates/core/src`, `crates/mock/src`):
//! in this crate the engine (`store`, `load`, `pipeline`, `estimate`, `budget`, `batch`) is
//! below `config` and `commands`, with `cli` beside them knowing only names.

/// The bottom layer is its own crate (`crates/core`); its modules keep their names here, so
/// `crate::job`, `crate::family` … read the same in this crate and `promptmill::job` in tests.
pub use promptmill_core::{
    base_url, confirm, error, family, files, input, job, models, paths, provider, retry, secret, stall,
    template, tokens,
};

/// The mock server is its own crate (`crates/mock`), named here as it always was.
pub use promptmill_mock as mock;

pub mod api;
pub mod batch;
pub mod budget;
pub mod ceiling;
pub mod cli;
pub mod commands;
pub mod config;
pub mod estimate;
pub mod joblock;
pub mod limits;
pub mod load;
pub mod output;
pub mod pipeline;
pub mod prepare;
pub mod profile;
pub mod progress;
pub mod report;
pub mod shutdown;
pub mod stats;
pub mod store;
pub mod summary;

/// Raises this process's open-file limit to its hard maximum: thousands of requests in flight
/// need thousands of sockets, and the default soft limit (often 1024) would fail them.
pub fn raise_fd_limit() {
    #[cfg(unix)]
    {
        let _ = rlimit::increase_nofile_limit(u64::MAX);
    }
}
