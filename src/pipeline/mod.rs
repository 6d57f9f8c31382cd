//! The live pipeline: pending rows in, one request per row (with retries) out, under the limits.
//!
//! There is one worker loop, [`process_row`], for every configuration: limits, pauses, budgets
//! and shutdown are objects it awaits, never variants of the loop. The shape of a run:
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

use std::borrow::Cow;
use std::sync::{Arc, OnceLock, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::{classify, RateHeaders, StopCause, Transport, Verdict};
use crate::budget::Costing;
use crate::job::Endpoint;
use crate::limits::{InForce, Limits, WindowInForce};
use crate::retry::{Backoff, Hint, HINT_CAP};
use crate::stall::Stalls;
use crate::stats::Stats;
use crate::store::attempts::{class, Attempt, Tokens};
use crate::store::writer::{Claimed, Outcome, OutcomeKind, StoreHandle};

use adaptive::{Signal, Window};
use first_answers::{FirstAnswers, Judgement, Symptom};

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
        let (rows_tx, mut rows_rx) = mpsc::channel::<Claimed>(PAGE);
        // The feeder ends when the store has no more pending rows (dropping `rows_tx`, which ends
        // the dispatch loop below), or when dispatch stops.
        let feeder = tokio::spawn(feed(store.clone(), rows_tx, Arc::clone(&self.control)));

        // One permit per row in progress; a task holds its permit through its retries. Twice
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

    /// The worker loop: one row, every attempt it needs, until it is settled or the run stops.
    /// `permit` is the row's dispatcher permit, held until it is settled (or parked by the
    /// first-answers guard).
    /// `guard` is the row's handle in the first-answers guard; dropped, it ends the row there.
    async fn process_row(
        &self,
        row: Claimed,
        store: &StoreHandle,
        permit: OwnedSemaphorePermit,
        mut guard: first_answers::Row,
    ) {
        let mut permit = Some(permit);
        let control = &self.control;
        let stats = &self.stats;
        // When the job is priced: the request's model, and with a budget its worst case (which
        // needs its tokens counted). The body is our own JSON: a parse failure cannot happen,
        // and would only leave the row unpriced.
        let priced = if !self.costing.active() {
            None
        } else if self.costing.limit().is_some() {
            crate::tokens::measure(&row.body).ok().map(|(cost, model)| {
                (
                    Some(cost),
                    Cow::Owned(model.map(Cow::into_owned).unwrap_or_default()),
                )
            })
        } else {
            // One model for the whole job (the usual case) is borrowed, not copied per row.
            let model = match self.costing.sole_model() {
                Some(m) => Cow::Borrowed(m),
                None => Cow::Owned(crate::tokens::body_model(&row.body).unwrap_or_default()),
            };
            Some((None, model))
        };
        let body = Bytes::from(row.body);
        // Counted once a TPM limit is in force, which may begin mid-run (learned from the server).
        let mut tokens: Option<u32> = None;
        // Made on the first retry only: most rows never need one.
        let mut rng: Option<SmallRng> = None;
        let mut attempts: u32 = 0;
        // Paid-for answers that were valid JSON but no usable completion: asked again once only.
        let mut unusable: u32 = 0;
        let mut held = None;
        // What each attempt came to, recorded with the outcome (for the run report).
        let mut tries: Vec<Attempt> = Vec::with_capacity(1);
        let kind = loop {
            // A slot in the window first (it bounds requests on the wire), then the buckets.
            let slot = tokio::select! {
                biased;
                _ = control.stop.cancelled() => break OutcomeKind::Unfinished,
                slot = self.window.acquire() => slot,
            };
            let Ok(slot) = slot else {
                break OutcomeKind::Unfinished; // the window's semaphore is never closed
            };
            if tokens.is_none() && self.limits.counts_tokens() {
                tokens = Some(request_tokens(&body));
            }
            let cost = tokens.unwrap_or(0);
            let admitted = tokio::select! {
                biased;
                _ = control.stop.cancelled() => break OutcomeKind::Unfinished,
                admitted = self.limits.admit(cost) => admitted,
            };
            if let Err(too_large) = admitted {
                break OutcomeKind::Failed {
                    error: too_large.to_string(),
                    status: None,
                };
            }
            let reservation = match &priced {
                Some((None, model)) => Some(self.costing.track(model)),
                // Waits while it fits only once the requests on the wire settle.
                Some((Some(cost), model)) => match tokio::select! {
                    biased;
                    _ = control.stop.cancelled() => break OutcomeKind::Unfinished,
                    r = self.costing.reserve(model, cost) => r,
                } {
                    Ok(r) => Some(r),
                    Err(over) => {
                        control.stop(StopReason::Budget {
                            limit: over.limit,
                            needed: over.needed,
                        });
                        break OutcomeKind::Unfinished;
                    }
                },
                None => None,
            };
            attempts += 1;
            Stats::add(&stats.requests, 1);
            if attempts > 1 {
                Stats::add(&stats.retries, 1);
            }
            Stats::add(&stats.in_flight, 1);
            let sent = Instant::now();
            let mark = self.settings.stalls.mark();
            let started_at = crate::store::now_ms();
            let result = tokio::select! {
                biased;
                _ = control.abort.cancelled() => None,
                r = self.transport.send(body.clone()) => Some(r),
            };
            let latency = sent.elapsed();
            let stalled = self.settings.stalls.since(mark);
            stats.in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            let latency_ms = u32::try_from(latency.as_millis()).unwrap_or(u32::MAX);
            let Some(result) = result else {
                if let Some(r) = reservation {
                    self.costing.settle(r, None);
                }
                tries.push(Attempt {
                    started_at,
                    latency_ms,
                    class: Some(class::ABANDONED),
                    ..Attempt::default()
                });
                break OutcomeKind::Unfinished;
            };
            let mut changed = false;
            let rate = match &result {
                Ok(reply) => {
                    tracing::debug!(row = %row.id, attempt = attempts, status = reply.status, "response");
                    changed = self.limits.observe(&reply.rate);
                    self.window.answered();
                    reply.rate
                }
                Err(e) => {
                    tracing::debug!(row = %row.id, attempt = attempts, "no response: {e}");
                    RateHeaders::default()
                }
            };
            let symptom = Symptom::of(&result);
            let verdict = classify(self.settings.endpoint, result);
            if let Verdict::Retry { unusable: true, .. } = verdict {
                unusable += 1;
            }
            let gives_up = attempts >= self.settings.max_attempts || unusable >= MAX_UNUSABLE;
            let mut cost_nanos = 0;
            if let Some(r) = reservation {
                let usage = match &verdict {
                    Verdict::Done(c) => Some(c.usage.billed()),
                    _ => None,
                };
                // The ledger is the one account of money; the display and summary read it.
                let paid = self.costing.settle(r, usage);
                cost_nanos = (paid * 1e9).round() as u64;
            }
            // For a 429: whether its headers say a limit is spent (then everyone waits, below).
            let spent = match &verdict {
                Verdict::Retry {
                    rate_limited: true, ..
                } => self.limits.spent(&rate, cost),
                _ => None,
            };
            let signal = match &verdict {
                // Our own process stood still: neither the latency nor a timeout is the server's.
                _ if !stalled.is_zero() => Signal::Neutral,
                Verdict::Done(_) => Signal::Success { latency },
                Verdict::Retry {
                    status: Some(200..=299),
                    ..
                } => Signal::Neutral, // a malformed body says nothing about load
                Verdict::Retry { .. } if spent.is_none() => Signal::Overload,
                _ => Signal::Neutral,
            };
            self.window.observe(&slot, signal);
            let mut slot = Some(slot);
            match guard.judge(symptom) {
                Judgement::Proceed => {}
                Judgement::Stop(trip) => {
                    control.abort(StopReason::Misdirected(trip));
                    break OutcomeKind::Unfinished;
                }
                Judgement::Wait => {
                    // Parked: the slot and the permit go to rows whose answers the guard needs.
                    drop(slot.take());
                    drop(permit.take());
                    let tripped = tokio::select! {
                        biased;
                        _ = control.stop.cancelled() => break OutcomeKind::Unfinished,
                        tripped = guard.wait() => tripped,
                    };
                    if let Some(trip) = tripped {
                        control.abort(StopReason::Misdirected(trip));
                        break OutcomeKind::Unfinished;
                    }
                }
            }
            // A row's last answer keeps its place on the wire until its outcome is committed
            // (below), so that what a kill can cost stays within --concurrency requests: those on
            // the wire, and those answered but not yet durable.
            let last = match &verdict {
                Verdict::Done(_) | Verdict::RowFailed { .. } => true,
                Verdict::Retry { .. } => gives_up,
                Verdict::Stop { .. } => false,
            };
            if last && self.settings.hold_until_committed {
                held = slot;
            } else {
                drop(slot);
            }
            let in_force = self.publish();
            if changed {
                tracing::info!("limits in force: {in_force}");
            }
            tries.push(attempt_record(
                &verdict, started_at, latency_ms, changed, in_force, cost_nanos,
            ));
            match verdict {
                Verdict::Done(c) => break OutcomeKind::Done(c),
                Verdict::RowFailed { status, message } => {
                    break OutcomeKind::Failed {
                        error: format!("HTTP {status}: {message}"),
                        status: Some(status),
                    }
                }
                Verdict::Stop {
                    status,
                    message,
                    cause,
                } => {
                    control.abort(match cause {
                        StopCause::Credentials => StopReason::Auth { status, message },
                        StopCause::Quota => StopReason::Quota { message },
                    });
                    break OutcomeKind::Unfinished;
                }
                Verdict::Retry {
                    reason,
                    status,
                    wait,
                    rate_limited,
                    ..
                } => {
                    if rate_limited {
                        Stats::add(&stats.http_429, 1);
                    }
                    if unusable >= MAX_UNUSABLE {
                        break OutcomeKind::Failed {
                            error: format!(
                                "not asked again after {unusable} unusable answers (each billed); last: {reason}"
                            ),
                            status,
                        };
                    }
                    if gives_up {
                        break OutcomeKind::Failed {
                            error: format!("gave up after {attempts} attempts; last: {reason}"),
                            status,
                        };
                    }
                    let hint = wait.map(Hint::new);
                    let capped = hint.and_then(|h| h.explain());
                    if let Some(why) = &capped {
                        tracing::info!("row {}: {why}", row.id);
                    }
                    let delay = match spent {
                        // A spent limit holds every worker: the server's hint, else the time the
                        // headers say the limit needs to have room again.
                        Some(refill) => {
                            let pause = hint.map_or(refill.min(HINT_CAP), |h| h.wait);
                            self.limits.pause_for(pause);
                            pause
                        }
                        // Anything else delays this row only; repeated trouble narrows the window.
                        None => {
                            let rng = rng.get_or_insert_with(|| SmallRng::from_rng(&mut rand::rng()));
                            self.settings.backoff.delay(attempts, wait, rate_limited, rng)
                        }
                    };
                    if let Some(last) = tries.last_mut() {
                        last.wait_ms = Some(u32::try_from(delay.as_millis()).unwrap_or(u32::MAX));
                        last.paused = spent.is_some();
                    }
                    tracing::info!(row = %row.id, attempt = attempts, "retrying in {delay:.1?}: {reason}");
                    // Counted while it waits, so the progress line can say why rows stand still.
                    let _capped = hint
                        .filter(|_| capped.is_some())
                        .map(|h| stats.capped_wait(h.asked));
                    tokio::select! {
                        biased;
                        _ = control.stop.cancelled() => break OutcomeKind::Unfinished,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        };
        match &kind {
            OutcomeKind::Done(c) => {
                Stats::add(&stats.done, 1);
                Stats::add(&stats.prompt_tokens, c.usage.prompt_tokens);
                Stats::add(&stats.completion_tokens, c.usage.completion_tokens);
                Stats::add(&stats.total_tokens, c.usage.total_tokens);
            }
            OutcomeKind::Failed { error, .. } => {
                Stats::add(&stats.failed, 1);
                tracing::info!(row = %row.id, "failed: {error}");
            }
            OutcomeKind::Unfinished => {}
        }
        let outcome = Outcome {
            seq: row.seq,
            attempts,
            kind,
            tries,
        };
        let recorded = match held {
            Some(slot) => {
                let recorded = store.finish_durable(outcome).await;
                drop(slot);
                recorded
            }
            None => store.finish(outcome).await,
        };
        if recorded.is_err() {
            control.abort(StopReason::Checkpoint("the checkpoint writer stopped".into()));
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
fn request_tokens(body: &[u8]) -> u32 {
    match std::str::from_utf8(body).map(crate::tokens::request_cost) {
        Ok(Ok(cost)) => u32::try_from(cost.total()).unwrap_or(u32::MAX),
        // The body is our own JSON; a parse failure here cannot happen.
        _ => 0,
    }
}

/// Claims pending rows page by page and hands them to the dispatcher, in input order.
async fn feed(store: StoreHandle, rows: mpsc::Sender<Claimed>, control: Arc<Control>) {
    let mut after = 0;
    loop {
        let page = tokio::select! {
            biased;
            _ = control.stop.cancelled() => return,
            page = store.claim(after, PAGE) => page,
        };
        let page = match page {
            Ok(p) if p.is_empty() => return,
            Ok(p) => p,
            Err(e) => {
                control.abort(StopReason::Checkpoint(format!("{e:#}")));
                return;
            }
        };
        after = page.last().map(|r| r.seq).unwrap_or(after);
        for row in page {
            if rows.send(row).await.is_err() {
                return;
            }
        }
    }
}

pub mod adaptive;
pub mod first_answers;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_first_answers;
#[cfg(test)]
mod tests_limits;
