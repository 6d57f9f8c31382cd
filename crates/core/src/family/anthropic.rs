//! Anthropic's Messages API (`POST {base}/v1/messages`), live: how a row becomes a Messages
//! body and how its answer reads. A prompt is a user message; `--system`, and a row's own
//! `system` messages, go to the top-level `system` field (the API has no system role); the
//! other roles are `user` and `assistant` only, and a row with any other is refused by row and
//! field. `--max-tokens` sets `max_tokens`, which the API requires: a job without it is refused
//! before anything is sent ([`ApiFamily::needs_max_tokens`]).
//!
//! The answer (`anthropic/answer.rs`): the text is the `content[]` text blocks joined, the
//! finish reason maps `stop_reason`, and the usage's cache counts go into the shared
//! [`Usage`](super::Usage) fields. Which error answers stop the run (a billing error) is
//! `anthropic/answer.rs`'s too; the status table itself is `api::classify`'s. The rate-limit
//! headers (`anthropic-ratelimit-*`) are read by `anthropic/limits.rs`.
//!
//! Prompt tokens are approximate: Anthropic's tokenizer is not public, so the chat rule is
//! applied in the model's fallback encoding (see `tokens::measure_messages`); `--sample`
//! calibrates it against the server's counts. Message Batches are not this family's business:
//! they are a batch service of their own (`engine/src/batch/anthropic.rs`), sending these same
//! bodies as `params` and handing back each succeeded `message` for this family to read.

mod answer;
mod limits;

use serde_json::{Map, Value};

use super::messages::check_messages;
use super::{ApiFamily, AzureSupport, BadBody, Completion, Endpoint, Measured, RateHeaders, Refusal, Vendor};
use crate::input::json_type_name;
use crate::schema::Schema;

pub(super) struct Messages;

/// The roles a Messages API message may have; `system` is lifted to the top level first.
const ROLES: &[&str] = &["user", "assistant"];

impl ApiFamily for Messages {
    fn id(&self) -> Endpoint {
        Endpoint::Messages
    }

    fn name(&self) -> &'static str {
        "messages"
    }

    fn path(&self) -> &'static str {
        "/messages"
    }

    fn batch_url(&self) -> &'static str {
        "/v1/messages"
    }

    fn vendor(&self) -> Vendor {
        Vendor::Anthropic
    }

    fn needs_max_tokens(&self) -> bool {
        true
    }

    fn max_temperature(&self) -> f64 {
        1.0
    }

    fn put_text(&self, body: &mut Map<String, Value>, text: String, system: Option<String>) {
        if let Some(system) = system {
            body.insert("system".into(), Value::String(system));
        }
        body.insert(
            "messages".into(),
            Value::Array(vec![super::message("user", text)]),
        );
    }

    fn put_messages(&self, body: &mut Map<String, Value>, messages: Vec<Value>) -> Result<(), Refusal> {
        let mut system = Vec::new();
        let mut kept = Vec::with_capacity(messages.len());
        for (i, m) in messages.into_iter().enumerate() {
            let role = m.get("role").and_then(Value::as_str).unwrap_or("");
            if role == "system" {
                system.push(system_text(&m, i)?);
                continue;
            }
            if !ROLES.contains(&role) {
                return Err(Refusal::new(format!(
                    "Anthropic's Messages API takes the roles user and assistant (and system, moved to the top-level `system`), not `{role}`"
                ))
                .at(format!("messages[{i}].role")));
            }
            kept.push(m);
        }
        if kept.is_empty() {
            return Err(Refusal::new(
                "no user or assistant message: Anthropic's Messages API needs at least one",
            )
            .at("messages"));
        }
        if !system.is_empty() {
            body.insert("system".into(), Value::String(system.join("\n\n")));
        }
        body.insert("messages".into(), Value::Array(kept));
        Ok(())
    }

    fn check_body(&self, body: &Map<String, Value>) -> Result<(), Refusal> {
        match body.get("messages") {
            Some(Value::Array(m)) => {
                check_messages(m, "body.messages")?;
                match m
                    .iter()
                    .position(|m| !ROLES.contains(&m.get("role").and_then(Value::as_str).unwrap_or("")))
                {
                    Some(i) => Err(
                        Refusal::new("the Messages API takes the roles user and assistant only")
                            .at(format!("body.messages[{i}].role")),
                    ),
                    None => Ok(()),
                }
            }
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
            ("system", "--system"),
            ("max_tokens", "--max-tokens"),
        ]
    }

    fn max_tokens_key(&self, _body: &Map<String, Value>, _model: &str) -> &'static str {
        "max_tokens"
    }

    fn schema_field(&self) -> Option<&'static str> {
        Some("output_config")
    }

    /// Anthropic's structured outputs: `output_config.format` (`json_schema`), beside what
    /// `output_config` holds already (`effort`). The answer is a text block holding the JSON.
    fn put_schema(&self, body: &mut Map<String, Value>, schema: &Schema) {
        let format = serde_json::json!({"type": "json_schema", "schema": schema.json()});
        let config = body
            .entry("output_config")
            .or_insert_with(|| Value::Object(Map::new()));
        if !config.is_object() {
            *config = Value::Object(Map::new());
        }
        if let Some(config) = config.as_object_mut() {
            config.insert("format".into(), format);
        }
    }

    fn measure<'a>(&self, body: &'a str) -> Result<Measured<'a>, serde_json::Error> {
        crate::tokens::measure_messages(body)
    }

    fn parse(&self, bytes: &[u8]) -> Result<Completion, BadBody> {
        answer::parse(bytes)
    }

    fn out_of_credit(&self, status: u16, body: &[u8]) -> bool {
        answer::out_of_credit(status, body)
    }

    fn rate_headers<'a>(&self, header: &dyn Fn(&str) -> Option<&'a str>) -> RateHeaders {
        limits::read(header, std::time::SystemTime::now())
    }

    fn on_azure(&self) -> AzureSupport {
        AzureSupport::No
    }
}

/// The text of a row's `system` message (a string, or text parts joined).
fn system_text(m: &Value, i: usize) -> Result<String, Refusal> {
    match m.get("content") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => Ok(parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n")),
        _ => Err(Refusal::new("a system message needs text content").at(format!("messages[{i}].content"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body_of(messages: Value) -> Result<Value, Refusal> {
        let mut body = Map::new();
        let Value::Array(m) = messages else { panic!() };
        Messages.put_messages(&mut body, m)?;
        Ok(Value::Object(body))
    }

    #[test]
    fn a_prompt_is_a_user_message_and_the_system_goes_to_the_top_level() {
        let mut body = Map::new();
        Messages.put_text(&mut body, "Hi".into(), Some("Be brief.".into()));
        assert_eq!(
            Value::Object(body),
            json!({"system": "Be brief.", "messages": [{"role": "user", "content": "Hi"}]})
        );
    }

    #[test]
    fn a_rows_system_message_is_moved_to_the_top_level() {
        let body = body_of(json!([
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Bonjour"},
            {"role": "user", "content": "Again"}
        ]))
        .unwrap();
        assert_eq!(body["system"], "Answer in French.");
        assert_eq!(body["messages"].as_array().unwrap().len(), 3);
        assert_eq!(body["messages"][0]["role"], "user");
    }

    #[test]
    fn roles_other_than_user_and_assistant_are_refused_at_their_field() {
        let refused = body_of(json!([
            {"role": "user", "content": "Hello"},
            {"role": "tool", "content": "42", "tool_call_id": "x"}
        ]))
        .unwrap_err();
        assert_eq!(refused.field.as_deref(), Some("messages[1].role"));
        assert!(refused.message.contains("`tool`"), "{}", refused.message);
        let only_system = body_of(json!([{"role": "system", "content": "x"}])).unwrap_err();
        assert_eq!(only_system.field.as_deref(), Some("messages"));
    }

    #[test]
    fn max_tokens_is_required_and_set_by_the_flag() {
        assert!(Messages.needs_max_tokens());
        assert_eq!(
            Messages.max_tokens_key(&Map::new(), "claude-haiku-4-5"),
            "max_tokens"
        );
    }
}
