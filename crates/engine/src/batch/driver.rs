//! The batch driver: plans parts from the pending rows, submits them through the job's
//! [`BatchService`] (keeping the prompt tokens in the provider's queue under
//! `--batch-max-enqueued-tokens`), polls every open batch with a backing-off interval, and
//! collects each finished batch's results into the checkpoint. It talks only to the service
//! trait; no protocol is known here.
//!
//! Each step is recorded before the next is taken (see `store/parts.rs`), and a step that may
//! have happened without its answer being recorded — an upload or a batch creation cut off by a
//! crash or a dropped connection — is looked up at the provider before it is tried again. So a
//! part's rows are uploaded once and paid for once, however often the process dies.
//!
//! `submit.rs` takes a part through its stages, `content.rs` makes its requests (several rows a
//! line for a family that joins rows), `collect.rs` polls and collects, `show.rs` prints.

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use super::calls::{Calls, Failure, Step};
use super::service::BatchService;
use crate::budget::Costing;
use crate::store::{stage, PartRecord, Store};
use promptmill_core::job::settings::BatchSettings;
use promptmill_core::job::JobRecord;

mod collect;
mod content;
mod show;
mod submit;

/// The poll interval grows by half while no batch changes, up to this many times the first one.
const MAX_BACKOFF_FACTOR: u32 = 10;

/// What the driver needs beyond the job.
#[derive(Debug, Clone)]
pub struct DriverSettings {
    pub batch: BatchSettings,
    /// Submit and return without waiting for the batches.
    pub no_wait: bool,
    /// Plan and submit new parts. False: only collect the batches already submitted, and settle
    /// half-submitted parts without submitting them (`cancel`, `--finish-live`, a job switched
    /// to `--mode live`).
    pub submit: bool,
    /// Names the job in the upload file names and the batch metadata.
    pub tag: String,
    /// Where downloads are spooled before they are read (next to the checkpoint).
    pub spool: PathBuf,
    pub quiet: bool,
    /// `--max-response-size`: the longest line of a downloaded result file that is read; a
    /// longer one is unreadable (its row is settled as missing), without being held in memory.
    pub max_line: u64,
    /// A live bar on a terminal (with the status lines printed above it); plain lines otherwise.
    pub bar: bool,
    /// `--schema`: answers are judged when collected; those that break it send their rows
    /// into a follow-up batch (up to `--schema-retries` times), never the whole batch again.
    pub structured: Option<promptmill_core::schema::Structured>,
}

/// How a drive ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// Every part is collected and no row is pending (or, without `submit`, every open part is
    /// collected).
    Finished,
    /// `--no-wait`: everything is submitted; batches are still open.
    Submitted { open: usize },
    /// Stopped by a signal; batches may still be open at the provider.
    Interrupted,
    /// The API refused the key.
    Auth { status: u16, message: String },
    /// The account is out of credit.
    Quota { message: String },
    /// A batch-service call was answered with a 3xx (never followed): the base URL is wrong.
    Redirected {
        message: String,
        location: Option<String>,
    },
    /// Rows are pending, and not one more fits in what is left of `--max-cost`; `spent` is what
    /// the done rows cost.
    Budget { limit: f64, spent: f64 },
}

pub struct Driver<'a, S: BatchService> {
    service: &'a S,
    store: &'a mut Store,
    job: &'a JobRecord,
    settings: DriverSettings,
    /// The calls made, and the run's stop signal every wait gives way to.
    calls: Calls,
    /// Prices the parts' worst cases against the job's `--max-cost`.
    costing: Option<&'a Costing>,
    /// The job's rows done, failed (invalid included) and in total, outside open batches: from
    /// the counts the run started with (`with_counts`), else read from the table at the first
    /// status line; then kept up to date by the plans' refusals and the collections, so that no
    /// poll counts the whole table.
    settled: Option<(u64, u64, u64)>,
    /// The last plan found no pending row at all (none fitted, none is left): the job has nothing
    /// more to submit, which `nothing_open` then knows without counting the table.
    drained: bool,
    /// The lines the last plan encoded, with the part it made: its upload's file, so that a
    /// row is encoded once (see `submit.rs`, `planned_content`). Taken by that upload; a part
    /// planned by an earlier run is built from its rows.
    planned: Option<(i64, PlannedLines)>,
    /// Where planning the next part starts looking (see `Store::plan_part`).
    plan_after: i64,
    /// The job's rows settled, on a terminal.
    bar: Option<indicatif::ProgressBar>,
    /// Batch statuses as last printed, to print changes only.
    shown: std::collections::HashMap<i64, (String, u64, u64)>,
}

/// Batch input lines a plan encoded, one after another, and for each its row and where it ends.
#[derive(Default)]
struct PlannedLines {
    lines: Vec<u8>,
    ends: Vec<(i64, usize)>,
}

/// What one poll of a batch found.
enum Polled {
    Same,
    Changed,
    /// It had ended, and its results are collected.
    Collected,
}

/// What one round of polls found.
enum Round {
    /// A batch was collected: its room in the queue can be used at once.
    Collected,
    Changed,
    Same,
}

impl<'a, S: BatchService> Driver<'a, S> {
    pub fn new(
        service: &'a S,
        store: &'a mut Store,
        job: &'a JobRecord,
        mut settings: DriverSettings,
        stop: CancellationToken,
    ) -> Self {
        // The flags only lower the provider's own limits.
        let (rows, bytes) = job.provider.batch_limits();
        settings.batch.max_rows = settings.batch.max_rows.min(rows);
        settings.batch.max_bytes = settings.batch.max_bytes.min(bytes);
        Driver {
            service,
            store,
            job,
            settings,
            calls: Calls::new(stop),
            costing: None,
            settled: None,
            drained: false,
            planned: None,
            plan_after: 0,
            bar: None,
            shown: Default::default(),
        }
    }

    /// The `custom_id` row `seq` (id `id`) is sent under: the row id, or, for a service that
    /// names rows by their place in the input (`BatchService::ids_by_seq`), `promptmill-rows-S-S`.
    pub(super) fn line_id<'i>(&self, id: &'i str, seq: i64) -> std::borrow::Cow<'i, str> {
        if self.service.ids_by_seq() {
            super::grouped::group_id(seq, seq).into()
        } else {
            id.into()
        }
    }

    /// Holds new parts to the job's `--max-cost`, pricing their worst cases with `costing`.
    pub fn with_budget(mut self, costing: &'a Costing) -> Self {
        self.costing = Some(costing);
        self
    }

    /// Starts from the rows' states as the caller just counted them, instead of counting the
    /// table again at the first status line.
    pub fn with_counts(mut self, counts: &crate::store::Counts) -> Self {
        self.settled = Some((counts.done, counts.failed + counts.invalid, counts.total));
        self
    }

    /// The job's rows done, failed (invalid included) and in total, as the driver keeps them
    /// (`None` before they were counted once).
    pub fn settled(&self) -> Option<(u64, u64, u64)> {
        self.settled
    }

    /// API calls made so far, and how many of them were attempts after a failure.
    pub fn counters(&self) -> (u64, u64) {
        self.calls.counters()
    }

    /// Submits, waits and collects until the job has nothing left for the Batch API.
    pub async fn run(&mut self) -> anyhow::Result<Ending> {
        // A collection rewrites a part's rows in one transaction: its log is copied into the
        // database beside the next part's download and recording, not inside its commit.
        let background = self.store.start_background_checkpoint();
        let ending = self.drive().await;
        self.store.stop_background_checkpoint(background);
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        match ending {
            Ok(ending) => Ok(ending),
            Err(Failure::Auth { status, message }) => Ok(Ending::Auth { status, message }),
            Err(Failure::Quota { message }) => Ok(Ending::Quota { message }),
            Err(Failure::Redirected { message, location }) => Ok(Ending::Redirected { message, location }),
            Err(Failure::Interrupted) => Ok(Ending::Interrupted),
            Err(Failure::Other(e)) => Err(e),
        }
    }

    /// The plot: settle what a crash left half-submitted, submit what has room, and wait for
    /// the open batches, until nothing is open.
    async fn drive(&mut self) -> Step<Ending> {
        let first = self.settings.batch.poll_interval;
        let mut interval = first;
        loop {
            self.settle_half_submitted().await?;
            if self.settings.submit {
                self.submit_new().await?;
            }
            let open: Vec<PartRecord> = self.store.parts()?.into_iter().filter(|p| p.is_open()).collect();
            if open.is_empty() {
                return self.nothing_open();
            }
            if self.settings.no_wait {
                self.show_all(&open);
                return Ok(Ending::Submitted { open: open.len() });
            }
            self.start_bar();
            // A collected batch made room in the queue: plan and submit at once. Otherwise wait;
            // the interval starts over when anything moved, and grows while nothing does.
            interval = match self.poll_all(&open).await? {
                Round::Collected => {
                    interval = first;
                    continue;
                }
                Round::Changed => first,
                Round::Same => interval.mul_f64(1.5).min(first * MAX_BACKOFF_FACTOR),
            };
            self.calls.sleep(interval).await?;
        }
    }

    /// Parts a crash left half-submitted come first, in order. Without `submit` (cancel,
    /// --finish-live) they are settled instead: a batch that was made is kept, anything else
    /// released. A part never uploaded that is over the limits in force now (lowered after the
    /// provider refused it as too large) is released, to be planned again.
    async fn settle_half_submitted(&mut self) -> Step<()> {
        for part in self.store.parts()? {
            if !part.is_open() || part.stage == stage::SUBMITTED {
                continue;
            }
            let b = &self.settings.batch;
            if !self.settings.submit {
                self.unsubmit(part.part).await?;
            } else if part.stage == stage::PLANNED && (part.rows > b.max_rows || part.bytes > b.max_bytes) {
                let rows = self.store.release(part.part)?;
                self.say(format!(
                    "batch {}: over the limits now in force; its {rows} rows are planned again",
                    part.part
                ));
            } else {
                self.submit(part.part).await?;
            }
        }
        Ok(())
    }

    /// New parts, while rows are pending and the queue and the budget have room.
    async fn submit_new(&mut self) -> Step<()> {
        while let Some(part) = self.plan()? {
            if self.calls.stopped() {
                return Err(Failure::Interrupted);
            }
            self.submit(part.part).await?;
        }
        Ok(())
    }

    /// Nothing is open: finished, or stopped by the budget.
    fn nothing_open(&self) -> Step<Ending> {
        if self.drained || !self.settings.submit {
            return Ok(Ending::Finished);
        }
        let pending = self.store.counts()?.pending;
        if pending == 0 {
            return Ok(Ending::Finished);
        }
        // Rows are pending, nothing is in the queue, and yet no part could be planned: only the
        // budget stops that.
        if let (Some(limit), true) = (self.job.max_cost, self.costing.is_some()) {
            return Ok(Ending::Budget {
                limit,
                spent: self.spent()?,
            });
        }
        Err(Failure::Other(anyhow::anyhow!(
            "{pending} rows are pending but none could be put in a batch"
        )))
    }

    /// Polls every open part once.
    async fn poll_all(&mut self, open: &[PartRecord]) -> Step<Round> {
        let (mut changed, mut collected) = (false, false);
        for part in open {
            if self.calls.stopped() {
                return Err(Failure::Interrupted);
            }
            match self.poll(part).await? {
                Polled::Collected => collected = true,
                Polled::Changed => changed = true,
                Polled::Same => {}
            }
        }
        Ok(if collected {
            Round::Collected
        } else if changed {
            Round::Changed
        } else {
            Round::Same
        })
    }

    /// Prompt tokens in the provider's queue: those of the submitted parts not finished yet.
    fn enqueued(&self) -> Step<u64> {
        Ok(self
            .store
            .parts()?
            .iter()
            .filter(|p| p.is_open() && !p.status.as_deref().is_some_and(|s| self.service.has_ended(s)))
            .map(|p| p.tokens)
            .sum())
    }

    /// Dollars of `--max-cost` left for new parts: the budget less what the done rows cost and
    /// the worst case of the parts not collected yet. `None` without a budget.
    fn budget_room(&self) -> Step<Option<f64>> {
        let (Some(_), Some(limit)) = (self.costing, self.job.max_cost) else {
            return Ok(None);
        };
        let reserved: f64 = self
            .store
            .parts()?
            .iter()
            .filter(|p| p.is_open())
            .map(|p| p.worst_cost)
            .sum();
        Ok(Some(limit - self.spent()? - reserved))
    }

    /// What the job's done rows cost.
    fn spent(&self) -> Step<f64> {
        Ok(crate::budget::job_cost(self.store, self.job)?.unwrap_or(0.0))
    }
}
