//! What makes an answer on `/v1/messages` Anthropic's rather than OpenAI's, applied to every
//! answer of that route once it is decided: error bodies become `{"type":"error","error":
//! {"type":…,"message":…}}` with Anthropic's type for the status (`invalid_request_error`,
//! `authentication_error`, `billing_error` for 402, `permission_error`, `not_found_error`,
//! `request_too_large`, `rate_limit_error`, `api_error`, `overloaded_error` for 529), OpenAI's
//! out-of-quota 429 (`code=insufficient_quota`) becomes the 400 Anthropic sends when the credit
//! balance is too low, and the limiter's state is reported in `anthropic-ratelimit-*` headers
//! (`reset` an RFC 3339 time) instead of `x-ratelimit-*`. Deciding which answer to give stays
//! `service`'s, so every fault flag and directive applies here unchanged.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;

use crate::errors::{json_response, Body};
use crate::limits::{Gauge, Snapshot};

/// The path of the Messages route.
pub(crate) const PATH: &str = "/v1/messages";

/// The credit message Anthropic answers with (status 400) when the account cannot pay.
const LOW_CREDIT: &str = "Your credit balance is too low to access the Anthropic API. Please go to \
                          Plans & Billing to upgrade or purchase credits.";

/// Anthropic's error type for a status.
pub(crate) fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

/// An answer of the Messages route with an Anthropic error body in place of OpenAI's (a
/// success is left as it is).
pub(crate) async fn error_body(response: Response<Body>) -> Response<Body> {
    let status = response.status().as_u16();
    if status < 400 {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    };
    let openai: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let error = &openai["error"];
    let quota = error["code"] == "insufficient_quota";
    let message = match error["message"].as_str() {
        _ if quota => LOW_CREDIT,
        Some(m) => m,
        None => "mock-server error",
    };
    let status = if quota { 400 } else { status };
    #[derive(Serialize)]
    struct Envelope<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        error: Inner<'a>,
    }
    #[derive(Serialize)]
    struct Inner<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        message: &'a str,
    }
    let envelope = Envelope {
        kind: "error",
        error: Inner {
            kind: error_type(status),
            message,
        },
    };
    let bytes = Bytes::from(serde_json::to_vec(&envelope).unwrap_or_default());
    let fresh = json_response(StatusCode::from_u16(status).unwrap_or(parts.status), bytes);
    parts.status = fresh.status();
    parts.headers.remove(hyper::header::CONTENT_LENGTH);
    Response::from_parts(parts, fresh.into_body())
}

/// The limiter's state as Anthropic reports it: requests, and the token bucket as both the
/// input-token limit and the overall `tokens` one.
pub(crate) fn limit_headers(snapshot: &Snapshot, headers: &mut HeaderMap) {
    let now = SystemTime::now();
    if let Some(g) = snapshot.requests {
        put(headers, "requests", g, now);
    }
    if let Some(g) = snapshot.tokens {
        put(headers, "input-tokens", g, now);
        put(headers, "tokens", g, now);
    }
}

/// `--claim-tpm`'s limit, in Anthropic's names.
pub(crate) fn claim_tokens(claimed: u64, headers: &mut HeaderMap) {
    let g = Gauge {
        limit: claimed,
        remaining: claimed,
        reset: Duration::ZERO,
    };
    let now = SystemTime::now();
    put(headers, "input-tokens", g, now);
    put(headers, "tokens", g, now);
}

fn put(headers: &mut HeaderMap, unit: &str, g: Gauge, now: SystemTime) {
    let name = |part: &str| {
        hyper::header::HeaderName::from_bytes(format!("anthropic-ratelimit-{unit}-{part}").as_bytes())
    };
    let reset = humantime::format_rfc3339_millis(now + g.reset).to_string();
    for (part, value) in [
        ("limit", HeaderValue::from(g.limit)),
        ("remaining", HeaderValue::from(g.remaining)),
        (
            "reset",
            HeaderValue::from_str(&reset).unwrap_or(HeaderValue::from_static("0")),
        ),
    ] {
        if let Ok(name) = name(part) {
            headers.insert(name, value);
        }
    }
}
