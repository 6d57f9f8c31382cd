//! Request bodies of the two completion endpoints, parsed into light structs that borrow
//! from the body bytes (`Cow` only allocates for strings with JSON escapes), plus the
//! validation the mock applies and the token arithmetic that depends only on the request.
//! Unknown fields are tolerated, as OpenAI does. Building responses is left to `reply`,
//! turning a [`BadRequest`] into an HTTP answer to `errors`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use super::structured::{Format, FormatSpec};

/// Largest `n` accepted: OpenAI's own cap, and it bounds the response size a client can ask for.
const MAX_N: u64 = 128;
/// Tokens a request is charged for its output when it sets no max (for --tpm).
pub(crate) const DEFAULT_MAX_TOKENS: u64 = 16;

/// What the mock needs from a valid completion request, whatever the endpoint.
#[derive(Debug)]
pub(crate) struct Prompted<'a> {
    pub model: Cow<'a, str>,
    /// The text directives and the reply come from: the last user message (chat) or the prompt.
    pub prompt: Cow<'a, str>,
    pub prompt_tokens: u64,
    /// `max_completion_tokens`, else `max_tokens`.
    pub max_tokens: Option<u64>,
    pub n: u32,
    /// The structured output asked for (`response_format`, `text.format`, …), if any.
    pub format: Option<Format>,
}

impl Prompted<'_> {
    /// Tokens charged against --tpm: prompt plus the requested output budget.
    pub fn token_cost(&self) -> u64 {
        self.prompt_tokens + self.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)
    }
}

/// Why a body was refused; becomes a 400 `invalid_request_error`.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{message}")]
pub(crate) struct BadRequest {
    pub message: String,
    pub param: Option<&'static str>,
}

impl BadRequest {
    pub(crate) fn new(message: impl Into<String>, param: Option<&'static str>) -> Self {
        BadRequest {
            message: message.into(),
            param,
        }
    }
}

#[derive(Deserialize)]
struct ChatBody<'a> {
    #[serde(borrow, default, deserialize_with = "optional_cow")]
    model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    messages: Option<Vec<Message<'a>>>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    n: Option<u64>,
    stream: Option<bool>,
    response_format: Option<FormatSpec>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default, deserialize_with = "optional_cow")]
    role: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<Content<'a>>,
}

/// A message's content: a string, or an array of parts of which only `text` matters (chat's
/// `text` parts, the Responses API's `input_text` and `output_text` parts alike).
pub(crate) enum Content<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<Part<'a>>),
}

#[derive(Deserialize)]
pub(crate) struct Part<'a> {
    #[serde(borrow, default, deserialize_with = "optional_cow")]
    text: Option<Cow<'a, str>>,
}

/// `Option<Cow<str>>` that borrows when it can. serde's own `Cow` impl always copies; only
/// a `Cow<str>` *field* marked `borrow` borrows, hence the newtype.
pub(crate) fn optional_cow<'de: 'a, 'a, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Cow<'a, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Borrowed>::deserialize(d)?.map(|b| b.0))
}

#[derive(Deserialize)]
struct CompletionBody<'a> {
    #[serde(borrow, default, deserialize_with = "optional_cow")]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "optional_cow")]
    prompt: Option<Cow<'a, str>>,
    max_tokens: Option<u64>,
    n: Option<u64>,
    stream: Option<bool>,
}

/// Parses and validates a `POST /v1/chat/completions` body.
pub(crate) fn parse_chat(body: &[u8]) -> Result<Prompted<'_>, BadRequest> {
    let chat: ChatBody = serde_json::from_slice(body).map_err(json_error)?;
    let model = require_model(chat.model)?;
    common_checks(chat.stream, chat.n)?;
    let messages = match chat.messages {
        None => {
            return Err(BadRequest::new(
                "Missing required parameter: 'messages'.",
                Some("messages"),
            ))
        }
        Some(m) if m.is_empty() => {
            return Err(BadRequest::new("[] is too short - 'messages'", Some("messages")));
        }
        Some(m) => m,
    };
    // prompt_tokens = sum over messages of (words + 4), plus 3 for the reply's priming.
    let mut prompt_tokens = 3;
    for (i, message) in messages.iter().enumerate() {
        if message.role.is_none() {
            return Err(BadRequest::new(
                format!("Missing required parameter: 'messages[{i}].role'."),
                Some("messages"),
            ));
        }
        prompt_tokens += content_words(message.content.as_ref()) + 4;
    }
    let last_user = messages
        .into_iter()
        .rev()
        .find(|m| m.role.as_deref() == Some("user"));
    let prompt = last_user
        .and_then(|m| m.content)
        .map(Content::into_text)
        .unwrap_or_default();
    let format = chat.response_format.map(FormatSpec::chat).transpose()?.flatten();
    Ok(Prompted {
        model,
        prompt,
        prompt_tokens,
        max_tokens: chat.max_completion_tokens.or(chat.max_tokens),
        n: n_or_one(chat.n),
        format,
    })
}

/// Parses and validates a legacy `POST /v1/completions` body (string prompts only).
pub(crate) fn parse_completion(body: &[u8]) -> Result<Prompted<'_>, BadRequest> {
    let completion: CompletionBody = serde_json::from_slice(body).map_err(json_error)?;
    let model = require_model(completion.model)?;
    common_checks(completion.stream, completion.n)?;
    let prompt = completion
        .prompt
        .ok_or_else(|| BadRequest::new("Missing required parameter: 'prompt'.", Some("prompt")))?;
    Ok(Prompted {
        model,
        prompt_tokens: word_count(&prompt),
        prompt,
        max_tokens: completion.max_tokens,
        n: n_or_one(completion.n),
        format: None,
    })
}

/// The mock's token count: whitespace-separated words. Cheap and deterministic.
pub(crate) fn word_count(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

pub(crate) fn content_words(content: Option<&Content>) -> u64 {
    match content {
        None => 0,
        Some(Content::Text(text)) => word_count(text),
        Some(Content::Parts(parts)) => parts
            .iter()
            .filter_map(|p| p.text.as_deref())
            .map(word_count)
            .sum(),
    }
}

impl<'a> Content<'a> {
    /// The message's text; parts are joined with a space (allocates only for parts).
    pub(crate) fn into_text(self) -> Cow<'a, str> {
        match self {
            Content::Text(text) => text,
            Content::Parts(parts) => {
                let texts: Vec<Cow<str>> = parts.into_iter().filter_map(|p| p.text).collect();
                Cow::Owned(texts.join(" "))
            }
        }
    }
}

pub(crate) fn require_model(model: Option<Cow<'_, str>>) -> Result<Cow<'_, str>, BadRequest> {
    model.ok_or_else(|| BadRequest::new("you must provide a model parameter", Some("model")))
}

pub(crate) fn common_checks(stream: Option<bool>, n: Option<u64>) -> Result<(), BadRequest> {
    if stream == Some(true) {
        return Err(BadRequest::new(
            "mock-server does not support stream=true",
            Some("stream"),
        ));
    }
    match n {
        Some(n) if n == 0 || n > MAX_N => Err(BadRequest::new(
            format!("{n} is not a valid value for 'n': it must be between 1 and {MAX_N}."),
            Some("n"),
        )),
        _ => Ok(()),
    }
}

fn n_or_one(n: Option<u64>) -> u32 {
    // Validated to 1..=MAX_N by `common_checks`, so the conversion cannot fail.
    n.and_then(|n| u32::try_from(n).ok()).unwrap_or(1)
}

/// Syntax errors get OpenAI's "not JSON" message; shape errors keep serde's precise text.
pub(crate) fn json_error(err: serde_json::Error) -> BadRequest {
    use serde_json::error::Category;
    match err.classify() {
        Category::Syntax | Category::Eof | Category::Io => BadRequest::new(
            "We could not parse the JSON body of your request. (HINT: This likely means you \
             aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)",
            None,
        ),
        Category::Data => BadRequest::new(format!("Invalid request body: {err}"), None),
    }
}

// Hand-written instead of `#[serde(untagged)]`: untagged buffers the value and reports
// "data did not match any variant", while this borrows directly and names what it expected.
impl<'de: 'a, 'a> Deserialize<'de> for Content<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ContentVisitor;
        impl<'de> Visitor<'de> for ContentVisitor {
            type Value = Content<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of content parts")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut parts = Vec::with_capacity(seq.size_hint().unwrap_or(1));
                while let Some(part) = seq.next_element()? {
                    parts.push(part);
                }
                Ok(Content::Parts(parts))
            }
        }
        deserializer.deserialize_any(ContentVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_prompt_is_the_last_user_message_and_tokens_follow_the_rule() {
        let body = br#"{"model":"m","messages":[
            {"role":"system","content":"be brief"},
            {"role":"user","content":"first question"},
            {"role":"assistant","content":null},
            {"role":"user","content":[{"type":"text","text":"hello there"},{"type":"image_url"},{"type":"text","text":"world"}]}
        ],"temperature":0.2}"#;
        let p = parse_chat(body).unwrap();
        assert_eq!(p.prompt, "hello there world");
        // (2+4) + (2+4) + (0+4) + (3+4) + 3
        assert_eq!(p.prompt_tokens, 26);
        assert_eq!((p.n, p.max_tokens), (1, None));
        assert_eq!(p.token_cost(), 26 + DEFAULT_MAX_TOKENS);
    }

    #[test]
    fn plain_strings_are_borrowed_not_copied() {
        let p = parse_chat(br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#).unwrap();
        assert!(matches!(p.prompt, Cow::Borrowed("hi")));
        assert!(matches!(p.model, Cow::Borrowed("m")));
    }

    #[test]
    fn max_completion_tokens_wins_over_max_tokens() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":9,"max_completion_tokens":3}"#;
        assert_eq!(parse_chat(body).unwrap().max_tokens, Some(3));
    }

    #[test]
    fn missing_pieces_are_named() {
        let no_model = parse_chat(br#"{"messages":[{"role":"user","content":"x"}]}"#).unwrap_err();
        assert_eq!(no_model.param, Some("model"));
        let empty = parse_chat(br#"{"model":"m","messages":[]}"#).unwrap_err();
        assert_eq!(empty.param, Some("messages"));
        let no_role = parse_chat(br#"{"model":"m","messages":[{"content":"x"}]}"#).unwrap_err();
        assert!(no_role.message.contains("messages[0].role"));
        let bad_content =
            parse_chat(br#"{"model":"m","messages":[{"role":"user","content":5}]}"#).unwrap_err();
        assert!(bad_content
            .message
            .contains("a string or an array of content parts"));
    }

    #[test]
    fn non_json_gets_openais_message() {
        let err = parse_chat(b"{not json").unwrap_err();
        assert!(err.message.starts_with("We could not parse the JSON body"));
    }

    #[test]
    fn completion_prompt_counts_words_without_overhead() {
        let p = parse_completion(br#"{"model":"m","prompt":"one two  three","n":2,"max_tokens":5}"#).unwrap();
        assert_eq!((p.prompt_tokens, p.n, p.max_tokens), (3, 2, Some(5)));
        assert_eq!(
            parse_completion(br#"{"model":"m"}"#).unwrap_err().param,
            Some("prompt")
        );
    }

    #[test]
    fn streaming_and_silly_n_are_refused() {
        let stream = parse_chat(br#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream":true}"#);
        assert_eq!(stream.unwrap_err().param, Some("stream"));
        let n = parse_completion(br#"{"model":"m","prompt":"x","n":0}"#);
        assert_eq!(n.unwrap_err().param, Some("n"));
    }
}
