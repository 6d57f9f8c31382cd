//! How requests are sent, the flags `run` and `resume` share: headers, limits, retries, the
//! budget and prices, the Batch API's flags, the display. They may differ from run to run of
//! the same job; what a job keeps of them is `config`'s.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::choices;
use super::values::{parse_duration, parse_size};
use super::Mode;
use super::{BATCH, CHECKPOINT, COST, LIMITS, OUTPUT, PROVIDER};

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

    /// Re-asks of an invalid or cut answer [default: 2].
    ///
    /// Each is a new request, paid for and counted in the totals and the budget; then the
    /// row fails with the validator's errors. A refusal is not asked again.
    /// A later run of the job keeps what it last ran with, unless this flag is given again.
    #[arg(long, value_name = "N", help_heading = LIMITS)]
    pub schema_retries: Option<u32>,

    /// Re-ask with the bad answer and its errors.
    ///
    /// Chat and Anthropic's messages: the answer goes back as the assistant's turn, followed
    /// by a user message listing what the validator found. The Responses API: the same, as
    /// input items. Kept by later runs of the job.
    #[arg(long, help_heading = LIMITS)]
    pub schema_repair: bool,

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

    /// Rows per request, embeddings only [default: 100].
    ///
    /// At most 2048. A request also closes early when its next row would take its input past 300,000
    /// tokens. Each row is still settled on its own in the checkpoint. Other endpoints send
    /// one row per request. A later run of the job keeps what it last ran with, unless this
    /// flag is given again.
    #[arg(long, value_name = "N", help_heading = LIMITS)]
    pub rows_per_request: Option<usize>,

    /// The response cache file [default: $XDG_CACHE_HOME/promptmill/cache.db]
    ///
    /// Else ~/.cache/promptmill/cache.db. Whole answers are kept there when a run ends, keyed
    /// by the family, the request URL and the request body (never the key or a header), and a
    /// row whose request is in it is done without sending it, whatever job answered it first:
    /// no request, no tokens, no money. Shared safely by jobs running at once.
    #[arg(long = "cache", value_name = "PATH", help_heading = CHECKPOINT)]
    pub cache: Option<PathBuf>,

    /// Send every row: neither read nor write the response cache.
    #[arg(long, help_heading = CHECKPOINT, conflicts_with_all = ["cache", "cache_read_only"])]
    pub no_cache: bool,

    /// Take answers from the response cache but store none.
    #[arg(long, help_heading = CHECKPOINT)]
    pub cache_read_only: bool,

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

/// The Batch API's flags (`--mode batch`).
#[derive(Debug, Args, Clone, Default)]
pub struct BatchArgs {
    /// live (default), or batch: the Batch API at half price.
    ///
    /// live: one request per row, now; batch: through the provider's Batch API at half the price, finished within 24 h. A later
    /// run of the job keeps the mode it last ran with, unless this flag is given again.
    #[arg(long, value_parser = choices::parser::<Mode>(), hide_possible_values = true, help_heading = BATCH)]
    pub mode: Option<Mode>,

    /// Rows per batch at most [default: the provider's limit].
    ///
    /// OpenAI's and Azure's limit is 50000, Anthropic's 100000: a larger value is lowered to it.
    #[arg(long, value_name = "N", help_heading = BATCH)]
    pub batch_max_rows: Option<u64>,

    /// Bytes per batch at most [default: the provider's limit].
    ///
    /// E.g. 100MB, 64MiB. OpenAI's and Azure's limit is 200MB, Anthropic's 256MB: a larger
    /// value is lowered to it.
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
