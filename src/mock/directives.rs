//! Prompt directives for deterministic per-row faults: `[[mock:status=NNN]]` answers NNN
//! every time; `[[mock:fail-times=K:status=NNN]]` answers NNN to the first K requests carrying
//! that exact prompt and succeeds afterwards. Optional keys shape the error:
//! `code=insufficient_quota` makes it OpenAI's out-of-quota 429 (status 429 is then implied);
//! `retry-after=S`, `retry-after-ms=MS` or `retry-after-date=S` give it a retry hint in that one
//! header form only (seconds, milliseconds, or an HTTP date S seconds ahead);
//! `retry-after-date-ago=S` sends an HTTP date S seconds in the past (a server whose clock is behind). This module parses
//! directives and remembers the fail-times counts; the answer itself is built by `service`.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use hyper::StatusCode;

const OPEN: &str = "[[mock:";
const CLOSE: &str = "]]";

/// A parsed directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Directive {
    pub status: StatusCode,
    /// `Some(k)`: only the first k requests with this prompt fail.
    pub fail_times: Option<u64>,
    /// `code=insufficient_quota`: OpenAI's "You exceeded your current quota" 429.
    pub quota: bool,
    /// A retry hint in one header form, instead of the server's --retry-after.
    pub retry_after: Option<RetryHint>,
}

/// A retry hint and the one header form it is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryHint {
    /// `retry-after: S`
    Seconds(u64),
    /// `retry-after-ms: MS`
    Millis(u64),
    /// `retry-after: <HTTP date at least S seconds from now>`
    Date(u64),
    /// `retry-after: <HTTP date S seconds ago>`
    DateAgo(u64),
}

/// The first directive in `prompt`: `None` if there is none, `Err` (a message for a 400)
/// if it cannot be understood. Costs one substring search for prompts without directives.
pub(crate) fn find(prompt: &str) -> Option<Result<Directive, String>> {
    let start = prompt.find(OPEN)?;
    let rest = &prompt[start + OPEN.len()..];
    let Some(end) = rest.find(CLOSE) else {
        return Some(Err(format!(
            "mock: unterminated directive {OPEN}...: expected `{CLOSE}`"
        )));
    };
    let body = &rest[..end];
    Some(
        parse(body)
            .map_err(|why| format!("mock: could not understand the directive {OPEN}{body}{CLOSE}: {why}")),
    )
}

fn parse(body: &str) -> Result<Directive, String> {
    let (mut status, mut fail_times, mut quota, mut retry_after) = (None, None, false, None);
    for pair in body.split(':') {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("`{pair}` is not key=value"))?;
        let number = |what: &str| {
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("{what} `{value}` is not a number"))
        };
        match key.trim() {
            "status" => {
                let code: u16 = value
                    .trim()
                    .parse()
                    .map_err(|_| format!("status `{value}` is not a number"))?;
                if !(400..=599).contains(&code) {
                    return Err(format!("status {code} is not an error status (400..=599)"));
                }
                status = StatusCode::from_u16(code).ok();
            }
            "fail-times" => {
                let k = value
                    .trim()
                    .parse()
                    .map_err(|_| format!("fail-times `{value}` is not a number"))?;
                fail_times = Some(k);
            }
            "code" => match value.trim() {
                "insufficient_quota" => quota = true,
                other => {
                    return Err(format!(
                        "code `{other}` is not known (expected insufficient_quota)"
                    ))
                }
            },
            "retry-after" => retry_after = Some(RetryHint::Seconds(number("retry-after")?)),
            "retry-after-ms" => retry_after = Some(RetryHint::Millis(number("retry-after-ms")?)),
            "retry-after-date" => retry_after = Some(RetryHint::Date(number("retry-after-date")?)),
            "retry-after-date-ago" => retry_after = Some(RetryHint::DateAgo(number("retry-after-date-ago")?)),
            other => {
                return Err(format!(
                    "unknown key `{other}` (expected status, fail-times, code, retry-after, \
                     retry-after-ms, retry-after-date or retry-after-date-ago)"
                ))
            }
        }
    }
    let status = match (status, quota) {
        (None, true) => StatusCode::TOO_MANY_REQUESTS,
        (Some(s), true) if s != StatusCode::TOO_MANY_REQUESTS => {
            return Err("code=insufficient_quota comes with status 429".into())
        }
        (Some(s), _) => s,
        (None, false) => return Err("missing status=NNN".into()),
    };
    Ok(Directive {
        status,
        fail_times,
        quota,
        retry_after,
    })
}

/// How many requests each fail-times prompt has had. Only prompts carrying a fail-times
/// directive are stored, so the map stays as small as the test that uses it.
#[derive(Default)]
pub(crate) struct FailTimes {
    // A std Mutex: the critical section is one map update, never across an await, and only
    // requests whose prompt carries a directive get here.
    seen: Mutex<HashMap<Box<str>, u64>>,
}

impl FailTimes {
    /// Counts this request and says whether it is among the first `times` for `prompt`.
    pub fn should_fail(&self, prompt: &str, times: u64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let count = match seen.get_mut(prompt) {
            Some(count) => count,
            None => seen.entry(prompt.into()).or_insert(0),
        };
        *count += 1;
        *count <= times
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_without_directives_are_left_alone() {
        assert_eq!(find("just a question [[not mock]]"), None);
    }

    #[test]
    fn status_directive_is_found_anywhere_in_the_prompt() {
        let d = find("row 7 [[mock:status=503]] please").unwrap().unwrap();
        assert_eq!(
            d,
            Directive {
                status: StatusCode::SERVICE_UNAVAILABLE,
                fail_times: None,
                quota: false,
                retry_after: None,
            }
        );
    }

    #[test]
    fn fail_times_directive_has_both_keys() {
        let d = find("[[mock:fail-times=2:status=429]]").unwrap().unwrap();
        assert_eq!(
            d,
            Directive {
                status: StatusCode::TOO_MANY_REQUESTS,
                fail_times: Some(2),
                quota: false,
                retry_after: None,
            }
        );
    }

    #[test]
    fn quota_and_retry_hint_keys_shape_the_error() {
        let d = find("[[mock:fail-times=1:code=insufficient_quota]]")
            .unwrap()
            .unwrap();
        assert_eq!((d.status, d.quota), (StatusCode::TOO_MANY_REQUESTS, true));
        let hint = |text: &str| find(text).unwrap().unwrap().retry_after;
        assert_eq!(
            hint("[[mock:status=429:retry-after=2]]"),
            Some(RetryHint::Seconds(2))
        );
        assert_eq!(
            hint("[[mock:status=503:retry-after-ms=1500]]"),
            Some(RetryHint::Millis(1500))
        );
        assert_eq!(
            hint("[[mock:status=429:retry-after-date=3]]"),
            Some(RetryHint::Date(3))
        );
        assert_eq!(
            hint("[[mock:status=429:retry-after-date-ago=30]]"),
            Some(RetryHint::DateAgo(30))
        );
        assert!(find("[[mock:status=500:code=insufficient_quota]]")
            .unwrap()
            .unwrap_err()
            .contains("comes with status 429"));
        assert!(find("[[mock:status=429:code=nope]]")
            .unwrap()
            .unwrap_err()
            .contains("not known"));
        assert!(find("[[mock:status=429:retry-after-ms=soon]]")
            .unwrap()
            .unwrap_err()
            .contains("not a number"));
    }

    #[test]
    fn broken_directives_explain_themselves() {
        assert!(find("[[mock:status=200]]")
            .unwrap()
            .unwrap_err()
            .contains("400..=599"));
        assert!(find("[[mock:colour=red]]")
            .unwrap()
            .unwrap_err()
            .contains("unknown key"));
        assert!(find("[[mock:fail-times=2]]")
            .unwrap()
            .unwrap_err()
            .contains("missing status"));
        assert!(find("[[mock:status=500").unwrap().is_err());
    }

    #[test]
    fn fail_times_fails_the_first_k_per_prompt_then_succeeds() {
        let memory = FailTimes::default();
        let fails: Vec<bool> = (0..4).map(|_| memory.should_fail("a", 2)).collect();
        assert_eq!(fails, [true, true, false, false]);
        assert!(memory.should_fail("b", 1), "each prompt has its own count");
    }
}
