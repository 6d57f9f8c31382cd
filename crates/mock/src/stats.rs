//! What the server did, for `GET /mock/stats`: requests received on /v1, answers by status
//! and by outcome, the usage of the successful completions actually sent, and counts of file
//! and batch events. Batch lines are not requests: they are counted nowhere here. Plain atomic
//! counters, so recording costs a few uncontended adds and no lock. [`Outcome`] is also the
//! vocabulary of the request log (`log`). Deciding the outcome is `service`'s job.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use bytes::Bytes;
use serde::Serialize;

use super::reply::Usage;

/// How a request was answered (or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    Auth,
    FailFirst,
    Random429,
    Random500,
    Hang,
    Reset,
    Malformed,
    Rpm,
    Tpm,
    BadRequest,
    Directive,
    /// A --drop-upload or --drop-batch-create hook closed the connection.
    Dropped,
    /// A --rate-invalid-json, --rate-schema-break, --rate-cut or --rate-refusal answer.
    Spoiled,
}

impl Outcome {
    const ALL: [Outcome; 14] = [
        Outcome::Ok,
        Outcome::Auth,
        Outcome::FailFirst,
        Outcome::Random429,
        Outcome::Random500,
        Outcome::Hang,
        Outcome::Reset,
        Outcome::Malformed,
        Outcome::Rpm,
        Outcome::Tpm,
        Outcome::BadRequest,
        Outcome::Directive,
        Outcome::Dropped,
        Outcome::Spoiled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Auth => "auth",
            Outcome::FailFirst => "fail_first",
            Outcome::Random429 => "429",
            Outcome::Random500 => "500",
            Outcome::Hang => "hang",
            Outcome::Reset => "reset",
            Outcome::Malformed => "malformed",
            Outcome::Rpm => "rpm",
            Outcome::Tpm => "tpm",
            Outcome::BadRequest => "bad_request",
            Outcome::Directive => "directive",
            Outcome::Dropped => "dropped",
            Outcome::Spoiled => "spoiled",
        }
    }
}

/// Things done to files and batches, counted for `/mock/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// A `POST /v1/files` stored a file (a dropped answer included; generated outputs not).
    FileUploaded,
    FileDeleted,
    /// A batch was created (a --drop-batch-create `after` included).
    BatchCreated,
    /// A cancel request moved a batch to `cancelling`.
    BatchCancelled,
}

/// Statuses are counted in a flat table indexed by code; 600 covers every valid one.
const STATUS_SLOTS: usize = 600;

pub(crate) struct Stats {
    requests: AtomicU64,
    by_status: Box<[AtomicU64]>,
    by_outcome: [AtomicU64; Outcome::ALL.len()],
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    total_tokens: AtomicU64,
    /// Indexed by `Event as usize`.
    events: [AtomicU64; 4],
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            requests: AtomicU64::new(0),
            by_status: (0..STATUS_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            by_outcome: Default::default(),
            prompt_tokens: AtomicU64::new(0),
            completion_tokens: AtomicU64::new(0),
            total_tokens: AtomicU64::new(0),
            events: Default::default(),
        }
    }
}

impl Stats {
    /// Counts a request arriving on /v1 and returns its arrival index (0-based).
    pub fn arrive(&self) -> u64 {
        self.requests.fetch_add(1, Relaxed)
    }

    /// Counts how a request was answered; `usage` only for successful completions sent.
    pub fn record(&self, outcome: Outcome, status: Option<u16>, usage: Option<Usage>) {
        self.by_outcome[outcome as usize].fetch_add(1, Relaxed);
        if let Some(slot) = status.and_then(|s| self.by_status.get(usize::from(s))) {
            slot.fetch_add(1, Relaxed);
        }
        if let Some(u) = usage {
            self.prompt_tokens.fetch_add(u.prompt_tokens, Relaxed);
            self.completion_tokens.fetch_add(u.completion_tokens, Relaxed);
            self.total_tokens.fetch_add(u.total_tokens, Relaxed);
        }
    }

    pub fn count(&self, event: Event) {
        self.events[event as usize].fetch_add(1, Relaxed);
    }

    /// The `/mock/stats` body. Counters are read one by one, so a snapshot taken while
    /// requests are in flight may be off by those; tests read it once the run is over.
    pub fn to_json(&self) -> Bytes {
        #[derive(Serialize)]
        struct View {
            requests: u64,
            by_status: BTreeMap<String, u64>,
            by_outcome: BTreeMap<&'static str, u64>,
            usage: Usage,
            files_uploaded: u64,
            files_deleted: u64,
            batches_created: u64,
            batches_cancelled: u64,
        }
        let event = |e: Event| self.events[e as usize].load(Relaxed);
        let by_status = self
            .by_status
            .iter()
            .enumerate()
            .map(|(code, n)| (code, n.load(Relaxed)))
            .filter(|&(_, n)| n > 0)
            .map(|(code, n)| (code.to_string(), n))
            .collect();
        let by_outcome = Outcome::ALL
            .iter()
            .map(|&o| (o.as_str(), self.by_outcome[o as usize].load(Relaxed)))
            .collect();
        let view = View {
            requests: self.requests.load(Relaxed),
            by_status,
            by_outcome,
            usage: Usage {
                prompt_tokens: self.prompt_tokens.load(Relaxed),
                completion_tokens: self.completion_tokens.load(Relaxed),
                total_tokens: self.total_tokens.load(Relaxed),
            },
            files_uploaded: event(Event::FileUploaded),
            files_deleted: event(Event::FileDeleted),
            batches_created: event(Event::BatchCreated),
            batches_cancelled: event(Event::BatchCancelled),
        };
        super::reply::to_bytes(&view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_table_indexes_match_declaration_order() {
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert_eq!(*o as usize, i);
        }
    }

    #[test]
    fn stats_json_lists_every_outcome_and_only_seen_statuses() {
        let stats = Stats::default();
        stats.arrive();
        stats.arrive();
        let usage = Usage {
            prompt_tokens: 5,
            completion_tokens: 3,
            total_tokens: 8,
        };
        stats.record(Outcome::Ok, Some(200), Some(usage));
        stats.record(Outcome::Hang, None, None);
        stats.count(Event::BatchCreated);
        let json: serde_json::Value = serde_json::from_slice(&stats.to_json()).unwrap();
        assert_eq!(json["requests"], 2);
        assert_eq!(json["by_status"], serde_json::json!({"200": 1}));
        assert_eq!(json["by_outcome"]["hang"], 1);
        assert_eq!(json["by_outcome"]["tpm"], 0);
        assert_eq!(json["usage"]["total_tokens"], 8);
        assert_eq!(
            (json["batches_created"].as_u64(), json["files_uploaded"].as_u64()),
            (Some(1), Some(0))
        );
    }
}
