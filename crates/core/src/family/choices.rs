//! Reading the `choices[0]` answers of the two OpenAI completion families (`CreateChatCompletionResponse`
//! and `CreateCompletionResponse` in `../shared/openai-openapi.yaml`): the same envelope (`id`,
//! `model`, `choices`, `usage` as `CompletionUsage`), with the text in `choices[0].message.content`
//! (chat) or `choices[0].text` (legacy completions). Unknown fields are ignored.

use serde::Deserialize;

use super::answer::{read_json, BadBody, Completion, Usage, WireUsage};

/// Where a family's text sits in `choices[0]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TextAt {
    /// `choices[0].message.content`
    Message,
    /// `choices[0].text`
    Text,
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
    refusal: Option<String>,
}

/// Parses a 2xx body; the error says what is wrong with it and whether asking again may help.
pub(super) fn parse(at: TextAt, bytes: &[u8]) -> Result<Completion, BadBody> {
    let unusable = BadBody::Unusable;
    let (raw, body): (_, Body) = read_json(bytes, "a completion object")?;
    let first = body
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| unusable("`choices` is empty".to_string()))?;
    let mut refusal = None;
    let text = match at {
        TextAt::Message => match first.message {
            Some(m) => {
                refusal = m.refusal.filter(|r| !r.is_empty());
                m.content
            }
            None => return Err(unusable("`choices[0].message` is missing".to_string())),
        },
        TextAt::Text => match first.text {
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
        refusal,
        usage,
        model: body.model,
        id: body.id,
        raw: raw.to_string(),
        embeddings: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::answer::MAX_TOKENS;
    use super::*;

    fn parse_completion(at: TextAt, body: &[u8]) -> Result<Completion, BadBody> {
        parse(at, body)
    }

    #[test]
    fn cached_and_reasoning_tokens_are_read_where_reported_and_absurd_ones_ignored() {
        let body = br#"{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":9,
            "completion_tokens":5,"prompt_tokens_details":{"cached_tokens":4,"cache_creation_tokens":2},
            "completion_tokens_details":{"reasoning_tokens":3}}}"#;
        let u = parse_completion(TextAt::Message, body).unwrap().usage;
        assert_eq!(
            (u.cached_tokens, u.cache_creation_tokens, u.reasoning_tokens),
            (Some(4), Some(2), Some(3))
        );
        let absurd = br#"{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":9,
            "prompt_tokens_details":{"cached_tokens":-4},
            "completion_tokens_details":{"reasoning_tokens":"many"}}}"#;
        let u = parse_completion(TextAt::Message, absurd).unwrap().usage;
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
        let c = parse_completion(TextAt::Message, body).unwrap();
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
        let c = parse_completion(TextAt::Text, body).unwrap();
        assert_eq!(c.text.as_deref(), Some(" there"));
        assert_eq!(c.usage.total_tokens, 3);
    }

    #[test]
    fn tool_call_answers_have_no_text() {
        let body = br#"{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[]},"finish_reason":"tool_calls"}]}"#;
        let c = parse_completion(TextAt::Message, body).unwrap();
        assert_eq!(c.text, None);
        assert_eq!(c.usage, Usage::default());
    }

    fn unusable(body: &[u8]) -> String {
        match parse_completion(TextAt::Message, body) {
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
                matches!(parse_completion(TextAt::Message, body), Err(BadBody::NotJson(_))),
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
            TextAt::Message,
            &with(r#"{"prompt_tokens":1099511627776,"completion_tokens":null}"#),
        )
        .unwrap();
        assert_eq!(edge.usage.prompt_tokens, MAX_TOKENS);
        assert_eq!(edge.usage.total_tokens, MAX_TOKENS);
    }
}
