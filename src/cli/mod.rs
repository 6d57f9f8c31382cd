//! The command line, as clap sees it. Doc comments here are the `--help` text: the first line of
//! each is its `-h` line (keep it short), the rest only shows in `--help`.
//!
//! Nothing past `config` sees these types: flags are parsed once, then validated into the
//! configs the rest of the program uses. There is deliberately no flag that takes the API key
//! itself (it would show in process lists and shell history); it comes from the environment.
//! Every flag sits under one of the help headings below; a new flag names its heading. The
//! closest-flag tip for a misspelt flag is in `suggest.rs`.
//!
//! This file holds the subcommands and the help headings; the flags sit by group: `run`'s and
//! the dry run's (`run_args`), how requests are sent (`send_args`), the commands on an existing
//! checkpoint (`job_args`), and the parsers of sizes and durations (`values`).

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};

mod cache_args;
mod choices;
mod help;
mod job_args;
mod run_args;
mod send_args;
mod suggest;
mod values;

use help::*;

pub use cache_args::{CacheAction, CacheArgs};
pub use choices::{name_of, Choice};
pub use job_args::{CancelArgs, ExportArgs, ReportArgs, ResumeArgs, StatusArgs};
pub use promptmill_core::job::settings::{
    Mode, DEFAULT_CONCURRENCY, DEFAULT_DRAIN_TIMEOUT, DEFAULT_MAX_ATTEMPTS, DEFAULT_TIMEOUT,
};
pub use run_args::{EstimateArgs, ProfileArgs, RunArgs};
pub use send_args::{BatchArgs, PriceArgs, SendArgs};

// The help headings, in the order `--help` shows them (clap shows headings in first-use order).
/// The prompts file and how to read its rows.
pub const INPUT: &str = "Input";
/// What each request asks: model, template, parameters.
pub const REQUEST: &str = "Request";
/// Where requests go: provider, URL, key variable, headers, profiles.
pub const PROVIDER: &str = "Provider";
/// How fast and how hard to send.
pub const LIMITS: &str = "Limits";
/// Budget and prices.
pub const COST: &str = "Cost";
/// The SQLite checkpoint.
pub const CHECKPOINT: &str = "Checkpoint";
/// The results file, the summary, the display.
pub const OUTPUT: &str = "Output";
/// `--mode batch`.
pub const BATCH: &str = "Batch";
/// The dry run's own flags.
pub const ESTIMATE: &str = "Estimate";

#[derive(Debug, Parser)]
#[command(name = "promptmill", version, about, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send every row of a prompts file (CSV or JSONL) and write the completions, in input order.
    ///
    /// Progress is checkpointed in SQLite: running the same command again resumes where the last
    /// run stopped, and rows already done are never sent again.
    #[command(after_help = AFTER_HELP, after_long_help = format!("{RUN_EXAMPLES}\n\n{AFTER_HELP}"))]
    Run(Box<RunArgs>),
    /// Estimate a job's tokens, cost and duration without sending anything (a dry run).
    ///
    /// Takes the flags of `run` that a dry run uses. With --sample N, sends N random rows for
    /// real to measure completions.
    #[command(after_help = AFTER_HELP, after_long_help = format!("{ESTIMATE_EXAMPLES}\n\n{AFTER_HELP}"))]
    Estimate(Box<RunArgs>),
    /// Resume a job from its checkpoint alone (the settings are stored in it).
    #[command(after_help = AFTER_HELP, after_long_help = format!("{RESUME_EXAMPLES}\n\n{AFTER_HELP}"))]
    Resume(Box<ResumeArgs>),
    /// Show a job's progress: rows by state, attempts, tokens, the most common errors.
    #[command(after_long_help = STATUS_EXAMPLES)]
    Status(StatusArgs),
    /// Write a job's results from its checkpoint, at any time (also while it runs).
    #[command(after_long_help = EXPORT_EXAMPLES)]
    Export(ExportArgs),
    /// Write a job's run report: one self-contained HTML page of charts and tables.
    #[command(after_long_help = REPORT_EXAMPLES)]
    Report(ReportArgs),
    /// Show, prune or clear the response cache that runs share (answers kept across jobs).
    #[command(after_long_help = CACHE_EXAMPLES)]
    Cache(CacheArgs),
    /// Cancel a `--mode batch` job's batches at the provider and collect what they finished.
    #[command(after_long_help = CANCEL_EXAMPLES)]
    Cancel(CancelArgs),
    /// Serve a local OpenAI-compatible API for rehearsals and tests (deterministic completions,
    /// optional latency and injected faults).
    #[command(after_long_help = MOCK_EXAMPLES)]
    MockServer(Box<crate::mock::MockArgs>),
    /// Print a shell completion script on stdout (bash, zsh, fish, powershell, elvish).
    #[command(after_long_help = COMPLETIONS_EXAMPLES)]
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout, or write one page per subcommand with --dir.
    #[command(after_long_help = MAN_EXAMPLES)]
    Man(ManArgs),
}

/// The flags of `run` that do not apply to a dry run: `estimate --help` does not show them
/// (they are still accepted, so a `run` command line turns into an estimate by its verb).
const NOT_FOR_ESTIMATE: &[&str] = &[
    "dry_run",
    "output_format",
    "restart",
    "retry_failed",
    "summary",
    "report",
    "max_cost",
    "max_attempts",
    "timeout",
    "drain_timeout",
    "poll_interval",
    "no_wait",
    "finish_live",
    "batch_max_enqueued_tokens",
    "limit",
    "overwrite",
];

/// Parses the command line, or prints clap's message (with the closest flag as its tip) and
/// exits 2; `--help` and `--version` print and exit 0.
pub fn parse<I, T>(args: I) -> Cli
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::FromArgMatches;
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let mut cmd = command();
    let parsed = cmd
        .try_get_matches_from_mut(&args)
        .and_then(|m| Cli::from_arg_matches(&m));
    match parsed {
        Ok(cli) => cli,
        Err(err) => suggest::closest_flag_tip(err.format(&mut cmd), &cmd, &args).exit(),
    }
}

/// The clap command of [`Cli`], with `estimate --help` narrowed to the dry run's flags.
pub fn command() -> clap::Command {
    Cli::command().mut_subcommand("estimate", |mut sub| {
        for id in NOT_FOR_ESTIMATE {
            sub = sub.mut_arg(*id, |a| a.hide(true));
        }
        sub
    })
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write promptmill.1 and one promptmill-SUBCOMMAND.1 per subcommand into this existing
    /// directory, instead of printing promptmill.1 on stdout.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}
