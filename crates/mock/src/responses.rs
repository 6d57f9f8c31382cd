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
//! `text.format` asks for structured output (`json_object`, or `json_schema` with `name` and
//! `schema`); the answer itself is built by `responses/answer.rs`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::structured::FormatSpec;
use super::wire::{self, BadRequest, Content, Prompted};

mod answer;

pub(crate) use answer::{reply, Tune};

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
    /// `text.format` as sent, echoed in the answer (`{"type":"text"}` when absent).
    pub format_sent: Option<&'a RawValue>,
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
    #[serde(borrow, default)]
    text: Option<TextParam<'a>>,
}

/// `text`: of its fields only `format` matters (`{type, name, schema, strict}`).
#[derive(Deserialize)]
struct TextParam<'a> {
    #[serde(borrow, default)]
    format: Option<&'a RawValue>,
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
    let format_sent = request.text.and_then(|t| t.format);
    let format = match format_sent {
        None => None,
        Some(raw) => serde_json::from_str::<FormatSpec>(raw.get())
            .map_err(|e| BadRequest::new(format!("Invalid 'text.format': {e}"), Some("text.format")))?
            .responses()?,
    };
    Ok(Request {
        prompted: Prompted {
            model,
            prompt,
            prompt_tokens: instruction_tokens + message_tokens + 3,
            max_tokens: request.max_output_tokens,
            n: 1,
            format,
        },
        instructions,
        scan,
        store: request.store.unwrap_or(true),
        temperature: request.temperature.unwrap_or(1.0),
        top_p: request.top_p.unwrap_or(1.0),
        metadata: request.metadata,
        format_sent,
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
