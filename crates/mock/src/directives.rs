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
//! `reply=content-filter` (`finish_reason` `content_filter`),
//! `usage=TEXT` (`usage.prompt_tokens` is the JSON number TEXT as written, e.g. `-1`, `1.5`,
//! `9223372036854775807`), `size=BYTES` (the text is padded to at least BYTES bytes). The usage
//! details a provider bills by are asked for with any of `cached=N` (`prompt_tokens_details.
//! cached_tokens`), `cache-creation=N` (`prompt_tokens_details.cache_creation_tokens`),
//! `reasoning=N` (`completion_tokens_details.reasoning_tokens`, added to `completion_tokens` as a
//! reasoning model's are) and `prompt-tokens=N` (`usage.prompt_tokens`, e.g. a long-context
//! prompt), together in one directive. fail-times works with these as with a status. This module
//! parses directives and remembers the fail-times counts; the answer itself is built by `service`
//! (shapes: `shape` for chat and legacy completions, `shapes` for /v1/responses and /v1/embeddings).

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
    /// `reply=no-choices`: `"choices":[]` (`"output":[]` from /v1/responses, `"data":[]` from
    /// /v1/embeddings).
    NoChoices,
    /// `reply=content-filter`: a normal answer stopped by the content filter (`finish_reason`
    /// `content_filter`; from /v1/responses, `incomplete` with that reason).
    ContentFilter,
    /// `usage=TEXT`: `usage.prompt_tokens` is this JSON number text.
    PromptTokens(Box<str>),
    /// `size=BYTES`: the text padded with `x` to at least this many bytes.
    Size(u64),
    /// `cached=`, `cache-creation=`, `reasoning=`, `prompt-tokens=`: a normal answer whose
    /// usage reports these.
    Details(Details),
}

/// The usage details a directive asks an answer to report (`None`: as normal, or not at all).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Details {
    pub prompt_tokens: Option<u64>,
    pub cached: Option<u64>,
    pub cache_creation: Option<u64>,
    pub reasoning: Option<u64>,
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
    let mut parsed = Parsed::default();
    for pair in body.split(':') {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("`{pair}` is not key=value"))?;
        parsed.take(key.trim(), value)?;
    }
    parsed.finish()
}

/// A directive's pairs as read so far.
#[derive(Default)]
struct Parsed {
    status: Option<StatusCode>,
    fail_times: Option<u64>,
    quota: bool,
    retry_after: Option<RetryHint>,
    shape: Option<Shape>,
    details: Option<Details>,
}

impl Parsed {
    /// Takes one `key=value` pair.
    fn take(&mut self, key: &str, value: &str) -> Result<(), String> {
        let number = |what: &str| {
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("{what} `{value}` is not a number"))
        };
        match key {
            "status" => self.status = Some(error_status(value)?),
            "fail-times" => self.fail_times = Some(number("fail-times")?),
            "code" => match value.trim() {
                "insufficient_quota" => self.quota = true,
                other => {
                    return Err(format!(
                        "code `{other}` is not known (expected insufficient_quota)"
                    ))
                }
            },
            "reply" => self.shape = Some(reply(value)?),
            "usage" => {
                let text = value.trim();
                if serde_json::from_str::<serde_json::Number>(text).is_err() {
                    return Err(format!("usage `{value}` is not a JSON number"));
                }
                self.shape = Some(Shape::PromptTokens(text.into()));
            }
            "size" => self.shape = Some(Shape::Size(number("size")?)),
            "cached" => self.detail().cached = Some(number("cached")?),
            "cache-creation" => self.detail().cache_creation = Some(number("cache-creation")?),
            "reasoning" => self.detail().reasoning = Some(number("reasoning")?),
            "prompt-tokens" => self.detail().prompt_tokens = Some(number("prompt-tokens")?),
            "retry-after" => self.retry_after = Some(RetryHint::Seconds(number("retry-after")?)),
            "retry-after-ms" => self.retry_after = Some(RetryHint::Millis(number("retry-after-ms")?)),
            "retry-after-date" => self.retry_after = Some(RetryHint::Date(number("retry-after-date")?)),
            "retry-after-date-ago" => {
                self.retry_after = Some(RetryHint::DateAgo(number("retry-after-date-ago")?))
            }
            other => {
                return Err(format!(
                    "unknown key `{other}` (expected status, fail-times, code, retry-after, \
                     retry-after-ms, retry-after-date, retry-after-date-ago, reply, usage, size, cached, \
                     cache-creation, reasoning or prompt-tokens)"
                ))
            }
        }
        Ok(())
    }

    fn detail(&mut self) -> &mut Details {
        self.details.get_or_insert_with(Details::default)
    }

    /// The directive the pairs make, or why they do not make one.
    fn finish(self) -> Result<Directive, String> {
        let mut shape = self.shape;
        if let Some(details) = self.details {
            if shape.is_some() {
                return Err(
                    "cached=, cache-creation=, reasoning= and prompt-tokens= shape a normal answer: \
                     they take no reply=, usage= or size="
                        .into(),
                );
            }
            shape = Some(Shape::Details(details));
        }
        if let Some(shape) = shape {
            if self.status.is_some() || self.quota || self.retry_after.is_some() {
                return Err(
                    "reply=, usage=, size= and the usage details shape a 200 answer: they take no status, \
                     code or retry hint"
                        .into(),
                );
            }
            return Ok(Directive {
                fault: Fault::Shape(shape),
                fail_times: self.fail_times,
                quota: false,
                retry_after: None,
            });
        }
        let status = match (self.status, self.quota) {
            (None, true) => StatusCode::TOO_MANY_REQUESTS,
            (Some(s), true) if s != StatusCode::TOO_MANY_REQUESTS => {
                return Err("code=insufficient_quota comes with status 429".into())
            }
            (Some(s), _) => s,
            (None, false) => return Err("missing status=NNN".into()),
        };
        Ok(Directive {
            fault: Fault::Status(status),
            fail_times: self.fail_times,
            quota: self.quota,
            retry_after: self.retry_after,
        })
    }
}

/// `status=NNN`: an error status, 400..=599.
fn error_status(value: &str) -> Result<StatusCode, String> {
    let code: u16 = value
        .trim()
        .parse()
        .map_err(|_| format!("status `{value}` is not a number"))?;
    if !(400..=599).contains(&code) {
        return Err(format!("status {code} is not an error status (400..=599)"));
    }
    StatusCode::from_u16(code).map_err(|e| format!("status {code}: {e}"))
}

/// `reply=KIND`: a 200 whose body is shaped wrong on purpose.
fn reply(value: &str) -> Result<Shape, String> {
    Ok(match value.trim() {
        "truncated" => Shape::Truncated,
        "lone-surrogate" => Shape::LoneSurrogate,
        "not-utf8" => Shape::NotUtf8,
        "no-choices" => Shape::NoChoices,
        "content-filter" => Shape::ContentFilter,
        other => {
            return Err(format!(
                "reply `{other}` is not known (expected truncated, lone-surrogate, \
                 not-utf8, no-choices or content-filter)"
            ))
        }
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
        Shape::ContentFilter => {
            let mut json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            if let Some(choices) = json["choices"].as_array_mut() {
                for choice in choices {
                    choice["finish_reason"] = "content_filter".into();
                }
            }
            Shaped {
                body: Bytes::from(serde_json::to_vec(&json).unwrap_or_default()),
                usage: Some(normal.usage),
            }
        }
        Shape::PromptTokens(text) => {
            let from = format!("\"prompt_tokens\":{prompt_tokens}");
            let to = format!("\"prompt_tokens\":{text}");
            let text = String::from_utf8_lossy(&body).replacen(&from, &to, 1);
            broken(text.into_bytes())
        }
        Shape::Details(d) => with_details(&body, normal.usage, d),
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

/// `body` (a normal answer reporting `usage`) with the usage `d` asks for: the prompt tokens
/// replaced, the reasoning tokens added to the completion tokens, and the details reported.
fn with_details(body: &[u8], usage: Usage, d: &Details) -> Shaped {
    let prompt_tokens = d.prompt_tokens.unwrap_or(usage.prompt_tokens);
    let completion_tokens = usage.completion_tokens.saturating_add(d.reasoning.unwrap_or(0));
    let usage = Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: prompt_tokens.saturating_add(completion_tokens),
    };
    let mut json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let mut prompt_details = serde_json::Map::new();
    if let Some(n) = d.cached {
        prompt_details.insert("cached_tokens".into(), n.into());
    }
    if let Some(n) = d.cache_creation {
        prompt_details.insert("cache_creation_tokens".into(), n.into());
    }
    let u = &mut json["usage"];
    u["prompt_tokens"] = usage.prompt_tokens.into();
    u["completion_tokens"] = usage.completion_tokens.into();
    u["total_tokens"] = usage.total_tokens.into();
    if !prompt_details.is_empty() {
        u["prompt_tokens_details"] = prompt_details.into();
    }
    if let Some(n) = d.reasoning {
        u["completion_tokens_details"] = serde_json::json!({ "reasoning_tokens": n });
    }
    Shaped {
        body: Bytes::from(serde_json::to_vec(&json).unwrap_or_default()),
        usage: Some(usage),
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
#[path = "tests_directives.rs"]
mod tests;
