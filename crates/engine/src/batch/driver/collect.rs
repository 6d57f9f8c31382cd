//! Collecting: polling an open part's batch, and when it ended downloading its results (OpenAI:
//! the output and error files) and reading them into the checkpoint.

use std::io::Write;

use super::*;
use crate::batch::calls::MAX_TRIES;
use crate::batch::service::{BatchView, End};
use crate::batch::ApiError;
use promptmill_core::retry::Backoff;

impl<'a, S: BatchService> Driver<'a, S> {
    /// Reads one open part's batch; collects it when it has ended. Returns whether anything
    /// changed.
    pub(super) async fn poll(&mut self, part: &PartRecord) -> Step<Polled> {
        let Some(id) = part.batch_id.clone() else {
            return Ok(Polled::Same);
        };
        let batch = self.calls.retried(|| self.service.poll(&id)).await?;
        self.store.record_batch(part.part, &batch.seen())?;
        let changed = self.show(part.part, &batch);
        if batch.ended().is_some() {
            self.collect(part.part, &batch).await?;
            return Ok(Polled::Collected);
        }
        Ok(if changed { Polled::Changed } else { Polled::Same })
    }

    /// Downloads a finished batch's results and records every row of the part: done, failed
    /// with its line's error, or failed because no line names it.
    pub(super) async fn collect(&mut self, part: i64, batch: &BatchView) -> Step<()> {
        let family = self.job.endpoint.family();
        for e in &batch.errors {
            self.say(format!("batch {part} ({}): error: {e}", batch.id));
        }
        let started = std::time::Instant::now();
        let mut spooled = Vec::new();
        for location in batch.results() {
            spooled.push(self.download(part, location).await?);
        }
        let downloaded = started.elapsed();
        let mut collection = self.store.collect(part)?;
        let mut unreadable = 0u64;
        for spool in &spooled {
            let reader = crate::batch::results::Reader {
                service: self.service,
                family,
                max_line: self.settings.max_line,
                structured: self.settings.structured.as_ref(),
            };
            unreadable += reader.read(spool.path(), &mut collection)?;
        }
        let reason = missing_reason(batch);
        let read = started.elapsed();
        let counts = collection.finish(&reason)?;
        tracing::debug!(
            "batch {part}: downloaded in {downloaded:?}, read and recorded by {read:?}, committed by {:?}",
            started.elapsed()
        );
        if let Some((done, failed, _)) = &mut self.settled {
            *done += counts.done;
            *failed += counts.failed + counts.missing;
        }
        // The spooled downloads are removed.
        drop(spooled);
        if counts.again > 0 {
            // Rows went back to pending: the next plan looks from the start for them.
            self.plan_after = 0;
            self.drained = false;
            self.say(format!(
                "batch {part}: {} answers broke the schema; their rows go into a follow-up batch",
                counts.again
            ));
        }
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
            batch.status,
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
            self.calls.count(tries > 1);
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
                .service
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
                    self.calls.sleep(wait).await?;
                }
            }
        }
    }
}

/// Why a row got no line of a finished batch.
fn missing_reason(batch: &BatchView) -> String {
    match batch.ended() {
        Some(End::Failed) => {
            let errors: Vec<String> = batch.errors.iter().take(3).map(|e| e.to_string()).collect();
            if errors.is_empty() {
                format!("batch {} failed", batch.id)
            } else {
                format!("batch {} failed: {}", batch.id, errors.join("; "))
            }
        }
        Some(End::Expired) => format!("batch {} expired before this row ran", batch.id),
        Some(End::Cancelled) => format!("batch {} was cancelled before this row ran", batch.id),
        _ => format!(
            "batch {} ended {} without a result for this row",
            batch.id, batch.status
        ),
    }
}
