//! The command line, as clap sees it. Doc comments here are the `--help` text.
//!
//! Nothing past `config.rs` sees these types: flags are parsed once, then validated into the
//! configs the rest of the program uses. There is deliberately no flag that takes the API key
//! itself (it would show in process lists and shell history); it comes from the environment.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::input::InputFormat;
use crate::job::Endpoint;
use crate::output::OutputFormat;
use crate::provider::ProviderKind;

pub const DEFAULT_CONCURRENCY: usize = 50;
pub const DEFAULT_MAX_ATTEMPTS: u32 = 6;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

const AFTER_HELP: &str = "\
Exit codes:
  0  every row is done (with --mode batch --no-wait: the batches are submitted)
  1  error: bad flags, bad input, a checkpoint that does not match the command, I/O
  2  command-line usage error
  3  the run finished, but some rows failed (or were invalid, with --skip-invalid)
  4  the run stopped before finishing (Ctrl-C/SIGTERM/SIGHUP, the API refused the key, or the
     account is out of quota; in batch mode, Ctrl-C stops waiting and the batches go on);
     the checkpoint is intact: rerun the printed command to resume
  5  the run stopped at its --max-cost budget; resume with a larger budget to go on

The API key is read from OPENAI_API_KEY (AZURE_OPENAI_API_KEY with --provider azure), or the
variable named by --api-key-env, never from a flag.";

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
    #[command(after_help = AFTER_HELP)]
    Run(Box<RunArgs>),
    /// Estimate a job's tokens, cost and duration without sending anything (a dry run); takes the
    /// same flags as `run`. With --sample N, sends N random rows for real to measure completions.
    #[command(after_help = AFTER_HELP)]
    Estimate(Box<RunArgs>),
    /// Resume a job from its checkpoint alone (the settings are stored in it).
    #[command(after_help = AFTER_HELP)]
    Resume(Box<ResumeArgs>),
    /// Show a job's progress: rows by state, attempts, tokens, the most common errors.
    Status(StatusArgs),
    /// Write a job's results from its checkpoint, at any time (also while it runs).
    Export(ExportArgs),
    /// Cancel a `--mode batch` job's batches at the provider and collect what they finished.
    Cancel(CancelArgs),
    /// Serve a local OpenAI-compatible API for rehearsals and tests (deterministic completions,
    /// optional latency and injected faults).
    MockServer(Box<crate::mock::MockArgs>),
}

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// The prompts file: .csv (with a header row) or .jsonl/.ndjson.
    pub input: PathBuf,

    /// Where to write the results: .jsonl or .csv (see --output-format). Required, except for a
    /// dry run.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// The input's format, when its extension does not say.
    #[arg(long, value_enum)]
    pub format: Option<InputFormat>,

    /// The output's format, when its extension does not say, or `openai-batch` for OpenAI Batch
    /// output lines.
    #[arg(long, value_enum)]
    pub output_format: Option<OutputFormat>,

    /// Prompt template; `{field}` is replaced by the row's field, `{{` and `}}` are literal braces.
    #[arg(long, conflicts_with = "template_file")]
    pub template: Option<String>,

    /// Read the prompt template from a file.
    #[arg(long, value_name = "PATH")]
    pub template_file: Option<PathBuf>,

    /// System message (a template too) sent before each prompt.
    #[arg(long, conflicts_with = "system_file")]
    pub system: Option<String>,

    /// Read the system message from a file.
    #[arg(long, value_name = "PATH")]
    pub system_file: Option<PathBuf>,

    /// The field holding each row's id. Default: `id` or `custom_id` when present, else the row
    /// number.
    #[arg(long, value_name = "NAME")]
    pub id_column: Option<String>,

    /// Record invalid rows as failed (with the reason) and send the rest, instead of stopping
    /// before anything is sent.
    #[arg(long)]
    pub skip_invalid: bool,

    /// The API endpoint: chat (`/chat/completions`) or the legacy completions (`/completions`).
    /// Default: chat, or what the Batch input lines' `url` says.
    #[arg(long, value_enum)]
    pub endpoint: Option<Endpoint>,

    /// The model (overrides `body.model` of Batch input lines).
    #[arg(long)]
    pub model: Option<String>,

    /// Maximum completion tokens per request (sent as `max_completion_tokens` to OpenAI's
    /// reasoning models, `max_tokens` otherwise).
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u32>,

    /// Sampling temperature (0 to 2).
    #[arg(long)]
    pub temperature: Option<f64>,

    /// Any other request body parameter, e.g. `--param top_p=0.9 --param 'stop=["\n"]'`; the
    /// value is parsed as JSON when it parses, else taken as a string. Repeatable.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,

    /// The kind of API: `openai` (the OpenAI API and compatible servers) or `azure` (Azure
    /// OpenAI: deployment URLs, the key in an `api-key` header) [default: openai, or azure when
    /// --base-url is a deployment URL].
    #[arg(long, value_enum, value_name = "KIND")]
    pub provider: Option<ProviderKind>,

    /// The API's base URL [env: OPENAI_BASE_URL] [default: https://api.openai.com/v1]. With
    /// --provider azure: the resource endpoint, e.g. https://NAME.openai.azure.com, or a
    /// deployment URL (…/openai/deployments/NAME[?api-version=V]) [env: AZURE_OPENAI_ENDPOINT].
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,

    /// Azure OpenAI: the deployment to send to [default: --model, or the one in --base-url].
    #[arg(long, value_name = "NAME")]
    pub deployment: Option<String>,

    /// Azure OpenAI: the `api-version` query parameter [env: OPENAI_API_VERSION] [default:
    /// 2024-10-21].
    #[arg(long, value_name = "VERSION")]
    pub api_version: Option<String>,

    /// The environment variable that holds the API key. Default: OPENAI_API_KEY, or
    /// AZURE_OPENAI_API_KEY with --provider azure.
    #[arg(long, value_name = "NAME")]
    pub api_key_env: Option<String>,

    /// The checkpoint database. Default: the output path + `.promptmill.db`.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// Discard an existing checkpoint for this output and start over.
    #[arg(long)]
    pub restart: bool,

    #[command(flatten)]
    pub estimate: EstimateArgs,

    #[command(flatten)]
    pub send: SendArgs,
}

/// The dry run's flags (`promptmill estimate`, or `run --dry-run`).
#[derive(Debug, Args, Clone, Default)]
pub struct EstimateArgs {
    /// Estimate instead of sending: read and validate the input, count tokens, price the job
    /// (the same as `promptmill estimate`).
    #[arg(long)]
    pub dry_run: bool,

    /// Print the estimate as JSON on stdout instead of a table on stderr.
    #[arg(long)]
    pub json: bool,

    /// The completion tokens a row is expected to produce, for a point estimate of the cost
    /// (the upper bound always uses max_tokens).
    #[arg(long, value_name = "N")]
    pub expect_output_tokens: Option<u64>,

    /// How long one request takes, for the time estimate when concurrency is the binding limit.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "2s")]
    pub expect_latency: Duration,

    /// Calibrate: send N randomly chosen rows for real, measure their completion tokens, and
    /// estimate from them. They are checkpointed (--output or --db), so the full run that
    /// follows does not send or pay for them again.
    #[arg(long, value_name = "N")]
    pub sample: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The checkpoint database of the job.
    pub db: PathBuf,

    /// Write the results here instead of the path the job recorded.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// The output's format (default: as recorded, or from the extension of --output).
    #[arg(long, value_enum)]
    pub output_format: Option<OutputFormat>,

    /// Send to this base URL instead of the recorded one.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,

    /// The environment variable that holds the API key (default: as recorded).
    #[arg(long, value_name = "NAME")]
    pub api_key_env: Option<String>,

    #[command(flatten)]
    pub send: SendArgs,
}

/// How requests are sent: may differ from run to run of the same job.
#[derive(Debug, Args, Clone, Default)]
pub struct SendArgs {
    /// An extra header for every request, e.g. 'OpenAI-Organization: org-123'. Repeatable.
    #[arg(long = "header", value_name = "'NAME: VALUE'")]
    pub headers: Vec<String>,

    /// Requests in flight at most [default: 50, or what the job last ran with].
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,

    /// Requests per minute at most (0: no limit) [default: none, or what the job last ran with].
    #[arg(long, value_name = "N")]
    pub rpm: Option<u32>,

    /// Tokens per minute at most, counting prompt tokens + max_tokens per request as OpenAI does
    /// (0: no limit) [default: none, or what the job last ran with].
    #[arg(long, value_name = "N")]
    pub tpm: Option<u32>,

    /// Attempts per row before it is recorded as failed [default: 6, or what the job last ran
    /// with].
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,

    /// Time limit of one request, e.g. `90s`, `10m` [default: 600s, or what the job last ran
    /// with].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// After Ctrl-C, how long to wait for requests on the wire before abandoning them
    /// [default: 30s, or what the job last ran with].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub drain_timeout: Option<Duration>,

    /// Send again the rows that failed in earlier runs (invalid input rows stay failed).
    #[arg(long)]
    pub retry_failed: bool,

    /// Also write the run's totals as JSON to this file.
    #[arg(long, value_name = "PATH")]
    pub summary: Option<PathBuf>,

    /// Stop sending once the job's cost would exceed this many dollars: each request reserves its
    /// worst case (prompt + max_tokens) before it goes, and settles to its real usage after.
    /// Kept by the job for later runs; 0 removes it.
    #[arg(long, value_name = "DOLLARS")]
    pub max_cost: Option<f64>,

    #[command(flatten)]
    pub prices: PriceArgs,

    #[command(flatten)]
    pub batch: BatchArgs,

    /// No progress display and no summary table (errors are still printed).
    #[arg(short, long)]
    pub quiet: bool,

    /// Log retries and failures (-v), or every request (-vv).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// How rows are sent: one request each, or through the provider's Batch API.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One request per row, now, under the rate limits.
    #[default]
    Live,
    /// Files of rows through the Batch API (`/files`, `/batches`): half the price, done within
    /// 24 hours.
    Batch,
}

/// The Batch API's flags (`--mode batch`).
#[derive(Debug, Args, Clone, Default)]
pub struct BatchArgs {
    /// live: one request per row; batch: through the provider's Batch API at half the price,
    /// finished within 24 h [default: live, or what the job last ran with].
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,

    /// Rows per batch at most [default: 50000, the Batch API's limit].
    #[arg(long, value_name = "N")]
    pub batch_max_rows: Option<u64>,

    /// Bytes per batch input file at most, e.g. 100MB [default: 200MB, the Batch API's limit].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub batch_max_bytes: Option<u64>,

    /// Prompt tokens waiting in the provider's batch queue at most (the account's batch queue
    /// limit): later batches are submitted as earlier ones finish [default: no limit].
    #[arg(long, value_name = "TOKENS")]
    pub batch_max_enqueued_tokens: Option<u64>,

    /// How often to poll each batch at first; the interval grows while nothing changes
    /// [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub poll_interval: Option<Duration>,

    /// Submit the batches and exit without waiting; `promptmill resume DB` (or the same
    /// command) later collects them.
    #[arg(long)]
    pub no_wait: bool,

    /// Send the rows that remain (pending, and with --retry-failed the failed ones) one request
    /// at a time instead of as a new batch, once every submitted batch is collected.
    #[arg(long)]
    pub finish_live: bool,
}

/// Where model prices come from, beyond the built-in table.
#[derive(Debug, Args, Clone, Default)]
pub struct PriceArgs {
    /// A LiteLLM-format price map (model_prices_and_context_window.json) to price models by.
    #[arg(long, value_name = "FILE")]
    pub prices: Option<PathBuf>,

    /// The model's input price, dollars per million tokens (with --price-out).
    #[arg(long, value_name = "DOLLARS")]
    pub price_in: Option<f64>,

    /// The model's output price, dollars per million tokens (with --price-in).
    #[arg(long, value_name = "DOLLARS")]
    pub price_out: Option<f64>,
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

    /// Send the cancel requests and exit without waiting for the batches to stop; the next
    /// `promptmill resume DB` collects them.
    #[arg(long)]
    pub no_wait: bool,

    /// Log every API call (-v).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The checkpoint database of the job.
    pub db: PathBuf,

    /// Where to write; the format comes from the extension unless --format is given.
    #[arg(short, long, value_name = "PATH")]
    pub output: PathBuf,

    /// jsonl, csv, or openai-batch.
    #[arg(long, value_enum)]
    pub format: Option<OutputFormat>,
}

/// A size in bytes: a number, optionally with a unit (KB, MB, GB: powers of 1000; KiB, MiB,
/// GiB: powers of 1024).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a size (examples: 1000000, 100MB, 64MiB)"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1_000,
        "mb" | "m" => 1_000_000,
        "gb" | "g" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        other => {
            return Err(format!(
                "`{other}` is not a unit of size (B, KB, MB, GB, KiB, MiB, GiB)"
            ))
        }
    };
    match n.checked_mul(scale) {
        Some(0) => Err("must be more than zero".into()),
        Some(v) => Ok(v),
        None => Err(format!("`{s}` is too large")),
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 90s, 10m, 1h30m)"))?;
    if d.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("200MB"), Ok(200_000_000));
        assert_eq!(parse_size("64 MiB"), Ok(64 << 20));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12 parsecs").unwrap_err().contains("parsecs"));
        assert!(parse_size("MB").is_err());
    }
}
