//! The OpenAI-format providers' differences, as data: one [`Dialect`] per provider that speaks
//! the OpenAI wire format at its own address (OpenAI itself, Groq, Together, Gemini's
//! OpenAI-compatible layer). Everything that differs between them lives in this table: the
//! default base URL and its variable, the key's variable, which families each serves live and
//! through its Batch API, the file `purpose` of an upload, the limits of one batch file, the
//! completion window, the shape of a Batch input line, and how a batch's answers are worded
//! (status words, a wrapper around a create answer). `Provider`'s methods, the config and the
//! OpenAI batch service read it instead of matching on the provider.
//!
//! Where a provider's documentation did not settle a detail, OpenAI's behaviour is used and the
//! field says so (see docs/PROVIDERS.md). What to send to a URL (Azure's deployments, Anthropic's
//! `/v1`) stays in `provider.rs`; this module only describes the providers.

use crate::family::Endpoint;

/// How a Batch input line is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineShape {
    /// `{"custom_id", "method": "POST", "url": "/v1/…", "body"}` (OpenAI, Groq, Gemini).
    MethodUrl,
    /// `{"custom_id", "body"}`: the batch's `endpoint` says where every line goes (Together).
    BodyOnly,
}

/// How a provider words a batch's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusWords {
    /// `validating`, `in_progress`, `completed`… (OpenAI's `Batch.status`).
    Lower,
    /// `VALIDATING`, `IN_PROGRESS`, `COMPLETED`… (Together).
    Upper,
}

/// One OpenAI-format provider, as data.
#[derive(Debug, PartialEq, Eq)]
pub struct Dialect {
    /// `--provider NAME`, and the name stored in a job.
    pub name: &'static str,
    /// The provider's name in messages.
    pub title: &'static str,
    /// The base URL unless `--base-url` or [`Dialect::base_url_env`] names another.
    pub base_url: &'static str,
    /// The variable that overrides the base URL.
    pub base_url_env: &'static str,
    /// The variable that holds the key unless `--api-key-env` names another.
    pub key_env: &'static str,
    /// The families sent one request per row.
    pub live: &'static [Endpoint],
    /// The families its Batch API runs.
    pub batch: &'static [Endpoint],
    /// The `purpose` of a batch input upload (and of the `GET /files?purpose=` lookup).
    pub purpose: &'static str,
    /// The most lines one batch input file may hold.
    pub max_rows: u64,
    /// The most bytes one batch input file may hold.
    pub max_bytes: u64,
    /// The `completion_window` of a created batch.
    pub completion_window: &'static str,
    pub line: LineShape,
    pub statuses: StatusWords,
    /// The field a create answer wraps its batch in (Together's `{"job": {…}}`), if any.
    pub create_wrapper: Option<&'static str>,
}

const OPENAI_FAMILIES: &[Endpoint] = &[
    Endpoint::Chat,
    Endpoint::Completions,
    Endpoint::Responses,
    Endpoint::Embeddings,
];

/// The OpenAI API, and every server compatible with it.
pub const OPENAI: Dialect = Dialect {
    name: "openai",
    title: "OpenAI",
    base_url: "https://api.openai.com/v1",
    base_url_env: "OPENAI_BASE_URL",
    key_env: "OPENAI_API_KEY",
    live: OPENAI_FAMILIES,
    batch: OPENAI_FAMILIES,
    purpose: "batch",
    max_rows: 50_000,
    max_bytes: 200_000_000,
    completion_window: "24h",
    line: LineShape::MethodUrl,
    statuses: StatusWords::Lower,
    create_wrapper: None,
};

/// Groq (console.groq.com/docs/batch): OpenAI's Files and Batches under `/openai/v1`; batches
/// run `/v1/chat/completions` only; 50,000 lines and 200 MB a file; windows of 24h to 7d are
/// accepted (promptmill asks for 24h). Live: chat completions and the Responses API; no legacy
/// completions, no embeddings.
pub const GROQ: Dialect = Dialect {
    name: "groq",
    title: "Groq",
    base_url: "https://api.groq.com/openai/v1",
    base_url_env: "GROQ_BASE_URL",
    key_env: "GROQ_API_KEY",
    live: &[Endpoint::Chat, Endpoint::Responses],
    batch: &[Endpoint::Chat],
    purpose: "batch",
    max_rows: 50_000,
    max_bytes: 200_000_000,
    completion_window: "24h",
    line: LineShape::MethodUrl,
    statuses: StatusWords::Lower,
    create_wrapper: None,
};

/// Together (docs.together.ai, Batch inference): uploads with `purpose=batch-api`, lines
/// `{custom_id, body}` (custom_id at most 64 characters), a create answer wrapped in
/// `{"job": …, "warning"}`, upper-case statuses, `created_at` as a date-time text; 50,000
/// requests and 100 MB a file; the window is 24h and cannot be changed. Batches run
/// `/v1/chat/completions`. Live: chat, completions, embeddings; no Responses API.
pub const TOGETHER: Dialect = Dialect {
    name: "together",
    title: "Together",
    base_url: "https://api.together.xyz/v1",
    base_url_env: "TOGETHER_BASE_URL",
    key_env: "TOGETHER_API_KEY",
    live: &[Endpoint::Chat, Endpoint::Completions, Endpoint::Embeddings],
    batch: &[Endpoint::Chat],
    purpose: "batch-api",
    max_rows: 50_000,
    max_bytes: 100_000_000,
    completion_window: "24h",
    line: LineShape::BodyOnly,
    statuses: StatusWords::Upper,
    create_wrapper: Some("job"),
};

/// Gemini's OpenAI-compatible layer (ai.google.dev/gemini-api/docs/openai, Batch API):
/// OpenAI's Files and Batches under `/v1beta/openai`, OpenAI's line shape and `purpose=batch`;
/// batches of chat completions and embeddings. Its per-file line limit is not documented for
/// this layer (Gemini's own input files may reach 2 GB): OpenAI's 50,000 lines and 200 MB are
/// used. Live: chat completions and embeddings; no legacy completions, no Responses API.
pub const GEMINI: Dialect = Dialect {
    name: "gemini",
    title: "Gemini",
    base_url: "https://generativelanguage.googleapis.com/v1beta/openai",
    base_url_env: "GEMINI_BASE_URL",
    key_env: "GEMINI_API_KEY",
    live: &[Endpoint::Chat, Endpoint::Embeddings],
    batch: &[Endpoint::Chat, Endpoint::Embeddings],
    purpose: "batch",
    max_rows: 50_000,
    max_bytes: 200_000_000,
    completion_window: "24h",
    line: LineShape::MethodUrl,
    statuses: StatusWords::Lower,
    create_wrapper: None,
};

impl Dialect {
    /// `--endpoint` names that this provider serves live, for a refusal's advice.
    pub fn live_names(&self) -> String {
        names(self.live)
    }

    /// `--endpoint` names that this provider's Batch API runs.
    pub fn batch_names(&self) -> String {
        names(self.batch)
    }
}

fn names(endpoints: &[Endpoint]) -> String {
    let names: Vec<&str> = endpoints.iter().map(|e| e.family().name()).collect();
    names.join(", ")
}
