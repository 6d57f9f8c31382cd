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
//! prompt), together in one directive.
//! For structured output (`response_format`, `text.format`, `output_config.format`, a forced
//! tool) four more `reply=` shapes make a well-formed answer whose *text* is wrong, in chat, the
//! Responses API and Anthropic's Messages alike, live or in a batch line:
//! `reply=invalid-json` (prose and a fragment: `Sure! Here is the JSON: {"title": `; a forced
//! tool gets a text block instead of its `tool_use`), `reply=schema-break` (valid JSON that breaks
//! the schema: the first number or integer property written as a string, `"price": "12"`, else the
//! first required property left out; `{}` without a schema), `reply=cut` (the text stops in the
//! middle on the token limit: chat `finish_reason` `length`, Responses `incomplete` with reason
//! `max_output_tokens`, Messages `stop_reason` `max_tokens`; unlike `reply=truncated`, the body
//! itself is whole) and `reply=refusal` (chat `content` null and `refusal` set, Responses a
//! `refusal` content part, Messages `stop_reason` `refusal`). Without a format they spoil the
//! plain text the same way. fail-times works with all these as with a status. This module parses
//! directives and remembers the fail-times counts; the answer itself is built by `service`
//! (`shapes` for chat, legacy completions, /v1/responses and /v1/embeddings, `messages` for
//! /v1/messages).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use hyper::StatusCode;

use super::structured::Spoiled;

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
    /// `reply=invalid-json`, `reply=schema-break`, `reply=cut`, `reply=refusal`: a well-formed
    /// answer whose text is not what the request asked for (see `structured`).
    Spoiled(Spoiled),
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
        "invalid-json" => Shape::Spoiled(Spoiled::InvalidJson),
        "schema-break" => Shape::Spoiled(Spoiled::SchemaBreak),
        "cut" => Shape::Spoiled(Spoiled::Cut),
        "refusal" => Shape::Spoiled(Spoiled::Refusal),
        other => {
            return Err(format!(
                "reply `{other}` is not known (expected truncated, lone-surrogate, \
                 not-utf8, no-choices, content-filter, invalid-json, schema-break, cut or refusal)"
            ))
        }
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
#[path = "tests_directives.rs"]
mod tests;
