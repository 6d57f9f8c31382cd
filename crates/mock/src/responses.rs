//! `POST /v1/responses` (OpenAI's Responses API, `CreateResponse` → `Response`): the body
//! (`model`, `input` as a string or a list of `{role, content}` / `{type:"message", role,
//! content}` items whose content is a string or `input_text`-style parts, `instructions`,
//! `max_output_tokens`, `store`, `temperature`, `top_p`, `metadata`), its validation, and the
//! answer with every field the spec requires. The text is chat's ([`reply::complete`] of the last
//! user message); `input_tokens` follows chat's rule (words + 4 per message, `instructions`
//! counting as one, + 3); a reply cut by `max_output_tokens` is `incomplete` with reason
//! `max_output_tokens`. Unlike OpenAI (minimum 16) any `max_output_tokens` ≥ 1 is taken, so that
//! short mock replies can be cut. Directives are read from the instructions and every input
//! text; how they shape this answer is `shapes`' business, whether it is given `service`'s.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::directives::Details;
use super::reply::{self, Reply, Stamp, Usage};
use super::wire::{self, BadRequest, Content, Prompted};

/// A valid Responses request.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    /// `prompt`: the last user message's text; `max_tokens`: `max_output_tokens`; `n`: 1.
    pub prompted: Prompted<'a>,
    pub instructions: Option<Cow<'a, str>>,
    /// The instructions and every input text, a line each: where directives are looked for.
    pub scan: Cow<'a, str>,
    pub store: bool,
    pub temperature: f64,
    pub top_p: f64,
    pub metadata: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow, default, deserialize_with = "wire::optional_cow")]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    input: Option<Input<'a>>,
    #[serde(borrow, default, deserialize_with = "wire::optional_cow")]
    instructions: Option<Cow<'a, str>>,
    max_output_tokens: Option<u64>,
    store: Option<bool>,
    stream: Option<bool>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    #[serde(borrow, default)]
    metadata: Option<&'a RawValue>,
}

enum Input<'a> {
    Text(Cow<'a, str>),
    Items(Vec<Item<'a>>),
}

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(rename = "type", borrow, default, deserialize_with = "wire::optional_cow")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "wire::optional_cow")]
    role: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<Content<'a>>,
}

/// Parses and validates a `POST /v1/responses` body.
pub(crate) fn parse(body: &[u8]) -> Result<Request<'_>, BadRequest> {
    let request: Body = serde_json::from_slice(body).map_err(wire::json_error)?;
    let model = wire::require_model(request.model)?;
    wire::common_checks(request.stream, None)?;
    if request.max_output_tokens == Some(0) {
        return Err(BadRequest::new(
            "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 1, but got 0 instead.",
            Some("max_output_tokens"),
        ));
    }
    let instructions = request.instructions;
    let instruction_tokens = instructions
        .as_deref()
        .map_or(0, |text| wire::word_count(text) + 4);
    let (prompt, scan, message_tokens) = match request.input {
        None => {
            return Err(BadRequest::new(
                "Missing required parameter: 'input'.",
                Some("input"),
            ))
        }
        Some(Input::Text(text)) if text.is_empty() => {
            return Err(BadRequest::new("Invalid 'input': empty string.", Some("input")))
        }
        Some(Input::Text(text)) => {
            let tokens = wire::word_count(&text) + 4;
            let scan = match &instructions {
                None => text.clone(),
                Some(instructions) => Cow::Owned(format!("{instructions}\n{text}")),
            };
            (text, scan, tokens)
        }
        Some(Input::Items(items)) => items_text(items, instructions.as_deref())?,
    };
    Ok(Request {
        prompted: Prompted {
            model,
            prompt,
            prompt_tokens: instruction_tokens + message_tokens + 3,
            max_tokens: request.max_output_tokens,
            n: 1,
        },
        instructions,
        scan,
        store: request.store.unwrap_or(true),
        temperature: request.temperature.unwrap_or(1.0),
        top_p: request.top_p.unwrap_or(1.0),
        metadata: request.metadata,
    })
}

/// The last user message's text, the text to scan for directives, and the messages' tokens.
fn items_text<'a>(
    items: Vec<Item<'a>>,
    instructions: Option<&str>,
) -> Result<(Cow<'a, str>, Cow<'a, str>, u64), BadRequest> {
    if items.is_empty() {
        return Err(BadRequest::new(
            "Invalid 'input': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            Some("input"),
        ));
    }
    let mut tokens = 0;
    let mut scan = String::from(instructions.unwrap_or_default());
    let mut prompt = Cow::Borrowed("");
    for (i, item) in items.into_iter().enumerate() {
        if let Some(kind) = item.kind.as_deref().filter(|kind| *kind != "message") {
            return Err(BadRequest::new(
                format!("mock-server: input[{i}] has type '{kind}': only message items are supported."),
                Some("input"),
            ));
        }
        let Some(role) = item.role else {
            let message = format!("Missing required parameter: 'input[{i}].role'.");
            return Err(BadRequest::new(message, Some("input")));
        };
        let Some(content) = item.content else {
            let message = format!("Missing required parameter: 'input[{i}].content'.");
            return Err(BadRequest::new(message, Some("input")));
        };
        tokens += wire::content_words(Some(&content)) + 4;
        let text = content.into_text();
        if !scan.is_empty() {
            scan.push('\n');
        }
        scan.push_str(&text);
        if role == "user" {
            prompt = text;
        }
    }
    Ok((prompt, Cow::Owned(scan), tokens))
}

/// What a directive changes in an otherwise normal answer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tune {
    pub details: Details,
    /// `reply=content-filter`: `incomplete`, reason `content_filter`.
    pub content_filter: bool,
}

#[derive(Serialize)]
struct ResponseBody<'a> {
    id: String,
    object: &'static str,
    created_at: u64,
    status: &'static str,
    completed_at: Option<u64>,
    error: Option<()>,
    incomplete_details: Option<Incomplete>,
    instructions: Option<&'a str>,
    max_output_tokens: Option<u64>,
    model: &'a str,
    output: [OutputMessage<'a>; 1],
    parallel_tool_calls: bool,
    previous_response_id: Option<()>,
    reasoning: Reasoning,
    store: bool,
    temperature: f64,
    text: TextConfig,
    tool_choice: &'static str,
    tools: [(); 0],
    top_p: f64,
    truncation: &'static str,
    usage: ResponseUsage,
    user: Option<()>,
    metadata: Metadata<'a>,
}

#[derive(Serialize)]
struct Incomplete {
    reason: &'static str,
}

#[derive(Serialize)]
struct OutputMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    status: &'static str,
    role: &'static str,
    content: [OutputText<'a>; 1],
}

#[derive(Serialize)]
struct OutputText<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
    annotations: [(); 0],
    logprobs: [(); 0],
}

#[derive(Serialize)]
struct Reasoning {
    effort: Option<()>,
    summary: Option<()>,
}

#[derive(Serialize)]
struct TextConfig {
    format: Format,
}

#[derive(Serialize)]
struct Format {
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct ResponseUsage {
    input_tokens: u64,
    input_tokens_details: InputDetails,
    output_tokens: u64,
    output_tokens_details: OutputDetails,
    total_tokens: u64,
}

#[derive(Serialize)]
struct InputDetails {
    cached_tokens: u64,
    cache_write_tokens: u64,
}

#[derive(Serialize)]
struct OutputDetails {
    reasoning_tokens: u64,
}

/// The request's `metadata` as sent, or `{}`.
#[derive(Serialize)]
#[serde(untagged)]
enum Metadata<'a> {
    Given(&'a RawValue),
    Empty {},
}

/// The `Response` to `request`, as normal or as `tune` asks.
pub(crate) fn reply(request: &Request, stamp: Stamp, tune: Tune) -> Reply {
    let prompted = &request.prompted;
    let completion = reply::complete(&prompted.prompt, prompted.max_tokens);
    let reason = match (tune.content_filter, completion.finish_reason) {
        (true, _) => Some("content_filter"),
        (false, "length") => Some("max_output_tokens"),
        _ => None,
    };
    let (status, completed_at) = match reason {
        Some(_) => ("incomplete", None),
        None => ("completed", Some(stamp.created())),
    };
    let d = tune.details;
    let input_tokens = d.prompt_tokens.unwrap_or(prompted.prompt_tokens);
    let reasoning = d.reasoning.unwrap_or(0);
    let output_tokens = completion.words.saturating_add(reasoning);
    let total_tokens = input_tokens.saturating_add(output_tokens);
    let body = ResponseBody {
        id: format!("resp_mock_{stamp}"),
        object: "response",
        created_at: stamp.created(),
        status,
        completed_at,
        error: None,
        incomplete_details: reason.map(|reason| Incomplete { reason }),
        instructions: request.instructions.as_deref(),
        max_output_tokens: prompted.max_tokens,
        model: &prompted.model,
        output: [OutputMessage {
            kind: "message",
            id: format!("msg_mock_{stamp}"),
            status,
            role: "assistant",
            content: [OutputText {
                kind: "output_text",
                text: &completion.text,
                annotations: [],
                logprobs: [],
            }],
        }],
        parallel_tool_calls: true,
        previous_response_id: None,
        reasoning: Reasoning {
            effort: None,
            summary: None,
        },
        store: request.store,
        temperature: request.temperature,
        text: TextConfig {
            format: Format { kind: "text" },
        },
        tool_choice: "auto",
        tools: [],
        top_p: request.top_p,
        truncation: "disabled",
        usage: ResponseUsage {
            input_tokens,
            input_tokens_details: InputDetails {
                cached_tokens: d.cached.unwrap_or(0),
                cache_write_tokens: d.cache_creation.unwrap_or(0),
            },
            output_tokens,
            output_tokens_details: OutputDetails {
                reasoning_tokens: reasoning,
            },
            total_tokens,
        },
        user: None,
        metadata: request.metadata.map_or(Metadata::Empty {}, Metadata::Given),
    };
    Reply {
        body: reply::to_bytes(&body),
        usage: Usage {
            prompt_tokens: input_tokens,
            completion_tokens: output_tokens,
            total_tokens,
        },
    }
}

// Hand-written like `wire::Content`, for the same reasons: it borrows, and says what it expected.
impl<'de: 'a, 'a> Deserialize<'de> for Input<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct InputVisitor;
        impl<'de> Visitor<'de> for InputVisitor {
            type Value = Input<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of input items")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Input::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Input::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(1));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Input::Items(items))
            }
        }
        deserializer.deserialize_any(InputVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_input_is_the_prompt_and_instructions_count_as_a_message() {
        let r = parse(br#"{"model":"m","input":"hello there","instructions":"be brief"}"#).unwrap();
        assert_eq!(r.prompted.prompt, "hello there");
        assert_eq!(r.scan, "be brief\nhello there");
        // (2+4) + (2+4) + 3
        assert_eq!(r.prompted.prompt_tokens, 15);
        let plain = parse(br#"{"model":"m","input":"hi"}"#).unwrap();
        assert!(matches!(plain.scan, Cow::Borrowed("hi")));
    }

    #[test]
    fn items_give_the_last_user_text_and_scan_every_text() {
        let body = br#"{"model":"m","max_output_tokens":5,"input":[
            {"role":"developer","content":"rules [[mock:status=503]]"},
            {"type":"message","role":"user","content":[{"type":"input_text","text":"first"},{"type":"input_image"}]},
            {"role":"assistant","content":[{"type":"output_text","text":"ok"}]},
            {"role":"user","content":"last one"}]}"#;
        let r = parse(body).unwrap();
        assert_eq!(r.prompted.prompt, "last one");
        assert!(r.scan.contains("[[mock:status=503]]") && r.scan.contains("first"));
        // (2+4) + (1+4) + (1+4) + (2+4) + 3
        assert_eq!((r.prompted.prompt_tokens, r.prompted.max_tokens), (25, Some(5)));
    }

    #[test]
    fn missing_or_empty_input_and_missing_model_name_their_param() {
        for body in [
            r#"{"model":"m"}"#,
            r#"{"model":"m","input":""}"#,
            r#"{"model":"m","input":[]}"#,
            r#"{"model":"m","input":[{"content":"x"}]}"#,
            r#"{"model":"m","input":[{"type":"function_call_output","call_id":"c","output":"x"}]}"#,
        ] {
            assert_eq!(parse(body.as_bytes()).unwrap_err().param, Some("input"), "{body}");
        }
        assert_eq!(parse(br#"{"input":"x"}"#).unwrap_err().param, Some("model"));
        let stream = parse(br#"{"model":"m","input":"x","stream":true}"#);
        assert_eq!(stream.unwrap_err().param, Some("stream"));
    }
}
