//! The answer a completion body gets once the request-level checks (the key, --fail-first,
//! the limits, random faults) are done or do not apply: its directives (`[[mock:…]]`), then the
//! family's normal reply. Shared by live requests (`service`) and batch lines (`batch_run`), so
//! a batch line is answered exactly as the same request sent live.

use std::time::Duration;

use hyper::StatusCode;

use super::directives::Fault as DirectiveFault;
use super::directives::{self, RetryHint};
use super::errors::{ApiError, RetryForm};
use super::family::{Endpoint, Parsed};
use super::reply::{Reply, Stamp};
use super::service::State;
use super::stats::Outcome;
use super::wire;

/// What a completion body gets once the request-level checks (auth, --fail-first, limits,
/// random faults) are done or do not apply: an error, or a reply with its usage.
pub(crate) enum Answered {
    Reply(Reply),
    /// A 200 a directive asked for that is not the normal answer (its usage is not counted
    /// unless the body is a well-formed completion).
    Shaped(super::shapes::Shaped),
    Error(Outcome, ApiError),
}

pub(crate) fn bad_body(bad: &wire::BadRequest) -> ApiError {
    ApiError::for_status(StatusCode::BAD_REQUEST, bad.message.clone()).with_param(bad.param)
}

/// A batch line's answer: exactly what a live request with this body gets from the same
/// server when no fault, limit or --fail-first gets in the way.
pub(crate) fn answer_body(state: &State, endpoint: Endpoint, body: &[u8], stamp: Stamp) -> Answered {
    match Parsed::parse(endpoint, body) {
        Ok(parsed) => respond(state, &parsed, stamp),
        Err(bad) => Answered::Error(Outcome::BadRequest, bad_body(&bad)),
    }
}

/// Directives, then the normal reply: the part of answering shared by live requests and batch
/// lines.
pub(crate) fn respond(state: &State, parsed: &Parsed, stamp: Stamp) -> Answered {
    let text = parsed.directive_text();
    match directives::find(text) {
        None => {}
        Some(Err(why)) => {
            return Answered::Error(
                Outcome::BadRequest,
                ApiError::for_status(StatusCode::BAD_REQUEST, why),
            )
        }
        Some(Ok(directive)) => {
            let fails = match directive.fail_times {
                None => true,
                Some(times) => state.fail_times.should_fail(text, times),
            };
            let code = match directive.fault {
                _ if !fails => None,
                DirectiveFault::Shape(shape) => {
                    return match parsed.shape(&shape, stamp) {
                        Ok(shaped) => Answered::Shaped(shaped),
                        Err(why) => Answered::Error(
                            Outcome::BadRequest,
                            ApiError::for_status(StatusCode::BAD_REQUEST, why),
                        ),
                    };
                }
                DirectiveFault::Status(code) => Some(code),
            };
            if let Some(code) = code {
                let error = if directive.quota {
                    ApiError::insufficient_quota()
                } else {
                    ApiError::for_status(
                        code,
                        format!("mock: status {} requested by the prompt", code.as_u16()),
                    )
                    .with_retry_after_if_429(state.retry_after)
                };
                let error = match directive.retry_after {
                    None => error,
                    Some(RetryHint::Seconds(s)) => {
                        error.with_retry_hint(Duration::from_secs(s), RetryForm::Seconds)
                    }
                    Some(RetryHint::Millis(ms)) => {
                        error.with_retry_hint(Duration::from_millis(ms), RetryForm::Millis)
                    }
                    Some(RetryHint::Date(s)) => {
                        error.with_retry_hint(Duration::from_secs(s), RetryForm::Date)
                    }
                    Some(RetryHint::DateAgo(s)) => {
                        error.with_retry_hint(Duration::from_secs(s), RetryForm::PastDate)
                    }
                };
                return Answered::Error(Outcome::Directive, error);
            }
        }
    }
    Answered::Reply(parsed.reply(stamp))
}

pub(crate) fn server_error(code: u16) -> ApiError {
    let (status, message) = match code {
        502 => (StatusCode::BAD_GATEWAY, "Bad gateway."),
        503 => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The engine is currently overloaded, please try again later.",
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "The server had an error while processing your request. Sorry about that!",
        ),
    };
    ApiError::for_status(status, message)
}
