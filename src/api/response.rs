//! Reading a successful response: the completion text, finish reason, usage, model and id, plus
//! the raw body (kept so exports such as OpenAI Batch output can carry the whole response).
//! Unknown fields are ignored. A body that fails is told apart in two kinds ([`BadBody`]): not
//! JSON at all (most likely cut short on the way; asking again may well work), or JSON that is
//! no usable completion (no `choices[0]`, a lone surrogate, a non-UTF-8 byte, an absurd usage
//! count), which the server will most likely send again.

use serde::Deserialize;

use crate::job::Endpoint;

/// The largest token count believed: 2^40 (about 10^12). A usage count beyond it, negative or
/// fractional makes the body unusable; checked here, so every sum of counts stays far from
/// overflowing a u64 or SQLite's i64.
pub const MAX_TOKENS: u64 = 1 << 40;

/// Token usage as the API reported it (`CompletionUsage`). Missing usage counts as zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    /// `prompt_tokens_details.cached_tokens`, when the server reports it: prompt tokens read
    /// from the provider's cache, billed at the cached-input price.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    /// `prompt_tokens_details.cache_creation_tokens`, when the server reports it: prompt tokens
    /// written to the cache, for providers that bill them apart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_creation_tokens: Option<u64>,
    /// `completion_tokens_details.reasoning_tokens`, when the server reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
}

impl Usage {
    /// The tokens to price (see [`crate::models::price`]): unreported details count as none.
    pub fn billed(&self) -> crate::models::Billed {
        crate::models::Billed {
            prompt: self.prompt_tokens as f64,
            cached: self.cached_tokens.unwrap_or(0) as f64,
            cache_creation: self.cache_creation_tokens.unwrap_or(0) as f64,
            completion: self.completion_tokens as f64,
            reasoning: self.reasoning_tokens.unwrap_or(0) as f64,
        }
    }
}

/// Why a 2xx body gives no completion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadBody {
    /// Not JSON: most likely cut short on the way, so worth asking again.
    #[error("not JSON ({0})")]
    NotJson(String),
    /// JSON, but no usable completion: the same request will most likely get the same answer.
    #[error("{0}")]
    Unusable(String),
}

/// `CompletionUsage` as sent: numbers kept as numbers of any form, judged by [`count`].
#[derive(Deserialize)]
struct WireUsage {
    prompt_tokens: Option<serde_json::Number>,
    completion_tokens: Option<serde_json::Number>,
    total_tokens: Option<serde_json::Number>,
    prompt_tokens_details: Option<WireDetails>,
    completion_tokens_details: Option<WireDetails>,
}

/// The breakdowns of `CompletionUsage`, for the cost and the run report. A count that is not
/// one (negative, fractional, beyond [`MAX_TOKENS`], not a number) is taken as unreported, so
/// the tokens are priced as if there were no breakdown (the cost errs high, never low).
#[derive(Deserialize)]
struct WireDetails {
    #[serde(default, deserialize_with = "lenient")]
    cached_tokens: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    cache_creation_tokens: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    reasoning_tokens: Option<u64>,
}

fn lenient<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(v.as_u64().filter(|n| *n <= MAX_TOKENS))
}

/// A usage count: a whole number from 0 to [`MAX_TOKENS`]; absent counts as 0.
fn count(field: &str, n: Option<&serde_json::Number>) -> Result<u64, BadBody> {
    let Some(n) = n else { return Ok(0) };
    match n.as_u64() {
        Some(v) if v <= MAX_TOKENS => Ok(v),
        _ => Err(BadBody::Unusable(format!(
            "`usage.{field}` is {n}, not a token count (a whole number from 0 to 2^40)"
        ))),
    }
}

impl WireUsage {
    fn read(&self) -> Result<Usage, BadBody> {
        let prompt_tokens = count("prompt_tokens", self.prompt_tokens.as_ref())?;
        let completion_tokens = count("completion_tokens", self.completion_tokens.as_ref())?;
        let mut total_tokens = count("total_tokens", self.total_tokens.as_ref())?;
        if total_tokens == 0 {
            total_tokens = prompt_tokens + completion_tokens;
        }
        Ok(Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens,
            cached_tokens: self.prompt_tokens_details.as_ref().and_then(|d| d.cached_tokens),
            cache_creation_tokens: self
                .prompt_tokens_details
                .as_ref()
                .and_then(|d| d.cache_creation_tokens),
            reasoning_tokens: self
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens),
        })
    }
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
    usage: Option<WireUsage>,
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

/// Parses a 2xx body; the error says what is wrong with it and whether asking again may help.
pub fn parse_completion(endpoint: Endpoint, bytes: &[u8]) -> Result<Completion, BadBody> {
    // Syntax first, without judging strings: a body cut short is told apart from one that is
    // whole but unusable (a lone surrogate or a bad byte is a complete, if useless, answer).
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).map_err(|e| BadBody::NotJson(e.to_string()))?;
    let unusable = BadBody::Unusable;
    let raw = std::str::from_utf8(bytes)
        .map_err(|e| unusable(format!("not UTF-8 (a bad byte at offset {})", e.valid_up_to())))?;
    let body: Body =
        serde_json::from_str(raw).map_err(|e| unusable(format!("not a completion object ({e})")))?;
    let first = body
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| unusable("`choices` is empty".to_string()))?;
    let text = match endpoint {
        Endpoint::Chat => match first.message {
            Some(m) => m.content,
            None => return Err(unusable("`choices[0].message` is missing".to_string())),
        },
        Endpoint::Completions => match first.text {
            Some(t) => Some(t),
            None => return Err(unusable("`choices[0].text` is missing".to_string())),
        },
    };
    let usage = match &body.usage {
        Some(u) => u.read()?,
        None => Usage::default(),
    };
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
    fn cached_and_reasoning_tokens_are_read_where_reported_and_absurd_ones_ignored() {
        let body = br#"{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":9,
            "completion_tokens":5,"prompt_tokens_details":{"cached_tokens":4,"cache_creation_tokens":2},
            "completion_tokens_details":{"reasoning_tokens":3}}}"#;
        let u = parse_completion(Endpoint::Chat, body).unwrap().usage;
        assert_eq!(
            (u.cached_tokens, u.cache_creation_tokens, u.reasoning_tokens),
            (Some(4), Some(2), Some(3))
        );
        let absurd = br#"{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":9,
            "prompt_tokens_details":{"cached_tokens":-4},
            "completion_tokens_details":{"reasoning_tokens":"many"}}}"#;
        let u = parse_completion(Endpoint::Chat, absurd).unwrap().usage;
        assert_eq!(
            (u.prompt_tokens, u.cached_tokens, u.reasoning_tokens),
            (9, None, None)
        );
    }

    #[test]
    fn usage_is_priced_from_its_details() {
        let u = Usage {
            prompt_tokens: 9,
            completion_tokens: 5,
            total_tokens: 14,
            cached_tokens: Some(4),
            cache_creation_tokens: None,
            reasoning_tokens: Some(3),
        };
        let b = u.billed();
        assert_eq!((b.prompt, b.cached, b.cache_creation), (9.0, 4.0, 0.0));
        assert_eq!((b.completion, b.reasoning), (5.0, 3.0));
    }

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
                total_tokens: 10,
                cached_tokens: Some(0),
                cache_creation_tokens: None,
                reasoning_tokens: None,
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

    fn unusable(body: &[u8]) -> String {
        match parse_completion(Endpoint::Chat, body) {
            Err(BadBody::Unusable(why)) => why,
            other => panic!("expected an unusable body, got {other:?}"),
        }
    }

    #[test]
    fn whole_json_that_is_no_completion_is_unusable() {
        assert!(unusable(b"{\"choices\":[]}").contains("`choices` is empty"));
        assert!(unusable(b"{\"choices\":[{\"text\":\"x\"}]}").contains("message"));
        assert!(unusable(b"[]").contains("not a completion object"));
        let surrogate = br#"{"choices":[{"message":{"content":"\ud800 hi"}}]}"#;
        assert!(
            unusable(surrogate).contains("hex escape"),
            "{}",
            unusable(surrogate)
        );
        let bad_byte = b"{\"choices\":[{\"message\":{\"content\":\"\xff hi\"}}]}";
        assert!(unusable(bad_byte).contains("not UTF-8"));
    }

    #[test]
    fn a_body_cut_short_or_not_json_is_told_apart() {
        for body in [
            &b"{\"id\":"[..],
            b"",
            b"<html>bad gateway</html>",
            b"{\"choices\":[{\"message\"",
        ] {
            assert!(
                matches!(parse_completion(Endpoint::Chat, body), Err(BadBody::NotJson(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn absurd_usage_counts_make_the_body_unusable() {
        let with = |usage: &str| {
            format!(r#"{{"choices":[{{"message":{{"content":"x"}}}}],"usage":{usage}}}"#).into_bytes()
        };
        for (usage, field) in [
            (r#"{"prompt_tokens":-1}"#, "`usage.prompt_tokens` is -1"),
            (r#"{"completion_tokens":1.5}"#, "`usage.completion_tokens` is 1.5"),
            (
                r#"{"prompt_tokens":9223372036854775807}"#,
                "`usage.prompt_tokens` is 9223372036854775807",
            ),
            (
                r#"{"total_tokens":1099511627777}"#,
                "`usage.total_tokens` is 1099511627777",
            ),
            (
                r#"{"prompt_tokens":18446744073709551616}"#,
                "is 18446744073709551616",
            ),
        ] {
            let why = unusable(&with(usage));
            assert!(why.contains(field), "{usage}: {why}");
        }
        let edge = parse_completion(
            Endpoint::Chat,
            &with(r#"{"prompt_tokens":1099511627776,"completion_tokens":null}"#),
        )
        .unwrap();
        assert_eq!(edge.usage.prompt_tokens, MAX_TOKENS);
        assert_eq!(edge.usage.total_tokens, MAX_TOKENS);
    }
}
