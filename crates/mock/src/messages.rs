//! `POST /v1/messages` (Anthropic's Messages API): the body (`model`, `max_tokens` — required,
//! as Anthropic requires it —, `messages` of roles `user` and `assistant` whose content is a
//! string or text blocks, `system` as a string or text blocks, `temperature` from 0 to 1), its
//! validation, and the `Message` answer: one text block with chat's text ([`reply::complete`]
//! of the last user message), `stop_reason` `end_turn` or `max_tokens`, and usage with
//! `input_tokens` (chat's rule: words + 4 per message, `system` counting as one, + 3),
//! `output_tokens` and the two cache counts (0 unless a directive asks: `cached=N` is
//! `cache_read_input_tokens`, `cache-creation=N` `cache_creation_input_tokens`, both outside
//! `input_tokens` as Anthropic counts them). `reply=content-filter` is a `refusal`.
//!
//! Structured output comes two ways: `output_config.format` (`{"type":"json_schema","schema":…}`;
//! the beta's top-level `output_format` too), answered with the JSON in the text block; or a
//! forced tool (`tool_choice` `{"type":"tool","name":…}`, or `any` with one tool), answered with
//! one `tool_use` block whose `input` is an instance of the tool's `input_schema`, `stop_reason`
//! `tool_use`. The spoiled shapes (`reply=invalid-json`, …) are `structured`'s, put in these blocks
//! here.
//!
//! What makes an error or a limit header Anthropic's (the `{"type":"error",…}` body, 529, the
//! `anthropic-ratelimit-*` headers) is `messages/dialect.rs`'s: every answer on this route goes
//! through it, so the fault flags and directives work here as on the OpenAI routes.

pub(crate) mod batches;
pub(crate) mod dialect;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::directives::{Details, Shape};
use super::reply::{self, Reply, Stamp, Usage};
use super::shapes::{self, Shaped};
use super::structured::{self, Format, FormatSpec, Spoiled};
use super::wire::{self, BadRequest, Content, Prompted};

/// A valid Messages request: `prompt` is the last user message's text, `n` is 1; `format` the
/// structured output asked for (a forced tool's `input_schema` included).
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub prompted: Prompted<'a>,
    /// The tool `tool_choice` forces, whose `input_schema` is `prompted.format`.
    pub tool: Option<String>,
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow, default, deserialize_with = "wire::optional_cow")]
    model: Option<Cow<'a, str>>,
    max_tokens: Option<u64>,
    #[serde(borrow)]
    messages: Option<Vec<Message<'a>>>,
    #[serde(borrow, default)]
    system: Option<Content<'a>>,
    temperature: Option<f64>,
    stream: Option<bool>,
    output_config: Option<OutputConfig>,
    output_format: Option<FormatSpec>,
    tools: Option<Vec<Tool>>,
    tool_choice: Option<ToolChoice>,
}

#[derive(Deserialize)]
struct OutputConfig {
    format: Option<FormatSpec>,
}

#[derive(Deserialize)]
struct Tool {
    name: Option<String>,
    input_schema: Option<Value>,
}

#[derive(Deserialize)]
struct ToolChoice {
    #[serde(rename = "type")]
    kind: Option<String>,
    name: Option<String>,
}

/// The structured output `body` asks for, and the tool it forces if it forces one.
fn format_of(body: &mut Body) -> Result<(Option<Format>, Option<String>), BadRequest> {
    let tools = body.tools.take().unwrap_or_default();
    let forced = match body.tool_choice.take() {
        Some(ToolChoice {
            kind: Some(kind),
            name,
        }) if kind == "tool" => Some(
            name.ok_or_else(|| BadRequest::new("tool_choice.name: Field required", Some("tool_choice")))?,
        ),
        Some(ToolChoice { kind: Some(kind), .. }) if kind == "any" && tools.len() == 1 => {
            tools[0].name.clone()
        }
        _ => None,
    };
    if let Some(name) = forced {
        let Some(tool) = tools
            .into_iter()
            .find(|t| t.name.as_deref() == Some(name.as_str()))
        else {
            let message = format!("tool_choice.name: no tool named '{name}' in tools");
            return Err(BadRequest::new(message, Some("tool_choice")));
        };
        let schema = tool
            .input_schema
            .ok_or_else(|| BadRequest::new("tools.input_schema: Field required", Some("tools")))?;
        return Ok((structured::schema_format(Some(schema), "tools")?, Some(name)));
    }
    let spec = body
        .output_config
        .take()
        .and_then(|c| c.format)
        .or(body.output_format.take());
    Ok((spec.map(FormatSpec::anthropic).transpose()?.flatten(), None))
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default, deserialize_with = "wire::optional_cow")]
    role: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<Content<'a>>,
}

/// Parses and validates a `POST /v1/messages` body (Anthropic's error texts).
pub(crate) fn parse(body: &[u8]) -> Result<Request<'_>, BadRequest> {
    let mut request: Body = serde_json::from_slice(body).map_err(wire::json_error)?;
    let (format, tool) = format_of(&mut request)?;
    let model = request
        .model
        .ok_or_else(|| BadRequest::new("model: Field required", Some("model")))?;
    let max_tokens = match request.max_tokens {
        None => return Err(BadRequest::new("max_tokens: Field required", Some("max_tokens"))),
        Some(0) => {
            return Err(BadRequest::new(
                "max_tokens: Input should be greater than or equal to 1",
                Some("max_tokens"),
            ))
        }
        Some(n) => n,
    };
    wire::common_checks(request.stream, None)?;
    if request.temperature.is_some_and(|t| !(0.0..=1.0).contains(&t)) {
        return Err(BadRequest::new(
            "temperature: Input should be less than or equal to 1",
            Some("temperature"),
        ));
    }
    let messages = match request.messages {
        None => return Err(BadRequest::new("messages: Field required", Some("messages"))),
        Some(m) if m.is_empty() => {
            return Err(BadRequest::new(
                "messages: at least one message is required",
                Some("messages"),
            ))
        }
        Some(m) => m,
    };
    let mut prompt_tokens = 3;
    if let Some(system) = &request.system {
        prompt_tokens += wire::content_words(Some(system)) + 4;
    }
    for (i, m) in messages.iter().enumerate() {
        if !matches!(m.role.as_deref(), Some("user" | "assistant")) {
            return Err(BadRequest::new(
                format!("messages.{i}.role: Input should be 'user' or 'assistant'"),
                Some("messages"),
            ));
        }
        prompt_tokens += wire::content_words(m.content.as_ref()) + 4;
    }
    let prompt = messages
        .into_iter()
        .rev()
        .find(|m| m.role.as_deref() == Some("user"))
        .and_then(|m| m.content)
        .map(Content::into_text)
        .unwrap_or_default();
    Ok(Request {
        prompted: Prompted {
            model,
            prompt,
            prompt_tokens,
            max_tokens: Some(max_tokens),
            n: 1,
            format,
        },
        tool,
    })
}

#[derive(Serialize)]
struct MessageBody<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<Block<'a>>,
    stop_reason: &'static str,
    stop_sequence: Option<()>,
    usage: WireUsage,
}

/// A content block of the answer.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text { text: String },
    ToolUse { id: String, name: &'a str, input: Value },
}

#[derive(Serialize)]
struct WireUsage {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    output_tokens: u64,
}

/// What a directive (or a --rate-*) makes of the answer.
#[derive(Clone, Copy, Default)]
struct How {
    details: Details,
    /// `reply=content-filter`: `stop_reason` `refusal`, no content.
    filtered: bool,
    spoil: Option<Spoiled>,
}

/// The `Message` answer, as `how` asks.
fn answer(request: &Request, stamp: Stamp, how: How) -> Reply {
    let prompted = &request.prompted;
    let (content, stop_reason, words) = match (request.tool.as_deref(), how.spoil) {
        // As before structured output: the words the filter stopped are still billed.
        _ if how.filtered => (
            vec![],
            "refusal",
            reply::complete(&prompted.prompt, prompted.max_tokens).words,
        ),
        (Some(tool), None | Some(Spoiled::SchemaBreak | Spoiled::Cut)) => {
            tool_use(request, tool, stamp, how.spoil)
        }
        _ => text_block(prompted, how.spoil),
    };
    let d = how.details;
    let input_tokens = d.prompt_tokens.unwrap_or(prompted.prompt_tokens);
    let written = d.cache_creation.unwrap_or(0);
    let read = d.cached.unwrap_or(0);
    let body = MessageBody {
        id: format!("msg_mock_{stamp}"),
        kind: "message",
        role: "assistant",
        model: &prompted.model,
        content,
        stop_reason,
        stop_sequence: None,
        usage: WireUsage {
            input_tokens,
            cache_creation_input_tokens: written,
            cache_read_input_tokens: read,
            output_tokens: words,
        },
    };
    // The stats count prompt tokens as the client does: the cache's included.
    let prompt_tokens = input_tokens.saturating_add(written).saturating_add(read);
    Reply {
        body: reply::to_bytes(&body),
        usage: Usage {
            prompt_tokens,
            completion_tokens: words,
            total_tokens: prompt_tokens.saturating_add(words),
        },
    }
}

/// The answer as one text block: the normal text, the format's JSON, or either spoiled.
fn text_block(prompted: &Prompted, spoil: Option<Spoiled>) -> (Vec<Block<'static>>, &'static str, u64) {
    let said = structured::say(prompted, spoil);
    let stop_reason = match said.finish_reason {
        _ if said.refused => "refusal",
        "length" => "max_tokens",
        _ => "end_turn",
    };
    (vec![Block::Text { text: said.text }], stop_reason, said.words)
}

/// The forced tool's call: its `input` an instance of its `input_schema`; with `spoil`, one that
/// breaks it (`schema-break`) or the first half of its properties (`cut`, `stop_reason`
/// `max_tokens`, as when the instance does not fit in `max_tokens`).
fn tool_use<'a>(
    request: &Request,
    name: &'a str,
    stamp: Stamp,
    spoil: Option<Spoiled>,
) -> (Vec<Block<'a>>, &'static str, u64) {
    let prompted = &request.prompted;
    let (format, prompt) = (prompted.format.as_ref(), &prompted.prompt);
    let whole = match (spoil, format) {
        (Some(Spoiled::SchemaBreak), _) => structured::misfit(format, prompt),
        (_, Some(format)) => structured::fitting(format, prompt),
        (_, None) => Value::Object(Map::new()),
    };
    let budget = prompted.max_tokens.unwrap_or(u64::MAX);
    let over = wire::word_count(&structured::render(&whole)) >= budget;
    let (input, stop_reason) = if over || spoil == Some(Spoiled::Cut) {
        (halved(whole), "max_tokens")
    } else {
        (whole, "tool_use")
    };
    let words = wire::word_count(&structured::render(&input)).min(budget);
    let call = Block::ToolUse {
        id: format!("toolu_mock_{stamp}"),
        name,
        input,
    };
    (vec![call], stop_reason, words)
}

/// The first half of an object's properties (a call cut before its end); other values as they are.
fn halved(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let keep = map.len() / 2;
            Value::Object(map.into_iter().take(keep).collect())
        }
        other => other,
    }
}

/// The normal answer.
pub(crate) fn reply(request: &Request, stamp: Stamp) -> Reply {
    answer(request, stamp, How::default())
}

/// The 200 a shape directive asks for, or why the Messages route has none (a 400).
pub(crate) fn shape(request: &Request, shape: &Shape, stamp: Stamp) -> Result<Shaped, String> {
    let normal = || reply(request, stamp);
    let shaped = |how: How| Ok(shapes::counted(answer(request, stamp, how)));
    match shape {
        Shape::Truncated | Shape::LoneSurrogate | Shape::NotUtf8 | Shape::Size(_) => {
            Ok(shapes::chat(shape, normal(), request.prompted.prompt_tokens))
        }
        Shape::NoChoices => {
            let mut json: Value = serde_json::from_slice(&normal().body).unwrap_or_default();
            if let Some(m) = json.as_object_mut() {
                m.remove("content");
            }
            Ok(Shaped {
                body: bytes::Bytes::from(serde_json::to_vec(&json).unwrap_or_default()),
                usage: None,
            })
        }
        Shape::ContentFilter => shaped(How {
            filtered: true,
            ..How::default()
        }),
        Shape::Details(d) if d.reasoning.is_none() => shaped(How {
            details: *d,
            ..How::default()
        }),
        Shape::Spoiled(spoil) => shaped(How {
            spoil: Some(*spoil),
            ..How::default()
        }),
        Shape::Details(_) => Err("reasoning= does not apply to /v1/messages".to_string()),
        Shape::PromptTokens(_) => Err("usage= does not apply to /v1/messages".to_string()),
    }
}
