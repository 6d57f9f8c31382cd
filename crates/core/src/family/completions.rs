//! The legacy OpenAI completions family (`POST /completions`, `CreateCompletionRequest`): a prompt
//! goes as `prompt`, there are no messages and no system message, and the answer is
//! `choices[0].text`. Prompt tokens are the prompt's own, without chat framing.

use serde_json::{Map, Value};

use super::choices::{self, TextAt};
use super::{ApiFamily, AzureSupport, BadBody, Completion, Endpoint, Measured, Refusal};
use crate::input::json_type_name;

pub(super) struct Completions;

impl ApiFamily for Completions {
    fn id(&self) -> Endpoint {
        Endpoint::Completions
    }

    fn name(&self) -> &'static str {
        "completions"
    }

    fn path(&self) -> &'static str {
        "/completions"
    }

    fn batch_url(&self) -> &'static str {
        "/v1/completions"
    }

    fn takes_messages(&self) -> bool {
        false
    }

    fn put_text(&self, body: &mut Map<String, Value>, text: String, _system: Option<String>) {
        body.insert("prompt".into(), Value::String(text));
    }

    fn put_messages(&self, _body: &mut Map<String, Value>, _messages: Vec<Value>) -> Result<(), Refusal> {
        Err(
            Refusal::new("a `messages` row needs the chat endpoint, but the job uses /completions")
                .at("messages"),
        )
    }

    fn check_body(&self, body: &Map<String, Value>) -> Result<(), Refusal> {
        match body.get("prompt") {
            Some(Value::String(p)) if p.trim().is_empty() => {
                Err(Refusal::new("the prompt is empty").at("body.prompt"))
            }
            Some(Value::String(_) | Value::Array(_)) => Ok(()),
            Some(other) => Err(
                Refusal::new(format!("must be a string, found {}", json_type_name(other))).at("body.prompt"),
            ),
            None => Err(Refusal::new("missing").at("body.prompt")),
        }
    }

    fn set_elsewhere(&self) -> &'static [(&'static str, &'static str)] {
        &[("prompt", "the input rows"), ("max_tokens", "--max-tokens")]
    }

    fn max_tokens_key(&self, _body: &Map<String, Value>, _model: &str) -> &'static str {
        "max_tokens"
    }

    fn measure<'a>(&self, body: &'a str) -> Result<Measured<'a>, serde_json::Error> {
        crate::tokens::measure(body)
    }

    fn parse(&self, bytes: &[u8]) -> Result<Completion, BadBody> {
        choices::parse(TextAt::Text, bytes)
    }

    fn on_azure(&self) -> AzureSupport {
        AzureSupport::LiveOnly
    }
}
