//! Counters of the run in progress, shared by the workers, the checkpoint writer and the progress
//! display. Plain relaxed atomics: each counter is read on its own, and a display that is one
//! request behind is fine. Beside them, the limits in force (which change together, and rarely).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::limits::InForce;

#[derive(Debug, Default)]
pub struct Stats {
    /// HTTP requests sent (every attempt).
    pub requests: AtomicU64,
    /// Attempts after the first, for any row.
    pub retries: AtomicU64,
    /// 429 responses seen.
    pub http_429: AtomicU64,
    /// Rows finished as done / failed by this run.
    pub done: AtomicU64,
    pub failed: AtomicU64,
    /// Requests on the wire right now.
    pub in_flight: AtomicU64,
    /// Usage reported by the API for rows done by this run.
    pub prompt_tokens: AtomicU64,
    pub completion_tokens: AtomicU64,
    pub total_tokens: AtomicU64,
    /// Of the rows done by this run, those answered from the response cache (no request), and
    /// what they would have cost at the job's prices (billionths of a dollar).
    pub cached: AtomicU64,
    pub saved_nanos: AtomicU64,
    /// `--schema` jobs: answers asked again because they were invalid or cut (each a request
    /// counted in `requests`), and rows failed because their last answer broke the schema.
    pub reasked: AtomicU64,
    pub rejected: AtomicU64,
    /// Rows waiting out a `Retry-After` that was capped ([`Stats::capped_wait`]), and the
    /// longest wait (whole seconds) a server asked for this run, for the progress line.
    pub capped_waits: AtomicU64,
    pub longest_asked_secs: AtomicU64,
    /// The limits in force and where they came from: written by the pipeline after each answer,
    /// read by the progress display and stored with the run by the checkpoint writer. A std
    /// Mutex: its fields change together, it is never held across an await, and readers copy it.
    pub in_force: Mutex<InForce>,
}

/// A row waiting out a capped retry hint; see [`Stats::capped_wait`].
pub struct CappedWait<'a>(&'a Stats);

impl Drop for CappedWait<'_> {
    fn drop(&mut self) {
        self.0.capped_waits.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A copy of the counters at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Snapshot {
    pub requests: u64,
    pub retries: u64,
    pub http_429: u64,
    pub done: u64,
    pub failed: u64,
    pub in_flight: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

impl Stats {
    /// Adds `n`, stopping at `u64::MAX` rather than wrapping: token counts come from servers
    /// (each at most 2^40, see `api::MAX_TOKENS`), and a sum must never turn small again.
    pub fn add(counter: &AtomicU64, n: u64) {
        let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
            Some(v.saturating_add(n))
        });
    }

    /// Adds an answer's usage to the run's token counts (a done row's, or a rejected one's,
    /// whose answers were paid for too).
    pub fn add_usage(&self, usage: &promptmill_core::family::Usage) {
        Stats::add(&self.prompt_tokens, usage.prompt_tokens);
        Stats::add(&self.completion_tokens, usage.completion_tokens);
        Stats::add(&self.total_tokens, usage.total_tokens);
    }

    /// Counts a row as waiting out a capped retry hint until the guard is dropped.
    pub fn capped_wait(&self, asked: std::time::Duration) -> CappedWait<'_> {
        Stats::add(&self.capped_waits, 1);
        self.longest_asked_secs
            .fetch_max(asked.as_secs(), Ordering::Relaxed);
        CappedWait(self)
    }

    /// "; 2 rows waiting the 1h Retry-After cap (the server asked 10h)" while rows wait out a
    /// capped hint; empty otherwise.
    pub fn capped_note(&self) -> String {
        let waiting = self.capped_waits.load(Ordering::Relaxed);
        if waiting == 0 {
            return String::new();
        }
        let asked = std::time::Duration::from_secs(self.longest_asked_secs.load(Ordering::Relaxed));
        format!(
            "; {waiting} {} waiting the {} Retry-After cap (the server asked {})",
            if waiting == 1 { "row" } else { "rows" },
            humantime::format_duration(promptmill_core::retry::HINT_CAP),
            humantime::format_duration(asked)
        )
    }

    pub fn in_force(&self) -> InForce {
        *self.in_force.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn snapshot(&self) -> Snapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            requests: get(&self.requests),
            retries: get(&self.retries),
            http_429: get(&self.http_429),
            done: get(&self.done),
            failed: get(&self.failed),
            in_flight: get(&self.in_flight),
            prompt_tokens: get(&self.prompt_tokens),
            completion_tokens: get(&self.completion_tokens),
            total_tokens: get(&self.total_tokens),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_capped_note_shows_while_a_row_waits_out_a_capped_hint() {
        let stats = Stats::default();
        assert_eq!(stats.capped_note(), "");
        let waiting = stats.capped_wait(Duration::from_secs(36_000));
        assert_eq!(
            stats.capped_note(),
            "; 1 row waiting the 1h Retry-After cap (the server asked 10h)"
        );
        drop(waiting);
        assert_eq!(stats.capped_note(), "");
    }

    #[test]
    fn a_sum_stops_at_the_top_instead_of_wrapping() {
        let counter = AtomicU64::new(u64::MAX - 1);
        Stats::add(&counter, 1 << 40);
        Stats::add(&counter, 5);
        assert_eq!(counter.load(Ordering::Relaxed), u64::MAX);
    }
}
