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
    /// The limits in force and where they came from: written by the pipeline after each answer,
    /// read by the progress display and stored with the run by the checkpoint writer. A std
    /// Mutex: its fields change together, it is never held across an await, and readers copy it.
    pub in_force: Mutex<InForce>,
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

    #[test]
    fn a_sum_stops_at_the_top_instead_of_wrapping() {
        let counter = AtomicU64::new(u64::MAX - 1);
        Stats::add(&counter, 1 << 40);
        Stats::add(&counter, 5);
        assert_eq!(counter.load(Ordering::Relaxed), u64::MAX);
    }
}
