//! `promptmill cache`'s arguments: which cache file, and what to do with it.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::values::parse_duration;

#[derive(Debug, Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub action: CacheAction,

    /// The response cache file [default: $XDG_CACHE_HOME/promptmill/cache.db].
    ///
    /// Else ~/.cache/promptmill/cache.db, as `run` uses it.
    #[arg(long = "cache", value_name = "PATH", global = true)]
    pub path: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// Show how many answers the cache holds, their size and age, by family.
    Stats {
        /// Print the numbers as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Remove the answers stored longer ago than --older-than.
    Prune {
        /// The age past which answers go, e.g. `30d`, `12h`.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        older_than: Duration,
    },
    /// Remove every answer.
    Clear,
}
