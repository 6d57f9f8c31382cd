//! The live pipeline: pending rows in, one request per row (with retries) out, under the limits.
//!
//! There is one worker loop, `process_row` (in `row.rs` and `settle.rs`: feed, attempt, settle), for every
//! configuration: limits, pauses, budgets and shutdown are objects it awaits, never variants of
//! the loop. The shape of a run:
//!
//! ```text
//!  feeder ──rows──▶ dispatcher ──spawn(permit)──▶ process_row × 2·concurrency ──outcomes──▶ writer
//!  (claims pages     (one permit per row in        (window slot → admit →                 (store/
//!   from the store)   progress: 2 × concurrency)    send → classify →                       writer.rs)
//!                                                   retry or finish)
//! ```
//!
//! A row holds its dispatcher permit through its retries; each attempt also holds a slot of the
//! adaptive window ([`adaptive`]) while it is on the wire, and passes the limiter ([`Limits`])
//! before it is sent. Every answer's rate-limit headers go to the limiter, and what the attempt
//! said about the server's health goes to the window.
//!
//! Stopping has two levels, both on [`Control`]: `stop` ends dispatch (Ctrl-C, SIGTERM, a fatal
//! error) and lets requests already on the wire finish, up to the drain timeout; `abort` also
//! abandons those (a second signal, the drain timeout, a 401, an exhausted quota). Abandoned and
//! never-sent rows go back to pending, so a rerun sends them again; only requests actually on
//! the wire when the run was aborted can be paid twice.
//!
//! Until the first answer that is not a "wrong setting" symptom (a 404, a redirect, a refused
//! connection, a name that does not resolve), every answer is judged by the first-answers guard
//! ([`first_answers`]), which stops the run when they all agree: a wrong `--base-url` leaves the
//! rows pending instead of failing them all.

use std::sync::{Arc, OnceLock, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::{Transport, Verdict};
use crate::budget::Costing;
use crate::limits::{InForce, Limits, WindowInForce};
use crate::stats::Stats;
use crate::store::attempts::{class, Attempt, Tokens};
use crate::store::writer::StoreHandle;
use promptmill_core::job::Endpoint;
use promptmill_core::retry::Backoff;
use promptmill_core::stall::Stalls;

use adaptive::Window;
pub use cached::CacheUse;
use first_answers::FirstAnswers;
use group::{Group, Grouper};
pub use promptmill_core::schema::Structured;

/// Rows claimed from the store at a time.
const PAGE: usize = 1024;

/// Why a run stopped before every row was settled.
#[derive(Debug, Clone, PartialEq)]
pub enum StopReason {
    /// Ctrl-C, SIGTERM or SIGHUP.
    Interrupted,
    /// The API refused the credentials (401/403).
    Auth { status: u16, message: String },
    /// The account is out of credit (a 429 with `insufficient_quota`).
    Quota { message: String },
    /// The checkpoint could not be written.
    Checkpoint(String),
    /// The next request's worst case would take the job over its `--max-cost` budget, whatever
    /// the requests on the wire cost. What was spent is read from the ledger once they settled.
    Budget { limit: f64, needed: f64 },
    /// The run's first answers all said the target is wrong (see [`first_answers`]).
    Misdirected(first_answers::Trip),
}

/// Stop signals shared by everything in a run.
#[derive(Debug, Default)]
pub struct Control {
    /// Cancelled to stop dispatching; requests on the wire finish. A child of `abort`.
    pub stop: CancellationToken,
    /// Cancelled to abandon requests on the wire as well.
    pub abort: CancellationToken,
    /// The first reason given wins; later ones are consequences.
    reason: OnceLock<StopReason>,
}

impl Control {
    pub fn new() -> Arc<Control> {
        let abort = CancellationToken::new();
        Arc::new(Control {
            stop: abort.child_token(),
            abort,
            reason: OnceLock::new(),
        })
    }

    /// Stops dispatching; requests on the wire may finish.
    pub fn stop(&self, reason: StopReason) {
        let _ = self.reason.set(reason);
        self.stop.cancel();
    }

    /// Stops everything now.
    pub fn abort(&self, reason: StopReason) {
        let _ = self.reason.set(reason);
        self.abort.cancel();
    }

    pub fn reason(&self) -> Option<&StopReason> {
        self.reason.get()
    }
}

/// Settings of the worker loop.
#[derive(Debug, Clone)]
pub struct PipelineSettings {
    pub endpoint: Endpoint,
    pub concurrency: usize,
    /// Rows one request carries (1 unless the family joins rows: see [`group`]).
    pub rows_per_request: usize,
    pub max_attempts: u32,
    pub backoff: Backoff,
    /// How long a stopped run waits for requests on the wire before abandoning them.
    pub drain_timeout: Duration,
    /// A row's last answer keeps its place on the wire until its outcome is committed, so that
    /// a kill costs at most `concurrency` requests (on the wire, or answered and not yet
    /// durable). Always on in a real run; the in-process tests on tokio's paused clock turn it
    /// off, because waiting for the writer thread's real-time commit lets the paused clock jump.
    pub hold_until_committed: bool,
    /// How many identical "wrong setting" first answers stop the run ([`first_answers::DEFAULT`];
    /// 0: never).
    pub first_answers: usize,
    /// The process's stall watch: an attempt during which the process stood still (SIGSTOP, a
    /// starved scheduler) says nothing about the server, so the window does not hear of it. `none()` in
    /// the tests on tokio's paused clock.
    pub stalls: Stalls,
    /// `--schema`: each answer is judged against it before the row is done ([`structured`]).
    pub structured: Option<Structured>,
}

/// What a run needs, shared by every task of it.
pub struct Pipeline<T> {
    pub transport: T,
    /// RPM, TPM (given or learned) and pauses: awaited before each attempt.
    pub limits: Limits,
    /// How many requests may be on the wire now (adaptive, at most `settings.concurrency`):
    /// a slot is held by each attempt while it is on the wire.
    pub window: Window,
    pub settings: PipelineSettings,
    pub stats: Arc<Stats>,
    pub control: Arc<Control>,
    /// Prices and the budget: reserve before each attempt, settle after. Shared with the
    /// progress display and read by the run's summary once the pipeline is done.
    pub costing: Arc<Costing>,
    /// Judges answers until the first one that is not a "wrong setting" symptom. Shared with
    /// each row's handle ([`first_answers::Row`]), made by the dispatcher.
    pub first_answers: Arc<FirstAnswers>,
    /// The response cache across jobs, when the run uses one ([`Pipeline::with_cache`]): asked
    /// before the gates, told of each answer ([`cached`]).
    pub cache: Option<CacheUse>,
}

impl<T: Transport> Pipeline<T> {
    /// A pipeline whose window starts at one request (a probe) when some limit is to be learned
    /// from the server, and fully open otherwise.
    pub fn new(
        transport: T,
        limits: Limits,
        settings: PipelineSettings,
        stats: Arc<Stats>,
        control: Arc<Control>,
        costing: Arc<Costing>,
    ) -> Pipeline<T> {
        let window = Window::new(settings.concurrency, limits.learns());
        let first_answers = Arc::new(FirstAnswers::new(settings.first_answers));
        let pipeline = Pipeline {
            first_answers,
            cache: None,
            transport,
            limits,
            window,
            settings,
            stats,
            control,
            costing,
        };
        pipeline.publish();
        pipeline
    }

    /// Publishes the limits in force to the shared stats (progress display, checkpoint).
    fn publish(&self) -> InForce {
        let (rpm, tpm) = self.limits.in_force();
        let (current, max) = self.window.size();
        let narrow = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let now = InForce {
            rpm,
            tpm,
            concurrency: WindowInForce {
                current: narrow(current),
                max: narrow(max),
            },
        };
        *self.stats.in_force.lock().unwrap_or_else(PoisonError::into_inner) = now;
        now
    }

    /// Sends every pending row, returns when all are settled or the run has stopped and drained.
    pub async fn run(self: Arc<Self>, store: StoreHandle) {
        let (rows_tx, mut rows_rx) = mpsc::channel::<Group>(PAGE);
        // The feeder ends when the store has no more pending rows (dropping `rows_tx`, which ends
        // the dispatch loop below), or when dispatch stops.
        let grouper = (self.settings.endpoint.family().max_rows_per_request() > 1)
            .then(|| Grouper::new(self.settings.endpoint.family(), self.settings.rows_per_request));
        let feeder = tokio::spawn(feed(
            store.clone(),
            rows_tx,
            Arc::clone(&self.control),
            grouper,
            self.cache.clone(),
        ));

        // One permit per request in progress (a row, or a group of rows joined into one
        // request); a task holds its permit through its retries. Twice
        // the window's ceiling, so that rows waiting out a retry do not leave the wire idle;
        // what is on the wire is bounded by the window (at most `concurrency`).
        let permits = Arc::new(Semaphore::new(self.settings.concurrency.saturating_mul(2)));
        let tracker = TaskTracker::new();
        let stop = self.control.stop.clone();
        loop {
            let row = tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                row = rows_rx.recv() => match row {
                    Some(row) => row,
                    None => break,
                },
            };
            let permit = tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                permit = Arc::clone(&permits).acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break, // the semaphore is never closed; kept total for clarity
                },
            };
            let pipeline = Arc::clone(&self);
            let store = store.clone();
            // The row counts in the guard from now, before its task first runs.
            let guard = self.first_answers.row();
            tracker.spawn(async move {
                pipeline.process_row(row, &store, permit, guard).await;
            });
        }
        drop(rows_rx);
        // Every row is handed out: parked rows may now be all the guard will hear.
        self.first_answers.exhausted();
        let _ = feeder.await;
        tracker.close();
        let control = Arc::clone(&self.control);
        let drain = self.settings.drain_timeout;
        tokio::select! {
            _ = tracker.wait() => {}
            _ = async {
                control.stop.cancelled().await;
                tokio::time::sleep(drain).await;
            } => {
                tracing::warn!("requests still on the wire after {drain:?}; abandoning them (they go back to pending)");
                control.abort.cancel();
                tracker.wait().await;
            }
        }
    }
}

/// What an answered attempt comes to in the checkpoint's `attempts` table.
fn attempt_record(
    verdict: &Verdict,
    started_at: i64,
    latency_ms: u32,
    changed: bool,
    in_force: InForce,
    cost_nanos: u64,
) -> Attempt {
    let (status, class, tokens) = match verdict {
        Verdict::Done(c) => {
            let u = &c.usage;
            let tokens = Tokens {
                prompt: u.prompt_tokens,
                completion: u.completion_tokens,
                cached: u.cached_tokens,
                reasoning: u.reasoning_tokens,
            };
            (Some(200), None, Some(tokens))
        }
        Verdict::Retry {
            status, rate_limited, ..
        } => {
            let class = match status {
                _ if *rate_limited => class::RATE_LIMITED,
                None => class::NO_ANSWER,
                Some(200..=299) => class::BAD_BODY,
                Some(_) => class::SERVER,
            };
            (*status, Some(class), None)
        }
        Verdict::RowFailed { status, .. } => (Some(*status), Some(class::REFUSED), None),
        Verdict::Stop { status, .. } => (Some(*status), Some(class::STOP), None),
    };
    Attempt {
        started_at,
        latency_ms,
        status,
        class,
        wait_ms: None,
        paused: false,
        window: in_force.concurrency.current,
        limits: changed.then_some((in_force.rpm.limit, in_force.tpm.limit)),
        tokens,
        cost_nanos,
    }
}

/// How many unusable answers (valid JSON, no usable completion: see [`crate::api::BadBody`]) a
/// row gets before it fails: each one is billed, and the server will most likely repeat it.
const MAX_UNUSABLE: u32 = 2;

/// Tokens a request is charged under a TPM limit: its prompt plus `max_tokens` × `n`.
fn request_tokens(family: &dyn promptmill_core::family::ApiFamily, body: &[u8]) -> u32 {
    match std::str::from_utf8(body).map(|b| family.measure(b)) {
        Ok(Ok((cost, _))) => u32::try_from(cost.total()).unwrap_or(u32::MAX),
        // The body is our own JSON; a parse failure here cannot happen.
        _ => 0,
    }
}

/// Claims pending rows page by page and hands them to the dispatcher, in input order: one row
/// at a time, or with a `grouper` in the groups it makes. With a `cache`, each page is looked
/// up in it first, and a row it has an answer for goes alone, with the answer.
async fn feed(
    store: StoreHandle,
    rows: mpsc::Sender<Group>,
    control: Arc<Control>,
    mut grouper: Option<Grouper>,
    cache: Option<CacheUse>,
) {
    let mut after = 0;
    loop {
        let page = tokio::select! {
            biased;
            _ = control.stop.cancelled() => return,
            page = store.claim(after, PAGE) => page,
        };
        let page = match page {
            Ok(p) if p.is_empty() => {
                if let Some(last) = grouper.as_mut().and_then(Grouper::take) {
                    let _ = rows.send(last).await;
                }
                return;
            }
            Ok(p) => p,
            Err(e) => {
                control.abort(StopReason::Checkpoint(format!("{e:#}")));
                return;
            }
        };
        after = page.last().map(|r| r.seq).unwrap_or(after);
        let mut hits = match &cache {
            Some(c) => c.look_up(&page).await.into_iter(),
            None => Vec::new().into_iter(),
        };
        for row in page {
            let group = match (hits.next().flatten(), &mut grouper) {
                (Some(answer), _) => Group::cached(row, answer),
                (None, None) => Group::one(row),
                (None, Some(g)) => match g.push(row) {
                    Some(closed) => closed,
                    None => continue,
                },
            };
            if rows.send(group).await.is_err() {
                return;
            }
        }
    }
}

pub mod adaptive;
mod cached;
pub mod first_answers;
pub(crate) mod group;
mod row;
mod settle;
mod structured;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_first_answers;
#[cfg(test)]
mod tests_limits;
