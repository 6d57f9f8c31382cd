//! promptmill: push large files of prompts through OpenAI-compatible APIs, within the provider's
//! limits, checkpointed so that no row is lost or paid for twice.
//!
//! How the pieces fit, in the order a run meets them:
//!
//! - [`cli`] parses the command line (clap stays there: `cli/choices.rs` names the domain
//!   enums the flags take); [`config`] validates it into the settings the rest sees, with the
//!   settings of a [`profile`] under the flags given.
//! - [`commands`] holds the subcommands; `run` reads like the plot of a job.
//! - [`input`] streams rows from CSV or JSON Lines; [`template`] renders prompt templates;
//!   [`prepare`] turns rows into request bodies; [`load`] reads them all into the checkpoint.
//! - [`family`] holds the API families (chat, completions, the Responses API), one file each
//!   behind the `ApiFamily` trait: body shapes, token framing, what a success reads as, rate-limit
//!   headers. Nothing else matches on an endpoint.
//! - [`store`] is the SQLite checkpoint: the job ([`job`]: the versioned job record, built from
//!   the persisted types of `job::settings`), every row's state, the runs; its writer thread
//!   records outcomes in grouped commits.
//! - [`pipeline`] is the worker loop: claims rows, holds them under [`limits`] (RPM, TPM, given or
//!   learned from the server's headers; pauses when a limit is spent) and an adaptive window of
//!   requests on the wire (`pipeline::adaptive`), sends them through an [`api::Transport`],
//!   retries by [`retry`], records outcomes; [`api::classify`] is the one verdict table, for
//!   live replies and Batch result lines alike.
//! - [`provider`] knows where a request goes and which header carries the key: OpenAI-compatible
//!   APIs, or Azure OpenAI's deployment URLs; [`base_url`] builds those URLs by path segments
//!   and keeps credential-like query parameters out of the checkpoint.
//! - [`tokens`] counts prompt tokens as OpenAI does; [`models`] knows context windows and prices
//!   and holds the one cost formula (`models::price`: cached input, reasoning, Batch, tiers);
//!   [`estimate`] is the dry run; [`budget`] keeps a run's money; [`ceiling`] prints the cost
//!   before the money and [`confirm`] asks `--confirm`'s question; [`stats`], [`progress`] and [`summary`] report; [`shutdown`] turns
//!   signals into a clean stop; [`stall`] notices the process stood still (SIGSTOP, a starved
//!   scheduler), which is no server's fault; [`output`] exports results.
//! - [`files`] creates every file written for the user (exclusively, mode 0600, renamed into
//!   place); [`paths`] tells whether two paths are the same file; [`joblock`] keeps one process
//!   per job (a lock on the checkpoint file and one beside the output).
//! - [`mock`] is a local OpenAI-compatible server for rehearsals, tests and benchmarks.
//! - [`secret`] keeps the API key (and credential-like headers) out of every output; [`error`]
//!   names what went wrong and the exit codes.
//!
//! No two top-level modules import each other, directly or through others
//! (`python3 ../shared/tools/modcycles.py src` checks it): the persisted types (`job`,
//! `family`) are at the bottom, the engine (`store`, `load`, `pipeline`, `estimate`, `budget`,
//! `batch`) above them, `config` and `commands` on top, `cli` beside them knowing only names.

pub mod api;
pub mod base_url;
pub mod batch;
pub mod budget;
pub mod ceiling;
pub mod cli;
pub mod commands;
pub mod config;
pub mod confirm;
pub mod error;
pub mod estimate;
pub mod family;
pub mod files;
pub mod input;
pub mod job;
pub mod joblock;
pub mod limits;
pub mod load;
pub mod mock;
pub mod models;
pub mod output;
pub mod paths;
pub mod pipeline;
pub mod prepare;
pub mod profile;
pub mod progress;
pub mod provider;
pub mod report;
pub mod retry;
pub mod secret;
pub mod shutdown;
pub mod stall;
pub mod stats;
pub mod store;
pub mod summary;
pub mod template;
pub mod tokens;

/// Raises this process's open-file limit to its hard maximum: thousands of requests in flight
/// need thousands of sockets, and the default soft limit (often 1024) would fail them.
pub fn raise_fd_limit() {
    #[cfg(unix)]
    {
        let _ = rlimit::increase_nofile_limit(u64::MAX);
    }
}
