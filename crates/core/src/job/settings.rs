//! The settings a job keeps in its record: the limits it ran under ([`SendLimits`]), how it
//! sends ([`Mode`], [`BatchSettings`]) and their defaults, where its requests go ([`Provider`])
//! and its results ([`OutputSpec`]), and the profile they came from ([`ProfileUse`]). They are
//! persisted types, so they live here beside the record, not in the modules that act on them
//! (`provider`, `output`, `profile` keep their behaviour, as `impl` blocks there), the
//! configuration that fills them (`config`) or the flags that name them (`cli`, which only knows
//! their names: `cli/choices.rs`).

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `--concurrency` when neither the flag nor the job says.
pub const DEFAULT_CONCURRENCY: usize = 50;
pub const DEFAULT_MAX_ATTEMPTS: u32 = 6;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The Batch API's limits (OpenAI's; other providers may be smaller, hence the flags).
pub const BATCH_MAX_ROWS: u64 = 50_000;
pub const BATCH_MAX_BYTES: u64 = 200_000_000;
/// Anthropic's Message Batches limits: 100,000 requests and 256 MB a batch.
pub const ANTHROPIC_BATCH_MAX_ROWS: u64 = 100_000;
pub const ANTHROPIC_BATCH_MAX_BYTES: u64 = 256_000_000;
/// The largest limits a `--batch-max-*` flag may name (the provider's own apply as well).
pub const ANY_BATCH_MAX_ROWS: u64 = ANTHROPIC_BATCH_MAX_ROWS;
pub const ANY_BATCH_MAX_BYTES: u64 = ANTHROPIC_BATCH_MAX_BYTES;
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(30);

/// How rows are sent: one request each, or through the provider's Batch API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One request per row, now, under the rate limits.
    #[default]
    Live,
    /// Files of rows through the Batch API (`/files`, `/batches`): half the price, done within
    /// 24 hours.
    Batch,
}

/// How a job sends, kept by the job like [`SendLimits`]: a resume without `--mode batch` goes on
/// through the Batch API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchSettings {
    pub mode: Mode,
    pub max_rows: u64,
    pub max_bytes: u64,
    pub max_enqueued_tokens: Option<u64>,
    pub poll_interval: Duration,
}

impl BatchSettings {
    /// The settings of a new job sent to `provider`: its limits, live mode.
    pub fn for_limits((max_rows, max_bytes): (u64, u64)) -> Self {
        BatchSettings {
            max_rows,
            max_bytes,
            ..BatchSettings::default()
        }
    }
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings {
            mode: Mode::Live,
            max_rows: BATCH_MAX_ROWS,
            max_bytes: BATCH_MAX_BYTES,
            max_enqueued_tokens: None,
            poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }
}

/// The limits a run sends under. Stored in the job after every start, so that a resume (or the
/// same command without the flags) keeps the limits the job ran under: a forgotten `--rpm` must
/// not turn into an unlimited run against a paid API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendLimits {
    pub concurrency: usize,
    pub rpm: Option<NonZeroU32>,
    pub tpm: Option<NonZeroU32>,
    pub max_attempts: u32,
    pub timeout: Duration,
    pub drain_timeout: Duration,
    /// Rows per request, for a family that carries several (see `family::embeddings`).
    #[serde(default = "default_rows_per_request")]
    pub rows_per_request: usize,
    /// `--schema-retries`: how often an invalid or truncated answer of a `--schema` job is asked
    /// again (each a new, paid request) before the row fails.
    #[serde(default = "default_schema_retries")]
    pub schema_retries: u32,
    /// `--schema-repair`: a re-ask carries the invalid answer and its errors.
    #[serde(default)]
    pub schema_repair: bool,
}

fn default_rows_per_request() -> usize {
    crate::family::embeddings::DEFAULT_ROWS_PER_REQUEST
}

/// `--schema-retries` unless given.
pub const DEFAULT_SCHEMA_RETRIES: u32 = 2;

fn default_schema_retries() -> u32 {
    DEFAULT_SCHEMA_RETRIES
}

impl Default for SendLimits {
    fn default() -> Self {
        SendLimits {
            concurrency: DEFAULT_CONCURRENCY,
            rpm: None,
            tpm: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            timeout: DEFAULT_TIMEOUT,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            rows_per_request: default_rows_per_request(),
            schema_retries: DEFAULT_SCHEMA_RETRIES,
            schema_repair: false,
        }
    }
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputFormat {
    /// One JSON object per row: id, input fields, completion, finish reason, usage, cost, model,
    /// error.
    Jsonl,
    /// The same as CSV columns (usage split into columns).
    Csv,
    /// OpenAI Batch output lines (`BatchRequestOutput`), with the full response bodies.
    OpenaiBatch,
    /// Typed columns: id, row, the input fields (with their Parquet types), status, completion,
    /// finish reason, usage counts, cost, model, response id, error.
    Parquet,
}

/// Where the results of a job go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputSpec {
    /// The file, or `-` for standard output ([`OutputSpec::is_stdout`]).
    pub path: PathBuf,
    pub format: OutputFormat,
}

/// Where a job's requests go, beyond the base URL. Stored in the job record.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Provider {
    #[default]
    #[serde(rename = "openai")]
    OpenAi,
    Azure {
        deployment: String,
        api_version: String,
    },
    /// Anthropic's API; `version` is the `anthropic-version` header every request carries.
    Anthropic {
        version: String,
    },
    /// Mistral's API (`https://api.mistral.ai/v1`): OpenAI's chat and embeddings wire formats,
    /// `Authorization: Bearer`, and its own Batch API (`/v1/batch/jobs`).
    Mistral,
    /// Groq's OpenAI-compatible API (its quirks: `provider/compatible.rs`).
    Groq,
    /// Together's OpenAI-compatible API.
    Together,
    /// Gemini's OpenAI-compatible layer.
    Gemini,
}

/// Which profile a job's settings came from, and which settings it gave (the others came from
/// flags, the stored job or the defaults). Stored in the job for `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileUse {
    pub name: String,
    pub file: PathBuf,
    /// The settings the profile gave, by their flag names (`--rpm`, …).
    pub gave: Vec<String>,
}

impl OutputFormat {
    /// The format a file name's extension says, if it says one.
    pub fn from_path(path: &Path) -> Option<OutputFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" => Some(OutputFormat::Jsonl),
            "csv" => Some(OutputFormat::Csv),
            "parquet" => Some(OutputFormat::Parquet),
            _ => None,
        }
    }
}

impl OutputSpec {
    /// The path that means standard output (`-o -`).
    pub const STDOUT: &'static str = "-";

    /// Whether the results go to standard output (written whole at the end of a run).
    pub fn is_stdout(&self) -> bool {
        self.path == Path::new(Self::STDOUT)
    }
}
