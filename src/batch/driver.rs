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
use crate::config::BatchSettings;
use crate::job::{Endpoint, JobRecord};
use crate::provider::Provider;
use crate::retry::Backoff;
use crate::store::{stage, Candidate, Measured, PartLimits, PartRecord, Store};

/// Attempts of one API call that fails transiently before the run gives up (and can be resumed).
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

    /// Plans the next part if rows are pending and the queue and the budget have room for at
    /// least one.
    fn plan(&mut self) -> Step<Option<PartRecord>> {
        let cap = self.settings.batch.max_enqueued_tokens;
        let room = match cap {
            Some(cap) => {
                let enqueued = self.enqueued()?;
                if enqueued >= cap {
                    return Ok(None);
                }
                Some((cap - enqueued, enqueued == 0))
            }
            None => None,
        };
        let money = self.budget_room()?;
        if money.is_some_and(|m| m <= 0.0) {
            return Ok(None);
        }
        let endpoint = self.job.endpoint;
        let max_bytes = self.settings.batch.max_bytes;
        let tag = self.settings.tag.clone();
        let costing = self.costing.filter(|_| money.is_some());
        let fixed = self.job.spec.model.clone();
        let provider = &self.job.provider;
        let mut measure = |c: &Candidate<'_>| -> Result<Measured, String> {
            let size = input_line(c.id, c.request, endpoint, provider).map(|l| l.len() as u64)?;
            if size > max_bytes {
                return Err(format!(
                    "its Batch input line is {size} bytes, more than --batch-max-bytes ({max_bytes})"
                ));
            }
            let mut m = Measured {
                size,
                ..Measured::default()
            };
            if room.is_some() || costing.is_some() {
                let (cost, model) = endpoint
                    .family()
                    .measure(c.request)
                    .map_err(|e| format!("the request does not parse: {e}"))?;
                m.tokens = cost.prompt_tokens;
                if let Some(costing) = costing {
                    let model = fixed.as_deref().or(model.as_deref()).unwrap_or("");
                    m.cost = costing.batch_worst(model, &cost);
                }
            }
            Ok(m)
        };
        let limits = PartLimits {
            max_rows: self.settings.batch.max_rows,
            max_bytes,
            max_tokens: room.map(|(r, _)| r),
            alone_may_exceed: room.is_none_or(|(_, empty)| empty),
            max_cost: money,
        };
        let part = self.store.plan_part(
            limits,
            &mut self.plan_after,
            |n| format!("promptmill-{tag}-part{n:04}.jsonl"),
            &mut measure,
        )?;
        Ok(part)
    }

    /// Takes a part from wherever it stands to `submitted`, one recorded stage at a time. A
    /// stage that failed without an answer is looked up at the provider before it is tried again.
    async fn submit(&mut self, part: i64) -> Step<()> {
        let mut tries = 0;
        loop {
            let p = self.store.part(part)?;
            let step = match p.stage.as_str() {
                stage::UPLOADING => self.find_upload(&p).await,
                stage::PLANNED => self.upload(&p).await,
                stage::CREATING => self.find_batch(&p).await,
                stage::UPLOADED => self.create(&p).await,
                _ => return Ok(()),
            };
            match step {
                Ok(()) => tries = 0,
                Err(Failure::Other(e)) if is_transient(&e) && tries + 1 < MAX_TRIES => {
                    tries += 1;
                    let wait = Backoff::default().delay(tries, retry_after(&e), false, &mut rand::rng());
                    tracing::info!("{e:#}; looking and trying again in {wait:?}");
                    self.sleep(wait).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Settles a part that is not submitted without submitting it: if its batch turns out to
    /// exist it is kept (and collected like any other); else its upload, if any, is deleted and
    /// its rows go back to pending.
    async fn unsubmit(&mut self, part: i64) -> Step<()> {
        let mut p = self.store.part(part)?;
        if p.stage == stage::CREATING {
            self.find_batch(&p).await?;
            p = self.store.part(part)?;
        }
        if p.stage == stage::UPLOADING {
            self.find_upload(&p).await?;
            p = self.store.part(part)?;
        }
        match p.stage.as_str() {
            stage::SUBMITTED => return Ok(()),
            stage::UPLOADED => {
                if let Some(id) = &p.file_id {
                    if let Err(e) = self.call(|| self.api.delete_file(id)).await {
                        // The file name is never used again, so a leftover upload is only clutter.
                        let e = match e {
                            Failure::Other(e) => e,
                            other => return Err(other),
                        };
                        self.say(format!(
                            "batch {part}: could not delete its unused upload {id}: {e:#}"
                        ));
                    }
                }
            }
            _ => {}
        }
        let rows = self.store.release(part)?;
        self.say(format!(
            "batch {part}: never submitted; its {rows} rows are pending again"
        ));
        Ok(())
    }

    /// `planned` → `uploading` → `uploaded`. A refusal (4xx) puts the part back to `planned`;
    /// no answer, a 5xx or an unreadable success leaves it `uploading`, to be looked for.
    async fn upload(&mut self, part: &PartRecord) -> Step<()> {
        let content = self.content(part.part)?;
        if content.len() as u64 != part.bytes {
            return Err(Failure::Other(anyhow::anyhow!(
                "batch {}: its file is {} bytes where {} were planned; the checkpoint does not match its rows",
                part.part,
                content.len(),
                part.bytes
            )));
        }
        self.store.set_stage(part.part, stage::UPLOADING)?;
        self.count_call(false);
        let answer = self
            .unless_stopped(self.api.upload(&part.filename, content))
            .await?;
        match answer {
            Ok(file) => {
                self.store.record_file(part.part, &file.id)?;
                self.say(format!(
                    "batch {}: uploaded {} ({} rows, {}) as {}",
                    part.part,
                    part.filename,
                    part.rows,
                    crate::estimate::report::bytes(part.bytes),
                    file.id
                ));
                Ok(())
            }
            Err(e) if e.may_have_taken_effect() => Err(e.into()),
            Err(e) => {
                self.store.set_stage(part.part, stage::PLANNED)?;
                Err(e.into())
            }
        }
    }

    /// `uploaded` → `creating` → `submitted`. A refusal (4xx) puts the part back to `uploaded`
    /// (or `planned` when the file is gone); no answer, a 5xx or an unreadable success leaves it
    /// `creating`, to be looked for: a batch created twice is paid for twice.
    async fn create(&mut self, part: &PartRecord) -> Step<()> {
        let mut metadata = serde_json::Map::new();
        metadata.insert("promptmill_job".into(), self.settings.tag.clone().into());
        metadata.insert("promptmill_part".into(), part.part.to_string().into());
        let request = CreateBatch {
            input_file_id: part.file_id.clone().unwrap_or_default(),
            endpoint: self.job.provider.batch_endpoint(self.job.endpoint),
            completion_window: "24h",
            metadata,
        };
        self.store.set_stage(part.part, stage::CREATING)?;
        self.count_call(false);
        let answer = self.unless_stopped(self.api.create(&request)).await?;
        match answer {
            Ok(batch) => {
                self.store.record_batch(part.part, &batch)?;
                self.say(format!(
                    "batch {}: submitted as {} ({} rows, model {})",
                    part.part,
                    batch.id,
                    part.rows,
                    if part.model.is_empty() {
                        "(none)"
                    } else {
                        &part.model
                    }
                ));
                Ok(())
            }
            Err(e) if e.may_have_taken_effect() => Err(e.into()),
            Err(e) if e.status() == Some(404) => {
                // The upload is gone (deleted or expired at the provider): upload it again.
                self.say(format!(
                    "batch {}: its file {} is gone; uploading it again",
                    part.part, request.input_file_id
                ));
                self.store.forget_file(part.part)?;
                Ok(())
            }
            Err(e) => {
                self.store.set_stage(part.part, stage::UPLOADED)?;
                Err(e.into())
            }
        }
    }

    /// The part's input file, rebuilt from its rows.
    fn content(&self, part: i64) -> anyhow::Result<Bytes> {
        let mut out = Vec::new();
        let endpoint = self.job.endpoint;
        self.store.part_rows(part, |id, request| {
            let line = input_line(id, request, endpoint, &self.job.provider).map_err(anyhow::Error::msg)?;
            out.extend_from_slice(&line);
            Ok(())
        })?;
        Ok(Bytes::from(out))
    }

    /// After an upload that got no recorded answer: an upload under the part's file name is
    /// reused when it is complete, and deleted when not; the part is `uploaded` or `planned`.
    async fn find_upload(&mut self, part: &PartRecord) -> Step<()> {
        let mut after: Option<String> = None;
        let mut keep: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self.call(|| self.api.list_files(after.as_deref())).await?;
            for f in &page.data {
                if f.filename.as_deref() != Some(part.filename.as_str()) {
                    continue;
                }
                if keep.is_none() && f.bytes == Some(part.bytes) {
                    keep = Some(f.id.clone());
                } else {
                    self.call(|| self.api.delete_file(&f.id)).await?;
                    self.say(format!(
                        "batch {}: deleted an incomplete earlier upload {}",
                        part.part, f.id
                    ));
                }
            }
            after = page
                .last_id
                .clone()
                .or_else(|| page.data.last().map(|f| f.id.clone()));
            if !page.has_more || page.data.is_empty() {
                break;
            }
        }
        match keep {
            Some(id) => {
                self.say(format!(
                    "batch {}: reusing the upload {id} an earlier run made",
                    part.part
                ));
                self.store.record_file(part.part, &id)?;
            }
            None => self.store.forget_file(part.part)?,
        }
        Ok(())
    }

    /// After a batch creation that got no recorded answer: the provider's batch of the part's
    /// file is recorded if it made one; else the part goes back to `uploaded`.
    async fn find_batch(&mut self, part: &PartRecord) -> Step<()> {
        let file_id = part.file_id.clone().unwrap_or_default();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self.call(|| self.api.list_batches(after.as_deref())).await?;
            if let Some(b) = page
                .data
                .iter()
                .find(|b| b.input_file_id.as_deref() == Some(file_id.as_str()))
            {
                self.store.record_batch(part.part, b)?;
                self.say(format!(
                    "batch {}: found {}, created by an earlier attempt",
                    part.part, b.id
                ));
                return Ok(());
            }
            after = page
                .last_id
                .clone()
                .or_else(|| page.data.last().map(|b| b.id.clone()));
            // Newest first: past batches made before the part was planned (less an hour for
            // clocks that disagree), it cannot be further down.
            let oldest = page.data.iter().filter_map(|b| b.created_at).min();
            let planned = part.created_at / 1000 - 3600;
            if !page.has_more || page.data.is_empty() || oldest.is_some_and(|t| t < planned) {
                break;
            }
        }
        self.store.set_stage(part.part, stage::UPLOADED)?;
        Ok(())
    }

    /// Reads one open part's batch; collects it when it has ended. Returns whether anything
    /// changed.
    async fn poll(&mut self, part: &PartRecord) -> Step<Polled> {
        let Some(id) = part.batch_id.clone() else {
            return Ok(Polled::Same);
        };
        let batch = self.call(|| self.api.retrieve(&id)).await?;
        self.store.record_batch(part.part, &batch)?;
        let changed = self.show(part.part, &batch);
        if batch.status.is_terminal() {
            self.collect(part.part, &batch).await?;
            return Ok(Polled::Collected);
        }
        Ok(if changed { Polled::Changed } else { Polled::Same })
    }

    /// Prints a batch's status line when it changed since the last one.
    fn show(&mut self, part: i64, batch: &Batch) -> bool {
        let c = batch.counts();
        let now = (batch.status.as_str().to_string(), c.completed, c.failed);
        if self.shown.get(&part) == Some(&now) {
            return false;
        }
        self.shown.insert(part, now);
        // The job's rows: those already collected, plus what the open batches report.
        // Counting the rows reads the whole table: done once, then kept up to date by collections.
        if self.settled.is_none() {
            self.settled = self
                .store
                .counts()
                .ok()
                .map(|c| (c.done, c.failed + c.invalid, c.total));
        }
        let (mut done, mut failed, total) = self.settled.unwrap_or_default();
        let mut open = 0;
        for p in self
            .store
            .parts()
            .unwrap_or_default()
            .iter()
            .filter(|p| p.is_open())
        {
            done += p.completed;
            failed += p.failed;
            open += 1;
        }
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(done + failed);
            bar.set_message(format!(
                "{done} done, {failed} failed · {open} batches open · polling every {} or more",
                humantime::format_duration(self.settings.batch.poll_interval)
            ));
        }
        self.say(format!(
            "batch {part} ({}): {} — {} of {} done, {} failed | job: {} of {} rows done, {} failed",
            batch.id,
            batch.status.as_str(),
            c.completed,
            c.total,
            c.failed,
            done,
            total,
            failed
        ));
        true
    }

    fn show_all(&mut self, open: &[PartRecord]) {
        for p in open {
            self.say(format!(
                "batch {}: {} ({}), {} rows",
                p.part,
                p.batch_id.as_deref().unwrap_or("-"),
                p.status.as_deref().unwrap_or(p.stage.as_str()),
                p.rows
            ));
        }
    }

    /// Downloads a finished batch's output and error files and records every row of the part:
    /// done, failed with the line's error, or failed because it is in neither file.
    async fn collect(&mut self, part: i64, batch: &Batch) -> Step<()> {
        let endpoint = self.job.endpoint;
        for e in batch.error_list() {
            self.say(format!("batch {part} ({}): error: {e}", batch.id));
        }
        let mut spooled = Vec::new();
        for file in [&batch.output_file_id, &batch.error_file_id]
            .into_iter()
            .flatten()
        {
            spooled.push(self.download(part, file).await?);
        }
        let mut collection = self.store.collect(part)?;
        let mut unreadable = 0u64;
        for spool in &spooled {
            unreadable +=
                super::results::read(spool.path(), &mut collection, endpoint, self.settings.max_line)?;
        }
        let reason = missing_reason(batch);
        let counts = collection.finish(&reason)?;
        if let Some((done, failed, _)) = &mut self.settled {
            *done += counts.done;
            *failed += counts.failed + counts.missing;
        }
        // The spooled downloads are removed.
        drop(spooled);
        if unreadable > 0 {
            self.say(format!(
                "batch {part}: {unreadable} lines of its result files could not be read"
            ));
        }
        if counts.strays > 0 {
            self.say(format!(
                "batch {part}: {} result lines named no row of this batch; ignored",
                counts.strays
            ));
        }
        self.say(format!(
            "batch {part} ({}) {}: collected {} done, {} failed{}",
            batch.id,
            batch.status.as_str(),
            counts.done,
            counts.failed,
            if counts.missing > 0 {
                format!(", {} not run ({reason})", counts.missing)
            } else {
                String::new()
            }
        ));
        Ok(())
    }

    /// Spools file `id` to disk next to the checkpoint, in a file of its own
    /// (`.DB.XXXXXX.partN.download`, see `files`), removed when the returned handle is dropped.
    async fn download(&self, part: i64, id: &str) -> Step<tempfile::NamedTempFile> {
        let suffix = format!(".part{part}.download");
        crate::files::remove_stale(&self.settings.spool, &suffix);
        let mut tries = 0;
        loop {
            tries += 1;
            self.count_call(tries > 1);
            let spool = crate::files::create_beside(&self.settings.spool, &suffix).map_err(|e| {
                anyhow::anyhow!(
                    "{}: cannot create a file for the download beside the checkpoint: {e}",
                    self.settings.spool.display()
                )
            })?;
            let path = spool.path().to_path_buf();
            let mut out = std::io::BufWriter::new(spool.as_file());
            let result = self
                .api
                .download(id, |chunk| {
                    out.write_all(chunk)
                        .map_err(|e| anyhow::anyhow!("{}: cannot write the download: {e}", path.display()))
                })
                .await;
            let result = result.and_then(|()| {
                out.flush()
                    .map_err(|e| anyhow::anyhow!("{}: cannot write the download: {e}", path.display()))
            });
            drop(out);
            match result {
                Ok(()) => return Ok(spool),
                Err(e) => {
                    // Dropping `spool` removes the partial download.
                    let transient = e.downcast_ref::<ApiError>().is_some_and(ApiError::is_transient);
                    if !transient || tries >= MAX_TRIES {
                        return Err(e.into());
                    }
                    let wait = Backoff::default().delay(tries, None, false, &mut rand::rng());
                    tracing::info!("{e:#}; trying again in {wait:?}");
                    self.sleep(wait).await?;
                }
            }
        }
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

/// A row's Batch input line, newline included: the stored request as it is, except that a
/// provider which runs a batch on a deployment (Azure) gets that deployment as `body.model`.
pub fn input_line(
    id: &str,
    request: &str,
    endpoint: Endpoint,
    provider: &Provider,
) -> Result<Vec<u8>, String> {
    let unreadable = |e: serde_json::Error| format!("the request does not parse: {e}");
    let rebuilt;
    let body: &serde_json::value::RawValue = match provider.batch_model() {
        None => serde_json::from_str(request).map_err(unreadable)?,
        Some(model) => {
            let mut body: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(request).map_err(unreadable)?;
            body.insert("model".into(), model.into());
            rebuilt = serde_json::value::to_raw_value(&body).map_err(|e| e.to_string())?;
            &rebuilt
        }
    };
    let mut line = serde_json::to_vec(&InputLine {
        custom_id: id,
        method: "POST",
        url: provider.batch_endpoint(endpoint),
        body,
    })
    .map_err(|e| e.to_string())?;
    line.push(b'\n');
    Ok(line)
}

/// Why a row is in neither file of a finished batch.
fn missing_reason(batch: &Batch) -> String {
    match batch.status {
        BatchStatus::Failed => {
            let errors: Vec<String> = batch.error_list().iter().take(3).map(|e| e.to_string()).collect();
            if errors.is_empty() {
                format!("batch {} failed", batch.id)
            } else {
                format!("batch {} failed: {}", batch.id, errors.join("; "))
            }
        }
        BatchStatus::Expired => format!("batch {} expired before this row ran", batch.id),
        BatchStatus::Cancelled => format!("batch {} was cancelled before this row ran", batch.id),
        _ => format!(
            "batch {} ended {} without a result for this row",
            batch.id,
            batch.status.as_str()
        ),
    }
}
