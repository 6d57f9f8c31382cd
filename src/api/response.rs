//! Reading a successful response: the completion text, finish reason, usage, model and id, plus
//! the raw body (kept so exports such as OpenAI Batch output can carry the whole response).
//! Unknown fields are ignored; a body without `choices[0]` is malformed.

use serde::Deserialize;

use crate::job::Endpoint;

/// Token usage as the API reported it (`CompletionUsage`). Missing usage counts as zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
}

/// A finished row's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// `choices[0].message.content` (chat) or `choices[0].text` (completions); `None` when the
    /// model answered with tool calls or a refusal only.
    pub text: Option<String>,
    pub finish_reason: Option<String>,
    pub usage: Usage,
    pub model: Option<String>,
    /// The response's `id`.
    pub id: Option<String>,
    /// The response body as received.
    pub raw: String,
}

#[derive(Deserialize)]
struct Body {
    id: Option<String>,
    model: Option<String>,
    choices: Vec<Choice>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Option<Message>,
    text: Option<String>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    content: Option<String>,
}

/// Parses a 2xx body; the error says what is wrong with it.
pub fn parse_completion(endpoint: Endpoint, bytes: &[u8]) -> Result<Completion, String> {
    let raw = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 ({e})"))?;
    let body: Body = serde_json::from_str(raw).map_err(|e| format!("not a completion object ({e})"))?;
    let first = body
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| "`choices` is empty".to_string())?;
    let text = match endpoint {
        Endpoint::Chat => match first.message {
            Some(m) => m.content,
            None => return Err("`choices[0].message` is missing".to_string()),
        },
        Endpoint::Completions => match first.text {
            Some(t) => Some(t),
            None => return Err("`choices[0].text` is missing".to_string()),
        },
    };
    let mut usage = body.usage.unwrap_or_default();
    if usage.total_tokens == 0 {
        usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    }
    Ok(Completion {
        text,
        finish_reason: first.finish_reason,
        usage,
        model: body.model,
        id: body.id,
        raw: raw.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_response_fields_are_kept() {
        let body = br#"{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini","extra":1,
            "choices":[{"index":0,"message":{"role":"assistant","content":"Hello","refusal":null},"finish_reason":"stop"}],
            "usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10,"prompt_tokens_details":{"cached_tokens":0}}}"#;
        let c = parse_completion(Endpoint::Chat, body).unwrap();
        assert_eq!(c.text.as_deref(), Some("Hello"));
        assert_eq!(c.finish_reason.as_deref(), Some("stop"));
        assert_eq!(
            c.usage,
            Usage {
                prompt_tokens: 9,
                completion_tokens: 1,
                total_tokens: 10
            }
        );
        assert_eq!(c.model.as_deref(), Some("gpt-4o-mini"));
        assert_eq!(c.id.as_deref(), Some("chatcmpl-1"));
    }

    #[test]
    fn legacy_completion_text_is_read() {
        let body = br#"{"id":"cmpl-1","choices":[{"text":" there","index":0,"finish_reason":"length"}],"usage":{"prompt_tokens":2,"completion_tokens":1}}"#;
        let c = parse_completion(Endpoint::Completions, body).unwrap();
        assert_eq!(c.text.as_deref(), Some(" there"));
        assert_eq!(c.usage.total_tokens, 3);
    }

    #[test]
    fn tool_call_answers_have_no_text() {
        let body = br#"{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[]},"finish_reason":"tool_calls"}]}"#;
        let c = parse_completion(Endpoint::Chat, body).unwrap();
        assert_eq!(c.text, None);
        assert_eq!(c.usage, Usage::default());
    }

    #[test]
    fn malformed_bodies_are_errors() {
        assert!(parse_completion(Endpoint::Chat, b"{\"choices\":[]}").is_err());
        assert!(parse_completion(Endpoint::Chat, b"{\"choices\":[{\"text\":\"x\"}]}").is_err());
        assert!(parse_completion(Endpoint::Chat, b"{\"id\":").is_err());
        assert!(parse_completion(Endpoint::Chat, b"[]").is_err());
    }
}
