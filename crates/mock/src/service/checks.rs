//! The checks a request to an API-family route goes through, in their documented order: the
//! key (with --unauthorized-after), the route, --fail-first, the body, the rpm/tpm limiter, the
//! random faults, then the directives and the normal answer ([`decide`]). Each returns the
//! [`Decision`] `service.rs` then delivers (latency, stats, log, the answer or the drop); the
//! pieces of each check (faults, limits, directives) are their own modules'.

use std::sync::atomic::Ordering::Relaxed;

use hyper::header::{HeaderMap, AUTHORIZATION};
use hyper::{Method, StatusCode};

use super::{method_not_allowed, Action, Decision, State};
use crate::answering::{bad_body, respond, server_error, Answered};
use crate::directives::Shape;
use crate::errors::{json_response, ApiError};
use crate::family::Parsed;
use crate::faults::{Fault, Rng};
use crate::reply::{self, Stamp};
use crate::routes::Route;
use crate::stats::Outcome;
use crate::wire;

/// What `decide` needs to know about a request besides its body.
pub(super) struct Arrival<'a> {
    pub(super) method: &'a Method,
    pub(super) path: &'a str,
    pub(super) headers: &'a HeaderMap,
    /// Arrival order among /v1 requests: names the reply and seeds its random stream.
    pub(super) index: u64,
}

/// The 401 for a request without the right key, or with any key after --unauthorized-after.
pub(super) fn refuse_key(state: &State, arrival: &Arrival) -> Option<Decision> {
    let revoked = state.unauthorized_after.is_some_and(|n| arrival.index >= n);
    (revoked || !authorized(state.api_key.as_deref(), arrival.headers))
        .then(|| Decision::error(Outcome::Auth, ApiError::invalid_key()))
}

/// The checks, in order. Pure except for the counters, limiter and fail-times memory.
pub(super) fn decide(
    state: &State,
    arrival: &Arrival,
    route: Route,
    parsed: Option<&Result<Parsed, wire::BadRequest>>,
    rng: &mut Rng,
) -> Decision {
    let Arrival {
        method, path, index, ..
    } = *arrival;
    if let Some(refused) = refuse_key(state, arrival) {
        return refused;
    }
    match route {
        Route::Completion(_) => {}
        Route::Models => {
            let response = json_response(StatusCode::OK, reply::models());
            return Decision::new(Outcome::Ok, Action::Respond(response));
        }
        Route::WrongMethod => return Decision::error(Outcome::BadRequest, method_not_allowed(method, path)),
        // `handle` answers Files and Batches before `decide`; a 404 rather than a panic.
        Route::NotFound | Route::Batch(_) => {
            return Decision::error(Outcome::BadRequest, ApiError::invalid_url(method, path))
        }
        Route::NoApiVersion => {
            let error = ApiError::for_status(
                StatusCode::NOT_FOUND,
                format!("Resource not found (mock: {path} needs the api-version query parameter)"),
            );
            return Decision::error(Outcome::BadRequest, error);
        }
    }
    if state.completions.fetch_add(1, Relaxed) < state.fail_first {
        let error = ApiError::for_status(
            state.fail_status,
            format!("mock: --fail-first status {}", state.fail_status),
        )
        .with_retry_after_if_429(state.retry_after);
        return Decision::error(Outcome::FailFirst, error);
    }
    let parsed = match parsed {
        Some(Ok(parsed)) => parsed,
        Some(Err(bad)) => return Decision::error(Outcome::BadRequest, bad_body(bad)),
        // An API-family route always comes with a parse result; answer 400 rather than panic.
        None => {
            return Decision::error(
                Outcome::BadRequest,
                ApiError::for_status(StatusCode::BAD_REQUEST, "no body"),
            )
        }
    };
    let snapshot = match state.limits.as_ref().map(|l| l.acquire(parsed.token_cost())) {
        None => None,
        Some(Ok(snapshot)) => Some(snapshot),
        Some(Err(denied)) => {
            let outcome = if denied.tokens { Outcome::Tpm } else { Outcome::Rpm };
            let mut decision = Decision::error(outcome, denied.to_error());
            decision.snapshot = Some(denied.snapshot);
            return decision;
        }
    };
    let mut decision = answer(state, parsed, index, rng);
    decision.snapshot = snapshot;
    decision
}

/// Random faults, then [`respond`], for a live request that passed the checks.
fn answer(state: &State, parsed: &Parsed, index: u64, rng: &mut Rng) -> Decision {
    let stamp = Stamp::Live { seq: index };
    match state.faults.draw(rng) {
        None => {}
        Some(Fault::TooMany) => {
            let error = ApiError::for_status(
                StatusCode::TOO_MANY_REQUESTS,
                "Rate limit reached for requests (mock: random 429)",
            )
            .with_retry_after_if_429(state.retry_after);
            return Decision::error(Outcome::Random429, error);
        }
        Some(Fault::ServerError(code)) => return Decision::error(Outcome::Random500, server_error(code)),
        Some(Fault::Hang) => return Decision::new(Outcome::Hang, Action::Hang),
        Some(Fault::Reset) => return Decision::new(Outcome::Reset, Action::Reset),
        Some(Fault::Malformed) => {
            // The real answer cut in half: a 200 whose body is truncated JSON.
            let body = parsed.reply(stamp).body;
            let response = json_response(StatusCode::OK, body.slice(..body.len() / 2));
            return Decision::new(Outcome::Malformed, Action::Respond(response));
        }
        Some(Fault::Spoiled(spoil)) => {
            // Families without text (embeddings) have no such answer: they answer normally.
            if let Ok(shaped) = parsed.shape(&Shape::Spoiled(spoil), stamp) {
                let response = json_response(StatusCode::OK, shaped.body);
                return Decision {
                    usage: shaped.usage,
                    ..Decision::new(Outcome::Spoiled, Action::Respond(response))
                };
            }
        }
    }
    match respond(state, parsed, stamp) {
        Answered::Error(outcome, error) => Decision::error(outcome, error),
        Answered::Shaped(shaped) => {
            let response = json_response(StatusCode::OK, shaped.body);
            let outcome = if shaped.usage.is_some() {
                Outcome::Ok
            } else {
                Outcome::Malformed
            };
            Decision {
                usage: shaped.usage,
                ..Decision::new(outcome, Action::Respond(response))
            }
        }
        Answered::Reply(reply) => {
            let response = json_response(StatusCode::OK, reply.body);
            Decision {
                usage: Some(reply.usage),
                ..Decision::new(Outcome::Ok, Action::Respond(response))
            }
        }
    }
}

/// `Authorization: Bearer <key>` (scheme case-insensitive), Azure's `api-key: <key>` or
/// Anthropic's `x-api-key: <key>`.
fn authorized(expected: Option<&str>, headers: &HeaderMap) -> bool {
    let Some(expected) = expected else {
        return true;
    };
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, key) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
        });
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    // A plain comparison: timing attacks on a local test server are not a concern.
    bearer == Some(expected) || header("api-key") == Some(expected) || header("x-api-key") == Some(expected)
}
