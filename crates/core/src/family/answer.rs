//! What every family reads out of a successful response: the completion text, finish reason,
//! usage, model and id, plus the raw body (kept so exports such as OpenAI Batch output can carry
//! the whole response). A body that fails is told apart in two kinds ([`BadBody`]): not JSON at
//! all (most likely cut short on the way; asking again may well work), or JSON that is no usable
//! completion (no `choices[0]`, a lone surrogate, a non-UTF-8 byte, an absurd usage count), which
//! the server will most likely send again. The usage counts of every family are judged here by
//! one rule ([`count`]).

use serde::Deserialize;

use crate::schema::{Judged, Schema};

/// The largest token count believed: 2^40 (about 10^12). A usage count beyond it, negative or
/// fractional makes the body unusable; checked here, so every sum of counts stays far from
/// overflowing a u64 or SQLite's i64.
pub const MAX_TOKENS: u64 = 1 << 40;

/// Token usage as the API reported it (`CompletionUsage`). Missing usage counts as zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    /// `prompt_tokens_details.cached_tokens`, when the server reports it: prompt tokens read
    /// from the provider's cache, billed at the cached-input price.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    /// `prompt_tokens_details.cache_creation_tokens`, when the server reports it: prompt tokens
    /// written to the cache, for providers that bill them apart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_creation_tokens: Option<u64>,
    /// `completion_tokens_details.reasoning_tokens`, when the server reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
}

impl Usage {
    /// Adds another answer's usage (a row that paid for several, see `--schema-retries`). A
    /// detail stays unreported only when neither reports it.
    pub fn add(&mut self, other: &Usage) {
        self.prompt_tokens = self.prompt_tokens.saturating_add(other.prompt_tokens);
        self.completion_tokens = self.completion_tokens.saturating_add(other.completion_tokens);
        self.total_tokens = self.total_tokens.saturating_add(other.total_tokens);
        let sum = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
        };
        self.cached_tokens = sum(self.cached_tokens, other.cached_tokens);
        self.cache_creation_tokens = sum(self.cache_creation_tokens, other.cache_creation_tokens);
        self.reasoning_tokens = sum(self.reasoning_tokens, other.reasoning_tokens);
    }

    /// The tokens to price (see [`crate::models::price`]): unreported details count as none.
    pub fn billed(&self) -> crate::models::Billed {
        crate::models::Billed {
            prompt: self.prompt_tokens as f64,
            cached: self.cached_tokens.unwrap_or(0) as f64,
            cache_creation: self.cache_creation_tokens.unwrap_or(0) as f64,
            completion: self.completion_tokens as f64,
            reasoning: self.reasoning_tokens.unwrap_or(0) as f64,
        }
    }
}

/// Why a 2xx body gives no completion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadBody {
    /// Not JSON: most likely cut short on the way, so worth asking again.
    #[error("not JSON ({0})")]
    NotJson(String),
    /// JSON, but no usable completion: the same request will most likely get the same answer.
    #[error("{0}")]
    Unusable(String),
}

/// `CompletionUsage` as sent: numbers kept as numbers of any form, judged by [`count`].
#[derive(Deserialize)]
pub(super) struct WireUsage {
    prompt_tokens: Option<serde_json::Number>,
    completion_tokens: Option<serde_json::Number>,
    total_tokens: Option<serde_json::Number>,
    prompt_tokens_details: Option<WireDetails>,
    completion_tokens_details: Option<WireDetails>,
}

/// The breakdowns of `CompletionUsage`, for the cost and the run report. A count that is not
/// one (negative, fractional, beyond [`MAX_TOKENS`], not a number) is taken as unreported, so
/// the tokens are priced as if there were no breakdown (the cost errs high, never low).
#[derive(Deserialize)]
struct WireDetails {
    #[serde(default, deserialize_with = "lenient")]
    cached_tokens: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    cache_creation_tokens: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    reasoning_tokens: Option<u64>,
}

pub(super) fn lenient<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(v.as_u64().filter(|n| *n <= MAX_TOKENS))
}

/// A usage count: a whole number from 0 to [`MAX_TOKENS`]; absent counts as 0.
pub(super) fn count(field: &str, n: Option<&serde_json::Number>) -> Result<u64, BadBody> {
    let Some(n) = n else { return Ok(0) };
    match n.as_u64() {
        Some(v) if v <= MAX_TOKENS => Ok(v),
        _ => Err(BadBody::Unusable(format!(
            "`usage.{field}` is {n}, not a token count (a whole number from 0 to 2^40)"
        ))),
    }
}

impl WireUsage {
    pub(super) fn read(&self) -> Result<Usage, BadBody> {
        let prompt_tokens = count("prompt_tokens", self.prompt_tokens.as_ref())?;
        let completion_tokens = count("completion_tokens", self.completion_tokens.as_ref())?;
        let mut total_tokens = count("total_tokens", self.total_tokens.as_ref())?;
        if total_tokens == 0 {
            total_tokens = prompt_tokens + completion_tokens;
        }
        Ok(Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens,
            cached_tokens: self.prompt_tokens_details.as_ref().and_then(|d| d.cached_tokens),
            cache_creation_tokens: self
                .prompt_tokens_details
                .as_ref()
                .and_then(|d| d.cache_creation_tokens),
            reasoning_tokens: self
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens),
        })
    }
}

/// A finished row's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The answer's text, as its family reads it (chat: `choices[0].message.content`); `None`
    /// when the model answered with tool calls or a refusal only.
    pub text: Option<String>,
    pub finish_reason: Option<String>,
    /// The model's refusal, when it declined (chat `message.refusal`, a Responses `refusal`
    /// part, Anthropic's `refusal` stop reason): a `--schema` row's outcome `refused`.
    pub refusal: Option<String>,
    pub usage: Usage,
    pub model: Option<String>,
    /// The response's `id`.
    pub id: Option<String>,
    /// The response body as received.
    pub raw: String,
    /// The vectors of an embeddings answer, each with its `index` among the request's inputs
    /// (after the answer is split over its rows, a row's one vector); empty for every other
    /// family.
    pub embeddings: Vec<Embedding>,
}

impl Completion {
    /// This answer judged by a `--schema` ([`Schema::judge`]): its text, its refusal, and
    /// whether it stopped on the token limit (every family's finish reason `length`).
    pub fn judged_by(&self, schema: &Schema) -> Judged {
        let cut = self.finish_reason.as_deref() == Some("length");
        schema.judge(self.text.as_deref(), self.refusal.as_deref(), cut)
    }

    /// Whether the answer may go into the response cache: whole (not cut on the token limit or
    /// by a content filter) and not refused. A chat refusal ends with `stop`: its refusal says it.
    pub fn may_be_cached(&self) -> bool {
        const CUT_OR_REFUSED: &[&str] = &["length", "max_tokens", "content_filter", "refusal"];
        let reason = self.finish_reason.as_deref().unwrap_or("");
        !CUT_OR_REFUSED.contains(&reason) && self.refusal.is_none()
    }
}

/// One vector of an embeddings answer, and its place among the request's inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    pub index: u64,
    pub vector: Vec<f32>,
}

/// A 2xx body read as `T` (`what` names it in the error), with its text. A good body is parsed
/// once; only a body that does not read is checked for syntax without judging strings, so that
/// one cut short (worth asking again) is told apart from one that is whole but unusable (a lone
/// surrogate, a bad byte, the wrong shape).
pub(super) fn read_json<'a, T: Deserialize<'a>>(
    bytes: &'a [u8],
    what: &str,
) -> Result<(&'a str, T), BadBody> {
    let raw = match std::str::from_utf8(bytes) {
        Ok(raw) => raw,
        Err(e) => {
            syntax(bytes)?;
            return Err(BadBody::Unusable(format!(
                "not UTF-8 (a bad byte at offset {})",
                e.valid_up_to()
            )));
        }
    };
    match serde_json::from_str::<T>(raw) {
        Ok(body) => Ok((raw, body)),
        Err(e) => {
            syntax(bytes)?;
            Err(BadBody::Unusable(format!("not {what} ({e})")))
        }
    }
}

/// `NotJson` unless the bytes are JSON, strings left unjudged.
fn syntax(bytes: &[u8]) -> Result<(), BadBody> {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
        .map(|_| ())
        .map_err(|e| BadBody::NotJson(e.to_string()))
}
