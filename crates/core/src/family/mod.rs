//! API families: everything promptmill knows about one wire format, behind one trait.
//!
//! An [`ApiFamily`] owns its path and Batch `url`, how a prepared prompt becomes a request body
//! (and which bodies of an OpenAI Batch input line it accepts), what a request costs for the
//! limiter and the estimate, and how a successful answer reads (text, finish reason, usage). The
//! status-code table every family shares is `api::classify`, which asks the family only for the
//! success shape; live replies and Batch result lines both go through it. The worker loop, the
//! estimate, the batch driver and the output writers ask the family of the job; none of them
//! matches on an endpoint.
//!
//! The family's id is the job's [`Endpoint`], persisted in the checkpoint, so a resumed job
//! rebuilds its family. [`Endpoint::family`] is the registry: adding a family is one file here
//! and one line there (see `docs/FAMILIES.md`).

mod answer;
mod anthropic;
mod chat;
mod choices;
mod completions;
pub mod embeddings;
mod messages;
pub mod ratelimit;
mod responses;

use std::borrow::Cow;

use serde_json::{Map, Value};

pub use answer::{BadBody, Completion, Embedding, Usage, MAX_TOKENS};
pub use chat::max_tokens_key;
pub use messages::{check_messages, message};
pub use ratelimit::RateHeaders;

use crate::schema::Schema;
use crate::tokens::RequestCost;

/// Why a row cannot become a request of this family: a message, and the field it is about
/// (`body.messages[2].role`) when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
    pub field: Option<String>,
}

impl Refusal {
    pub fn new(message: impl Into<String>) -> Refusal {
        Refusal {
            message: message.into(),
            field: None,
        }
    }

    pub fn at(mut self, field: impl Into<String>) -> Refusal {
        self.field = Some(field.into());
        self
    }
}

/// What a request costs (prompt tokens, output allowance) and the model its body names.
pub type Measured<'a> = (RequestCost, Option<Cow<'a, str>>);

/// Which API family a job's requests belong to: its id, persisted in the job record by these
/// names. [`Endpoint::family`] maps each id to its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    /// `POST {base}/chat/completions`
    Chat,
    /// `POST {base}/completions` (legacy: `prompt` in, `choices[0].text` out)
    Completions,
    /// `POST {base}/responses` (the Responses API: `input` in, `output` items out)
    Responses,
    /// `POST {base}/embeddings` (texts in, vectors out; several rows per request)
    Embeddings,
    /// Anthropic's `POST {base}/v1/messages` (`--provider anthropic`)
    Messages,
}

/// Whose wire format a family is: a provider sends only the families of its vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    /// The OpenAI API (and Azure OpenAI, and every compatible server).
    OpenAi,
    /// Anthropic's API.
    Anthropic,
}

/// One wire format: see the module's documentation.
pub trait ApiFamily: Send + Sync + 'static {
    /// The id persisted in the job.
    fn id(&self) -> Endpoint;

    /// The name `--endpoint` takes (and the job record stores), e.g. `chat`.
    fn name(&self) -> &'static str;

    /// The path under the base URL, e.g. `/chat/completions`.
    fn path(&self) -> &'static str;

    /// The `url` of an OpenAI Batch input line, e.g. `/v1/chat/completions`.
    fn batch_url(&self) -> &'static str;

    /// Whose API this family belongs to (`--provider` must be one that speaks it).
    fn vendor(&self) -> Vendor {
        Vendor::OpenAi
    }

    /// Whether the API refuses a request without a maximum of output tokens: a job without
    /// `--max-tokens` is then refused before anything is sent.
    fn needs_max_tokens(&self) -> bool {
        false
    }

    /// The highest `--temperature` the API takes (OpenAI's 2, Anthropic's 1).
    fn max_temperature(&self) -> f64 {
        2.0
    }

    /// Whether an error answer says the account is out of credit (waiting will not help: the
    /// run stops). OpenAI: a 429 whose error `code` or `type` is `insufficient_quota`.
    fn out_of_credit(&self, status: u16, body: &[u8]) -> bool {
        status == 429 && is_insufficient_quota(body)
    }

    /// Whether a row may bring its own `messages` (or `--system` add one).
    fn takes_messages(&self) -> bool {
        true
    }

    /// Whether the answer is generated text: `--max-tokens`, `--temperature` and `--system`
    /// apply only then.
    fn generates_text(&self) -> bool {
        true
    }

    /// The row fields a prompt may come from without a template, in order of preference.
    fn text_fields(&self) -> &'static [&'static str] {
        &["prompt"]
    }

    /// Most rows one request may carry (`--rows-per-request` is capped by it); 1: a request
    /// is one row's, and [`ApiFamily::join`] and [`ApiFamily::split`] are never asked.
    fn max_rows_per_request(&self) -> usize {
        1
    }

    /// One request body for several rows' bodies (each made by `put_text` with the same
    /// settings), in order.
    fn join(&self, _bodies: &[&str]) -> Result<String, String> {
        Err(format!("the {} endpoint sends one row per request", self.name()))
    }

    /// The answer of a joined request split over its rows (whose prompt tokens are `tokens`),
    /// one result per row, in order: its completion, or why the answer has none for it.
    fn split(&self, answer: Completion, tokens: &[u64]) -> Vec<Result<Completion, String>> {
        let mut answer = Some(answer);
        tokens
            .iter()
            .map(|_| answer.take().ok_or_else(|| "one row per request".to_string()))
            .collect()
    }

    /// Puts one text prompt (a rendered template or a row's `prompt`), and the rendered
    /// `--system` when there is one, into `body` (which holds `model` already).
    fn put_text(&self, body: &mut Map<String, Value>, text: String, system: Option<String>);

    /// Puts a row's `messages` (already checked by [`check_messages`], `--system` added) into
    /// `body`. Only called when [`ApiFamily::takes_messages`].
    fn put_messages(&self, body: &mut Map<String, Value>, messages: Vec<Value>) -> Result<(), Refusal>;

    /// Checks the body of a Batch input line (its `model` is checked already); the field of a
    /// refusal is named from the line (`body.messages`).
    fn check_body(&self, body: &Map<String, Value>) -> Result<(), Refusal>;

    /// The body field `--max-tokens` sets, given the body so far and its model.
    fn max_tokens_key(&self, body: &Map<String, Value>, model: &str) -> &'static str;

    /// Body fields a flag or the input rows set, each with what sets it (`--max-tokens`, `the
    /// input rows`): `--param` may not set them.
    fn set_elsewhere(&self) -> &'static [(&'static str, &'static str)];

    /// Fields a body gets unless it sets them itself (applied after the flags).
    fn defaults(&self, _body: &mut Map<String, Value>) {}

    /// The body field that carries a `--schema` (chat's `response_format`), or `None`: the
    /// family has no structured output and a job with `--schema` is refused.
    fn schema_field(&self) -> Option<&'static str> {
        None
    }

    /// Puts `--schema` into `body` the way this family asks for structured output (into
    /// [`ApiFamily::schema_field`], replacing what is there). Only called when it has one.
    fn put_schema(&self, _body: &mut Map<String, Value>, _schema: &Schema) {}

    /// Prompt tokens (with the family's framing) and output allowance of a request body.
    fn measure<'a>(&self, body: &'a str) -> Result<Measured<'a>, serde_json::Error>;

    /// The prompt tokens of a request body ([`ApiFamily::measure`]'s), 0 if it does not parse
    /// (bodies are our own JSON: it cannot happen, and would only leave the count out).
    fn prompt_tokens(&self, body: &str) -> u64 {
        self.measure(body).map_or(0, |(cost, _)| cost.prompt_tokens)
    }

    /// Reads a 2xx body; the error says whether asking again may help.
    fn parse(&self, bytes: &[u8]) -> Result<Completion, BadBody>;

    /// The rate limits an answer's headers report (`header` looks a header up by name, any
    /// case). The OpenAI families read OpenAI's `x-ratelimit-*` headers.
    fn rate_headers<'a>(&self, header: &dyn Fn(&str) -> Option<&'a str>) -> RateHeaders {
        RateHeaders::read(header)
    }

    /// Whether Azure OpenAI serves this family under a deployment, live and in batch (the
    /// `--provider azure` paths `/openai/deployments/{d}{path}`).
    fn on_azure(&self) -> AzureSupport {
        AzureSupport::LiveAndBatch
    }
}

/// Where Azure OpenAI serves a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AzureSupport {
    LiveAndBatch,
    LiveOnly,
    No,
}

/// Every family promptmill sends, in the order `--endpoint` lists them.
pub const FAMILIES: &[&dyn ApiFamily] = &[
    &chat::Chat,
    &completions::Completions,
    &responses::Responses,
    &embeddings::Embeddings,
    &anthropic::Messages,
];

impl Endpoint {
    /// The family of this id: the registry, one line per family.
    pub fn family(self) -> &'static dyn ApiFamily {
        match self {
            Endpoint::Chat => &chat::Chat,
            Endpoint::Completions => &completions::Completions,
            Endpoint::Responses => &responses::Responses,
            Endpoint::Embeddings => &embeddings::Embeddings,
            Endpoint::Messages => &anthropic::Messages,
        }
    }

    /// The path under the base URL.
    pub fn path(self) -> &'static str {
        self.family().path()
    }

    /// The `url` an OpenAI Batch input line uses for this endpoint.
    pub fn batch_url(self) -> &'static str {
        self.family().batch_url()
    }

    /// The endpoint a Batch input line's `url` names (`/v1/…`, or without `/v1` as Azure writes
    /// it), if it is one promptmill sends.
    pub fn from_batch_url(url: &str) -> Option<Endpoint> {
        let url = url.trim_end_matches('/');
        FAMILIES
            .iter()
            .find(|f| url == f.batch_url() || url == f.path())
            .map(|f| f.id())
    }

    /// The endpoint `--endpoint NAME` names.
    pub fn from_name(name: &str) -> Option<Endpoint> {
        FAMILIES.iter().find(|f| f.name() == name).map(|f| f.id())
    }

    /// The Batch `url`s promptmill sends, for messages: `/v1/chat/completions, …`.
    pub fn batch_urls() -> String {
        let urls: Vec<&str> = FAMILIES.iter().map(|f| f.batch_url()).collect();
        urls.join(", ")
    }
}

/// Whether the body is OpenAI's "You exceeded your current quota" error (`code` or `type`
/// `insufficient_quota`), which comes with status 429 but is not a rate limit.
pub fn is_insufficient_quota(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Envelope {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        code: Option<Value>,
        #[serde(rename = "type")]
        kind: Option<String>,
    }
    const QUOTA: &str = "insufficient_quota";
    serde_json::from_slice::<Envelope>(body).is_ok_and(|env| {
        env.error.kind.as_deref() == Some(QUOTA)
            || matches!(&env.error.code, Some(Value::String(c)) if c == QUOTA)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_registered_under_its_own_id_and_found_by_its_urls() {
        for f in FAMILIES {
            assert_eq!(f.id().family().path(), f.path());
            assert_eq!(Endpoint::from_batch_url(f.batch_url()), Some(f.id()));
            assert_eq!(Endpoint::from_batch_url(f.path()), Some(f.id()));
            assert_eq!(f.batch_url(), format!("/v1{}", f.path()));
            assert_eq!(Endpoint::from_name(f.name()), Some(f.id()));
            // The name is the id as the job record stores it.
            assert_eq!(serde_json::to_value(f.id()).unwrap(), f.name());
        }
        assert_eq!(
            Endpoint::from_batch_url("/v1/chat/completions/"),
            Some(Endpoint::Chat)
        );
        assert_eq!(Endpoint::from_batch_url("/v1/moderations"), None);
    }
}
