//! One scope's attempts folded as they stream from the checkpoint ([`Tally::add`], in the order
//! they were sent): counts, exact latencies, failed attempts by kind with sample rows, the
//! slowest attempts, cost, and the charts' series in bounded bins (requests and tokens per
//! bucket of the scope's [`Clock`], 429s, pauses, halvings of the window and limit changes kept
//! one per [`super::bins::MARK_BINS`]th of the span, cost by bin of when attempts ended).
//!
//! A tally holds nothing per attempt, so a 1M-row job's report takes the memory of a small one.
//! Which attempts belong to a scope, and its time axis, are [`super::scope`]'s.

use std::collections::BTreeMap;

use super::bins::{Latencies, Marks, Steps, Top, MARK_BINS};
use super::scope::{Clock, Scope};
use super::view::ErrorKind;
use crate::store::attempts::StoredAttempt;

/// How many rows the "slowest" table lists, and sample ids per error kind.
pub const TOP: usize = 10;
const SAMPLES: usize = 5;

pub struct Tally {
    pub clock: Clock,
    scope: Scope,
    pub attempts: u64,
    pub latencies: Latencies,
    kinds: BTreeMap<(String, Option<i64>), ErrorKind>,
    /// (row id, ms, status) of the slowest attempts.
    slowest: Top<(String, i64, Option<i64>)>,
    /// Billionths of a dollar of the scope's attempts.
    pub cost_nanos: i64,
    /// Requests and (prompt, cached, completion, reasoning) tokens per bucket of the clock.
    pub requests: Vec<f64>,
    pub tokens: Vec<[f64; 4]>,
    pub http_429: Marks,
    /// (from, to) of each pause, seconds.
    pub pauses: Marks,
    pub halvings: Marks,
    window: Option<i64>,
    pub rpm: Steps,
    pub tpm: Steps,
    /// Cost of every run's attempts that ended before the scope began (dollars), and by bin of
    /// when they ended within it ([`MARK_BINS`] bins of the span).
    pub cost_before: f64,
    pub cost_bins: Vec<f64>,
}

impl Tally {
    pub fn new(scope: &Scope) -> Tally {
        let clock = Clock::of(scope);
        let buckets = clock.buckets();
        Tally {
            clock,
            scope: scope.clone(),
            attempts: 0,
            latencies: Latencies::default(),
            kinds: BTreeMap::new(),
            slowest: Top::new(TOP),
            cost_nanos: 0,
            requests: vec![0.0; buckets],
            tokens: vec![[0.0; 4]; buckets],
            http_429: Marks::default(),
            pauses: Marks::default(),
            halvings: Marks::default(),
            window: None,
            rpm: Steps::default(),
            tpm: Steps::default(),
            cost_before: 0.0,
            cost_bins: vec![0.0; MARK_BINS],
        }
    }

    /// Folds in the next attempt of the job (of any run: the cost line counts what earlier runs
    /// spent).
    pub fn add(&mut self, a: &StoredAttempt) {
        self.add_cost(a);
        if !self.scope.holds(a) {
            return;
        }
        self.attempts += 1;
        self.latencies.add(a.latency_ms);
        self.cost_nanos += a.cost_nanos;
        self.add_kind(a);
        self.slowest
            .offer(a.latency_ms, || (a.id.clone(), a.latency_ms, a.status));
        let bucket = self.clock.index(a.started_at);
        self.requests[bucket] += 1.0;
        let counts = [
            a.prompt_tokens,
            a.cached_tokens,
            a.completion_tokens,
            a.reasoning_tokens,
        ];
        for (k, n) in counts.into_iter().enumerate() {
            self.tokens[bucket][k] += n.unwrap_or(0) as f64;
        }
        self.add_marks(a);
    }

    fn add_kind(&mut self, a: &StoredAttempt) {
        let Some(class) = &a.class else { return };
        let kind = self
            .kinds
            .entry((class.clone(), a.status))
            .or_insert_with(|| ErrorKind {
                class: class.clone(),
                status: a.status,
                count: 0,
                sample_ids: Vec::new(),
            });
        kind.count += 1;
        if kind.sample_ids.len() < SAMPLES && !kind.sample_ids.contains(&a.id) {
            kind.sample_ids.push(a.id.clone());
        }
    }

    fn add_marks(&mut self, a: &StoredAttempt) {
        let span = self.clock.span;
        let start = self.clock.at(a.started_at);
        let end = self.clock.at(a.started_at + a.latency_ms);
        if a.status == Some(429) {
            self.http_429.add(span, start, start);
        }
        if a.paused {
            self.pauses
                .add(span, end, end + a.wait_ms.unwrap_or(0) as f64 / 1000.0);
        }
        if let (Some(before), Some(now)) = (self.window, a.window) {
            if now < before {
                self.halvings.add(span, end, end);
            }
        }
        self.window = a.window.or(self.window);
        if a.limits_changed {
            if let Some(n) = a.rpm {
                self.rpm.add(span, start, n as f64);
            }
            if let Some(n) = a.tpm {
                self.tpm.add(span, start, n as f64);
            }
        }
    }

    /// The cumulative cost line's data: what ended before the scope, and by bin within it;
    /// attempts that ended after the scope are left out.
    fn add_cost(&mut self, a: &StoredAttempt) {
        if a.cost_nanos <= 0 {
            return;
        }
        let end = a.started_at + a.latency_ms;
        if end > self.scope.to {
            return;
        }
        let dollars = a.cost_nanos as f64 / 1e9;
        if end < self.scope.from {
            self.cost_before += dollars;
        } else {
            // Another run's attempt that ended within this one's span counts as before.
            let x = self.clock.at(end) / self.clock.span * MARK_BINS as f64;
            let bin = (x.floor().max(0.0) as usize).min(MARK_BINS - 1);
            self.cost_bins[bin] += dollars;
        }
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Failed attempts by kind, most frequent first.
    pub fn errors(&self) -> Vec<ErrorKind> {
        let mut kinds: Vec<ErrorKind> = self.kinds.values().cloned().collect();
        kinds.sort_by_key(|k| std::cmp::Reverse(k.count));
        kinds
    }

    pub fn slowest(&self) -> Vec<(String, i64, Option<i64>)> {
        self.slowest.clone().into_items()
    }
}
