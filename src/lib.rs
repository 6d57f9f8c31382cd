//! promptmill: push large files of prompts through OpenAI-compatible APIs, within the provider's
//! limits, checkpointed so that no row is lost or paid for twice.
//!
//! The repository is a Cargo workspace of four crates, each depending only on those below it:
//!
//! - `promptmill-core` (`crates/core`): the persisted job record and its settings ([`job`]), the
//!   API families behind the `ApiFamily` trait ([`family`]), where requests go ([`provider`],
//!   [`base_url`]), input readers ([`input`]), templates ([`template`]), token counting
//!   ([`tokens`]) and prices ([`models`]), and the rules every created file follows ([`files`],
//!   [`paths`]), with [`secret`], [`error`], [`retry`], [`stall`], [`confirm`].
//! - `promptmill-engine` (`crates/engine`): the checkpoint ([`store`]), [`load`], the worker loop
//!   ([`pipeline`], [`limits`], [`budget`], [`api`]), the Batch driver ([`batch`]), the dry run
//!   ([`estimate`]), [`output`], [`report`] and the rest of a run's machinery, with no
//!   command-line types.
//! - `promptmill-mock` (`crates/mock`): the local OpenAI-compatible server ([`mock`]), which
//!   depends on no other promptmill crate, so it checks the wire formats independently of the
//!   code that sends them.
//! - `promptmill` (this crate, `src/`): the command line. [`cli`] parses it (clap stays there:
//!   `cli/choices.rs` names the domain enums the flags take); [`config`] validates it into the
//!   engine's settings, with the settings of a [`profile`] under the flags given; [`commands`]
//!   holds the subcommands (`run` reads like the plot of a job); `main` turns a `Result` into an
//!   exit code.
//!
//! The lower crates' modules are re-exported here under their own names, so tests, examples and
//! benchmarks reach them as `promptmill::store`, `promptmill::family` …; this crate's own code
//! names the crate it uses (`promptmill_engine::store`). No import cycle between the top-level
//! modules of any crate (`python3 ../shared/tools/modcycles.py DIR` for `src`, `crates/core/src`,
//! `crates/engine/src`, `crates/mock/src`).

pub use promptmill_core::{
    base_url, confirm, error, family, files, input, job, models, paths, provider, retry, secret, stall,
    template, tokens,
};

pub use promptmill_engine::{
    api, batch, budget, ceiling, estimate, joblock, limits, load, output, pipeline, prepare, progress,
    report, shutdown, source, stats, store, summary,
};

/// The mock server is its own crate (`crates/mock`), named here as it always was.
pub use promptmill_mock as mock;

pub mod cli;
pub mod commands;
pub mod config;
pub mod profile;

/// Raises this process's open-file limit to its hard maximum: thousands of requests in flight
/// need thousands of sockets, and the default soft limit (often 1024) would fail them.
pub fn raise_fd_limit() {
    #[cfg(unix)]
    {
        let _ = rlimit::increase_nofile_limit(u64::MAX);
    }
}
