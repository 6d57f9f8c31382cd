//! The OpenAI Responses family (`POST /responses`, `CreateResponse` / `Response` in
//! `../shared/openai-openapi.yaml`). A prompt goes as `input` (a string), `--system` as
//! `instructions`, a row's `messages` as input items; `--max-tokens` sets `max_output_tokens`;
//! `store` is `false` unless the body sets it, so a bulk job leaves no stored responses behind.
//!
//! The answer's text is the `output_text` parts of its `message` items, joined. Its finish
//! reason comes from `status`: `completed` is `stop`, `incomplete` is `length` for
//! `max_output_tokens` and `content_filter` for a filtered answer. A `completed` answer is not
//! taken on trust: with no text at all its finish reason is `empty`, and with a message item
//! that is itself `incomplete` it is `incomplete`, so the rows show up in the output and the
//! report. A `failed`, `cancelled` or still `queued`/`in_progress` response is no completion.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::answer::{count, lenient, read_json, BadBody, Completion, Usage};
use super::messages::check_messages;
use super::{ApiFamily, AzureSupport, Endpoint, Measured, Refusal};
use crate::input::json_type_name;
use crate::schema::Schema;

pub(super) struct Responses;

impl ApiFamily for Responses {
    fn id(&self) -> Endpoint {
        Endpoint::Responses
    }

    fn name(&self) -> &'static str {
        "responses"
    }

    fn path(&self) -> &'static str {
        "/responses"
    }

    fn batch_url(&self) -> &'static str {
        "/v1/responses"
    }

    fn put_text(&self, body: &mut Map<String, Value>, text: String, system: Option<String>) {
        if let Some(system) = system {
            body.insert("instructions".into(), Value::String(system));
        }
        body.insert("input".into(), Value::String(text));
    }

    fn put_messages(&self, body: &mut Map<String, Value>, messages: Vec<Value>) -> Result<(), Refusal> {
        for (i, m) in messages.iter().enumerate() {
            let role = m.get("role").and_then(Value::as_str).unwrap_or("");
            if !INPUT_ROLES.contains(&role) {
                return Err(Refusal::new(format!(
                    "the Responses API takes messages of the roles {} only, not `{role}`",
                    INPUT_ROLES.join(", ")
                ))
                .at(format!("messages[{i}].role")));
            }
        }
        body.insert("input".into(), Value::Array(messages));
        Ok(())
    }

    fn check_body(&self, body: &Map<String, Value>) -> Result<(), Refusal> {
        match body.get("input") {
            Some(Value::String(s)) if s.trim().is_empty() => {
                Err(Refusal::new("the prompt is empty").at("body.input"))
            }
            Some(Value::String(_)) => Ok(()),
            Some(Value::Array(items)) if items.is_empty() => {
                Err(Refusal::new("the input array is empty").at("body.input"))
            }
            // Input made of messages only is checked like chat messages; items of other kinds
            // (function call outputs, references) are the server's to judge.
            Some(Value::Array(items)) if items.iter().all(|i| i.get("role").is_some()) => {
                check_messages(items, "body.input")
            }
            Some(Value::Array(_)) => Ok(()),
            Some(other) => Err(Refusal::new(format!(
                "must be a string or an array of input items, found {}",
                json_type_name(other)
            ))
            .at("body.input")),
            None => Err(Refusal::new("missing").at("body.input")),
        }
    }

    fn set_elsewhere(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("input", "the input rows"),
            ("instructions", "--system"),
            ("max_output_tokens", "--max-tokens"),
        ]
    }

    fn max_tokens_key(&self, _body: &Map<String, Value>, _model: &str) -> &'static str {
        "max_output_tokens"
    }

    fn defaults(&self, body: &mut Map<String, Value>) {
        body.entry("store").or_insert(Value::Bool(false));
    }

    fn schema_field(&self) -> Option<&'static str> {
        Some("text")
    }

    /// `text.format` (`TextResponseFormatJsonSchema`), beside what `text` holds already
    /// (`verbosity`).
    fn put_schema(&self, body: &mut Map<String, Value>, schema: &Schema) {
        let mut format = Map::new();
        format.insert("type".into(), Value::from("json_schema"));
        format.insert("name".into(), Value::from(schema.name()));
        format.insert("schema".into(), schema.json().clone());
        if schema.strict() {
            format.insert("strict".into(), Value::Bool(true));
        }
        let text = body.entry("text").or_insert_with(|| Value::Object(Map::new()));
        if !text.is_object() {
            *text = Value::Object(Map::new());
        }
        if let Some(text) = text.as_object_mut() {
            text.insert("format".into(), Value::Object(format));
        }
    }

    fn measure<'a>(&self, body: &'a str) -> Result<Measured<'a>, serde_json::Error> {
        crate::tokens::measure_responses(body)
    }

    fn parse(&self, bytes: &[u8]) -> Result<Completion, BadBody> {
        parse(bytes)
    }

    fn on_azure(&self) -> AzureSupport {
        // Azure serves the Responses API at `/openai/v1/responses`, not under a deployment.
        AzureSupport::No
    }
}

/// Roles of a Responses API input message (`EasyInputMessage`).
const INPUT_ROLES: &[&str] = &["user", "assistant", "system", "developer"];

#[derive(Deserialize)]
struct Body {
    id: Option<String>,
    model: Option<String>,
    status: Option<String>,
    #[serde(default)]
    output: Vec<Item>,
    incomplete_details: Option<Incomplete>,
    error: Option<ErrorObject>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(rename = "type")]
    kind: Option<String>,
    status: Option<String>,
    #[serde(default)]
    content: Vec<Part>,
}

#[derive(Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<String>,
    refusal: Option<String>,
}

#[derive(Deserialize)]
struct Incomplete {
    reason: Option<String>,
}

#[derive(Deserialize)]
struct ErrorObject {
    code: Option<String>,
    message: Option<String>,
}

/// `ResponseUsage`: counts judged as every family's are.
#[derive(Deserialize)]
struct WireUsage {
    input_tokens: Option<serde_json::Number>,
    output_tokens: Option<serde_json::Number>,
    total_tokens: Option<serde_json::Number>,
    input_tokens_details: Option<Details>,
    output_tokens_details: Option<Details>,
}

#[derive(Deserialize)]
struct Details {
    #[serde(default, deserialize_with = "lenient")]
    cached_tokens: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    reasoning_tokens: Option<u64>,
}

impl WireUsage {
    fn read(&self) -> Result<Usage, BadBody> {
        let prompt_tokens = count("input_tokens", self.input_tokens.as_ref())?;
        let completion_tokens = count("output_tokens", self.output_tokens.as_ref())?;
        let total = count("total_tokens", self.total_tokens.as_ref())?;
        Ok(Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: if total == 0 {
                prompt_tokens + completion_tokens
            } else {
                total
            },
            cached_tokens: self.input_tokens_details.as_ref().and_then(|d| d.cached_tokens),
            cache_creation_tokens: None,
            reasoning_tokens: self
                .output_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens),
        })
    }
}

/// Reads a `Response` body.
fn parse(bytes: &[u8]) -> Result<Completion, BadBody> {
    let (raw, body): (_, Body) = read_json(bytes, "a response object")?;
    let messages: Vec<&Item> = body
        .output
        .iter()
        .filter(|i| i.kind.as_deref() == Some("message"))
        .collect();
    let texts: Vec<&str> = messages
        .iter()
        .flat_map(|m| m.content.iter())
        .filter(|p| p.kind.as_deref() == Some("output_text"))
        .filter_map(|p| p.text.as_deref())
        .collect();
    let text = (!texts.is_empty()).then(|| texts.concat());
    let refusal = messages
        .iter()
        .flat_map(|m| m.content.iter())
        .find(|p| p.kind.as_deref() == Some("refusal"))
        .map(|p| p.refusal.clone().unwrap_or_else(|| "a refusal".into()));
    let finish_reason = match &refusal {
        Some(_) if text.is_none() => "refusal".to_string(),
        _ => finish_reason(&body, &messages, text.as_deref())?,
    };
    let usage = match &body.usage {
        Some(u) => u.read()?,
        None => Usage::default(),
    };
    Ok(Completion {
        text,
        finish_reason: Some(finish_reason),
        refusal,
        usage,
        model: body.model,
        id: body.id,
        raw: raw.to_string(),
        embeddings: Vec::new(),
    })
}

/// Whether the output calls a tool (`function_call`, `web_search_call`, … items).
fn calls_tools(body: &Body) -> bool {
    body.output
        .iter()
        .any(|i| i.kind.as_deref().is_some_and(|k| k.ends_with("_call")))
}

/// The finish reason a response's `status` gives, or why it is no completion.
fn finish_reason(body: &Body, messages: &[&Item], text: Option<&str>) -> Result<String, BadBody> {
    let status = body.status.as_deref().unwrap_or("completed");
    match status {
        "completed" if text.is_none_or(|t| t.is_empty()) && calls_tools(body) => {
            // No text beside tool calls, as a chat answer with tool calls only.
            Ok("tool_calls".into())
        }
        "completed" if text.is_none_or(|t| t.is_empty()) => Ok("empty".into()),
        "completed" if messages.iter().any(|m| m.status.as_deref() == Some("incomplete")) => {
            Ok("incomplete".into())
        }
        "completed" => Ok("stop".into()),
        "incomplete" => Ok(
            match body.incomplete_details.as_ref().and_then(|d| d.reason.as_deref()) {
                Some("max_output_tokens") => "length".into(),
                Some("content_filter") => "content_filter".into(),
                Some(other) => other.to_string(),
                None => "incomplete".into(),
            },
        ),
        "failed" => {
            let e = body.error.as_ref();
            let what = match (
                e.and_then(|e| e.code.as_deref()),
                e.and_then(|e| e.message.as_deref()),
            ) {
                (Some(code), Some(m)) => format!("{code}: {m}"),
                (Some(one), None) | (None, Some(one)) => one.to_string(),
                (None, None) => "no error given".to_string(),
            };
            Err(BadBody::Unusable(format!("the response failed ({what})")))
        }
        other => Err(BadBody::Unusable(format!(
            "the response's status is `{other}`, not completed"
        ))),
    }
}

#[cfg(test)]
mod tests;
