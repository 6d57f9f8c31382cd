//! The OpenAI embeddings family (`POST /embeddings`, `CreateEmbeddingRequest` →
//! `CreateEmbeddingResponse` in `../shared/openai-openapi.yaml`). A row's text (a template, or
//! its `prompt` or `input` field) goes as `input`; nothing is generated, so `--max-tokens`,
//! `--temperature` and `--system` do not apply. Vectors are asked for as `base64` (4× smaller on
//! the wire than JSON floats, what the OpenAI SDKs do) unless the body sets `encoding_format`.
//!
//! Embedding is bound by requests per minute, so one request carries several rows: each row's
//! body is stored as a one-input request, and [`ApiFamily::join`] makes one `input` array of a
//! group of them; the answer is split back over the rows by each vector's `index`
//! (`answer.rs`). Prompt tokens are the inputs' own, without chat framing.

mod answer;

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{ApiFamily, AzureSupport, BadBody, Completion, Endpoint, Measured, Refusal};
use crate::tokens::{RequestCost, Tokenizer};

pub use answer::{split_usage, JoinError};

/// Most inputs one request may carry (OpenAI's limit).
pub const MAX_INPUTS: usize = 2048;
/// Most input tokens one request may carry, summed over its inputs (OpenAI's limit for its
/// embedding models).
pub const MAX_REQUEST_TOKENS: u64 = 300_000;
/// Rows per request unless `--rows-per-request` says otherwise.
pub const DEFAULT_ROWS_PER_REQUEST: usize = 100;

pub(super) struct Embeddings;

impl ApiFamily for Embeddings {
    fn id(&self) -> Endpoint {
        Endpoint::Embeddings
    }

    fn name(&self) -> &'static str {
        "embeddings"
    }

    fn path(&self) -> &'static str {
        "/embeddings"
    }

    fn batch_url(&self) -> &'static str {
        "/v1/embeddings"
    }

    fn takes_messages(&self) -> bool {
        false
    }

    fn generates_text(&self) -> bool {
        false
    }

    fn text_fields(&self) -> &'static [&'static str] {
        &["prompt", "input"]
    }

    fn max_rows_per_request(&self) -> usize {
        MAX_INPUTS
    }

    fn put_text(&self, body: &mut Map<String, Value>, text: String, _system: Option<String>) {
        body.insert("input".into(), Value::String(text));
    }

    fn put_messages(&self, _body: &mut Map<String, Value>, _messages: Vec<Value>) -> Result<(), Refusal> {
        Err(
            Refusal::new("a `messages` row needs the chat endpoint, but the job uses /embeddings")
                .at("messages"),
        )
    }

    fn check_body(&self, body: &Map<String, Value>) -> Result<(), Refusal> {
        // A row is one text, so that its vector is its own; rows are joined into requests (and
        // Batch lines) of several inputs by `--rows-per-request`, those of the same settings
        // together (`pipeline::group`).
        match body.get("input") {
            Some(Value::String(_)) => Ok(()),
            None => Err(Refusal::new("missing: the text to embed").at("body.input")),
            Some(Value::Array(_)) => Err(Refusal::new(
                "must be one text (a string): a row is one input, and promptmill puts several rows in one request itself (--rows-per-request)",
            )
            .at("body.input")),
            Some(other) => Err(Refusal::new(format!(
                "must be a string, found {}",
                crate::input::json_type_name(other)
            ))
            .at("body.input")),
        }
    }

    fn set_elsewhere(&self) -> &'static [(&'static str, &'static str)] {
        &[("input", "the input rows")]
    }

    fn max_tokens_key(&self, _body: &Map<String, Value>, _model: &str) -> &'static str {
        // Never asked: `--max-tokens` is refused for a family that generates no text.
        "max_tokens"
    }

    fn defaults(&self, body: &mut Map<String, Value>) {
        body.entry("encoding_format")
            .or_insert(Value::String("base64".into()));
    }

    fn measure<'a>(&self, body: &'a str) -> Result<Measured<'a>, serde_json::Error> {
        let body: Body<'_> = serde_json::from_str(body)?;
        let tokenizer = Tokenizer::for_model(body.model.as_deref().unwrap_or(""));
        let prompt_tokens = match body.input {
            None => 0,
            Some(raw) => input_tokens(&tokenizer, raw)?,
        };
        let cost = RequestCost {
            prompt_tokens,
            max_output_tokens: 0,
            choices: 1,
        };
        Ok((cost, body.model))
    }

    fn parse(&self, bytes: &[u8]) -> Result<Completion, BadBody> {
        answer::parse(bytes)
    }

    fn join(&self, bodies: &[&str]) -> Result<String, String> {
        answer::join(bodies).map_err(|e| e.to_string())
    }

    fn split(&self, answer: Completion, tokens: &[u64]) -> Vec<Result<Completion, String>> {
        answer::split(answer, tokens)
    }

    fn on_azure(&self) -> AzureSupport {
        AzureSupport::LiveOnly
    }
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
}

/// Tokens of `input`: one string, or an array of strings.
fn input_tokens(tokenizer: &Tokenizer, raw: &RawValue) -> Result<u64, serde_json::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Input<'a> {
        One(#[serde(borrow)] Cow<'a, str>),
        Many(#[serde(borrow)] Vec<Cow<'a, str>>),
    }
    Ok(match serde_json::from_str::<Input<'_>>(raw.get())? {
        Input::One(text) => tokenizer.count(&text),
        Input::Many(texts) => texts.iter().map(|t| tokenizer.count(t)).sum(),
    })
}

#[cfg(test)]
mod tests;
