//! Provider-style rate limits (--rpm, --tpm): two token buckets that refill continuously
//! (capacity = the per-minute limit, refilled at limit/60 per second), the 429 they produce,
//! and OpenAI's `x-ratelimit-*` headers, including its Go-style durations (`1s`, `6m0s`,
//! `12ms`). Which requests pass through here, and in what order, is `service`'s business.
//!
//! A hand-rolled bucket rather than `governor`: OpenAI's headers need the remaining capacity
//! and the time until the bucket is full, and the two limits must be checked together (a
//! request refused for tokens must not spend a request), which is one small critical section.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use hyper::header::{HeaderMap, HeaderValue};
use hyper::StatusCode;

use super::errors::ApiError;

/// One limit's state at a moment, as the `x-ratelimit-*` headers report it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Gauge {
    pub limit: u64,
    pub remaining: u64,
    /// Time until the bucket is full again.
    pub reset: Duration,
}

/// Both limits at a moment; `None` for a limit that is not configured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Snapshot {
    pub requests: Option<Gauge>,
    pub tokens: Option<Gauge>,
}

/// Why a request was refused.
#[derive(Debug)]
pub(crate) struct Denied {
    pub tokens: bool,
    /// `None` when the request alone exceeds the limit and can never pass.
    pub wait: Option<Duration>,
    pub requested: u64,
    /// Both limits at refusal time; the refusing one is always present.
    pub snapshot: Snapshot,
}

struct Bucket {
    limit: u64,
    level: f64,
}

impl Bucket {
    fn new(limit: u64) -> Self {
        Bucket {
            limit,
            level: limit as f64,
        }
    }
    fn per_sec(&self) -> f64 {
        self.limit as f64 / 60.0
    }
    fn refill(&mut self, elapsed: Duration) {
        self.level = (self.level + elapsed.as_secs_f64() * self.per_sec()).min(self.limit as f64);
    }
    /// How long until `cost` fits; zero if it fits now, `None` if it never will.
    fn wait_for(&self, cost: u64) -> Option<Duration> {
        if cost > self.limit {
            return None;
        }
        let missing = cost as f64 - self.level;
        Some(if missing <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(missing / self.per_sec())
        })
    }
    fn gauge(&self) -> Gauge {
        let empty = self.limit as f64 - self.level;
        Gauge {
            limit: self.limit,
            remaining: self.level.floor() as u64,
            reset: Duration::from_secs_f64(empty.max(0.0) / self.per_sec()),
        }
    }
}

struct Buckets {
    last: Instant,
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
}

impl Buckets {
    fn refill(&mut self) {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        for bucket in [&mut self.requests, &mut self.tokens].into_iter().flatten() {
            bucket.refill(elapsed);
        }
    }
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            requests: self.requests.as_ref().map(Bucket::gauge),
            tokens: self.tokens.as_ref().map(Bucket::gauge),
        }
    }
}

/// The --rpm/--tpm limiter shared by all connections.
pub(crate) struct Limits {
    // A std Mutex, not tokio's: the critical section is a few float operations and never
    // awaits. It is only taken when --rpm or --tpm is set, never on the default fast path.
    buckets: Mutex<Buckets>,
}

impl Limits {
    /// `None` when neither limit is set, so callers skip all limit work.
    pub fn new(rpm: Option<u64>, tpm: Option<u64>) -> Option<Self> {
        if rpm.is_none() && tpm.is_none() {
            return None;
        }
        let buckets = Buckets {
            last: Instant::now(),
            requests: rpm.map(Bucket::new),
            tokens: tpm.map(Bucket::new),
        };
        Some(Limits {
            buckets: Mutex::new(buckets),
        })
    }

    /// Spends one request and `tokens` tokens, or neither if either limit refuses.
    pub fn acquire(&self, tokens: u64) -> Result<Snapshot, Denied> {
        let mut b = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        b.refill();
        let checks = [(false, b.requests.as_ref(), 1), (true, b.tokens.as_ref(), tokens)];
        for (is_tokens, bucket, cost) in checks {
            let Some(bucket) = bucket else { continue };
            let wait = bucket.wait_for(cost);
            if wait != Some(Duration::ZERO) {
                return Err(Denied {
                    tokens: is_tokens,
                    wait,
                    requested: cost,
                    snapshot: b.snapshot(),
                });
            }
        }
        if let Some(bucket) = b.requests.as_mut() {
            bucket.level -= 1.0;
        }
        if let Some(bucket) = b.tokens.as_mut() {
            bucket.level -= tokens as f64;
        }
        Ok(b.snapshot())
    }

    /// The current state without spending anything (for answers that bypass the limiter).
    pub fn peek(&self) -> Snapshot {
        let mut b = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        b.refill();
        b.snapshot()
    }
}

impl Denied {
    /// The 429 OpenAI sends, worded like its messages so clients that parse them still work.
    pub fn to_error(&self) -> ApiError {
        let (unit, short) = if self.tokens {
            ("tokens", "TPM")
        } else {
            ("requests", "RPM")
        };
        let gauge = if self.tokens {
            self.snapshot.tokens
        } else {
            self.snapshot.requests
        };
        let (limit, remaining) = gauge.map_or((0, 0), |g| (g.limit, g.remaining));
        let mut error = match self.wait {
            Some(wait) => ApiError::for_status(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Rate limit reached for mock-server on {unit} per min ({short}): Limit {limit}, \
                     Used {}, Requested {}. Please try again in {}.",
                    limit - remaining.min(limit),
                    self.requested,
                    go_duration(wait)
                ),
            ),
            None => ApiError::for_status(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Request too large for mock-server on {unit} per min ({short}): Limit {limit}, \
                     Requested {}. The input or output tokens must be reduced in order to run successfully.",
                    self.requested
                ),
            ),
        };
        error.kind = unit;
        error.retry_after = self.wait;
        error
    }
}

const REQUEST_HEADERS: [&str; 3] = [
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
];
const TOKEN_HEADERS: [&str; 3] = [
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
];

impl Snapshot {
    /// Adds the `x-ratelimit-*` headers of each configured limit.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for (gauge, names) in [(self.requests, &REQUEST_HEADERS), (self.tokens, &TOKEN_HEADERS)] {
            let Some(gauge) = gauge else { continue };
            let [limit, remaining, reset] = *names;
            headers.insert(limit, HeaderValue::from(gauge.limit));
            headers.insert(remaining, HeaderValue::from(gauge.remaining));
            // A Go duration is ASCII, so this cannot fail; skipping the header would be the fallback.
            if let Ok(value) = HeaderValue::from_str(&go_duration(gauge.reset)) {
                headers.insert(reset, value);
            }
        }
    }
}

/// Formats like Go's `time.Duration.String()`, at millisecond precision (rounded up so that a
/// positive wait never prints as `0s`): `0s`, `12ms`, `1s`, `1.5s`, `6m0s`, `1h0m0s`.
pub(crate) fn go_duration(d: Duration) -> String {
    let ms = u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0s".to_string();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let secs = if frac == 0 {
        s.to_string()
    } else {
        let digits = format!("{frac:03}");
        format!("{s}.{}", digits.trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => format!("{secs}s"),
        (0, m) => format!("{m}m{secs}s"),
        (h, m) => format!("{h}h{m}m{secs}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_match_openais_headers() {
        let cases = [
            (0, "0s"),
            (12, "12ms"),
            (1000, "1s"),
            (1500, "1.5s"),
            (17_280, "17.28s"),
            (360_000, "6m0s"),
            (3_600_000, "1h0m0s"),
        ];
        for (ms, text) in cases {
            assert_eq!(go_duration(Duration::from_millis(ms)), text);
        }
        assert_eq!(go_duration(Duration::from_micros(1)), "1ms");
    }

    #[test]
    fn requests_are_refused_once_the_minute_is_spent() {
        let limits = Limits::new(Some(2), None).unwrap();
        assert_eq!(limits.acquire(0).unwrap().requests.unwrap().remaining, 1);
        assert_eq!(limits.acquire(0).unwrap().requests.unwrap().remaining, 0);
        let denied = limits.acquire(0).unwrap_err();
        assert!(!denied.tokens);
        // One request refills in 30 s at 2 per minute.
        let wait = denied.wait.unwrap();
        assert!(
            wait > Duration::from_secs(29) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert_eq!(denied.to_error().kind, "requests");
    }

    #[test]
    fn a_token_refusal_does_not_spend_a_request() {
        let limits = Limits::new(Some(10), Some(100)).unwrap();
        limits.acquire(90).unwrap();
        let denied = limits.acquire(20).unwrap_err();
        assert!(denied.tokens);
        assert_eq!(denied.snapshot.requests.unwrap().remaining, 9);
        assert_eq!(denied.to_error().kind, "tokens");
    }

    #[test]
    fn a_request_larger_than_the_limit_never_fits() {
        let limits = Limits::new(None, Some(100)).unwrap();
        let denied = limits.acquire(101).unwrap_err();
        assert_eq!(denied.wait, None);
        assert!(denied.to_error().message.starts_with("Request too large"));
    }

    #[test]
    fn headers_report_each_configured_limit() {
        let limits = Limits::new(Some(60), None).unwrap();
        let mut headers = HeaderMap::new();
        limits.acquire(5).unwrap().apply(&mut headers);
        assert_eq!(headers["x-ratelimit-limit-requests"], "60");
        assert_eq!(headers["x-ratelimit-remaining-requests"], "59");
        assert!(headers["x-ratelimit-reset-requests"]
            .to_str()
            .unwrap()
            .ends_with("s"));
        assert!(!headers.contains_key("x-ratelimit-limit-tokens"));
    }
}
