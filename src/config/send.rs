//! How requests are sent: `SendConfig`, the flags shared by `run` and `resume`, and what a job
//! keeps of them (`SendLimits`, `BatchSettings`) so that a resume sends as the job ran. The
//! `--header` values are checked here too; where the requests go is `target`'s.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{self, SendArgs};
use promptmill_core::error::ConfigError;
pub use promptmill_core::job::settings::{
    BatchSettings, SendLimits, ANY_BATCH_MAX_BYTES, ANY_BATCH_MAX_ROWS, BATCH_MAX_BYTES, BATCH_MAX_ROWS,
    DEFAULT_POLL_INTERVAL,
};
use promptmill_core::models::{PriceBook, PriceError};
pub use promptmill_core::secret::is_secret_header;

/// How requests are sent, as this command line asks; shared by `run` and `resume`. Its `Debug`
/// redacts credential headers.
#[derive(Clone)]
pub struct SendConfig {
    pub headers: Vec<(String, String)>,
    /// The limit flags given on this command line; see [`SendConfig::limits`].
    given: LimitFlags,
    pub retry_failed: bool,
    pub summary: Option<PathBuf>,
    /// `--report`: the HTML run report, written when the run ends.
    pub report: Option<PathBuf>,
    /// `--overwrite` (or `--restart`): an existing output this job did not write may be replaced.
    pub overwrite: bool,
    pub quiet: bool,
    pub verbose: u8,
    /// `--confirm`: ask before a new job's first request (checked: stdin is a terminal).
    pub confirm: bool,
    /// `--progress-interval`: the plain progress line's period.
    pub progress_interval: Option<Duration>,
    /// `--max-cost`, in dollars.
    pub max_cost: Option<f64>,
    /// `--prices`, `--price-in`, `--price-out` as given.
    pub prices: cli::PriceArgs,
    /// The Batch API's flags as given; see [`SendConfig::batch`].
    batch_given: cli::BatchArgs,
    /// `--no-wait`: submit the batches and exit.
    pub no_wait: bool,
    /// `--finish-live`: send what remains live once the batches are collected.
    pub finish_live: bool,
    /// `--max-response-size`, in bytes: the longest body (or batch result line) read.
    pub max_response_size: u64,
    /// `--allow-http`: plain http to a host that is not this machine, for this run only.
    pub allow_http: bool,
    /// `--cache`, `--no-cache`, `--cache-read-only`: the response cache of this run.
    pub cache: super::cache::CacheChoice,
}

pub use promptmill_engine::api::http::DEFAULT_MAX_RESPONSE_SIZE;

impl std::fmt::Debug for SendConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendConfig")
            .field(
                "headers",
                &promptmill_core::secret::RedactedHeaders(&self.headers),
            )
            .field("given", &self.given)
            .field("retry_failed", &self.retry_failed)
            .field("summary", &self.summary)
            .field("report", &self.report)
            .field("overwrite", &self.overwrite)
            .field("quiet", &self.quiet)
            .field("verbose", &self.verbose)
            .finish()
    }
}

/// Refuses a number flag out of its range: `--concurrency`, `--rows-per-request`,
/// `--max-attempts`, `--max-cost`.
fn check_numbers(args: &SendArgs) -> Result<(), ConfigError> {
    if let Some(c) = args.concurrency {
        if c == 0 || c > 100_000 {
            return Err(ConfigError::new("--concurrency", "must be from 1 to 100000"));
        }
    }
    let most = promptmill_core::family::embeddings::MAX_INPUTS;
    if args.rows_per_request.is_some_and(|n| n == 0 || n > most) {
        return Err(ConfigError::new(
            "--rows-per-request",
            format!("must be from 1 to {most} (the most inputs one embeddings request may carry)"),
        ));
    }
    if args.max_attempts == Some(0) {
        return Err(ConfigError::new("--max-attempts", "must be at least 1"));
    }
    if let Some(c) = args.max_cost {
        if !(c.is_finite() && c > 0.0) {
            return Err(ConfigError::new(
                "--max-cost",
                format!("`{c}` is not a budget (dollars, more than 0)"),
            ));
        }
    }
    Ok(())
}

/// Refuses a Batch API limit flag past what the Batch API allows.
fn check_batch_limits(b: &cli::BatchArgs) -> Result<(), ConfigError> {
    if let Some(n) = b.batch_max_rows {
        if n == 0 || n > ANY_BATCH_MAX_ROWS {
            return Err(ConfigError::new(
                "--batch-max-rows",
                format!(
                    "must be from 1 to {ANY_BATCH_MAX_ROWS} (Anthropic's limit; OpenAI's is {BATCH_MAX_ROWS}, and a provider's own limit applies anyway)"
                ),
            ));
        }
    }
    if let Some(n) = b.batch_max_bytes {
        if n > ANY_BATCH_MAX_BYTES {
            return Err(ConfigError::new(
                "--batch-max-bytes",
                format!(
                    "must be at most {ANY_BATCH_MAX_BYTES} (256 MB, Anthropic's limit; OpenAI's is {BATCH_MAX_BYTES}, and a provider's own limit applies anyway)"
                ),
            ));
        }
    }
    if b.batch_max_enqueued_tokens == Some(0) {
        return Err(ConfigError::new(
            "--batch-max-enqueued-tokens",
            "must be more than 0",
        ));
    }
    Ok(())
}

/// Limit flags as given (validated); `None` where the flag was not given.
#[derive(Debug, Clone, Default)]
struct LimitFlags {
    concurrency: Option<usize>,
    rpm: Option<u32>,
    tpm: Option<u32>,
    max_attempts: Option<u32>,
    timeout: Option<Duration>,
    drain_timeout: Option<Duration>,
    rows_per_request: Option<usize>,
    schema_retries: Option<u32>,
    schema_repair: Option<bool>,
}

impl SendConfig {
    pub fn from_args(args: &SendArgs) -> Result<SendConfig, ConfigError> {
        check_numbers(args)?;
        check_batch_limits(&args.batch)?;
        if args.confirm && !promptmill_core::confirm::can_ask() {
            return Err(ConfigError::new(
                "--confirm",
                promptmill_core::confirm::NEEDS_TERMINAL,
            ));
        }
        let headers = args
            .headers
            .iter()
            .map(|h| parse_header(h))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SendConfig {
            batch_given: args.batch.clone(),
            no_wait: args.batch.no_wait,
            finish_live: args.batch.finish_live,
            allow_http: args.allow_http,
            cache: super::cache::CacheChoice::from_args(args),
            headers,
            given: LimitFlags {
                concurrency: args.concurrency,
                rpm: args.rpm,
                tpm: args.tpm,
                max_attempts: args.max_attempts,
                timeout: args.timeout,
                drain_timeout: args.drain_timeout,
                rows_per_request: args.rows_per_request,
                schema_retries: args.schema_retries,
                schema_repair: args.schema_repair.then_some(true),
            },
            retry_failed: args.retry_failed,
            summary: args.summary.clone(),
            report: args.report.clone(),
            overwrite: args.overwrite,
            quiet: args.quiet,
            verbose: args.verbose,
            confirm: args.confirm,
            progress_interval: args.progress_interval,
            max_cost: args.max_cost,
            prices: args.prices.clone(),
            max_response_size: args.max_response_size.unwrap_or(DEFAULT_MAX_RESPONSE_SIZE),
        })
    }

    /// The price sources this command names (the built-in table is always there).
    pub fn price_book(&self) -> Result<PriceBook, PriceError> {
        PriceBook::new(
            self.prices.prices.as_deref(),
            self.prices.price_in,
            self.prices.price_out,
        )
    }

    /// The Batch API settings in force: each flag given, else what the job recorded (`stored`),
    /// else the default.
    pub fn batch(&self, stored: Option<&BatchSettings>) -> BatchSettings {
        let base = stored.cloned().unwrap_or_default();
        let g = &self.batch_given;
        BatchSettings {
            mode: g.mode.unwrap_or(base.mode),
            max_rows: g.batch_max_rows.unwrap_or(base.max_rows),
            max_bytes: g.batch_max_bytes.unwrap_or(base.max_bytes),
            max_enqueued_tokens: g.batch_max_enqueued_tokens.or(base.max_enqueued_tokens),
            poll_interval: g.poll_interval.unwrap_or(base.poll_interval),
        }
    }

    /// The limits in force: each flag given on this command line, else what the job last ran
    /// under (`stored`), else the default. `--rpm 0` / `--tpm 0` remove a stored limit.
    pub fn limits(&self, stored: Option<&SendLimits>) -> SendLimits {
        let base = stored.cloned().unwrap_or_default();
        let g = &self.given;
        SendLimits {
            concurrency: g.concurrency.unwrap_or(base.concurrency),
            rpm: g.rpm.map_or(base.rpm, NonZeroU32::new),
            tpm: g.tpm.map_or(base.tpm, NonZeroU32::new),
            max_attempts: g.max_attempts.unwrap_or(base.max_attempts),
            timeout: g.timeout.unwrap_or(base.timeout),
            drain_timeout: g.drain_timeout.unwrap_or(base.drain_timeout),
            rows_per_request: g.rows_per_request.unwrap_or(base.rows_per_request),
            schema_retries: g.schema_retries.unwrap_or(base.schema_retries),
            schema_repair: g.schema_repair.unwrap_or(base.schema_repair),
        }
    }
}

pub(super) fn parse_header(raw: &str) -> Result<(String, String), ConfigError> {
    let (name, value) = raw
        .split_once(':')
        .ok_or_else(|| ConfigError::new("--header", "expected 'Name: value'"))?;
    let name = name.trim();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(&b))
    {
        return Err(ConfigError::new(
            "--header",
            format!("`{name}` is not a valid header name"),
        ));
    }
    if name.eq_ignore_ascii_case("authorization") {
        return Err(ConfigError::new(
            "--header",
            "the Authorization header is built from the API key in the environment (see --api-key-env)",
        ));
    }
    Ok((name.to_string(), value.trim().to_string()))
}
