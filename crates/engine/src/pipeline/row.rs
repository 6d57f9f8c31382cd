//! The worker loop for one row: every attempt it needs, until it is settled or the run stops.
//!
//! One attempt is three steps, each a function of its own so that a new feature has one place
//! to go:
//!
//! - [`Pipeline::pass_gates`] (feed): a slot in the adaptive window (it bounds requests on the
//!   wire), then the limiter (RPM/TPM, pauses), then the budget's reservation;
//! - [`Pipeline::attempt`]: the request on the wire, its answer classified into a [`Verdict`],
//!   and what it says told to the limiter, the window, the ledger and the first-answers guard;
//! - `next_step` (in `settle.rs`): the verdict acted on — the row ends (done, failed, the run
//!   stops) or it waits out its retry delay.
//!
//! `settle` (in `settle.rs`) then records the row's outcome through the writer. Each step returns a
//! [`Flow`]: `Err(kind)` ends the row's loop with that outcome.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::SmallRng;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use crate::api::{classify, RateHeaders, Reply, SendError, Transport, Verdict};
use crate::budget::Reservation;
use crate::stats::Stats;
use crate::store::attempts::{class, Attempt};
use crate::store::writer::{Claimed, OutcomeKind, StoreHandle};
use promptmill_core::tokens::RequestCost;

use super::adaptive::{Signal, Slot};
use super::first_answers::{self, Judgement, Symptom};
use super::group::Group;
use super::{attempt_record, request_tokens, Pipeline, StopReason, MAX_UNUSABLE};

/// `Err(kind)`: the row's loop ends, with this outcome.
pub(super) type Flow<T> = Result<T, OutcomeKind>;

/// What one row carries from attempt to attempt.
pub(super) struct RowRun<'p> {
    pub(super) seq: i64,
    pub(super) id: String,
    pub(super) body: Bytes,
    /// When the job is priced: the request's model, and with a budget its worst case.
    pub(super) priced: Option<(Option<RequestCost>, Cow<'p, str>)>,
    /// Counted once a TPM limit is in force, which may begin mid-run (learned from the server).
    pub(super) tokens: Option<u32>,
    /// Made on the first retry only: most rows never need one.
    pub(super) rng: Option<SmallRng>,
    pub(super) attempts: u32,
    /// Paid-for answers that were valid JSON but no usable completion: asked again once only.
    pub(super) unusable: u32,
    /// `--schema`: answers asked again because they broke the schema, and the usage of those
    /// answers (the row's own adds to it).
    pub(super) reasked: u32,
    pub(super) paid: promptmill_core::family::Usage,
    /// The last answer's window slot, kept until the outcome is durable.
    pub(super) held: Option<Slot<'p>>,
    /// What each attempt came to, recorded with the outcome (for the run report).
    pub(super) tries: Vec<Attempt>,
    /// The dispatcher permit, held until the row is settled (or parked by the guard).
    pub(super) permit: Option<OwnedSemaphorePermit>,
    pub(super) guard: first_answers::Row,
    /// For a family that joins rows into one request: every row of it, in order (`body` is the
    /// joined request); empty for a one-row request.
    pub(super) group: Vec<Claimed>,
}

/// A row past the gates: its window slot, what the limiter charged, its budget reservation.
struct Admitted<'p> {
    slot: Slot<'p>,
    cost: u32,
    reservation: Option<Reservation>,
}

/// An answered attempt: its verdict, and what the retry decision needs of it.
pub(super) struct Answered {
    pub(super) verdict: Verdict,
    /// For a 429 whose headers say a limit is spent: how long until it has room again.
    pub(super) spent: Option<Duration>,
    pub(super) gives_up: bool,
}

impl<T: Transport> Pipeline<T> {
    /// One row, every attempt it needs, until it is settled or the run stops. `permit` is the
    /// row's dispatcher permit; `guard` its handle in the first-answers guard (dropped, it ends
    /// the row there).
    pub(super) async fn process_row(
        &self,
        group: Group,
        store: &StoreHandle,
        permit: OwnedSemaphorePermit,
        guard: first_answers::Row,
    ) {
        let family = self.settings.endpoint.family();
        // A row the cache answered never meets the gates (nor a joined request).
        if let Some(answer) = group.hit.as_deref().and_then(|raw| self.cached_answer(raw)) {
            return self.settle_cached(&group.first, answer, store).await;
        }
        let (row, members) = if family.max_rows_per_request() > 1 {
            match self.join(group) {
                Ok(joined) => joined,
                Err((members, error)) => return self.fail_unjoined(members, error, store).await,
            }
        } else {
            (group.first, Vec::new())
        };
        let priced = self.price(&row.body);
        let mut r = RowRun {
            group: members,
            seq: row.seq,
            id: row.id,
            body: Bytes::from(row.body),
            priced,
            tokens: None,
            rng: None,
            attempts: 0,
            unusable: 0,
            reasked: 0,
            paid: Default::default(),
            held: None,
            tries: Vec::with_capacity(1),
            permit: Some(permit),
            guard,
        };
        let kind = loop {
            let step = async {
                let admitted = self.pass_gates(&mut r).await?;
                let answered = self.attempt(&mut r, admitted).await?;
                self.next_step(&mut r, answered).await
            };
            if let Err(kind) = step.await {
                break kind;
            }
        };
        if r.group.is_empty() {
            self.settle(r, kind, store).await;
        } else {
            self.settle_group(r, kind, store).await;
        }
    }

    /// When the job is priced: the request's model, and with a budget its worst case (which
    /// needs its tokens counted). The body is our own JSON: a parse failure cannot happen, and
    /// would only leave the row unpriced.
    pub(super) fn price(&self, body: &str) -> Option<(Option<RequestCost>, Cow<'_, str>)> {
        if !self.costing.active() {
            None
        } else if self.costing.limit().is_some() {
            self.settings
                .endpoint
                .family()
                .measure(body)
                .ok()
                .map(|(cost, model)| {
                    (
                        Some(cost),
                        Cow::Owned(model.map(Cow::into_owned).unwrap_or_default()),
                    )
                })
        } else {
            // One model for the whole job (the usual case) is borrowed, not copied per row.
            let model = match self.costing.sole_model() {
                Some(m) => Cow::Borrowed(m),
                None => Cow::Owned(promptmill_core::tokens::body_model(body).unwrap_or_default()),
            };
            Some((None, model))
        }
    }

    /// Feed: a slot in the window first (it bounds requests on the wire), then the limiter's
    /// buckets, then the budget.
    async fn pass_gates<'p>(&'p self, r: &mut RowRun<'p>) -> Flow<Admitted<'p>> {
        let control = &self.control;
        let slot = tokio::select! {
            biased;
            _ = control.stop.cancelled() => return Err(OutcomeKind::Unfinished),
            slot = self.window.acquire() => slot,
        };
        // The window's semaphore is never closed.
        let slot = slot.map_err(|_| OutcomeKind::Unfinished)?;
        if r.tokens.is_none() && self.limits.counts_tokens() {
            r.tokens = Some(request_tokens(self.settings.endpoint.family(), &r.body));
        }
        let cost = r.tokens.unwrap_or(0);
        let admitted = tokio::select! {
            biased;
            _ = control.stop.cancelled() => return Err(OutcomeKind::Unfinished),
            admitted = self.limits.admit(cost) => admitted,
        };
        admitted.map_err(|too_large| OutcomeKind::Failed {
            error: too_large.to_string(),
            status: None,
        })?;
        let reservation = match &r.priced {
            Some((None, model)) => Some(self.costing.track(model)),
            // Waits while it fits only once the requests on the wire settle.
            Some((Some(worst), model)) => {
                let reserved = tokio::select! {
                    biased;
                    _ = control.stop.cancelled() => return Err(OutcomeKind::Unfinished),
                    r = self.costing.reserve(model, worst) => r,
                };
                match reserved {
                    Ok(r) => Some(r),
                    Err(over) => {
                        control.stop(StopReason::Budget {
                            limit: over.limit,
                            needed: over.needed,
                        });
                        return Err(OutcomeKind::Unfinished);
                    }
                }
            }
            None => None,
        };
        Ok(Admitted {
            slot,
            cost,
            reservation,
        })
    }

    /// The request on the wire and what its answer means, told to the limiter, the window, the
    /// ledger and the first-answers guard.
    async fn attempt<'p>(&'p self, r: &mut RowRun<'p>, gate: Admitted<'p>) -> Flow<Answered> {
        r.attempts += 1;
        let Sent {
            result,
            latency,
            stalled,
            started_at,
        } = self.send_once(r).await;
        let latency_ms = u32::try_from(latency.as_millis()).unwrap_or(u32::MAX);
        let Some(result) = result else {
            if let Some(reservation) = gate.reservation {
                self.costing.settle(reservation, None);
            }
            r.tries.push(Attempt {
                started_at,
                latency_ms,
                class: Some(class::ABANDONED),
                ..Attempt::default()
            });
            return Err(OutcomeKind::Unfinished);
        };
        let mut changed = false;
        let rate = match &result {
            Ok(reply) => {
                tracing::debug!(row = %r.id, attempt = r.attempts, status = reply.status, "response");
                changed = self.limits.observe(&reply.rate);
                self.window.answered();
                reply.rate
            }
            Err(e) => {
                tracing::debug!(row = %r.id, attempt = r.attempts, "no response: {e}");
                RateHeaders::default()
            }
        };
        let symptom = Symptom::of(&result);
        let verdict = classify(self.settings.endpoint.family(), result);
        if let Verdict::Retry { unusable: true, .. } = verdict {
            r.unusable += 1;
        }
        let gives_up = r.attempts >= self.settings.max_attempts || r.unusable >= MAX_UNUSABLE;
        let cost_nanos = self.account(gate.reservation, &verdict);
        // For a 429: whether its headers say a limit is spent (then everyone waits).
        let spent = match &verdict {
            Verdict::Retry {
                rate_limited: true, ..
            } => self.limits.spent(&rate, gate.cost),
            _ => None,
        };
        let signal = load_signal(&verdict, stalled, spent.is_some(), latency);
        self.window.observe(&gate.slot, signal);
        let slot = self.judge_first(r, gate.slot, symptom).await?;
        // A row's last answer keeps its place on the wire until its outcome is committed
        // (`settle`), so that what a kill can cost stays within --concurrency requests: those on
        // the wire, and those answered but not yet durable.
        let last = match &verdict {
            Verdict::Done(_) | Verdict::RowFailed { .. } => true,
            Verdict::Retry { .. } => gives_up,
            Verdict::Stop { .. } => false,
        };
        if last && self.settings.hold_until_committed {
            r.held = slot;
        } else {
            drop(slot);
        }
        let in_force = self.publish();
        if changed {
            tracing::info!("limits in force: {in_force}");
        }
        r.tries.push(attempt_record(
            &verdict, started_at, latency_ms, changed, in_force, cost_nanos,
        ));
        Ok(Answered {
            verdict,
            spent,
            gives_up,
        })
    }

    /// One request on the wire, unless the run is aborted first: counted in the stats, timed,
    /// and how long this process itself stood still meanwhile (which is no server's fault).
    async fn send_once(&self, r: &RowRun<'_>) -> Sent {
        let stats = &self.stats;
        Stats::add(&stats.requests, 1);
        if r.attempts > 1 {
            Stats::add(&stats.retries, 1);
        }
        Stats::add(&stats.in_flight, 1);
        let sent = Instant::now();
        let mark = self.settings.stalls.mark();
        let started_at = crate::store::now_ms();
        let result = tokio::select! {
            biased;
            _ = self.control.abort.cancelled() => None,
            r = self.transport.send(r.body.clone()) => Some(r),
        };
        let latency = sent.elapsed();
        let stalled = self.settings.stalls.since(mark);
        stats.in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        Sent {
            result,
            latency,
            stalled,
            started_at,
        }
    }

    /// Settles the attempt's reservation in the ledger (the one account of money; the display
    /// and summary read it); returns what it cost, in nanodollars.
    fn account(&self, reservation: Option<Reservation>, verdict: &Verdict) -> u64 {
        let Some(reservation) = reservation else {
            return 0;
        };
        let usage = match verdict {
            Verdict::Done(c) => Some(c.usage.billed()),
            _ => None,
        };
        let paid = self.costing.settle(reservation, usage);
        (paid * 1e9).round() as u64
    }

    /// Hands the answer to the first-answers guard; returns the slot unless the row was parked
    /// (then the slot and the permit went to rows whose answers the guard needs).
    async fn judge_first<'p>(
        &'p self,
        r: &mut RowRun<'p>,
        slot: Slot<'p>,
        symptom: Option<Symptom>,
    ) -> Flow<Option<Slot<'p>>> {
        let control = &self.control;
        match r.guard.judge(symptom) {
            Judgement::Proceed => Ok(Some(slot)),
            Judgement::Stop(trip) => {
                control.abort(StopReason::Misdirected(trip));
                Err(OutcomeKind::Unfinished)
            }
            Judgement::Wait => {
                drop(slot);
                drop(r.permit.take());
                let tripped = tokio::select! {
                    biased;
                    _ = control.stop.cancelled() => return Err(OutcomeKind::Unfinished),
                    tripped = r.guard.wait() => tripped,
                };
                match tripped {
                    Some(trip) => {
                        control.abort(StopReason::Misdirected(trip));
                        Err(OutcomeKind::Unfinished)
                    }
                    None => Ok(None),
                }
            }
        }
    }
}

/// A request as [`Pipeline::send_once`] saw it: its result (`None`: aborted before an answer),
/// its latency, how long the process stood still meanwhile, and when it started (ms).
struct Sent {
    result: Option<Result<Reply, SendError>>,
    latency: Duration,
    stalled: Duration,
    started_at: i64,
}

/// What an attempt says about the server's load, for the adaptive window.
fn load_signal(verdict: &Verdict, stalled: Duration, limit_spent: bool, latency: Duration) -> Signal {
    match verdict {
        // Our own process stood still: neither the latency nor a timeout is the server's.
        _ if !stalled.is_zero() => Signal::Neutral,
        Verdict::Done(_) => Signal::Success { latency },
        Verdict::Retry {
            status: Some(200..=299),
            ..
        } => Signal::Neutral, // a malformed body says nothing about load
        Verdict::Retry { .. } if !limit_spent => Signal::Overload,
        _ => Signal::Neutral,
    }
}
