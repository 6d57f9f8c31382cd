//! The flags of the commands that act on an existing checkpoint: `resume`, `status`, `cancel`,
//! `export` and `report`. `resume` takes the sending flags of `send_args.rs` too.

use std::path::PathBuf;

use clap::Args;

use super::choices;
use super::{SendArgs, CHECKPOINT, INPUT, OUTPUT, PROVIDER};
use promptmill_core::job::settings::OutputFormat;

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The checkpoint database of the job.
    #[arg(help_heading = CHECKPOINT)]
    pub db: PathBuf,

    /// Write the results here instead of the path the job recorded (`-`: stdout).
    #[arg(short, long, value_name = "PATH", help_heading = OUTPUT)]
    pub output: Option<PathBuf>,

    /// The output's format (default: as recorded, or from the extension of --output).
    #[arg(long, value_parser = choices::parser::<OutputFormat>(), value_name = "FORMAT", help_heading = OUTPUT)]
    pub output_format: Option<OutputFormat>,

    /// Send to this base URL instead of the recorded one.
    #[arg(long, value_name = "URL", help_heading = PROVIDER)]
    pub base_url: Option<String>,

    /// Send only the first N rows from now on, instead of the recorded `--limit`.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), help_heading = INPUT)]
    pub limit: Option<u64>,

    /// Lift the recorded `--limit`: send every row.
    #[arg(long, conflicts_with = "limit", help_heading = INPUT)]
    pub no_limit: bool,

    /// The environment variable that holds the API key (default: as recorded).
    #[arg(long, value_name = "NAME", help_heading = PROVIDER)]
    pub api_key_env: Option<String>,

    #[command(flatten)]
    pub send: SendArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The checkpoint database of the job.
    pub db: PathBuf,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The checkpoint database of the job.
    pub db: PathBuf,

    /// Send the cancel requests and exit without waiting for the batches to stop.
    ///
    /// The next `promptmill resume DB` collects them.
    #[arg(long)]
    pub no_wait: bool,

    /// Allow the job's plain http:// base URL to a host that is not this machine (the key then
    /// travels in clear text).
    #[arg(long)]
    pub allow_http: bool,

    /// The job's base URL again, when it has a credential-like query parameter (never stored).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,

    /// Log every API call (-v).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The checkpoint database of the job.
    pub db: PathBuf,

    /// Where to write (`-`: standard output).
    ///
    /// The format comes from the extension unless --output-format is given (JSONL for `-`).
    #[arg(short, long, value_name = "PATH")]
    pub output: PathBuf,

    /// The output's format: jsonl, csv, parquet, or openai-batch.
    ///
    /// `--format` is accepted too (its old name), as `run` and `resume` name this
    /// `--output-format` and `--format` is the input's format there.
    #[arg(long, value_parser = choices::parser::<OutputFormat>(), value_name = "FORMAT", alias = "format")]
    pub output_format: Option<OutputFormat>,

    /// Replace an existing file that no run or export of this job wrote.
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The checkpoint database of the job.
    pub db: PathBuf,

    /// Where to write the HTML page (one file: charts, tables and styles inline).
    #[arg(short, long, value_name = "PATH")]
    pub output: PathBuf,
}
