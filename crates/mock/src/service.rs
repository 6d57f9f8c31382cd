//! One request, start to finish: routing, the checks in their documented order (auth →
//! fail-first → body → rpm/tpm → random faults → directives → normal answer), the injected
//! latency, then recording (stats, log) and answering, hanging or dropping the connection.
//! The shared [`State`] lives here too. Connections, accept and shutdown belong to `server`;
//! the checks in their order to `service/checks.rs`, and the pieces of each check to their own
//! modules.
//!
//! Routes: OpenAI's `/v1/…` (chat, completions, responses, embeddings, models), Anthropic's
//! `/v1/messages` (whose answers `messages/dialect.rs` words as Anthropic does), and Azure
//! OpenAI's `/openai/deployments/{name}/…` (chat, completions, embeddings), `/openai/responses`,
//! `/openai/files…` and `/openai/batches…` (which must carry `?api-version=`, else 404 as Azure
//! does). Which body goes with which endpoint is `family`'s business. The Files
//! and Batches routes are matched and answered by `batch_api`, after the same auth and before
//! the same latency, stats and log.
//! [`answer_body`] is the one place a completion body becomes an answer once the request-level
//! checks are done: live requests and batch lines both go through it.
//! Scope of each feature: auth (with --unauthorized-after) and latency apply to every request;
//! fail-first, limits,
//! random faults and directives only to the four API-family endpoints (so a client's
//! `GET /v1/models` never eats a --fail-first slot). `/mock/stats` is not counted or logged.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, AUTHORIZATION};
use hyper::{Method, Request, Response, StatusCode};
use tokio_util::sync::CancellationToken;

pub(crate) use super::answering::{answer_body, Answered};
use super::batch_api::{self, BatchRoute, Dialect, Refusal};
use super::batches::BatchStore;
use super::config::MockConfig;
use super::directives::FailTimes;
use super::errors::{json_response, ApiError, Body};
use super::family::Parsed;
use super::faults::{self, Faults, Rng};
use super::files::FileStore;
use super::limits::{Limits, Snapshot};
use super::log::{Entry, RequestLog};
use super::messages::dialect;
use super::reply::Usage;
use super::routes::{is_api, route, Route};
use super::stats::{Outcome, Stats};

pub(crate) use super::family::Endpoint;

mod checks;

use self::checks::{decide, refuse_key, Arrival};

/// Largest request body kept; bigger ones get a 413 (it bounds memory per connection). File
/// uploads have their own, larger, cap ([`batch_api::MAX_UPLOAD_BODY`]).
const MAX_BODY: usize = 32 * 1024 * 1024;
/// How long a "hang" holds the request (unless the client leaves or the server stops).
const HANG: Duration = Duration::from_secs(3600);

/// Returned to hyper to close the connection without an answer (reset, hang, client gone).
#[derive(Debug, thiserror::Error)]
#[error("mock-server dropped the connection on purpose")]
pub(crate) struct Dropped;

/// Everything requests share, behind one `Arc` cloned once per request.
pub(crate) struct State {
    api_key: Option<Box<str>>,
    latency: Duration,
    latency_jitter: Duration,
    seed: u64,
    faults: Faults,
    pub(crate) retry_after: Duration,
    fail_first: u64,
    fail_status: StatusCode,
    unauthorized_after: Option<u64>,
    limits: Option<Limits>,
    /// --claim-tpm: the limit every answer reports, enforced by nobody.
    claim_tpm: Option<u64>,
    pub(crate) fail_times: FailTimes,
    pub(crate) stats: Stats,
    log: Option<RequestLog>,
    /// API-family requests that passed auth, in arrival order (for --fail-first).
    completions: AtomicU64,
    /// Uploaded and generated files (`/v1/files`).
    pub(crate) files: FileStore,
    /// Every batch created (`/v1/batches`), with the --batch-* settings.
    pub(crate) batches: BatchStore,
    /// Every message batch created (`/v1/messages/batches`).
    pub(crate) message_batches: super::messages::batches::MessageBatchStore,
    /// Cancelled by `server` when serving stops: ends latency waits and hangs so connections
    /// can close promptly. Created with the state; borrowed, never cloned, per request.
    pub(crate) stop: CancellationToken,
    /// --dialect: whose Files and Batches API the `/v1/` paths speak.
    dialect: Dialect,
}

impl State {
    pub fn new(config: MockConfig) -> anyhow::Result<Self> {
        let log = match &config.log {
            None => None,
            Some(path) => Some(
                RequestLog::open(path)
                    .with_context(|| format!("could not open the --log file '{}'", path.display()))?,
            ),
        };
        let fail_status = StatusCode::from_u16(config.fail_status)
            .with_context(|| format!("--fail-status {} is not an HTTP status", config.fail_status))?;
        Ok(State {
            dialect: config.dialect,
            api_key: config.api_key.map(String::into_boxed_str),
            latency: config.latency,
            latency_jitter: config.latency_jitter,
            seed: config.seed,
            faults: Faults::new(config.faults),
            retry_after: config.retry_after,
            fail_first: config.fail_first,
            fail_status,
            unauthorized_after: config.unauthorized_after,
            limits: Limits::new(config.rpm, config.tpm),
            claim_tpm: config.claim_tpm,
            fail_times: FailTimes::default(),
            stats: Stats::default(),
            log,
            completions: AtomicU64::new(0),
            files: FileStore::new(config.drop_upload),
            batches: BatchStore::new(
                config.batch_polls,
                config.batch_outcomes,
                config.drop_batch_create,
            ),
            message_batches: Default::default(),
            stop: CancellationToken::new(),
        })
    }
}

/// What to do with a request once its checks have run.
enum Action {
    Respond(Response<Body>),
    Hang,
    Reset,
}

struct Decision {
    outcome: Outcome,
    action: Action,
    /// Usage of a successful completion, added to the stats once it is sent.
    usage: Option<Usage>,
    /// The limiter's state if this request went through it (else it is peeked at the end).
    snapshot: Option<Snapshot>,
}

impl Decision {
    fn new(outcome: Outcome, action: Action) -> Self {
        Decision {
            outcome,
            action,
            usage: None,
            snapshot: None,
        }
    }
    fn error(outcome: Outcome, error: ApiError) -> Self {
        Self::new(outcome, Action::Respond(error.into_response()))
    }
    fn status(&self) -> Option<u16> {
        match &self.action {
            Action::Respond(response) => Some(response.status().as_u16()),
            Action::Hang | Action::Reset => None,
        }
    }
}

/// Reads a request body, keeping at most `limit` bytes; `true` when there was more. The rest
/// of a body that is too large is read and dropped rather than left unread: closing a
/// connection with unread data resets it, and the client, still sending, could then lose the
/// 413 to the reset (a race, not an answer).
async fn read_body(mut body: Incoming, limit: usize) -> Result<(Bytes, bool), Dropped> {
    let mut kept = bytes::BytesMut::new();
    let mut too_large = false;
    while let Some(frame) = body.frame().await {
        // The client went away mid-body: nobody is left to answer.
        let frame = frame.map_err(|_| Dropped)?;
        let Ok(data) = frame.into_data() else { continue };
        if too_large {
            continue;
        }
        if kept.len() + data.len() > limit {
            too_large = true;
            kept = bytes::BytesMut::new();
        } else {
            kept.extend_from_slice(&data);
        }
    }
    Ok((kept.freeze(), too_large))
}

/// hyper's service: answers one request.
pub(crate) async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, Dropped> {
    let (parts, body) = req.into_parts();
    // Groq's `/openai/v1/…` and Gemini's `/v1beta/openai/…` are OpenAI's `/v1/…` in their dialect.
    let (dialect_of_path, unprefixed) = Dialect::unprefix(parts.uri.path(), state.dialect);
    let path: &str = &unprefixed;
    if !is_api(path) {
        return Ok(control(&state, &parts.method, path));
    }
    let arrived = SystemTime::now();
    let index = state.stats.arrive();
    let route = route(&parts.method, path, parts.uri.query());
    let limit = match route {
        Route::Batch(BatchRoute::UploadFile | BatchRoute::CreateMessageBatch) => batch_api::MAX_UPLOAD_BODY,
        _ => MAX_BODY,
    };
    let (body, too_large) = read_body(body, limit).await?;
    let parsed = match route {
        Route::Completion(endpoint) => Some(Parsed::parse(endpoint, &body)),
        _ => None,
    };
    let prompt = parsed
        .as_ref()
        .and_then(|p| p.as_ref().ok())
        .map(Parsed::directive_text);

    let mut rng = Rng::for_request(state.seed, index);
    let arrival = Arrival {
        method: &parts.method,
        path,
        headers: &parts.headers,
        index,
    };
    let decision = match route {
        _ if too_large => {
            let error = ApiError::for_status(
                StatusCode::PAYLOAD_TOO_LARGE,
                "mock-server: request body too large",
            );
            Decision::error(Outcome::BadRequest, error)
        }
        Route::Batch(api) => match refuse_key(&state, &arrival) {
            Some(refused) => refused,
            None => {
                let request = batch_api::Request {
                    dialect: dialect_of_path,
                    headers: &parts.headers,
                    query: parts.uri.query(),
                    // A reference count, not a copy (`parsed` borrows `body` for the log).
                    body: body.clone(),
                };
                batch_decision(&state, api, request).await
            }
        },
        route => decide(&state, &arrival, route, parsed.as_ref(), &mut rng),
    };

    let delay = faults::latency(state.latency, state.latency_jitter, &mut rng);
    let entry = Entry {
        arrived,
        path,
        query: parts.uri.query(),
        credential: credential(&parts.headers),
        status: decision.status(),
        outcome: decision.outcome,
        prompt,
    };
    deliver(&state, decision, delay, entry).await
}

/// A Files or Batches request's decision, as `batch_api` answers it.
async fn batch_decision(state: &Arc<State>, api: BatchRoute, request: batch_api::Request<'_>) -> Decision {
    match batch_api::handle(state, api, request).await {
        Ok(response) => Decision::new(Outcome::Ok, Action::Respond(response)),
        Err(Refusal::Error(error)) => Decision::error(Outcome::BadRequest, error),
        Err(Refusal::Drop) => Decision::new(Outcome::Dropped, Action::Reset),
    }
}

/// Carries a decision out: waits the latency, stamps the limit headers, counts and logs the
/// request, then answers, drops the connection or hangs.
async fn deliver(
    state: &State,
    mut decision: Decision,
    delay: Duration,
    entry: Entry<'_>,
) -> Result<Response<Body>, Dropped> {
    if !delay.is_zero() {
        // On shutdown the wait is cut short and the answer sent at once.
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = state.stop.cancelled() => {}
        }
    }
    let anthropic = entry.path == dialect::PATH || entry.path.starts_with("/v1/messages/");
    if anthropic {
        if let Action::Respond(response) = decision.action {
            decision.action = Action::Respond(dialect::error_body(response).await);
        }
    }
    if let (Some(limits), Action::Respond(response)) = (&state.limits, &mut decision.action) {
        // Answers that did not go through the limiter report its current state.
        let snapshot = decision.snapshot.unwrap_or_else(|| limits.peek());
        if anthropic {
            dialect::limit_headers(&snapshot, response.headers_mut());
        } else {
            snapshot.apply(response.headers_mut());
        }
    }
    if let (Some(claimed), Action::Respond(response)) = (state.claim_tpm, &mut decision.action) {
        let headers = response.headers_mut();
        if anthropic {
            dialect::claim_tokens(claimed, headers);
        } else {
            headers.insert("x-ratelimit-limit-tokens", claimed.into());
            headers.insert("x-ratelimit-remaining-tokens", claimed.into());
        }
    }
    state.stats.record(decision.outcome, entry.status, decision.usage);
    if let Some(log) = &state.log {
        log.write(&entry);
    }
    match decision.action {
        Action::Respond(response) => Ok(response),
        Action::Reset => Err(Dropped),
        Action::Hang => {
            // hyper drops this future if the client disconnects, which ends the hang early.
            tokio::select! {
                () = tokio::time::sleep(HANG) => {}
                () = state.stop.cancelled() => {}
            }
            Err(Dropped)
        }
    }
}

/// Requests outside /v1: the stats and batches endpoints, or a 404.
fn control(state: &State, method: &Method, path: &str) -> Response<Body> {
    match (method, path) {
        (&Method::GET, "/mock/stats") => json_response(StatusCode::OK, state.stats.to_json()),
        (&Method::GET, "/mock/batches") => json_response(StatusCode::OK, batch_api::overview(state)),
        (_, "/mock/stats" | "/mock/batches") => method_not_allowed(method, path).into_response(),
        _ => ApiError::invalid_url(method, path).into_response(),
    }
}

fn method_not_allowed(method: &Method, path: &str) -> ApiError {
    ApiError::for_status(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("Method {method} not allowed for {path}"),
    )
}

/// Which headers carried a key, for the log: `bearer`, `api-key`, `x-api-key`, `both` (more
/// than one) or `none`.
fn credential(headers: &HeaderMap) -> &'static str {
    let found: Vec<&str> = [
        ("bearer", AUTHORIZATION.as_str()),
        ("api-key", "api-key"),
        ("x-api-key", "x-api-key"),
    ]
    .into_iter()
    .filter(|(_, header)| headers.contains_key(*header))
    .map(|(name, _)| name)
    .collect();
    match found.as_slice() {
        [] => "none",
        [one] => one,
        _ => "both",
    }
}
