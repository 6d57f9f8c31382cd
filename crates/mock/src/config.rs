//! The mock server's command line ([`MockArgs`]) and the validated settings the rest of the
//! module sees ([`MockConfig`]). Parsing and validation happen here, once; nothing past
//! [`MockConfig::from_args`] looks at clap types or environment variables. What the settings
//! *do* is left to the modules that use them (`faults`, `limits`, `service`, ...).

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::batch_outcome::BatchOutcomes;

/// Flags of `promptmill mock-server`: a local, OpenAI-compatible server for rehearsals,
/// demos and tests. With no flags it is a perfect, instant, deterministic server.
#[derive(clap::Args, Debug, Clone)]
pub struct MockArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// Port to listen on (0 = any free port; the chosen one is printed).
    #[arg(long, default_value_t = 0)]
    pub port: u16,

    /// Require an API key, read from this environment variable (never from a flag).
    /// Requests must send `Authorization: Bearer <key>` or `api-key: <key>`.
    #[arg(long, value_name = "NAME")]
    pub api_key_env: Option<String>,

    /// Latency added before every /v1 answer, errors included (e.g. `50ms`, `2s`).
    #[arg(long, value_name = "DUR", default_value = "0s")]
    pub latency: humantime::Duration,

    /// Extra latency drawn uniformly from 0..DUR for each request.
    #[arg(long, value_name = "DUR", default_value = "0s")]
    pub latency_jitter: humantime::Duration,

    /// Seed of the random fault and jitter decisions.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,

    /// Probability (0..1) of a 429 rate-limit error.
    #[arg(long = "rate-429", value_name = "P", default_value_t = 0.0)]
    pub rate_429: f64,

    /// Probability (0..1) of a 500, 502 or 503 server error.
    #[arg(long = "rate-500", value_name = "P", default_value_t = 0.0)]
    pub rate_500: f64,

    /// Probability (0..1) of never answering (the request is held ~1 hour).
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub rate_hang: f64,

    /// Probability (0..1) of dropping the connection without any response.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub rate_reset: f64,

    /// Probability (0..1) of a 200 whose body is not valid JSON.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub rate_malformed: f64,

    /// Probability (0..1) of a well-formed answer whose text is not JSON (prose and a
    /// fragment), as `[[mock:reply=invalid-json]]`. Chat, Responses and Messages.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub rate_invalid_json: f64,

    /// Probability (0..1) of an answer whose JSON breaks the requested schema, as
    /// `[[mock:reply=schema-break]]`.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub rate_schema_break: f64,

    /// Probability (0..1) of an answer cut on the token limit (`finish_reason` `length`, …), as
    /// `[[mock:reply=cut]]`.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub rate_cut: f64,

    /// Probability (0..1) of a refusal (`message.refusal`, …), as `[[mock:reply=refusal]]`.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub rate_refusal: f64,

    /// Seconds to wait sent with injected 429s (`0.25` works: `retry-after` carries whole
    /// seconds rounded up, `retry-after-ms` the exact wait).
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub retry_after: f64,

    /// The first N completion requests (by arrival) fail with --fail-status.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub fail_first: u64,

    /// Status used by --fail-first (400..=599).
    #[arg(long, value_name = "CODE", default_value_t = 500)]
    pub fail_status: u16,

    /// Refuse the key (401) on every /v1 request after the first N, as if it were revoked mid-run.
    #[arg(long, value_name = "N")]
    pub unauthorized_after: Option<u64>,

    /// Requests-per-minute limit, enforced like a provider (429 + x-ratelimit-* headers).
    #[arg(long, value_name = "N")]
    pub rpm: Option<u64>,

    /// Tokens-per-minute limit (a request costs its prompt tokens + max_tokens, default 16).
    #[arg(long, value_name = "N")]
    pub tpm: Option<u64>,

    /// A gateway that misreports its limit: every answer carries `x-ratelimit-limit-tokens: N`
    /// and `x-ratelimit-remaining-tokens: N`, and nothing is enforced (unlike --tpm).
    #[arg(long, value_name = "N", conflicts_with = "tpm")]
    pub claim_tpm: Option<u64>,

    /// Append one JSON line per request to this file.
    #[arg(long, value_name = "PATH")]
    pub log: Option<PathBuf>,

    /// Retrieves (`GET /v1/batches/{id}`) a batch takes from creation to `completed`: it is
    /// `validating` when created, then `in_progress` with request_counts growing evenly, then
    /// `finalizing`, then `completed`. 0 or 1: completed at the first retrieve.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub batch_polls: u64,

    /// How batches end (repeatable): SPEC is `OUTCOME` for every batch or `N=OUTCOME` for the
    /// Nth batch created (1-based). OUTCOME: `completed` (default); `failed` (fails validation,
    /// no output); `expired` or `expired:F` (the first fraction F of the lines, default 0.5,
    /// are answered; the rest go to the error file as `batch_expired`). A create request's
    /// `X-Mock-Batch-Outcome: OUTCOME` header wins over this flag.
    #[arg(long, value_name = "SPEC")]
    pub batch_outcome: Vec<String>,

    /// Crash test: the Nth file upload (`POST /v1/files`) is stored, then the connection is
    /// dropped without an answer, leaving an upload whose id the client never learned. Fires once.
    #[arg(long, value_name = "N")]
    pub drop_upload: Option<u64>,

    /// Crash test: the Nth `POST /v1/batches` drops the connection without an answer,
    /// `before` or `after` creating the batch (e.g. `2:after`). Fires once.
    #[arg(long, value_name = "N:before|after")]
    pub drop_batch_create: Option<String>,

    /// Whose Files and Batches API the `/v1/` paths speak: `openai` (default), `together`
    /// (`purpose=batch-api`, `{custom_id, body}` lines, `{"job": …}` create answers, upper-case
    /// statuses), `groq` or `gemini` (their batch endpoints only). Groq's `/openai/v1/…`,
    /// Gemini's `/v1beta/openai/…` and Azure's `/openai/…` paths always speak their own.
    #[arg(long, value_enum, value_name = "NAME", default_value = "openai")]
    pub dialect: super::batch_api::Dialect,
}

/// A mistake in the mock server's flags; each message names the flag.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("--{flag} must be a probability between 0 and 1, got {value}")]
    Probability { flag: &'static str, value: f64 },
    #[error("the fault rates (--rate-429, --rate-500, --rate-hang, --rate-reset, --rate-malformed, --rate-invalid-json, --rate-schema-break, --rate-cut, --rate-refusal) add up to {0:.4}, more than 1")]
    RatesAboveOne(f64),
    #[error("--fail-status must be an HTTP error status (400..=599), got {0}")]
    FailStatus(u16),
    #[error("--{flag} must be at least 1 (leave it out for no limit)")]
    ZeroLimit { flag: &'static str },
    #[error("--api-key-env {0}: the environment variable is unset or empty")]
    MissingKey(String),
    #[error("--retry-after must be a number of seconds, 0 or more, got {0}")]
    RetryAfter(f64),
    #[error("--batch-outcome: {0}")]
    BatchOutcome(String),
    #[error("--{flag} counts from 1 (leave it out for never)")]
    ZeroCount { flag: &'static str },
    #[error("--drop-batch-create must be N:before or N:after with N of 1 or more, got `{0}`")]
    DropBatchCreate(String),
}

/// --drop-batch-create: which `POST /v1/batches` loses its answer, and whether the batch is
/// created first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropCreate {
    /// 1-based, counting create requests that would succeed.
    pub nth: u64,
    /// `true`: the batch exists although the client never heard of it.
    pub after: bool,
}

/// Probabilities of the random faults; they are exclusive outcomes of one draw, so their
/// sum is at most 1 (checked by [`MockConfig::from_args`]). The last four spoil a successful
/// answer's text (see the `reply=` directives of the same names).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaultRates {
    pub rate_429: f64,
    pub rate_500: f64,
    pub hang: f64,
    pub reset: f64,
    pub malformed: f64,
    pub invalid_json: f64,
    pub schema_break: f64,
    pub cut: f64,
    pub refusal: f64,
}

impl FaultRates {
    /// Every rate, for their sum.
    pub fn all(&self) -> [f64; 9] {
        [
            self.rate_429,
            self.rate_500,
            self.hang,
            self.reset,
            self.malformed,
            self.invalid_json,
            self.schema_break,
            self.cut,
            self.refusal,
        ]
    }
}

/// Validated settings of one mock server. `MockConfig::default()` is the perfect server on
/// 127.0.0.1 with a free port; tests set the pub fields they need.
#[derive(Clone)]
pub struct MockConfig {
    pub host: IpAddr,
    pub port: u16,
    /// The expected API key itself (not the variable name); `None` = no auth.
    pub api_key: Option<String>,
    pub latency: Duration,
    pub latency_jitter: Duration,
    pub seed: u64,
    pub faults: FaultRates,
    /// `retry-after` of injected 429s (random, --fail-first, directives).
    pub retry_after: Duration,
    pub fail_first: u64,
    pub fail_status: u16,
    /// /v1 requests (by arrival) answered normally before every later one gets a 401.
    pub unauthorized_after: Option<u64>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    /// A TPM limit every answer reports and nothing enforces (--claim-tpm).
    pub claim_tpm: Option<u64>,
    pub log: Option<PathBuf>,
    /// Retrieves from creation to a batch's end (0 behaves as 1).
    pub batch_polls: u64,
    pub batch_outcomes: BatchOutcomes,
    /// The Nth stored upload loses its answer (1-based).
    pub drop_upload: Option<u64>,
    pub drop_batch_create: Option<DropCreate>,
    /// Whose Files and Batches API `/v1/` speaks.
    pub dialect: super::batch_api::Dialect,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            api_key: None,
            latency: Duration::ZERO,
            latency_jitter: Duration::ZERO,
            seed: 1,
            faults: FaultRates::default(),
            retry_after: Duration::from_secs(1),
            fail_first: 0,
            fail_status: 500,
            unauthorized_after: None,
            rpm: None,
            tpm: None,
            claim_tpm: None,
            log: None,
            batch_polls: 3,
            batch_outcomes: BatchOutcomes::default(),
            drop_upload: None,
            drop_batch_create: None,
            dialect: super::batch_api::Dialect::OpenAi,
        }
    }
}

// Hand-written so that the key never reaches a log line or an error message.
impl fmt::Debug for MockConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("latency", &self.latency)
            .field("latency_jitter", &self.latency_jitter)
            .field("seed", &self.seed)
            .field("faults", &self.faults)
            .field("retry_after", &self.retry_after)
            .field("fail_first", &self.fail_first)
            .field("fail_status", &self.fail_status)
            .field("unauthorized_after", &self.unauthorized_after)
            .field("rpm", &self.rpm)
            .field("tpm", &self.tpm)
            .field("claim_tpm", &self.claim_tpm)
            .field("log", &self.log)
            .field("batch_polls", &self.batch_polls)
            .field("batch_outcomes", &self.batch_outcomes)
            .field("drop_upload", &self.drop_upload)
            .field("drop_batch_create", &self.drop_batch_create)
            .field("dialect", &self.dialect)
            .finish()
    }
}

impl MockConfig {
    /// Validates the flags and reads the API key from the environment.
    pub fn from_args(args: MockArgs) -> anyhow::Result<Self> {
        let key_from_env = |name: &str| std::env::var(name).ok();
        Ok(Self::validate(args, key_from_env)?)
    }

    /// The whole validation, with the environment passed in so tests need not touch it.
    fn validate(args: MockArgs, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let faults = FaultRates {
            rate_429: probability("rate-429", args.rate_429)?,
            rate_500: probability("rate-500", args.rate_500)?,
            hang: probability("rate-hang", args.rate_hang)?,
            reset: probability("rate-reset", args.rate_reset)?,
            malformed: probability("rate-malformed", args.rate_malformed)?,
            invalid_json: probability("rate-invalid-json", args.rate_invalid_json)?,
            schema_break: probability("rate-schema-break", args.rate_schema_break)?,
            cut: probability("rate-cut", args.rate_cut)?,
            refusal: probability("rate-refusal", args.rate_refusal)?,
        };
        let sum: f64 = faults.all().iter().sum();
        // A little slack so that e.g. 0.7 + 0.2 + 0.1 is not rejected for rounding.
        if sum > 1.0 + 1e-9 {
            return Err(ConfigError::RatesAboveOne(sum));
        }
        if !(400..=599).contains(&args.fail_status) {
            return Err(ConfigError::FailStatus(args.fail_status));
        }
        // `contains` is false for NaN; the upper bound keeps `Duration::from_secs_f64` from panicking.
        if !(0.0..=1e9).contains(&args.retry_after) {
            return Err(ConfigError::RetryAfter(args.retry_after));
        }
        if args.rpm == Some(0) {
            return Err(ConfigError::ZeroLimit { flag: "rpm" });
        }
        if args.tpm == Some(0) {
            return Err(ConfigError::ZeroLimit { flag: "tpm" });
        }
        let batch_outcomes = BatchOutcomes::parse(&args.batch_outcome).map_err(ConfigError::BatchOutcome)?;
        if args.drop_upload == Some(0) {
            return Err(ConfigError::ZeroCount { flag: "drop-upload" });
        }
        let drop_batch_create = args.drop_batch_create.as_deref().map(drop_create).transpose()?;
        let api_key = match args.api_key_env {
            None => None,
            Some(name) => match env(&name) {
                Some(key) if !key.is_empty() => Some(key),
                _ => return Err(ConfigError::MissingKey(name)),
            },
        };
        Ok(MockConfig {
            host: args.host,
            port: args.port,
            api_key,
            latency: args.latency.into(),
            latency_jitter: args.latency_jitter.into(),
            seed: args.seed,
            faults,
            retry_after: Duration::from_secs_f64(args.retry_after),
            fail_first: args.fail_first,
            fail_status: args.fail_status,
            unauthorized_after: args.unauthorized_after,
            rpm: args.rpm,
            tpm: args.tpm,
            claim_tpm: args.claim_tpm,
            log: args.log,
            batch_polls: args.batch_polls,
            batch_outcomes,
            drop_upload: args.drop_upload,
            drop_batch_create,
            dialect: args.dialect,
        })
    }
}

fn drop_create(text: &str) -> Result<DropCreate, ConfigError> {
    let bad = || ConfigError::DropBatchCreate(text.to_string());
    let (nth, when) = text.split_once(':').ok_or_else(bad)?;
    let nth = nth.trim().parse().ok().filter(|&n| n >= 1).ok_or_else(bad)?;
    let after = match when.trim() {
        "before" => false,
        "after" => true,
        _ => return Err(bad()),
    };
    Ok(DropCreate { nth, after })
}

fn probability(flag: &'static str, value: f64) -> Result<f64, ConfigError> {
    // `contains` is false for NaN, so NaN is rejected too.
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::Probability { flag, value })
    }
}

#[cfg(test)]
#[path = "tests_config.rs"]
mod tests;
