//! Anthropic's Message Batches in the mock: `POST /v1/messages/batches` (the requests inline),
//! `GET /v1/messages/batches/{id}`, `GET /v1/messages/batches` (newest first, `limit` and
//! `after_id`), `POST …/{id}/cancel` and `GET …/{id}/results`, over an in-memory store (a
//! batch's life and the object it shows are `batches/life.rs`'s).
//!
//! A batch lives as OpenAI's mock batches do (`batches.rs`), driven by retrieves: created
//! `in_progress`, each retrieve answers an even share of its requests, and the --batch-polls-th
//! ends it; a cancel makes it `canceling` and the next retrieve `ended`, the requests not run
//! by then `canceled`. The --batch-outcome / `X-Mock-Batch-Outcome` outcomes apply by this
//! store's own creation order: `expired:F` answers the first fraction and expires the rest,
//! `failed` errors every request. Each request is answered by `answering::answer_body`, the
//! code a live `/v1/messages` request is answered by, so a batch's messages equal a live run's.
//! Results are kept per request and served in reverse order (Anthropic promises none). The
//! --drop-batch-create hook counts these creates with OpenAI's (`BatchStore::create_hook`).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Response, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::batch_api::{invalid, make_id, query_param, seq_of, Handled, Refusal, Request};
use crate::batch_outcome::Outcome;
use crate::errors::{json_response, ApiError, Body};
use crate::reply::{to_bytes, Stamp};
use crate::service::{Answered, Endpoint, State};
use crate::stats::Event;

mod life;

const ID_PREFIX: &str = "msgbatch_mock_";
/// Anthropic's limits: requests a batch.
const MAX_REQUESTS: usize = 100_000;
/// A batch's results are kept 29 days and it expires after 24 hours (shown, not enforced).
const DAY_MS: u64 = 24 * 3600 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    InProgress,
    Canceling,
    Ended,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => "in_progress",
            Status::Canceling => "canceling",
            Status::Ended => "ended",
        }
    }
}

struct Req {
    custom_id: Box<str>,
    params: Bytes,
}

#[derive(Default, Clone, Copy)]
struct Tally {
    succeeded: u64,
    errored: u64,
    canceled: u64,
    expired: u64,
}

pub(crate) struct MessageBatch {
    id: String,
    seq: u64,
    created_ms: u64,
    requests: Vec<Req>,
    outcome: Outcome,
    status: Status,
    polls: u64,
    /// Requests answered (a prefix of them).
    processed: usize,
    tally: Tally,
    /// One results line each, in processing order.
    results: Vec<Vec<u8>>,
    cancel_ms: Option<u64>,
    ended_ms: Option<u64>,
    /// `http://{Host}` as the create request named it, for `results_url`.
    origin: String,
}

/// Every message batch ever created.
#[derive(Default)]
pub(crate) struct MessageBatchStore {
    // A std Mutex around the list, held only to push or clone it; each batch has its own,
    // held while it advances and never across an await.
    batches: Mutex<Vec<Arc<Mutex<MessageBatch>>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn rfc3339(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(t).to_string()
}

impl MessageBatchStore {
    fn get(&self, id: &str) -> Option<Arc<Mutex<MessageBatch>>> {
        let index = usize::try_from(seq_of(id, ID_PREFIX)?.checked_sub(1)?).ok()?;
        lock(&self.batches).get(index).cloned()
    }

    fn all(&self) -> Vec<Arc<Mutex<MessageBatch>>> {
        lock(&self.batches).clone()
    }

    /// `{id, status, custom_ids}` for every batch, in creation order (`GET /mock/batches`).
    pub fn overview(&self) -> Vec<Value> {
        self.all()
            .iter()
            .map(|b| {
                let b = lock(b);
                let ids: Vec<&str> = b.requests.iter().map(|r| &*r.custom_id).collect();
                json!({"id": b.id, "status": b.status.as_str(), "custom_ids": ids})
            })
            .collect()
    }
}

fn no_such_batch(id: &str) -> ApiError {
    ApiError::for_status(StatusCode::NOT_FOUND, format!("No such message batch: {id}"))
}

#[derive(Deserialize)]
struct CreateBody<'a> {
    #[serde(borrow)]
    requests: Option<Vec<RequestJson<'a>>>,
}

#[derive(Deserialize)]
struct RequestJson<'a> {
    custom_id: Option<String>,
    #[serde(borrow)]
    params: Option<&'a RawValue>,
}

fn valid_custom_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The requests of a create body, checked as Anthropic checks them.
fn read_requests(body: &[u8]) -> Result<Vec<Req>, ApiError> {
    let bad = |message: String| ApiError::for_status(StatusCode::BAD_REQUEST, message);
    let parsed: CreateBody =
        serde_json::from_slice(body).map_err(|e| bad(format!("Invalid request body: {e}")))?;
    let requests = parsed
        .requests
        .ok_or_else(|| invalid("requests", "requests: Field required"))?;
    if requests.is_empty() || requests.len() > MAX_REQUESTS {
        return Err(invalid(
            "requests",
            format!(
                "requests: from 1 to {MAX_REQUESTS} requests, not {}",
                requests.len()
            ),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(requests.len());
    for (i, r) in requests.into_iter().enumerate() {
        let id = r
            .custom_id
            .ok_or_else(|| bad(format!("requests.{i}.custom_id: Field required")))?;
        if !valid_custom_id(&id) {
            return Err(bad(format!(
                "requests.{i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
            )));
        }
        if !seen.insert(id.clone()) {
            return Err(bad(format!("requests.{i}.custom_id: duplicate custom_id '{id}'")));
        }
        let params = r
            .params
            .ok_or_else(|| bad(format!("requests.{i}.params: Field required")))?;
        out.push(Req {
            custom_id: id.into_boxed_str(),
            params: Bytes::copy_from_slice(params.get().as_bytes()),
        });
    }
    Ok(out)
}

/// `POST /v1/messages/batches`.
pub(crate) fn create(state: &State, request: &Request<'_>) -> Handled {
    let requests = read_requests(&request.body)?;
    let header = crate::batches::outcome_header(request.headers)?;
    let hook = state.batches.create_hook();
    if hook.is_some_and(|after| !after) {
        return Err(Refusal::Drop);
    }
    let host = request
        .headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let batch = {
        let mut batches = lock(&state.message_batches.batches);
        let seq = batches.len() as u64 + 1;
        let batch = Arc::new(Mutex::new(MessageBatch {
            id: make_id(ID_PREFIX, seq),
            seq,
            created_ms: now_ms(),
            requests,
            outcome: state.batches.outcome(seq, header),
            status: Status::InProgress,
            polls: 0,
            processed: 0,
            tally: Tally::default(),
            results: Vec::new(),
            cancel_ms: None,
            ended_ms: None,
            origin: format!("http://{host}"),
        }));
        batches.push(Arc::clone(&batch));
        batch
    };
    state.stats.count(Event::BatchCreated);
    if hook.is_some() {
        return Err(Refusal::Drop);
    }
    let body = to_bytes(&lock(&batch).object());
    Ok(json_response(StatusCode::OK, body))
}

/// `GET /v1/messages/batches/{id}`: counts as a poll and moves the batch along.
pub(crate) async fn retrieve(state: &Arc<State>, id: &str) -> Handled {
    let batch = state.message_batches.get(id).ok_or_else(|| no_such_batch(id))?;
    let state = Arc::clone(state);
    let body = tokio::task::spawn_blocking(move || {
        let mut batch = lock(&batch);
        let polls = state.batches.polls();
        batch.poll(&state, polls);
        to_bytes(&batch.object())
    })
    .await
    .map_err(|_| crate::batch_api::internal_error())?;
    Ok(json_response(StatusCode::OK, body))
}

/// `POST /v1/messages/batches/{id}/cancel`.
pub(crate) fn cancel(state: &State, id: &str) -> Handled {
    let batch = state.message_batches.get(id).ok_or_else(|| no_such_batch(id))?;
    let mut batch = lock(&batch);
    match batch.status {
        Status::Ended => {
            return Err(
                ApiError::for_status(StatusCode::CONFLICT, "Cannot cancel a batch that has ended.").into(),
            )
        }
        Status::Canceling => {}
        Status::InProgress => {
            batch.status = Status::Canceling;
            batch.cancel_ms = Some(now_ms());
            state.stats.count(Event::BatchCancelled);
        }
    }
    Ok(json_response(StatusCode::OK, to_bytes(&batch.object())))
}

/// `GET /v1/messages/batches`: newest first, `limit` (1 to 1000, default 20), `after_id`.
pub(crate) fn list(state: &State, query: Option<&str>) -> Handled {
    let limit = match query_param(query, "limit") {
        None => 20,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| invalid("limit", format!("limit: expected 1 to 1000, got '{text}'")))?,
    };
    let after = match query_param(query, "after_id") {
        None => None,
        Some(id) => {
            Some(seq_of(&id, ID_PREFIX).ok_or_else(|| invalid("after_id", format!("No such batch: {id}")))?)
        }
    };
    let all = state.message_batches.all();
    let mut newest_first = all
        .iter()
        .enumerate()
        .rev()
        .filter(|(i, _)| after.is_none_or(|a| (*i as u64 + 1) < a));
    let page: Vec<Value> = newest_first
        .by_ref()
        .take(limit)
        .map(|(_, b)| lock(b).object())
        .collect();
    let has_more = newest_first.next().is_some();
    let id_of = |v: Option<&Value>| v.and_then(|v| v["id"].as_str()).map(str::to_string);
    let body = json!({
        "first_id": id_of(page.first()),
        "last_id": id_of(page.last()),
        "has_more": has_more,
        "data": page,
    });
    Ok(json_response(StatusCode::OK, to_bytes(&body)))
}

/// `GET /v1/messages/batches/{id}/results`: the JSONL results of an ended batch.
pub(crate) fn results(state: &State, id: &str) -> Handled {
    let batch = state.message_batches.get(id).ok_or_else(|| no_such_batch(id))?;
    let batch = lock(&batch);
    if batch.status != Status::Ended {
        return Err(ApiError::for_status(
            StatusCode::NOT_FOUND,
            format!("Results for {id} are not available: the batch has not ended."),
        )
        .into());
    }
    let mut out = Vec::new();
    for line in batch.results.iter().rev() {
        out.extend_from_slice(line);
    }
    let mut response: Response<Body> = Response::new(http_body_util::Full::new(Bytes::from(out)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/binary"));
    Ok(response)
}
