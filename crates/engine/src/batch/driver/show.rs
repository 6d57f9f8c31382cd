//! What the driver prints: a status line when a batch changed (with the job's totals), the open
//! batches when it returns without waiting, and the live bar on a terminal, with the lines
//! printed above it.

use std::time::Duration;

use super::*;
use crate::batch::service::BatchView;

impl<'a, S: BatchService> Driver<'a, S> {
    pub(super) fn start_bar(&mut self) {
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

    pub(super) fn say(&self, msg: impl std::fmt::Display) {
        match &self.bar {
            Some(bar) => bar.println(format!("promptmill: {msg}")),
            None if !self.settings.quiet => eprintln!("promptmill: {msg}"),
            None => {}
        }
    }

    /// Prints a batch's status line when it changed since the last one.
    pub(super) fn show(&mut self, part: i64, batch: &BatchView) -> bool {
        let c = batch.counts;
        let now = (batch.status.clone(), c.completed, c.failed);
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
            batch.id, batch.status, c.completed, c.total, c.failed, done, total, failed
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
}
