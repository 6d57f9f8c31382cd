//! Prompt directives for deterministic per-row faults: `[[mock:status=NNN]]` answers NNN
//! every time; `[[mock:fail-times=K:status=NNN]]` answers NNN to the first K requests carrying
//! that exact prompt and succeeds afterwards. This module parses directives and remembers the
//! fail-times counts; the answer itself is built by `service`.

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
    let (mut status, mut fail_times) = (None, None);
    for pair in body.split(':') {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("`{pair}` is not key=value"))?;
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
            other => return Err(format!("unknown key `{other}` (expected status or fail-times)")),
        }
    }
    let status = status.ok_or("missing status=NNN")?;
    Ok(Directive { status, fail_times })
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
                fail_times: None
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
                fail_times: Some(2)
            }
        );
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
