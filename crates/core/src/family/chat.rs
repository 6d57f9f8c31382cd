//! The OpenAI chat completions family (`POST /chat/completions`, `CreateChatCompletionRequest`):
//! a prompt is a user message (after a system message from `--system`), a row's `messages` go as
//! they are, and the answer is `choices[0].message.content`. Prompt tokens follow the chat
//! framing of OpenAI's cookbook (see `tokens.rs`).

use serde_json::{Map, Value};

use super::choices::{self, TextAt};
use super::messages::{check_messages, message};
use super::{ApiFamily, BadBody, Completion, Endpoint, Measured, Refusal};
use crate::input::json_type_name;
use crate::schema::Schema;

pub(super) struct Chat;

impl ApiFamily for Chat {
    fn id(&self) -> Endpoint {
        Endpoint::Chat
    }

    fn name(&self) -> &'static str {
        "chat"
    }

    fn path(&self) -> &'static str {
        "/chat/completions"
    }

    fn batch_url(&self) -> &'static str {
        "/v1/chat/completions"
    }

    fn put_text(&self, body: &mut Map<String, Value>, text: String, system: Option<String>) {
        let mut messages = Vec::with_capacity(2);
        if let Some(system) = system {
            messages.push(message("system", system));
        }
        messages.push(message("user", text));
        body.insert("messages".into(), Value::Array(messages));
    }

    fn put_messages(&self, body: &mut Map<String, Value>, messages: Vec<Value>) -> Result<(), Refusal> {
        body.insert("messages".into(), Value::Array(messages));
        Ok(())
    }

    fn check_body(&self, body: &Map<String, Value>) -> Result<(), Refusal> {
        match body.get("messages") {
            Some(Value::Array(m)) => check_messages(m, "body.messages"),
            Some(other) => Err(
                Refusal::new(format!("must be an array, found {}", json_type_name(other)))
                    .at("body.messages"),
            ),
            None => Err(Refusal::new("missing").at("body.messages")),
        }
    }

    fn set_elsewhere(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("messages", "the input rows"),
            ("max_tokens", "--max-tokens"),
            ("max_completion_tokens", "--max-tokens"),
        ]
    }

    fn max_tokens_key(&self, body: &Map<String, Value>, model: &str) -> &'static str {
        if body.contains_key("max_completion_tokens") {
            "max_completion_tokens"
        } else if body.contains_key("max_tokens") {
            "max_tokens"
        } else {
            max_tokens_key(model)
        }
    }

    fn schema_field(&self) -> Option<&'static str> {
        Some("response_format")
    }

    fn put_schema(&self, body: &mut Map<String, Value>, schema: &Schema) {
        let mut format = Map::new();
        format.insert("name".into(), Value::from(schema.name()));
        format.insert("schema".into(), schema.json().clone());
        if schema.strict() {
            format.insert("strict".into(), Value::Bool(true));
        }
        let response_format = serde_json::json!({"type": "json_schema", "json_schema": format});
        body.insert("response_format".into(), response_format);
    }

    fn measure<'a>(&self, body: &'a str) -> Result<Measured<'a>, serde_json::Error> {
        crate::tokens::measure(body)
    }

    fn parse(&self, bytes: &[u8]) -> Result<Completion, BadBody> {
        choices::parse(TextAt::Message, bytes)
    }
}

/// OpenAI's reasoning models (o1, o3, o4, gpt-5 families) reject `max_tokens` and take
/// `max_completion_tokens`; every other model, and every OpenAI-compatible server we know of,
/// takes `max_tokens`.
pub fn max_tokens_key(model: &str) -> &'static str {
    let m = model.rsplit('/').next().unwrap_or(model);
    let reasoning = ["o1", "o3", "o4", "gpt-5"]
        .iter()
        .any(|p| m == *p || m.starts_with(&format!("{p}-")) || m.starts_with(&format!("{p}.")));
    if reasoning {
        "max_completion_tokens"
    } else {
        "max_tokens"
    }
}
