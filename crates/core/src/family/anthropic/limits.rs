//! Anthropic's rate-limit headers read into the shared [`RateHeaders`]: what the limiter
//! learns from, with the same rules as OpenAI's `x-ratelimit-*` (a flag wins; `remaining` only
//! lowers a bucket; see `limits.rs` in the engine).
//!
//! Anthropic sends `anthropic-ratelimit-{requests,input-tokens,output-tokens,tokens}-{limit,
//! remaining,reset}`, `reset` an RFC 3339 time at which the limit is full again. The limiter
//! has one token bucket, which holds each request's prompt tokens plus its `max_tokens`; it is
//! fed the input-token limit (Anthropic's ITPM), falling back to the `tokens` one (the most
//! restrictive limit in effect) where an answer gives no input-token header. The output-token
//! limit is not metered apart: a 429 it causes comes with `retry-after`, which pauses the run.

use std::time::{Duration, SystemTime};

use crate::family::ratelimit::{Gauge, RateHeaders};

/// Reads the headers through `header` (any case), with `now` to turn reset times into waits.
pub(super) fn read<'a>(header: &dyn Fn(&str) -> Option<&'a str>, now: SystemTime) -> RateHeaders {
    let gauge = |unit: &str| Gauge {
        limit: header(&format!("anthropic-ratelimit-{unit}-limit")).and_then(count),
        remaining: header(&format!("anthropic-ratelimit-{unit}-remaining")).and_then(count),
        reset: header(&format!("anthropic-ratelimit-{unit}-reset")).and_then(|t| wait_until(t, now)),
    };
    let input = gauge("input-tokens");
    let any = gauge("tokens");
    RateHeaders {
        requests: gauge("requests"),
        tokens: Gauge {
            limit: input.limit.or(any.limit),
            remaining: input.remaining.or(any.remaining),
            reset: input.reset.or(any.reset),
        },
    }
}

fn count(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// The wait until an RFC 3339 time (zero once it has passed); `None` when it is not one.
fn wait_until(text: &str, now: SystemTime) -> Option<Duration> {
    let at = humantime::parse_rfc3339_weak(text.trim()).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(headers: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |name| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    #[test]
    fn requests_and_input_tokens_are_read_with_reset_times_as_waits() {
        let now = humantime::parse_rfc3339("2026-12-03T08:00:00Z").unwrap();
        let headers = [
            ("anthropic-ratelimit-requests-limit", "50"),
            ("anthropic-ratelimit-requests-remaining", "49"),
            ("anthropic-ratelimit-requests-reset", "2026-12-03T08:00:01Z"),
            ("anthropic-ratelimit-input-tokens-limit", "30000"),
            ("anthropic-ratelimit-input-tokens-remaining", "29000"),
            ("anthropic-ratelimit-input-tokens-reset", "2026-12-03T08:00:02.5Z"),
            ("anthropic-ratelimit-output-tokens-limit", "8000"),
            ("anthropic-ratelimit-tokens-limit", "8000"),
            ("anthropic-ratelimit-tokens-remaining", "7000"),
        ];
        let read = read(&lookup(&headers), now);
        assert_eq!(
            read.requests,
            Gauge {
                limit: Some(50),
                remaining: Some(49),
                reset: Some(Duration::from_secs(1)),
            }
        );
        assert_eq!(
            read.tokens,
            Gauge {
                limit: Some(30000),
                remaining: Some(29000),
                reset: Some(Duration::from_millis(2500)),
            }
        );
    }

    #[test]
    fn the_tokens_headers_stand_in_for_missing_input_token_ones_and_bad_values_are_absent() {
        let now = humantime::parse_rfc3339("2026-12-03T08:00:00Z").unwrap();
        let headers = [
            ("anthropic-ratelimit-tokens-limit", "90000"),
            ("anthropic-ratelimit-tokens-remaining", "lots"),
            ("anthropic-ratelimit-tokens-reset", "2026-12-03T07:59:00Z"),
            ("anthropic-ratelimit-requests-reset", "in a minute"),
        ];
        let read = read(&lookup(&headers), now);
        assert_eq!(read.tokens.limit, Some(90000));
        assert_eq!(read.tokens.remaining, None);
        assert_eq!(read.tokens.reset, Some(Duration::ZERO), "a past reset is no wait");
        assert_eq!(read.requests.reset, None);
        assert!(super::read(&|_| None, now).is_empty());
        // OpenAI's headers are not Anthropic's.
        let openai = [("x-ratelimit-limit-requests", "5000")];
        assert!(super::read(&lookup(&openai), now).is_empty());
    }
}
