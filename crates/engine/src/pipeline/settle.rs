//! What a row's answer comes to: the verdict acted on (the row ends, or waits out its retry
//! delay, or pauses every worker when a limit is spent), and the row's outcome counted and
//! recorded through the writer. The attempt itself is `row.rs`.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::api::{StopCause, Transport, Verdict};
use crate::stats::Stats;
use crate::store::writer::{Outcome, OutcomeKind, StoreHandle};
use promptmill_core::retry::{Hint, HINT_CAP};

use super::row::{Answered, Flow, RowRun};
use super::{Pipeline, StopReason, MAX_UNUSABLE};

impl<T: Transport> Pipeline<T> {
    /// Acts on the verdict: the row ends (`Err`) or waits out its retry delay (`Ok`).
    pub(super) async fn next_step<'p>(&'p self, r: &mut RowRun<'p>, answered: Answered) -> Flow<()> {
        let Answered {
            verdict,
            spent,
            gives_up,
        } = answered;
        match verdict {
            Verdict::Done(c) => self.judge_answer(r, c),
            Verdict::RowFailed { status, message } => Err(OutcomeKind::Failed {
                error: format!("HTTP {status}: {message}"),
                status: Some(status),
            }),
            Verdict::Stop {
                status,
                message,
                cause,
            } => {
                self.control.abort(match cause {
                    StopCause::Credentials => StopReason::Auth { status, message },
                    StopCause::Quota => StopReason::Quota { message },
                });
                Err(OutcomeKind::Unfinished)
            }
            Verdict::Retry {
                reason,
                status,
                wait,
                rate_limited,
                ..
            } => {
                if rate_limited {
                    Stats::add(&self.stats.http_429, 1);
                }
                if r.unusable >= MAX_UNUSABLE {
                    return Err(OutcomeKind::Failed {
                        error: format!(
                            "not asked again after {} unusable answers (each billed); last: {reason}",
                            r.unusable
                        ),
                        status,
                    });
                }
                if gives_up {
                    return Err(OutcomeKind::Failed {
                        error: format!("gave up after {} attempts; last: {reason}", r.attempts),
                        status,
                    });
                }
                self.retry_wait(r, &reason, wait, rate_limited, spent).await
            }
        }
    }

    /// Waits before the row's next attempt: the server's hint, the backoff, or — when a limit
    /// is spent — a pause that holds every worker.
    async fn retry_wait(
        &self,
        r: &mut RowRun<'_>,
        reason: &str,
        wait: Option<Duration>,
        rate_limited: bool,
        spent: Option<Duration>,
    ) -> Flow<()> {
        let hint = wait.map(Hint::new);
        let capped = hint.and_then(|h| h.explain());
        if let Some(why) = &capped {
            tracing::info!("row {}: {why}", r.id);
        }
        let delay = match spent {
            // A spent limit holds every worker: the server's hint, else the time the headers
            // say the limit needs to have room again.
            Some(refill) => {
                let pause = hint.map_or(refill.min(HINT_CAP), |h| h.wait);
                self.limits.pause_for(pause);
                pause
            }
            // Anything else delays this row only; repeated trouble narrows the window.
            None => {
                let rng = r.rng.get_or_insert_with(|| SmallRng::from_rng(&mut rand::rng()));
                self.settings.backoff.delay(r.attempts, wait, rate_limited, rng)
            }
        };
        if let Some(last) = r.tries.last_mut() {
            last.wait_ms = Some(u32::try_from(delay.as_millis()).unwrap_or(u32::MAX));
            last.paused = spent.is_some();
        }
        tracing::info!(row = %r.id, attempt = r.attempts, "retrying in {delay:.1?}: {reason}");
        // Counted while it waits, so the progress line can say why rows stand still.
        let _capped = hint
            .filter(|_| capped.is_some())
            .map(|h| self.stats.capped_wait(h.asked));
        tokio::select! {
            biased;
            _ = self.control.stop.cancelled() => Err(OutcomeKind::Unfinished),
            _ = tokio::time::sleep(delay) => Ok(()),
        }
    }

    /// Counts the row's outcome and records it through the writer; a held slot is released
    /// once the outcome is durable.
    pub(super) async fn settle(&self, r: RowRun<'_>, kind: OutcomeKind, store: &StoreHandle) {
        self.count(&r.id, &kind);
        let outcome = Outcome {
            seq: r.seq,
            attempts: r.attempts,
            kind,
            tries: r.tries,
        };
        let recorded = match r.held {
            Some(slot) => {
                let recorded = store.finish_durable(outcome).await;
                drop(slot);
                recorded
            }
            None => store.finish(outcome).await,
        };
        if recorded.is_err() {
            self.control
                .abort(StopReason::Checkpoint("the checkpoint writer stopped".into()));
        }
    }
}
