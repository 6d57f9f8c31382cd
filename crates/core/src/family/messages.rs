//! Chat-style messages (`{role, content}` objects), as rows bring them and as the chat and
//! Responses families send them: checked once here, so each family only decides where they go.

use serde_json::{Map, Value};

use super::Refusal;
use crate::input::json_type_name;

/// Roles a chat message may have (OpenAI's `ChatCompletionRequestMessage`).
const ROLES: &[&str] = &["system", "developer", "user", "assistant", "tool", "function"];

/// A `{role, content}` message with text content.
pub fn message(role: &str, content: String) -> Value {
    let mut m = Map::with_capacity(2);
    m.insert("role".into(), Value::String(role.into()));
    m.insert("content".into(), Value::String(content));
    Value::Object(m)
}

/// Checks an array of messages (from the row's field `field`): each an object with a known role
/// and content (text, parts, or none beside tool calls), and some text in all of them.
pub fn check_messages(messages: &[Value], field: &str) -> Result<(), Refusal> {
    if messages.is_empty() {
        return Err(Refusal::new("the messages array is empty").at(field));
    }
    let mut any_text = false;
    for (i, m) in messages.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let Value::Object(m) = m else {
            return Err(Refusal::new(format!(
                "must be a {{role, content}} object, found {}",
                json_type_name(m)
            ))
            .at(at));
        };
        check_role(m.get("role"), &at)?;
        any_text |= has_text(m, &at)?;
    }
    if !any_text {
        return Err(Refusal::new("the prompt is empty: every message's content is empty").at(field));
    }
    Ok(())
}

fn check_role(role: Option<&Value>, at: &str) -> Result<(), Refusal> {
    match role {
        Some(Value::String(r)) if ROLES.contains(&r.as_str()) => Ok(()),
        Some(Value::String(r)) => Err(Refusal::new(format!(
            "unknown role `{r}` (expected one of: {})",
            ROLES.join(", ")
        ))
        .at(format!("{at}.role"))),
        Some(other) => Err(
            Refusal::new(format!("must be a string, found {}", json_type_name(other)))
                .at(format!("{at}.role")),
        ),
        None => Err(Refusal::new("missing").at(format!("{at}.role"))),
    }
}

/// Whether the message has text; an error when its content is of no allowed kind.
fn has_text(m: &Map<String, Value>, at: &str) -> Result<bool, Refusal> {
    match m.get("content") {
        Some(Value::String(s)) => Ok(!s.trim().is_empty()),
        Some(Value::Array(parts)) => Ok(!parts.is_empty()),
        // Assistant turns that only call tools carry no content.
        Some(Value::Null) | None if m.contains_key("tool_calls") || m.contains_key("function_call") => {
            Ok(false)
        }
        Some(Value::Null) | None => Err(Refusal::new(
            "is null or missing, but the message has no tool calls",
        )
        .at(format!("{at}.content"))),
        Some(other) => Err(Refusal::new(format!(
            "must be a string or an array of parts, found {}",
            json_type_name(other)
        ))
        .at(format!("{at}.content"))),
    }
}
