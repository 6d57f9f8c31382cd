//! The `x-ratelimit-*` headers a provider sends with its answers, read into numbers: what the
//! OpenAI families' `ApiFamily::rate_headers` reads (another family may read its own headers).
//!
//! OpenAI's shape (`../shared/openai-openapi.yaml` has no schema for headers; the platform's "rate
//! limits" guide defines them): `x-ratelimit-limit-requests` and `x-ratelimit-limit-tokens` are the
//! per-minute limits, `x-ratelimit-remaining-*` what is left of them now, and
//! `x-ratelimit-reset-*` how long until they are full again, as a Go duration (`1s`, `6m0s`,
//! `12ms`, `1h2m3.5s`). Any of them may be missing from any answer. What to do with the values is
//! the limiter's business (`limits.rs`); this module only reads them, and never fails: a value it
//! cannot read is treated as absent.

use std::time::Duration;

/// One limit as an answer reported it; `None` where the header was absent or unreadable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gauge {
    /// The limit per minute.
    pub limit: Option<u64>,
    /// What is left of it now.
    pub remaining: Option<u64>,
    /// Time until it is full again.
    pub reset: Option<Duration>,
}

/// Both limits as an answer reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateHeaders {
    pub requests: Gauge,
    pub tokens: Gauge,
}

impl RateHeaders {
    /// Reads the headers through `header` (a case-insensitive lookup by name).
    pub fn read<'a>(header: impl Fn(&str) -> Option<&'a str>) -> RateHeaders {
        let gauge = |unit: &str| Gauge {
            limit: header(&format!("x-ratelimit-limit-{unit}")).and_then(parse_count),
            remaining: header(&format!("x-ratelimit-remaining-{unit}")).and_then(parse_count),
            reset: header(&format!("x-ratelimit-reset-{unit}")).and_then(parse_go_duration),
        };
        RateHeaders {
            requests: gauge("requests"),
            tokens: gauge("tokens"),
        }
    }

    /// No rate-limit header at all.
    pub fn is_empty(&self) -> bool {
        *self == RateHeaders::default()
    }
}

/// A count: a whole number, or a decimal one some proxies send (`149984.0`), rounded down.
fn parse_count(text: &str) -> Option<u64> {
    let text = text.trim();
    if let Ok(n) = text.parse::<u64>() {
        return Some(n);
    }
    let f = text.parse::<f64>().ok()?;
    (f.is_finite() && f >= 0.0 && f < u64::MAX as f64).then_some(f as u64)
}

/// Parses a Go duration (`time.Duration.String()`): a sequence of decimal numbers, each with a
/// unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), such as `1h2m3.5s`, `6m0s`, `12ms` or `0s`. A
/// bare number is read as seconds (some providers send `1` or `0.5`). Negative, empty or
/// malformed text gives `None`.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(secs) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let mut rest = text;
    let mut secs = 0.0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return None;
        }
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        secs += number * scale;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_of_every_shape_parse() {
        let ms = |n: u64| Some(Duration::from_millis(n));
        assert_eq!(parse_go_duration("1s"), ms(1000));
        assert_eq!(parse_go_duration("6m0s"), ms(360_000));
        assert_eq!(parse_go_duration("12ms"), ms(12));
        assert_eq!(parse_go_duration("1h2m3.5s"), ms(3_723_500));
        assert_eq!(parse_go_duration("0s"), ms(0));
        assert_eq!(parse_go_duration("17.28s"), ms(17_280));
        assert_eq!(parse_go_duration("2m59.56s"), ms(179_560));
        assert_eq!(parse_go_duration("1h0m0s"), ms(3_600_000));
        assert_eq!(parse_go_duration("1.5h"), ms(5_400_000));
        assert_eq!(parse_go_duration(" 250us "), Some(Duration::from_micros(250)));
        assert_eq!(parse_go_duration("250µs"), Some(Duration::from_micros(250)));
        assert_eq!(parse_go_duration("40ns"), Some(Duration::from_nanos(40)));
    }

    #[test]
    fn bare_numbers_are_seconds() {
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_go_duration("0.5"), Some(Duration::from_millis(500)));
    }

    #[test]
    fn malformed_durations_are_absent() {
        for bad in ["", "s", "1x", "-1s", "1s-2s", "1..5s", "m5", "1 s", "soon", "-3"] {
            assert_eq!(parse_go_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn headers_are_read_and_bad_values_ignored() {
        let headers = [
            ("x-ratelimit-limit-requests", "5000"),
            ("x-ratelimit-remaining-requests", "4999"),
            ("x-ratelimit-reset-requests", "12ms"),
            ("x-ratelimit-limit-tokens", "40000"),
            ("x-ratelimit-remaining-tokens", "39000.0"),
            ("x-ratelimit-reset-tokens", "in a while"),
        ];
        let read = RateHeaders::read(|name| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v));
        assert_eq!(
            read.requests,
            Gauge {
                limit: Some(5000),
                remaining: Some(4999),
                reset: Some(Duration::from_millis(12))
            }
        );
        assert_eq!(
            read.tokens,
            Gauge {
                limit: Some(40000),
                remaining: Some(39000),
                reset: None
            }
        );
        assert!(RateHeaders::read(|_| None).is_empty());
        assert!(!read.is_empty());
    }
}
