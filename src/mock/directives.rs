//! Prompt directives for deterministic per-row faults: `[[mock:status=NNN]]` answers NNN
//! every time; `[[mock:fail-times=K:status=NNN]]` answers NNN to the first K requests carrying
//! that exact prompt and succeeds afterwards. Optional keys shape the error:
//! `code=insufficient_quota` makes it OpenAI's out-of-quota 429 (status 429 is then implied);
//! `retry-after=S`, `retry-after-ms=MS` or `retry-after-date=S` give it a retry hint in that one
//! header form only (seconds, milliseconds, or an HTTP date S seconds ahead);
//! `retry-after-date-ago=S` sends an HTTP date S seconds in the past (a server whose clock is
//! behind).
//! Instead of a status, a directive can shape a *successful* answer: `reply=truncated` (a 200
//! whose JSON is cut in half), `reply=lone-surrogate` (the text starts with the escape `\ud800`),
//! `reply=not-utf8` (the text starts with the byte 0xFF), `reply=no-choices` (`"choices":[]`),
//! `usage=TEXT` (`usage.prompt_tokens` is the JSON number TEXT as written, e.g. `-1`, `1.5`,
//! `9223372036854775807`), `size=BYTES` (the text is padded to at least BYTES bytes). fail-times
//! works with these as with a status. This module parses directives and remembers the
//! fail-times counts; the answer itself is built by `service` (shapes: `shape`).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use hyper::StatusCode;

use super::reply::{Reply, Usage};

const OPEN: &str = "[[mock:";
const CLOSE: &str = "]]";

/// A parsed directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Directive {
    /// The error status to answer, or [`Fault::Shape`]: a 200 of that shape.
    pub fault: Fault,
    /// `Some(k)`: only the first k requests with this prompt fail.
    pub fail_times: Option<u64>,
    /// `code=insufficient_quota`: OpenAI's "You exceeded your current quota" 429.
    pub quota: bool,
    /// A retry hint in one header form, instead of the server's --retry-after.
    pub retry_after: Option<RetryHint>,
}

/// What a directive makes of the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    Status(StatusCode),
    Shape(Shape),
}

/// A 200 answer that is not the normal one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `reply=truncated`: the first half of the body.
    Truncated,
    /// `reply=lone-surrogate`: the text begins with `\ud800`, valid JSON but no Unicode string.
    LoneSurrogate,
    /// `reply=not-utf8`: the text begins with the byte 0xFF.
    NotUtf8,
    /// `reply=no-choices`: `"choices":[]`.
    NoChoices,
    /// `usage=TEXT`: `usage.prompt_tokens` is this JSON number text.
    PromptTokens(Box<str>),
    /// `size=BYTES`: the text padded with `x` to at least this many bytes.
    Size(u64),
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
    let mut shape = None;
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
            "reply" => {
                shape = Some(match value.trim() {
                    "truncated" => Shape::Truncated,
                    "lone-surrogate" => Shape::LoneSurrogate,
                    "not-utf8" => Shape::NotUtf8,
                    "no-choices" => Shape::NoChoices,
                    other => {
                        return Err(format!(
                            "reply `{other}` is not known (expected truncated, lone-surrogate, \
                             not-utf8 or no-choices)"
                        ))
                    }
                })
            }
            "usage" => {
                let text = value.trim();
                if serde_json::from_str::<serde_json::Number>(text).is_err() {
                    return Err(format!("usage `{value}` is not a JSON number"));
                }
                shape = Some(Shape::PromptTokens(text.into()));
            }
            "size" => shape = Some(Shape::Size(number("size")?)),
            "retry-after" => retry_after = Some(RetryHint::Seconds(number("retry-after")?)),
            "retry-after-ms" => retry_after = Some(RetryHint::Millis(number("retry-after-ms")?)),
            "retry-after-date" => retry_after = Some(RetryHint::Date(number("retry-after-date")?)),
            "retry-after-date-ago" => retry_after = Some(RetryHint::DateAgo(number("retry-after-date-ago")?)),
            other => {
                return Err(format!(
                    "unknown key `{other}` (expected status, fail-times, code, retry-after, \
                     retry-after-ms, retry-after-date, retry-after-date-ago, reply, usage or size)"
                ))
            }
        }
    }
    if let Some(shape) = shape {
        if status.is_some() || quota || retry_after.is_some() {
            return Err(
                "reply=, usage= and size= shape a 200 answer: they take no status, code or retry hint".into(),
            );
        }
        return Ok(Directive {
            fault: Fault::Shape(shape),
            fail_times,
            quota: false,
            retry_after: None,
        });
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
        fault: Fault::Status(status),
        fail_times,
        quota,
        retry_after,
    })
}

/// A shaped 200: its body, and its usage when the body is a well-formed completion.
pub(crate) struct Shaped {
    pub body: Bytes,
    pub usage: Option<Usage>,
}

/// Where the text of a mock reply begins, in chat and legacy bodies alike.
const TEXT_START: &[u8] = b"Mock reply:";

/// Makes `normal` (the answer the prompt would get) into `shape`. `prompt_tokens` is what
/// `normal` reports as `usage.prompt_tokens`.
pub(crate) fn shape(shape: &Shape, normal: Reply, prompt_tokens: u64) -> Shaped {
    let body = normal.body;
    let broken = |body: Vec<u8>| Shaped {
        body: Bytes::from(body),
        usage: None,
    };
    match shape {
        Shape::Truncated => broken(body.slice(..body.len() / 2).to_vec()),
        Shape::LoneSurrogate => broken(insert_before_text(&body, br"\ud800")),
        Shape::NotUtf8 => broken(insert_before_text(&body, b"\xff")),
        Shape::NoChoices => {
            let mut json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            json["choices"] = serde_json::Value::Array(Vec::new());
            broken(serde_json::to_vec(&json).unwrap_or_default())
        }
        Shape::PromptTokens(text) => {
            let from = format!("\"prompt_tokens\":{prompt_tokens}");
            let to = format!("\"prompt_tokens\":{text}");
            let text = String::from_utf8_lossy(&body).replacen(&from, &to, 1);
            broken(text.into_bytes())
        }
        Shape::Size(bytes) => {
            let pad = usize::try_from(*bytes)
                .unwrap_or(usize::MAX)
                .saturating_sub(body.len());
            let body = insert_before_text(&body, &vec![b'x'; pad]);
            Shaped {
                body: Bytes::from(body),
                usage: Some(normal.usage),
            }
        }
    }
}

/// `body` with `insert` placed where the reply's text begins (at the end if it has none).
fn insert_before_text(body: &[u8], insert: &[u8]) -> Vec<u8> {
    let at = memchr::memmem::find(body, TEXT_START).unwrap_or(body.len());
    let mut out = Vec::with_capacity(body.len() + insert.len());
    out.extend_from_slice(&body[..at]);
    out.extend_from_slice(insert);
    out.extend_from_slice(&body[at..]);
    out
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
                fault: Fault::Status(StatusCode::SERVICE_UNAVAILABLE),
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
                fault: Fault::Status(StatusCode::TOO_MANY_REQUESTS),
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
        assert_eq!(
            (d.fault, d.quota),
            (Fault::Status(StatusCode::TOO_MANY_REQUESTS), true)
        );
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
    fn shape_directives_describe_a_200() {
        let fault = |text: &str| find(text).unwrap().map(|d| d.fault);
        assert_eq!(
            fault("[[mock:reply=lone-surrogate]]"),
            Ok(Fault::Shape(Shape::LoneSurrogate))
        );
        assert_eq!(
            fault("[[mock:usage=-1]]"),
            Ok(Fault::Shape(Shape::PromptTokens("-1".into())))
        );
        assert_eq!(
            fault("[[mock:size=40000000]]"),
            Ok(Fault::Shape(Shape::Size(40_000_000)))
        );
        let once = find("[[mock:fail-times=1:reply=not-utf8]]").unwrap().unwrap();
        assert_eq!(
            (once.fault, once.fail_times),
            (Fault::Shape(Shape::NotUtf8), Some(1))
        );
        assert!(fault("[[mock:usage=lots]]")
            .unwrap_err()
            .contains("not a JSON number"));
        assert!(fault("[[mock:reply=odd]]").unwrap_err().contains("not known"));
        assert!(fault("[[mock:reply=truncated:status=500]]")
            .unwrap_err()
            .contains("take no status"));
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
