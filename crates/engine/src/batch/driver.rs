//! The Batch API driver: plans parts from the pending rows, uploads and submits them (keeping
//! the prompt tokens in the provider's queue under `--batch-max-enqueued-tokens`), polls every
//! open batch with a backing-off interval, and collects each finished batch's output and error
//! files into the checkpoint.
//!
//! Each step is recorded before the next is taken (see `store/parts.rs`), and a step that may
//! have happened without its answer being recorded — an upload or a batch creation cut off by a
//! crash or a dropped connection — is looked up at the provider before it is tried again. So a
//! part's rows are uploaded once and paid for once, however often the process dies.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::client::{ApiError, BatchApi, CreateBatch};
use super::wire::{Batch, BatchStatus, InputLine};
use crate::budget::Costing;
use crate::store::{stage, Candidate, Measured, PartLimits, PartRecord, Store};
use promptmill_core::job::settings::BatchSettings;
use promptmill_core::job::{Endpoint, JobRecord};
use promptmill_core::provider::Provider;
use promptmill_core::retry::Backoff;

/// Attempts of one API call that fails transiently before the run gives up (and can be resumed).
mod collect;
mod submit;

pub use submit::input_line;

const MAX_TRIES: u32 = 8;
/// The poll interval grows by half while no batch changes, up to this many times the first one.
const MAX_BACKOFF_FACTOR: u32 = 10;
/// Pages of the provider's lists searched for an upload or batch a crash left unrecorded.
const MAX_PAGES: usize = 100;

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
    /// A Files or Batches call was answered with a 3xx (never followed): the base URL is wrong.
    Redirected {
        message: String,
        location: Option<String>,
    },
    /// Rows are pending, and not one more fits in what is left of `--max-cost`; `spent` is what
    /// the done rows cost.
    Budget { limit: f64, spent: f64 },
}

pub struct Driver<'a, A: BatchApi> {
    api: &'a A,
    store: &'a mut Store,
    job: &'a JobRecord,
    settings: DriverSettings,
    stop: CancellationToken,
    /// Prices the parts' worst cases against the job's `--max-cost`.
    costing: Option<&'a Costing>,
    /// API calls made, and calls that were attempts after a failure.
    calls: std::cell::Cell<u64>,
    retries: std::cell::Cell<u64>,
    /// The job's rows done, failed (invalid included) and in total, outside open batches; `None`
    /// until read, and again after each collection.
    settled: Option<(u64, u64, u64)>,
    /// Where planning the next part starts looking (see `Store::plan_part`).
    plan_after: i64,
    /// The job's rows settled, on a terminal.
    bar: Option<indicatif::ProgressBar>,
    /// Batch statuses as last printed, to print changes only.
    shown: std::collections::HashMap<i64, (String, u64, u64)>,
}

/// What one poll of a batch found.
enum Polled {
    Same,
    Changed,
    /// It had ended, and its results are collected.
    Collected,
}

/// An API call failed for good; `Auth` ends the drive with a message instead of an error.
enum Failure {
    Auth {
        status: u16,
        message: String,
    },
    Quota {
        message: String,
    },
    Redirected {
        message: String,
        location: Option<String>,
    },
    Interrupted,
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        match e.downcast_ref::<ApiError>() {
            Some(api @ ApiError::Status { status, .. }) if api.is_auth() => Failure::Auth {
                status: *status,
                message: api.to_string(),
            },
            Some(ApiError::Quota { message, .. }) => Failure::Quota {
                message: message.clone(),
            },
            Some(api @ ApiError::Redirect { location, .. }) => Failure::Redirected {
                message: api.to_string(),
                location: location.clone(),
            },
            _ => Failure::Other(e),
        }
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::from(anyhow::Error::from(e))
    }
}

type Step<T> = Result<T, Failure>;

impl<'a, A: BatchApi> Driver<'a, A> {
    pub fn new(
        api: &'a A,
        store: &'a mut Store,
        job: &'a JobRecord,
        settings: DriverSettings,
        stop: CancellationToken,
    ) -> Self {
        Driver {
            api,
            store,
            job,
            settings,
            stop,
            costing: None,
            calls: Default::default(),
            retries: Default::default(),
            settled: None,
            plan_after: 0,
            bar: None,
            shown: Default::default(),
        }
    }

    fn start_bar(&mut self) {
        if !self.settings.bar || self.settings.quiet || self.bar.is_some() {
            return;
        }
        let bar = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        let style = indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} rows\n  {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("█▉▊▋▌▍▎▏ ");
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(200));
        self.bar = Some(bar);
    }

    /// Holds new parts to the job's `--max-cost`, pricing their worst cases with `costing`.
    pub fn with_budget(mut self, costing: &'a Costing) -> Self {
        self.costing = Some(costing);
        self
    }

    fn say(&self, msg: impl std::fmt::Display) {
        match &self.bar {
            Some(bar) => bar.println(format!("promptmill: {msg}")),
            None if !self.settings.quiet => eprintln!("promptmill: {msg}"),
            None => {}
        }
    }

    /// API calls made so far, and how many of them were attempts after a failure.
    pub fn counters(&self) -> (u64, u64) {
        (self.calls.get(), self.retries.get())
    }

    fn count_call(&self, retry: bool) {
        self.calls.set(self.calls.get() + 1);
        if retry {
            self.retries.set(self.retries.get() + 1);
        }
    }

    /// Submits, waits and collects until the job has nothing left for the Batch API.
    pub async fn run(&mut self) -> anyhow::Result<Ending> {
        let ending = self.drive().await;
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

    async fn drive(&mut self) -> Step<Ending> {
        let first = self.settings.batch.poll_interval;
        let mut interval = first;
        loop {
            // Parts a crash left half-submitted come first, in order; then new ones, while the
            // queue has room.
            // Without `submit` (cancel, --finish-live) they are settled instead: a batch that
            // was made is kept, anything else released.
            // A part never uploaded that is over the limits in force now (lowered after the
            // provider refused it as too large) is released, to be planned again.
            for part in self.store.parts()? {
                if !part.is_open() || part.stage == stage::SUBMITTED {
                    continue;
                }
                let b = &self.settings.batch;
                if !self.settings.submit {
                    self.unsubmit(part.part).await?;
                } else if part.stage == stage::PLANNED && (part.rows > b.max_rows || part.bytes > b.max_bytes)
                {
                    let rows = self.store.release(part.part)?;
                    self.say(format!(
                        "batch {}: over the limits now in force; its {rows} rows are planned again",
                        part.part
                    ));
                } else {
                    self.submit(part.part).await?;
                }
            }
            if self.settings.submit {
                while let Some(part) = self.plan()? {
                    if self.stop.is_cancelled() {
                        return Err(Failure::Interrupted);
                    }
                    self.submit(part.part).await?;
                }
            }
            let open: Vec<PartRecord> = self.store.parts()?.into_iter().filter(|p| p.is_open()).collect();
            if open.is_empty() {
                let pending = self.store.counts()?.pending;
                if pending == 0 || !self.settings.submit {
                    return Ok(Ending::Finished);
                }
                // Rows are pending, nothing is in the queue, and yet no part could be planned:
                // only the budget stops that.
                if let (Some(limit), true) = (self.job.max_cost, self.costing.is_some()) {
                    return Ok(Ending::Budget {
                        limit,
                        spent: self.spent()?,
                    });
                }
                return Err(Failure::Other(anyhow::anyhow!(
                    "{pending} rows are pending but none could be put in a batch"
                )));
            }
            if self.settings.no_wait {
                self.show_all(&open);
                return Ok(Ending::Submitted { open: open.len() });
            }
            self.start_bar();
            let (mut changed, mut collected) = (false, false);
            for part in &open {
                if self.stop.is_cancelled() {
                    return Err(Failure::Interrupted);
                }
                match self.poll(part).await? {
                    Polled::Collected => collected = true,
                    Polled::Changed => changed = true,
                    Polled::Same => {}
                }
            }
            // A collected batch made room in the queue: plan and submit at once. Otherwise wait;
            // the interval starts over when anything moved, and grows while nothing does.
            if collected {
                interval = first;
                continue;
            }
            interval = if changed {
                first
            } else {
                interval.mul_f64(1.5).min(first * MAX_BACKOFF_FACTOR)
            };
            self.sleep(interval).await?;
        }
    }

    /// Awaits an upload or a create unless the run is stopped first. Dropping one midway is safe:
    /// the part's stage (`uploading`, `creating`) makes the next run look before trying again.
    async fn unless_stopped<T>(&self, call: impl std::future::Future<Output = T>) -> Step<T> {
        tokio::select! {
            answer = call => Ok(answer),
            _ = self.stop.cancelled() => Err(Failure::Interrupted),
        }
    }

    async fn sleep(&self, d: Duration) -> Step<()> {
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(()),
            _ = self.stop.cancelled() => Err(Failure::Interrupted),
        }
    }

    /// Prompt tokens in the provider's queue: those of the submitted parts not finished yet.
    fn enqueued(&self) -> Step<u64> {
        Ok(self
            .store
            .parts()?
            .iter()
            .filter(|p| {
                p.is_open()
                    && !p
                        .status
                        .as_deref()
                        .and_then(BatchStatus::parse)
                        .is_some_and(|s| s.is_terminal())
            })
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

    /// Calls the API, trying again after transient failures (no answer, 429, 5xx) with backoff.
    /// Only idempotent calls, or calls whose effect the caller looks for first, go through here.
    async fn call<T, F, Fut>(&self, mut f: F) -> Step<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        let mut tries = 0;
        loop {
            tries += 1;
            self.count_call(tries > 1);
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_transient() && tries < MAX_TRIES => {
                    let wait = Backoff::default().delay(
                        tries,
                        e.retry_after(),
                        e.status() == Some(429),
                        &mut rand::rng(),
                    );
                    tracing::info!("{e}; trying again in {wait:?}");
                    self.sleep(wait).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

fn is_transient(e: &anyhow::Error) -> bool {
    e.downcast_ref::<ApiError>().is_some_and(ApiError::is_transient)
}

fn retry_after(e: &anyhow::Error) -> Option<Duration> {
    e.downcast_ref::<ApiError>().and_then(ApiError::retry_after)
}
