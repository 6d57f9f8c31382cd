//! OpenAI's Batches API in the mock: `POST /v1/batches`, `GET /v1/batches/{id}`,
//! `POST /v1/batches/{id}/cancel` and `GET /v1/batches`, over an in-memory [`BatchStore`].
//! A batch's life is driven by retrieves, deterministically: created `validating`; the first
//! retrieve fails it (bad lines, or the `failed` outcome) or starts it; then `in_progress` with
//! request_counts growing evenly, `finalizing`, and `completed` at the --batch-polls-th
//! retrieve (`expired` instead for the `expired:F` outcome). A cancel makes it `cancelling`,
//! and the next retrieve `cancelled`: lines answered by then are in its files, the others in
//! none. Lines are answered (`batch_run`) as the counts grow, and the output and error files
//! are stored when the batch ends. The --drop-batch-create hook lives here too. Mistral's
//! `/v1/batch/jobs` are batches of this store shown in Mistral's shape (`batches/mistral.rs`). Under Azure's
//! `/openai/batches` a batch names its endpoint `/chat/completions` (so must its lines), and an
//! input file Azure has not finished processing is refused (see `batch_api::Dialect`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::batch_api::{invalid, make_id, Dialect, Handled, List, Page, Refusal, Request};
use super::batch_lines::{LineError, ParsedInput};
use super::batch_outcome::{BatchOutcomes, Outcome};
use super::batch_run::{Owner, Run};
use super::config::DropCreate;
use super::errors::{json_response, ApiError};
use super::reply::{to_bytes, unix_now};
use super::service::{Endpoint, State};
use super::stats::Event;

mod create;
pub(crate) mod mistral;
mod object;

pub(crate) use create::{create, outcome_header};

const ID_PREFIX: &str = "batch_mock_";
/// The only completion window OpenAI offers, in seconds.
const WINDOW: u64 = 24 * 3600;
/// The header that picks a batch's outcome on its create request.
const OUTCOME_HEADER: &str = "x-mock-batch-outcome";
/// Most metadata keys OpenAI accepts.
const MAX_METADATA_KEYS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Status {
    Validating,
    Failed,
    InProgress,
    Finalizing,
    Completed,
    Expired,
    Cancelling,
    Cancelled,
}

impl Status {
    fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Failed | Status::Completed | Status::Expired | Status::Cancelled
        )
    }

    fn as_str(self) -> &'static str {
        match self {
            Status::Validating => "validating",
            Status::Failed => "failed",
            Status::InProgress => "in_progress",
            Status::Finalizing => "finalizing",
            Status::Completed => "completed",
            Status::Expired => "expired",
            Status::Cancelling => "cancelling",
            Status::Cancelled => "cancelled",
        }
    }
}

/// When each stage was reached (Unix seconds).
#[derive(Default, Serialize)]
struct Times {
    in_progress_at: Option<u64>,
    finalizing_at: Option<u64>,
    completed_at: Option<u64>,
    failed_at: Option<u64>,
    expired_at: Option<u64>,
    cancelling_at: Option<u64>,
    cancelled_at: Option<u64>,
}

pub(crate) struct Batch {
    id: String,
    seq: u64,
    endpoint: Endpoint,
    /// Whose API created it: decides how its `endpoint` is named.
    dialect: Dialect,
    input_file_id: String,
    metadata: Option<Map<String, Value>>,
    created_at: u64,
    /// The input file's lines as they were when the batch was created.
    input: Arc<ParsedInput>,
    outcome: Outcome,
    /// Why validation fails (revealed at the first retrieve); empty if it passes.
    problems: Vec<LineError>,
    status: Status,
    /// Retrieves so far.
    polls: u64,
    times: Times,
    run: Run,
    output_file_id: Option<String>,
    error_file_id: Option<String>,
    /// The model a Mistral job (`/v1/batch/jobs`) named; `None` for an OpenAI batch.
    mistral_model: Option<String>,
}

/// Every batch ever created (batches are never deleted), with the --batch-* settings.
pub(crate) struct BatchStore {
    // A std Mutex around the list, held only to push or clone it. Each batch has its own
    // std Mutex, held while it advances (in a blocking task, as answering 50,000 lines takes
    // a moment) — never across an await. Lock order: a batch, then the file store.
    batches: Mutex<Vec<Arc<Mutex<Batch>>>>,
    /// --batch-polls (0 behaves as 1).
    polls: u64,
    outcomes: BatchOutcomes,
    drop_create: Option<DropCreate>,
    /// Create requests that got as far as creating (for --drop-batch-create).
    creates: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl BatchStore {
    pub fn new(polls: u64, outcomes: BatchOutcomes, drop_create: Option<DropCreate>) -> Self {
        BatchStore {
            batches: Mutex::new(Vec::new()),
            polls: polls.max(1),
            outcomes,
            drop_create,
            creates: AtomicU64::new(0),
        }
    }

    /// --batch-polls, at least 1.
    pub fn polls(&self) -> u64 {
        self.polls
    }

    /// The outcome of the batch created `seq`-th by its API, `header` first.
    pub fn outcome(&self, seq: u64, header: Option<Outcome>) -> Outcome {
        self.outcomes.choose(seq, header)
    }

    /// Counts a create request that got as far as creating, OpenAI's and Anthropic's alike:
    /// `Some(after)` when --drop-batch-create names it (drop the answer after creating, or
    /// before).
    pub fn create_hook(&self) -> Option<bool> {
        let nth = self.creates.fetch_add(1, Relaxed) + 1;
        self.drop_create.filter(|d| d.nth == nth).map(|d| d.after)
    }

    fn get(&self, id: &str) -> Option<Arc<Mutex<Batch>>> {
        let seq = super::batch_api::seq_of(id, ID_PREFIX)?;
        let index = usize::try_from(seq.checked_sub(1)?).ok()?;
        lock(&self.batches).get(index).cloned()
    }

    fn all(&self) -> Vec<Arc<Mutex<Batch>>> {
        lock(&self.batches).clone()
    }

    /// `{id, input_file_id, status, custom_ids}` for every batch, in creation order.
    pub fn overview(&self) -> Vec<Value> {
        self.all()
            .iter()
            .map(|batch| {
                let batch = lock(batch);
                let custom_ids: Vec<&str> = batch.input.lines.iter().map(|l| &*l.custom_id).collect();
                serde_json::json!({
                    "id": batch.id,
                    "input_file_id": batch.input_file_id,
                    "status": batch.status.as_str(),
                    "custom_ids": custom_ids,
                })
            })
            .collect()
    }
}

fn no_such_batch(id: &str) -> ApiError {
    ApiError::for_status(StatusCode::NOT_FOUND, format!("No such Batch object: {id}"))
        .with_param(Some("batch_id"))
}

/// `GET /v1/batches/{id}`: counts as a poll and moves the batch along.
pub(crate) async fn retrieve(state: &Arc<State>, id: &str) -> Handled {
    let batch = state.batches.get(id).ok_or_else(|| no_such_batch(id))?;
    let state = Arc::clone(state);
    let polls = state.batches.polls;
    let body = tokio::task::spawn_blocking(move || {
        let mut batch = lock(&batch);
        batch.poll(&state, polls);
        to_bytes(&batch.worded())
    })
    .await
    .map_err(|_| super::batch_api::internal_error())?;
    Ok(json_response(StatusCode::OK, body))
}

/// `POST /v1/batches/{id}/cancel`.
pub(crate) fn cancel(state: &State, id: &str) -> Handled {
    let batch = state.batches.get(id).ok_or_else(|| no_such_batch(id))?;
    let mut batch = lock(&batch);
    match batch.status {
        Status::Cancelling => {}
        status if status.is_terminal() => {
            return Err(ApiError::for_status(
                StatusCode::CONFLICT,
                format!("Cannot cancel a batch with status '{}'.", status.as_str()),
            )
            .into())
        }
        _ => {
            batch.status = Status::Cancelling;
            batch.times.cancelling_at = Some(unix_now());
            state.stats.count(Event::BatchCancelled);
        }
    }
    Ok(json_response(StatusCode::OK, to_bytes(&batch.worded())))
}

/// `GET /v1/batches`: newest first, `limit` (default 20, at most 100) and `after`.
pub(crate) fn list(state: &State, query: Option<&str>) -> Handled {
    let page = Page::from_query(query, 20, 100, ID_PREFIX)?;
    let all = state.batches.all();
    // A batch's creation number is its place in the list plus one.
    let newest_first = all.iter().enumerate().rev().map(|(i, b)| (i as u64 + 1, b));
    let (batches, has_more) = page.take(newest_first, true);
    let objects: Vec<Value> = batches.into_iter().map(|b| lock(b).worded()).collect();
    let list = List::new(objects, has_more, |v| {
        v["id"].as_str().unwrap_or_default().to_string()
    });
    Ok(json_response(StatusCode::OK, to_bytes(&list)))
}

impl Batch {
    fn owner(&self) -> Owner {
        Owner {
            seq: self.seq,
            created_at: self.created_at,
            endpoint: self.endpoint,
        }
    }

    /// One retrieve: the next step of the batch's life (see the module doc). `polls` is
    /// --batch-polls, at least 1.
    fn poll(&mut self, state: &State, polls: u64) {
        if self.status.is_terminal() {
            return;
        }
        self.polls += 1;
        let now = unix_now();
        match self.status {
            Status::Cancelling => return self.end(state, Status::Cancelled, now),
            Status::Validating if !self.problems.is_empty() => {
                self.status = Status::Failed;
                self.times.failed_at = Some(now);
                return;
            }
            Status::Validating => {
                self.status = Status::InProgress;
                self.times.in_progress_at = Some(now);
            }
            _ => {}
        }
        let lines = &self.input.lines;
        let total = lines.len();
        let cap = match self.outcome {
            // Rounded down: `expired:0.5` of 5 lines answers 2.
            Outcome::Expired(fraction) => (total as f64 * fraction) as usize,
            Outcome::Completed | Outcome::Failed => total,
        };
        let owner = self.owner();
        if self.polls >= polls {
            self.run.advance(state, owner, lines, cap);
            if let Outcome::Expired(_) = self.outcome {
                self.run.expire_rest(owner, lines);
                return self.end(state, Status::Expired, now);
            }
            self.times.finalizing_at.get_or_insert(now);
            return self.end(state, Status::Completed, now);
        }
        if polls >= 3 && self.polls == polls - 1 && self.outcome == Outcome::Completed {
            self.run.advance(state, owner, lines, total);
            self.status = Status::Finalizing;
            self.times.finalizing_at = Some(now);
            return;
        }
        // An even share of the lines per retrieve: k/polls of them after the kth.
        let share = (total as u128 * u128::from(self.polls) / u128::from(polls)) as usize;
        self.run.advance(state, owner, lines, share.min(cap));
    }

    /// Ends the batch in `status`, storing its output and error files.
    fn end(&mut self, state: &State, status: Status, now: u64) {
        self.status = status;
        let at = match status {
            Status::Completed => &mut self.times.completed_at,
            Status::Expired => &mut self.times.expired_at,
            _ => &mut self.times.cancelled_at,
        };
        *at = Some(now);
        let (output, errors) = self.run.take_files();
        self.output_file_id =
            output.map(|o| state.files.store_output(format!("{}_output.jsonl", self.id), o));
        self.error_file_id = errors.map(|e| state.files.store_output(format!("{}_error.jsonl", self.id), e));
    }
}
