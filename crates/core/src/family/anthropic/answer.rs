//! Reading a Messages API answer (`Message`): the text is the `content[]` blocks of type
//! `text`, joined in order; `stop_reason` `end_turn` and `stop_sequence` are `stop`,
//! `max_tokens` is `length`, `tool_use` is `tool_calls`, and anything else (`refusal`,
//! `pause_turn`) is kept as sent. Usage: `input_tokens` are the prompt tokens neither read
//! from nor written to the cache, so the shared `prompt_tokens` is their sum with
//! `cache_creation_input_tokens` and `cache_read_input_tokens` (kept as `cache_creation_tokens`
//! and `cached_tokens`, priced apart); `output_tokens` are the completion tokens.
//!
//! Also which error answers mean the account is out of credit ([`out_of_credit`]): those stop
//! the run instead of failing rows.

use serde::Deserialize;

use crate::family::answer::{count, read_json, BadBody, Completion, Usage};

#[derive(Deserialize)]
struct Body {
    id: Option<String>,
    model: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    content: Option<Vec<Block>>,
    stop_reason: Option<String>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Block {
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    input_tokens: Option<serde_json::Number>,
    output_tokens: Option<serde_json::Number>,
    cache_creation_input_tokens: Option<serde_json::Number>,
    cache_read_input_tokens: Option<serde_json::Number>,
}

/// Parses a 2xx body of `POST /v1/messages`.
pub(super) fn parse(bytes: &[u8]) -> Result<Completion, BadBody> {
    let unusable = BadBody::Unusable;
    let (raw, body): (_, Body) = read_json(bytes, "a Message object")?;
    if body.kind.as_deref().is_some_and(|k| k != "message") {
        return Err(unusable(format!(
            "`type` is {:?}, not \"message\"",
            body.kind.unwrap_or_default()
        )));
    }
    let Some(content) = body.content else {
        return Err(unusable("`content` is missing".to_string()));
    };
    let texts: Vec<String> = content
        .into_iter()
        .filter(|b| b.kind.as_deref() == Some("text"))
        .filter_map(|b| b.text)
        .collect();
    let text = (!texts.is_empty()).then(|| texts.concat());
    let refusal = (body.stop_reason.as_deref() == Some("refusal")).then(|| {
        text.clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "stop_reason `refusal`".into())
    });
    let usage = match &body.usage {
        Some(u) => read_usage(u)?,
        None => Usage::default(),
    };
    Ok(Completion {
        text,
        finish_reason: body.stop_reason.map(|r| finish_reason(&r).to_string()),
        refusal,
        usage,
        model: body.model,
        id: body.id,
        raw: raw.to_string(),
        embeddings: Vec::new(),
    })
}

/// `stop_reason` in the words every family's output uses.
fn finish_reason(stop: &str) -> &str {
    match stop {
        "end_turn" | "stop_sequence" => "stop",
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        other => other,
    }
}

fn read_usage(u: &WireUsage) -> Result<Usage, BadBody> {
    let input = count("input_tokens", u.input_tokens.as_ref())?;
    let output = count("output_tokens", u.output_tokens.as_ref())?;
    let written = u
        .cache_creation_input_tokens
        .as_ref()
        .map(|n| count("cache_creation_input_tokens", Some(n)))
        .transpose()?;
    let read = u
        .cache_read_input_tokens
        .as_ref()
        .map(|n| count("cache_read_input_tokens", Some(n)))
        .transpose()?;
    let prompt_tokens = input + written.unwrap_or(0) + read.unwrap_or(0);
    Ok(Usage {
        prompt_tokens,
        completion_tokens: output,
        total_tokens: prompt_tokens + output,
        cached_tokens: read,
        cache_creation_tokens: written,
        reasoning_tokens: None,
    })
}

/// Anthropic's error object: `{"type":"error","error":{"type":…,"message":…}}`.
#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorObject,
}

#[derive(Deserialize)]
struct ErrorObject {
    #[serde(rename = "type")]
    kind: Option<String>,
    message: Option<String>,
}

/// Whether an error answer says the account cannot pay: `billing_error` (Anthropic's 402), or
/// the 400 `invalid_request_error` the API sends when the credit balance is too low. Waiting
/// does not help either, so the run stops as it does on OpenAI's `insufficient_quota`.
pub(super) fn out_of_credit(status: u16, body: &[u8]) -> bool {
    let Ok(env) = serde_json::from_slice::<ErrorEnvelope>(body) else {
        return false;
    };
    let billing = env.error.kind.as_deref() == Some("billing_error");
    let low_balance = status == 400
        && env
            .error
            .message
            .is_some_and(|m| m.to_ascii_lowercase().contains("credit balance is too low"));
    billing || low_balance
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = r#"{"id":"msg_01","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[{"type":"text","text":"Hello"},{"type":"tool_use","id":"t","name":"f","input":{}},{"type":"text","text":", world"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":4,"cache_creation_input_tokens":100,"cache_read_input_tokens":1000}}"#;

    #[test]
    fn the_text_blocks_are_joined_and_the_cache_counts_kept() {
        let c = parse(ANSWER.as_bytes()).unwrap();
        assert_eq!(c.text.as_deref(), Some("Hello, world"));
        assert_eq!(c.finish_reason.as_deref(), Some("stop"));
        assert_eq!(c.id.as_deref(), Some("msg_01"));
        assert_eq!(
            c.usage,
            Usage {
                prompt_tokens: 1110,
                completion_tokens: 4,
                total_tokens: 1114,
                cached_tokens: Some(1000),
                cache_creation_tokens: Some(100),
                reasoning_tokens: None,
            }
        );
    }

    #[test]
    fn stop_reasons_map_to_finish_reasons_and_refusal_is_kept() {
        for (stop, finish) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "refusal"),
            ("pause_turn", "pause_turn"),
        ] {
            let body = ANSWER.replace("end_turn", stop);
            let c = parse(body.as_bytes()).unwrap();
            assert_eq!(c.finish_reason.as_deref(), Some(finish), "{stop}");
        }
    }

    #[test]
    fn an_answer_without_content_or_of_another_type_is_unusable() {
        let no_content = r#"{"type":"message","stop_reason":"end_turn"}"#;
        assert!(matches!(parse(no_content.as_bytes()), Err(BadBody::Unusable(_))));
        let error = r#"{"type":"error","error":{"type":"api_error","message":"x"}}"#;
        assert!(matches!(parse(error.as_bytes()), Err(BadBody::Unusable(_))));
        assert!(matches!(parse(b"{\"type\":"), Err(BadBody::NotJson(_))));
        let refusal = r#"{"type":"message","content":[],"stop_reason":"refusal"}"#;
        assert_eq!(parse(refusal.as_bytes()).unwrap().text, None);
    }

    #[test]
    fn billing_errors_and_a_low_credit_balance_are_out_of_credit() {
        let billing =
            br#"{"type":"error","error":{"type":"billing_error","message":"Your payment method failed."}}"#;
        assert!(out_of_credit(402, billing));
        let low = br#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."}}"#;
        assert!(out_of_credit(400, low));
        let bad = br#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"}}"#;
        assert!(!out_of_credit(400, bad));
        let limited = br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#;
        assert!(!out_of_credit(429, limited));
    }
}
