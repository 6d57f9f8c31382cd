//! The command line, as clap sees it. Doc comments here are the `--help` text: the first line of
//! each is its `-h` line (keep it short), the rest only shows in `--help`.
//!
//! Nothing past `config.rs` sees these types: flags are parsed once, then validated into the
//! configs the rest of the program uses. There is deliberately no flag that takes the API key
//! itself (it would show in process lists and shell history); it comes from the environment.
//! Every flag sits under one of the help headings below; a new flag names its heading. The
//! closest-flag tip for a misspelt flag is in `suggest.rs`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::input::InputFormat;
use crate::job::Endpoint;
use crate::output::OutputFormat;
use crate::provider::ProviderKind;

mod help;
mod suggest;

use help::*;

pub const DEFAULT_CONCURRENCY: usize = 50;
pub const DEFAULT_MAX_ATTEMPTS: u32 = 6;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

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

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// The prompts file (.csv with a header row, .jsonl, .parquet); `-`: stdin.
    ///
    /// `-` reads the rows from standard input. With `-`, --format is required, and so is --db when the output is `-` too.
    #[arg(help_heading = INPUT)]
    pub input: PathBuf,

    /// csv, jsonl or parquet, when the input's extension does not say.
    #[arg(long, value_enum, hide_possible_values = true, help_heading = INPUT)]
    pub format: Option<InputFormat>,

    /// The field holding each row's id.
    ///
    /// Default: `id` or `custom_id` when present, else the row number.
    #[arg(long, value_name = "NAME", help_heading = INPUT)]
    pub id_column: Option<String>,

    /// Record invalid rows as failed and send the rest.
    ///
    /// Without it, an invalid row stops the run before anything is sent. With it, each invalid
    /// row is recorded as failed (with the reason).
    #[arg(long, help_heading = INPUT)]
    pub skip_invalid: bool,

    /// Send only the first N rows.
    ///
    /// Every row is still read and checked. Running again without it, or with a larger N, sends the rest; rows done are not sent
    /// again.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), help_heading = INPUT)]
    pub limit: Option<u64>,

    /// The model (overrides `body.model` of Batch input lines).
    #[arg(long, help_heading = REQUEST)]
    pub model: Option<String>,

    /// Prompt template, e.g. 'Summarize: {text}'.
    ///
    /// `{field}` is replaced by the row's field, `{{` and `}}` are literal braces.
    #[arg(long, conflicts_with = "template_file", help_heading = REQUEST)]
    pub template: Option<String>,

    /// Read the prompt template from a file.
    #[arg(long, value_name = "PATH", help_heading = REQUEST)]
    pub template_file: Option<PathBuf>,

    /// System message (a template too) sent before each prompt.
    #[arg(long, conflicts_with = "system_file", help_heading = REQUEST)]
    pub system: Option<String>,

    /// Read the system message from a file.
    #[arg(long, value_name = "PATH", help_heading = REQUEST)]
    pub system_file: Option<PathBuf>,

    /// Maximum completion tokens per request.
    ///
    /// Sent as `max_completion_tokens` to OpenAI's reasoning models, `max_tokens` otherwise.
    #[arg(long, value_name = "N", help_heading = REQUEST)]
    pub max_tokens: Option<u32>,

    /// Sampling temperature (0 to 2).
    #[arg(long, help_heading = REQUEST)]
    pub temperature: Option<f64>,

    /// Any other body parameter, e.g. top_p=0.9. Repeatable.
    ///
    /// E.g. `--param top_p=0.9 --param 'stop=["\n"]'`; the value is parsed as JSON when it
    /// parses, else taken as a string.
    #[arg(long = "param", value_name = "KEY=VALUE", help_heading = REQUEST)]
    pub params: Vec<String>,

    /// chat, responses, or completions (legacy).
    ///
    /// chat: /chat/completions; responses: the Responses API (/responses, `input` and
    /// `instructions`, sent with `store: false` unless --param store=true); completions: the
    /// legacy /completions. Default: chat, or what the Batch input lines' `url` says.
    #[arg(long, value_parser = endpoint_parser(), hide_possible_values = true, help_heading = REQUEST)]
    pub endpoint: Option<Endpoint>,

    /// openai (and compatible servers) or azure.
    ///
    /// `openai`: the OpenAI API and compatible servers; `azure`: Azure OpenAI (deployment URLs,
    /// the key in an `api-key` header) [default: openai, or azure when --base-url is a
    /// deployment URL].
    #[arg(long, value_enum, value_name = "KIND", hide_possible_values = true, help_heading = PROVIDER)]
    pub provider: Option<ProviderKind>,

    /// The API's base URL [env: OPENAI_BASE_URL].
    ///
    /// Default: https://api.openai.com/v1. With --provider azure: the resource endpoint, e.g.
    /// https://NAME.openai.azure.com, or a deployment URL
    /// (…/openai/deployments/NAME[?api-version=V]) [env: AZURE_OPENAI_ENDPOINT].
    #[arg(long, value_name = "URL", help_heading = PROVIDER)]
    pub base_url: Option<String>,

    /// Azure OpenAI: the deployment to send to.
    ///
    /// Default: --model, or the one in --base-url.
    #[arg(long, value_name = "NAME", help_heading = PROVIDER)]
    pub deployment: Option<String>,

    /// Azure OpenAI: the `api-version` [env: OPENAI_API_VERSION].
    ///
    /// The `api-version` query parameter; default: 2024-10-21.
    #[arg(long, value_name = "VERSION", help_heading = PROVIDER)]
    pub api_version: Option<String>,

    /// The environment variable that holds the API key.
    ///
    /// Default: OPENAI_API_KEY, or AZURE_OPENAI_API_KEY with --provider azure.
    #[arg(long, value_name = "NAME", help_heading = PROVIDER)]
    pub api_key_env: Option<String>,

    #[command(flatten)]
    pub profile: ProfileArgs,

    /// Where to write the results (.jsonl, .csv or .parquet; `-`: stdout).
    ///
    /// The format comes from the extension, or --output-format. `-` writes the results to
    /// standard output at the end of the run (JSONL unless --output-format says otherwise); the
    /// checkpoint then needs --db. Required, except for a dry run.
    #[arg(short, long, value_name = "PATH", help_heading = OUTPUT)]
    pub output: Option<PathBuf>,

    /// jsonl, csv, parquet or openai-batch, when the extension does not say.
    ///
    /// `openai-batch` writes OpenAI Batch output lines.
    #[arg(long, value_enum, value_name = "FORMAT", hide_possible_values = true, help_heading = OUTPUT)]
    pub output_format: Option<OutputFormat>,

    /// The checkpoint database [default: OUTPUT.promptmill.db].
    ///
    /// Required when the output is `-`.
    #[arg(long, value_name = "PATH", help_heading = CHECKPOINT)]
    pub db: Option<PathBuf>,

    /// Discard an existing checkpoint for this output and start over.
    #[arg(long, help_heading = CHECKPOINT)]
    pub restart: bool,

    #[command(flatten)]
    pub estimate: EstimateArgs,

    #[command(flatten)]
    pub send: SendArgs,
}

/// Profiles: named settings in a TOML file (see `profile.rs`).
#[derive(Debug, Args, Clone, Default)]
pub struct ProfileArgs {
    /// Use the settings of this profile of the config file.
    ///
    /// A flag given on the command line wins over the profile, and the profile over what the
    /// job stored. The file is read only when --profile is given.
    #[arg(long, value_name = "NAME", help_heading = PROVIDER)]
    pub profile: Option<String>,

    /// The config file of --profile.
    ///
    /// Default: $XDG_CONFIG_HOME/promptmill/config.toml, else ~/.config/promptmill/config.toml.
    #[arg(long, value_name = "FILE", requires = "profile", help_heading = PROVIDER)]
    pub config: Option<PathBuf>,
}

/// The dry run's flags (`promptmill estimate`, or `run --dry-run`).
#[derive(Debug, Args, Clone, Default)]
pub struct EstimateArgs {
    /// Estimate instead of sending (the same as `promptmill estimate`).
    ///
    /// Read and validate the input, count tokens, price the job; nothing is sent.
    #[arg(long, help_heading = ESTIMATE)]
    pub dry_run: bool,

    /// Print the estimate as JSON on stdout instead of a table on stderr.
    #[arg(long, help_heading = ESTIMATE)]
    pub json: bool,

    /// The completion tokens a row is expected to produce.
    ///
    /// For a point estimate of the cost (the upper bound always uses max_tokens).
    #[arg(long, value_name = "N", help_heading = ESTIMATE)]
    pub expect_output_tokens: Option<u64>,

    /// How long one request takes, for the time estimate.
    ///
    /// Used when concurrency is the binding limit.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "2s", help_heading = ESTIMATE)]
    pub expect_latency: Duration,

    /// Calibrate: send N random rows for real and estimate from them.
    ///
    /// Their completion tokens are measured. They are checkpointed (--output or --db), so the
    /// full run that follows does not send or pay for them again.
    #[arg(long, value_name = "N", help_heading = ESTIMATE)]
    pub sample: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The checkpoint database of the job.
    #[arg(help_heading = CHECKPOINT)]
    pub db: PathBuf,

    /// Write the results here instead of the path the job recorded (`-`: stdout).
    #[arg(short, long, value_name = "PATH", help_heading = OUTPUT)]
    pub output: Option<PathBuf>,

    /// The output's format (default: as recorded, or from the extension of --output).
    #[arg(long, value_enum, value_name = "FORMAT", help_heading = OUTPUT)]
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

/// How requests are sent: may differ from run to run of the same job.
#[derive(Debug, Args, Clone, Default)]
pub struct SendArgs {
    /// An extra header, e.g. 'OpenAI-Organization: org-123'. Repeatable.
    ///
    /// Sent with every request. A header whose name looks like a credential is not stored in
    /// the checkpoint: pass it again on resume.
    #[arg(long = "header", value_name = "'NAME: VALUE'", help_heading = PROVIDER)]
    pub headers: Vec<String>,

    /// Requests in flight at most [default: 50].
    ///
    /// A later run of the job keeps what it last ran with, unless this flag is given again.
    #[arg(long, value_name = "N", help_heading = LIMITS)]
    pub concurrency: Option<usize>,

    /// Requests per minute at most (0: no limit) [default: none].
    ///
    /// A later run of the job keeps what it last ran with, unless this flag is given again.
    #[arg(long, value_name = "N", help_heading = LIMITS)]
    pub rpm: Option<u32>,

    /// Tokens per minute at most (0: no limit) [default: none].
    ///
    /// Counts prompt tokens + max_tokens per request, as OpenAI does.
    /// A later run of the job keeps what it last ran with, unless this flag is given again.
    #[arg(long, value_name = "N", help_heading = LIMITS)]
    pub tpm: Option<u32>,

    /// Attempts per row before it is recorded as failed [default: 6].
    ///
    /// A later run of the job keeps what it last ran with, unless this flag is given again.
    #[arg(long, value_name = "N", help_heading = LIMITS)]
    pub max_attempts: Option<u32>,

    /// Time limit of one request, e.g. `90s`, `10m` [default: 600s].
    ///
    /// A later run of the job keeps what it last ran with, unless this flag is given again.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = LIMITS)]
    pub timeout: Option<Duration>,

    /// After Ctrl-C, how long to wait for replies [default: 30s].
    ///
    /// Requests still unanswered then are abandoned (and sent again by the next run).
    /// A later run of the job keeps what it last ran with, unless this flag is given again.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = LIMITS)]
    pub drain_timeout: Option<Duration>,

    /// Allow a plain http:// --base-url to a host that is not this machine.
    ///
    /// The key and the --header values then travel in clear text. For this run only: not
    /// stored in the job.
    #[arg(long, help_heading = PROVIDER)]
    pub allow_http: bool,

    /// Send again the rows that failed in earlier runs.
    ///
    /// Invalid input rows stay failed.
    #[arg(long, help_heading = CHECKPOINT)]
    pub retry_failed: bool,

    /// Also write the run's totals as JSON to this file.
    #[arg(long, value_name = "PATH", help_heading = OUTPUT)]
    pub summary: Option<PathBuf>,

    /// Also write the job's HTML run report to this file when the run ends.
    ///
    /// Written on every end of the run, Ctrl-C included; the same page as `promptmill report`.
    #[arg(long, value_name = "PATH", help_heading = OUTPUT)]
    pub report: Option<PathBuf>,

    /// Replace an existing output that this job did not write.
    ///
    /// Without it, such a file is refused before anything is sent.
    #[arg(long, help_heading = OUTPUT)]
    pub overwrite: bool,

    /// Stop sending once the job's cost would exceed this many dollars.
    ///
    /// Each request reserves its worst case (prompt + max_tokens) before it goes, and settles to
    /// its real usage after. Kept by the job for later runs; 0 removes it.
    #[arg(long, value_name = "DOLLARS", help_heading = COST)]
    pub max_cost: Option<f64>,

    /// The longest response body read [default: 16MiB].
    ///
    /// E.g. 16MiB, 100MB: a longer answer fails its row without being read whole (a Batch API
    /// result line longer than this is unreadable).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, help_heading = LIMITS)]
    pub max_response_size: Option<u64>,

    #[command(flatten)]
    pub prices: PriceArgs,

    #[command(flatten)]
    pub batch: BatchArgs,

    /// Ask "Send? [y/N]" before a new job's first request.
    ///
    /// Asked after the line with the job's cost ceiling, on the terminal. Refused when standard
    /// input is not a terminal (it never waits on a pipe).
    #[arg(long, help_heading = COST)]
    pub confirm: bool,

    /// How often the plain progress line is printed off a terminal (or with TERM=dumb).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, hide = true)]
    pub progress_interval: Option<Duration>,

    /// No progress display and no summary table.
    ///
    /// Errors are still printed.
    #[arg(short, long, help_heading = OUTPUT)]
    pub quiet: bool,

    /// Log retries and failures (-v), or every request (-vv).
    #[arg(short, long, action = clap::ArgAction::Count, help_heading = OUTPUT)]
    pub verbose: u8,
}

/// `--endpoint`'s values: the names of the registered API families (`crate::family`).
fn endpoint_parser() -> impl clap::builder::TypedValueParser<Value = Endpoint> {
    use clap::builder::TypedValueParser;
    let names: Vec<&'static str> = crate::family::FAMILIES.iter().map(|f| f.name()).collect();
    clap::builder::PossibleValuesParser::new(names)
        .try_map(|name: String| Endpoint::from_name(&name).ok_or("not an API family"))
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
    /// live (default), or batch: the Batch API at half price.
    ///
    /// live: one request per row, now; batch: through the provider's Batch API at half the price, finished within 24 h. A later
    /// run of the job keeps the mode it last ran with, unless this flag is given again.
    #[arg(long, value_enum, hide_possible_values = true, help_heading = BATCH)]
    pub mode: Option<Mode>,

    /// Rows per batch at most [default: 50000].
    ///
    /// 50000 is the Batch API's limit.
    #[arg(long, value_name = "N", help_heading = BATCH)]
    pub batch_max_rows: Option<u64>,

    /// Bytes per batch file at most [default: 200MB].
    ///
    /// E.g. 100MB, 64MiB. 200MB is the Batch API's limit.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, help_heading = BATCH)]
    pub batch_max_bytes: Option<u64>,

    /// Prompt tokens queued at most [default: no limit].
    ///
    /// The account's batch queue limit: later batches are submitted as earlier ones finish.
    #[arg(long, value_name = "TOKENS", help_heading = BATCH)]
    pub batch_max_enqueued_tokens: Option<u64>,

    /// How often to poll a batch at first [default: 30s].
    ///
    /// The interval grows while nothing changes.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = BATCH)]
    pub poll_interval: Option<Duration>,

    /// Submit the batches and exit without waiting.
    ///
    /// `promptmill resume DB` (or the same command) later collects them.
    #[arg(long, help_heading = BATCH)]
    pub no_wait: bool,

    /// Send what the batches left one request at a time.
    ///
    /// Once every submitted batch is collected, the rows that remain (pending, and with
    /// --retry-failed the failed ones) are sent live instead of as a new batch.
    #[arg(long, help_heading = BATCH)]
    pub finish_live: bool,
}

/// Where model prices come from, beyond the built-in table.
#[derive(Debug, Args, Clone, Default)]
pub struct PriceArgs {
    /// A LiteLLM-format price map to price models by.
    ///
    /// The format of LiteLLM's model_prices_and_context_window.json.
    #[arg(long, value_name = "FILE", help_heading = COST)]
    pub prices: Option<PathBuf>,

    /// The model's input price, dollars per million tokens (with --price-out).
    #[arg(long, value_name = "DOLLARS", help_heading = COST)]
    pub price_in: Option<f64>,

    /// The model's output price, dollars per million tokens (with --price-in).
    #[arg(long, value_name = "DOLLARS", help_heading = COST)]
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
    #[arg(long, value_enum, value_name = "FORMAT", alias = "format")]
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
