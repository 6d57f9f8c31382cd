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
//! What makes an error or a limit header Anthropic's (the `{"type":"error",…}` body, 529, the
//! `anthropic-ratelimit-*` headers) is `messages/dialect.rs`'s: every answer on this route goes
//! through it, so the fault flags and directives work here as on the OpenAI routes.

pub(crate) mod batches;
pub(crate) mod dialect;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::directives::{self, Details, Shape, Shaped};
use super::reply::{self, Reply, Stamp, Usage};
use super::wire::{self, BadRequest, Content, Prompted};

/// A valid Messages request: `prompt` is the last user message's text, `n` is 1.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub prompted: Prompted<'a>,
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
    let request: Body = serde_json::from_slice(body).map_err(wire::json_error)?;
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
        },
    })
}

#[derive(Serialize)]
struct MessageBody<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<TextBlock<'a>>,
    stop_reason: &'static str,
    stop_sequence: Option<()>,
    usage: WireUsage,
}

#[derive(Serialize)]
struct TextBlock<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

#[derive(Serialize)]
struct WireUsage {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    output_tokens: u64,
}

/// The `Message` answer; `details` and `refusal` are what a directive asks for.
fn answer(request: &Request, stamp: Stamp, d: Details, refusal: bool) -> Reply {
    let prompted = &request.prompted;
    let completion = reply::complete(&prompted.prompt, prompted.max_tokens);
    let stop_reason = match completion.finish_reason {
        _ if refusal => "refusal",
        "length" => "max_tokens",
        _ => "end_turn",
    };
    let input_tokens = d.prompt_tokens.unwrap_or(prompted.prompt_tokens);
    let written = d.cache_creation.unwrap_or(0);
    let read = d.cached.unwrap_or(0);
    let content = if refusal {
        vec![]
    } else {
        vec![TextBlock {
            kind: "text",
            text: &completion.text,
        }]
    };
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
            output_tokens: completion.words,
        },
    };
    // The stats count prompt tokens as the client does: the cache's included.
    let prompt_tokens = input_tokens.saturating_add(written).saturating_add(read);
    Reply {
        body: reply::to_bytes(&body),
        usage: Usage {
            prompt_tokens,
            completion_tokens: completion.words,
            total_tokens: prompt_tokens.saturating_add(completion.words),
        },
    }
}

/// The normal answer.
pub(crate) fn reply(request: &Request, stamp: Stamp) -> Reply {
    answer(request, stamp, Details::default(), false)
}

/// The 200 a shape directive asks for, or why the Messages route has none (a 400).
pub(crate) fn shape(request: &Request, shape: &Shape, stamp: Stamp) -> Result<Shaped, String> {
    let normal = || reply(request, stamp);
    match shape {
        Shape::Truncated | Shape::LoneSurrogate | Shape::NotUtf8 | Shape::Size(_) => {
            Ok(directives::shape(shape, normal(), request.prompted.prompt_tokens))
        }
        Shape::NoChoices => {
            let mut json: serde_json::Value = serde_json::from_slice(&normal().body).unwrap_or_default();
            if let Some(m) = json.as_object_mut() {
                m.remove("content");
            }
            Ok(Shaped {
                body: bytes::Bytes::from(serde_json::to_vec(&json).unwrap_or_default()),
                usage: None,
            })
        }
        Shape::ContentFilter => {
            let refused = answer(request, stamp, Details::default(), true);
            Ok(Shaped {
                body: refused.body,
                usage: Some(refused.usage),
            })
        }
        Shape::Details(d) if d.reasoning.is_none() => {
            let shaped = answer(request, stamp, *d, false);
            Ok(Shaped {
                body: shaped.body,
                usage: Some(shaped.usage),
            })
        }
        Shape::Details(_) => Err("reasoning= does not apply to /v1/messages".to_string()),
        Shape::PromptTokens(_) => Err("usage= does not apply to /v1/messages".to_string()),
    }
}
