//! Collecting: polling an open part's batch, showing its status line when it changed, and
//! downloading and reading its output and error files into the checkpoint when it ended.

use super::*;

impl<'a, A: BatchApi> Driver<'a, A> {
    /// Reads one open part's batch; collects it when it has ended. Returns whether anything
    /// changed.
    pub(super) async fn poll(&mut self, part: &PartRecord) -> Step<Polled> {
        let Some(id) = part.batch_id.clone() else {
            return Ok(Polled::Same);
        };
        let batch = self.call(|| self.api.retrieve(&id)).await?;
        self.store.record_batch(part.part, &batch.seen())?;
        let changed = self.show(part.part, &batch);
        if batch.status.is_terminal() {
            self.collect(part.part, &batch).await?;
            return Ok(Polled::Collected);
        }
        Ok(if changed { Polled::Changed } else { Polled::Same })
    }

    /// Prints a batch's status line when it changed since the last one.
    pub(super) fn show(&mut self, part: i64, batch: &Batch) -> bool {
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

    pub(super) fn show_all(&mut self, open: &[PartRecord]) {
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
    pub(super) async fn collect(&mut self, part: i64, batch: &Batch) -> Step<()> {
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
                crate::batch::results::read(spool.path(), &mut collection, endpoint, self.settings.max_line)?;
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
    pub(super) async fn download(&self, part: i64, id: &str) -> Step<tempfile::NamedTempFile> {
        let suffix = format!(".part{part}.download");
        promptmill_core::files::remove_stale(&self.settings.spool, &suffix);
        let mut tries = 0;
        loop {
            tries += 1;
            self.count_call(tries > 1);
            let spool =
                promptmill_core::files::create_beside(&self.settings.spool, &suffix).map_err(|e| {
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
