//! The API as the pipeline sees it: send a request body, get a verdict.
//!
//! [`Transport`] is the one side effect of a live run, so the whole pipeline can run in tests
//! against a fake (see `pipeline.rs` tests) while the real binary uses [`http::HttpTransport`].
//! [`classify`] turns what came back into what to do with the row: done, retry (and how long to
//! wait), fail this row, or stop the run: the one verdict table, for live replies and Batch
//! result lines alike. It owns the knowledge of OpenAI's status codes, error bodies and
//! `Retry-After` forms (`../shared/openai-openapi.yaml`: `Error`); what a success looks like is
//! the job's API family's (`promptmill_core::family`).

mod deadline;
pub mod http;

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

pub use promptmill_core::family::ratelimit::{self, RateHeaders};
use promptmill_core::family::ApiFamily;
pub use promptmill_core::family::{BadBody, Completion, Usage, MAX_TOKENS};

/// What came back from one HTTP exchange.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// From `retry-after-ms`, or `retry-after` (seconds or an HTTP date).
    pub retry_after: Option<Duration>,
    /// The `x-ratelimit-*` headers (all `None` when the server sends none).
    pub rate: RateHeaders,
    /// The `Location` of a 3xx (never followed: see `http.rs`), with credential-like query
    /// values redacted.
    pub location: Option<String>,
    pub body: Bytes,
}

/// The exchange did not produce a response.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("connection failed: {detail}")]
    Connect { failure: ConnectFailure, detail: String },
    #[error("request failed: {0}")]
    Other(String),
    /// The body passed `--max-response-size`; the rest of it was not read. Not worth asking
    /// again: the same request will most likely get as long an answer.
    #[error("{}", http::ReadError::TooLarge(*.limit))]
    TooLarge { status: u16, limit: u64 },
}

/// Why a connection could not be made: what the first-answers guard
/// (`pipeline::first_answers`) needs to tell a wrong setting from a flaky network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFailure {
    /// Nothing listens at the address.
    Refused,
    /// The host name does not resolve.
    Dns,
    /// Anything else (reset, unreachable, TLS…).
    Other,
}

/// Sends one request body to the job's endpoint.
pub trait Transport: Send + Sync + 'static {
    fn send(&self, body: Bytes) -> impl Future<Output = Result<Reply, SendError>> + Send;
}

/// What to do with a row after one attempt.
#[derive(Debug)]
pub enum Verdict {
    Done(Completion),
    /// Try again after `wait` (the server's `Retry-After` when it gave one).
    Retry {
        reason: String,
        status: Option<u16>,
        wait: Option<Duration>,
        rate_limited: bool,
        /// A paid-for answer that will most likely come back the same (valid JSON, but no usable
        /// completion): the worker asks once more at most.
        unusable: bool,
    },
    /// This row cannot succeed as it is (400, 404, 422, …); the run goes on.
    RowFailed {
        status: u16,
        message: String,
    },
    /// Nothing will succeed until a person acts: stop the run.
    Stop {
        status: u16,
        message: String,
        cause: StopCause,
    },
}

/// Why a run must stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    /// 401, 403: the key (or a header) is refused.
    Credentials,
    /// The account is out of credit (the family says which answers mean it: OpenAI's 429
    /// `insufficient_quota`, Anthropic's `billing_error`). A billing matter, not a rate limit:
    /// waiting does not help, so it is never retried.
    Quota,
}

/// Decides what an attempt's result means.
pub fn classify(family: &dyn ApiFamily, result: Result<Reply, SendError>) -> Verdict {
    let reply = match result {
        Ok(r) => r,
        Err(e @ SendError::TooLarge { status, .. }) => {
            return Verdict::RowFailed {
                status,
                message: e.to_string(),
            }
        }
        Err(e) => {
            return Verdict::Retry {
                reason: e.to_string(),
                status: None,
                wait: None,
                rate_limited: false,
                unusable: false,
            }
        }
    };
    match reply.status {
        200..=299 => match family.parse(&reply.body) {
            Ok(c) => Verdict::Done(c),
            Err(why) => Verdict::Retry {
                unusable: matches!(why, BadBody::Unusable(_)),
                reason: format!("HTTP {} with an unexpected body: {why}", reply.status),
                status: Some(reply.status),
                wait: None,
                rate_limited: false,
            },
        },
        300..=399 => Verdict::RowFailed {
            status: reply.status,
            message: redirected(reply.location.as_deref()),
        },
        status if family.out_of_credit(status, &reply.body) => Verdict::Stop {
            status,
            message: error_message(&reply.body),
            cause: StopCause::Quota,
        },
        429 => Verdict::Retry {
            reason: format!("HTTP 429: {}", error_message(&reply.body)),
            status: Some(429),
            wait: reply.retry_after,
            rate_limited: true,
            unusable: false,
        },
        408 | 409 | 500..=599 => Verdict::Retry {
            reason: format!("HTTP {}: {}", reply.status, error_message(&reply.body)),
            status: Some(reply.status),
            wait: reply.retry_after,
            rate_limited: false,
            unusable: false,
        },
        401 | 403 => Verdict::Stop {
            status: reply.status,
            message: error_message(&reply.body),
            cause: StopCause::Credentials,
        },
        status => Verdict::RowFailed {
            status,
            message: error_message(&reply.body),
        },
    }
}

/// A 3xx as a row's error: redirects are never followed, because the key and the `--header`s
/// would go wherever the `Location` points.
pub fn redirected(location: Option<&str>) -> String {
    match location {
        Some(to) => format!("redirected to {to} (not followed)"),
        None => "a redirect without a Location (not followed)".to_string(),
    }
}

/// An OpenAI error object (`Error` in the OpenAPI spec): `{"error":{message,type,param,code}}`.
#[derive(serde::Deserialize)]
struct Envelope {
    error: Inner,
}
#[derive(serde::Deserialize)]
struct Inner {
    message: Option<String>,
    code: Option<serde_json::Value>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

pub use promptmill_core::family::is_insufficient_quota;

/// The API's `error.message`, or the start of the body when it is not an OpenAI error object.
pub fn error_message(body: &[u8]) -> String {
    if let Ok(env) = serde_json::from_slice::<Envelope>(body) {
        let mut msg = env.error.message.unwrap_or_default();
        let code = match env.error.code {
            Some(serde_json::Value::String(c)) => Some(c),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => env.error.kind,
        };
        if let Some(code) = code {
            msg = if msg.is_empty() {
                code
            } else {
                format!("{msg} ({code})")
            };
        }
        if !msg.is_empty() {
            return msg;
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_string();
    }
    let mut cut: String = text.chars().take(200).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

/// Parses `retry-after-ms` (milliseconds, may be fractional) or `retry-after` (seconds, or an
/// HTTP date relative to `now`). The value is what the server asked, uncapped (capping it, and
/// saying so, is the retry policy's business: `retry::Hint`). An HTTP date that is not in the
/// future says nothing about how long to wait, so it is no hint at all: the row gets the normal
/// backoff instead of a retry at once.
pub fn parse_retry_after(
    retry_after_ms: Option<&str>,
    retry_after: Option<&str>,
    now: std::time::SystemTime,
) -> Option<Duration> {
    let from_secs = |s: f64| (s >= 0.0).then(|| Duration::try_from_secs_f64(s).ok()).flatten();
    if let Some(ms) = retry_after_ms.and_then(|v| v.trim().parse::<f64>().ok()) {
        if let Some(d) = from_secs(ms / 1000.0) {
            return Some(d);
        }
    }
    let value = retry_after?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return from_secs(secs);
    }
    let when = httpdate::parse_http_date(value).ok()?;
    when.duration_since(now).ok().filter(|d| !d.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat() -> &'static dyn ApiFamily {
        promptmill_core::family::Endpoint::Chat.family()
    }

    fn reply(status: u16, body: &str) -> Result<Reply, SendError> {
        Ok(Reply {
            status,
            retry_after: None,
            rate: RateHeaders::default(),
            location: None,
            body: Bytes::from(body.to_string()),
        })
    }

    #[test]
    fn statuses_map_to_verdicts() {
        let ok = r#"{"id":"x","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#;
        assert!(matches!(classify(chat(), reply(200, ok)), Verdict::Done(_)));
        assert!(matches!(
            classify(chat(), reply(200, "{oops")),
            Verdict::Retry { .. }
        ));
        assert!(matches!(
            classify(chat(), reply(429, "")),
            Verdict::Retry {
                rate_limited: true,
                ..
            }
        ));
        for s in [408, 409, 500, 502, 503, 504] {
            assert!(
                matches!(
                    classify(chat(), reply(s, "")),
                    Verdict::Retry {
                        rate_limited: false,
                        ..
                    }
                ),
                "{s}"
            );
        }
        for s in [400, 404, 422] {
            assert!(
                matches!(classify(chat(), reply(s, "")), Verdict::RowFailed { .. }),
                "{s}"
            );
        }
        for s in [301, 302, 303, 307, 308] {
            let mut answer = reply(s, "");
            if let Ok(r) = &mut answer {
                r.location = Some("http://elsewhere/v1/chat/completions".into());
            }
            match classify(chat(), answer) {
                Verdict::RowFailed { status, message } => {
                    assert_eq!(status, s);
                    assert_eq!(
                        message,
                        "redirected to http://elsewhere/v1/chat/completions (not followed)"
                    );
                }
                other => panic!("{s}: {other:?}"),
            }
        }
        for s in [401, 403] {
            assert!(
                matches!(classify(chat(), reply(s, "")), Verdict::Stop { .. }),
                "{s}"
            );
        }
        let quota = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
        assert!(matches!(
            classify(chat(), reply(429, quota)),
            Verdict::Stop {
                status: 429,
                cause: StopCause::Quota,
                ..
            }
        ));
        let timeout = classify(chat(), Err(SendError::Timeout(Duration::from_secs(1))));
        assert!(matches!(timeout, Verdict::Retry { status: None, .. }));
    }

    #[test]
    fn anthropic_errors_map_to_verdicts_the_family_naming_the_billing_ones() {
        let messages = promptmill_core::family::Endpoint::Messages.family();
        let err = |kind: &str, message: &str| {
            format!(r#"{{"type":"error","error":{{"type":"{kind}","message":"{message}"}}}}"#)
        };
        let verdict = |status, body: String| classify(messages, reply(status, &body));
        assert!(matches!(
            verdict(429, err("rate_limit_error", "slow down")),
            Verdict::Retry {
                rate_limited: true,
                ..
            }
        ));
        for s in [500, 529] {
            assert!(matches!(
                verdict(s, err("overloaded_error", "Overloaded")),
                Verdict::Retry {
                    rate_limited: false,
                    ..
                }
            ));
        }
        for s in [401, 403] {
            assert!(matches!(
                verdict(s, err("authentication_error", "invalid x-api-key")),
                Verdict::Stop {
                    cause: StopCause::Credentials,
                    ..
                }
            ));
        }
        match verdict(400, err("invalid_request_error", "max_tokens: Field required")) {
            Verdict::RowFailed { status: 400, message } => {
                assert_eq!(message, "max_tokens: Field required (invalid_request_error)")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            verdict(413, err("request_too_large", "Request exceeds the maximum size")),
            Verdict::RowFailed { status: 413, .. }
        ));
        for (status, body) in [
            (402, err("billing_error", "Your payment failed.")),
            (
                400,
                err(
                    "invalid_request_error",
                    "Your credit balance is too low to access the Anthropic API.",
                ),
            ),
        ] {
            assert!(
                matches!(
                    verdict(status, body),
                    Verdict::Stop {
                        cause: StopCause::Quota,
                        ..
                    }
                ),
                "{status}"
            );
        }
        // An OpenAI family does not read Anthropic's billing words, nor Anthropic OpenAI's quota.
        assert!(matches!(
            classify(chat(), reply(402, &err("billing_error", "x"))),
            Verdict::RowFailed { .. }
        ));
        let quota = r#"{"error":{"message":"x","type":"insufficient_quota","code":"insufficient_quota"}}"#;
        assert!(matches!(
            classify(messages, reply(429, quota)),
            Verdict::Retry { .. }
        ));
    }

    #[test]
    fn insufficient_quota_is_told_by_code_or_type_and_nothing_else() {
        let stops = |body: &str| {
            matches!(
                classify(chat(), reply(429, body)),
                Verdict::Stop {
                    cause: StopCause::Quota,
                    ..
                }
            )
        };
        assert!(stops(
            r#"{"error":{"message":"x","type":"insufficient_quota","code":null}}"#
        ));
        assert!(stops(
            r#"{"error":{"message":"x","type":"requests","code":"insufficient_quota"}}"#
        ));
        assert!(!stops(
            r#"{"error":{"message":"x","type":"requests","code":"rate_limit_exceeded"}}"#
        ));
        assert!(
            !stops("insufficient_quota"),
            "a plain-text body is not an error object"
        );
        // Only a 429 means it: the same body with a 400 fails its row.
        let body = r#"{"error":{"message":"x","type":"insufficient_quota","code":"insufficient_quota"}}"#;
        assert!(matches!(
            classify(chat(), reply(400, body)),
            Verdict::RowFailed { .. }
        ));
    }

    #[test]
    fn error_message_prefers_the_api_error_object() {
        let body = br#"{"error":{"message":"Bad thing","type":"invalid_request_error","param":null,"code":"bad_thing"}}"#;
        assert_eq!(error_message(body), "Bad thing (bad_thing)");
        assert_eq!(error_message(b"<html>gateway</html>"), "<html>gateway</html>");
        assert_eq!(error_message(b""), "(empty body)");
    }

    #[test]
    fn retry_after_forms() {
        let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(
            parse_retry_after(Some("1500"), Some("9"), now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after(None, Some("2"), now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            parse_retry_after(None, Some("0.5"), now),
            Some(Duration::from_millis(500))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(None, Some(&date), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after(None, Some("soon"), now), None);
        assert_eq!(
            parse_retry_after(None, Some("36000"), now),
            Some(Duration::from_secs(36000)),
            "what the server asked, uncapped: the retry policy caps it and says so"
        );
        assert_eq!(parse_retry_after(None, Some("1e400"), now), None);
        assert_eq!(parse_retry_after(None, Some("-3"), now), None);
    }

    #[test]
    fn an_http_date_in_the_past_is_no_hint() {
        let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(None, Some(&past), now), None);
        let this_second = httpdate::fmt_http_date(now);
        assert_eq!(parse_retry_after(None, Some(&this_second), now), None);
    }
}
