//! One view of the report: the numbers of a [`Scope`] (the whole job, or one run) that the
//! page shows beside its charts — latency percentiles, failed attempts by kind with sample rows,
//! the slowest attempts, the most expensive rows, what its attempts cost — and the ETA the
//! progress line showed while each of its runs went.

use std::collections::BTreeMap;

use serde::Serialize;

use super::scope::{Clock, Scope};
use crate::store::attempts::{RowEnd, StoredAttempt};
use crate::store::RunRecord;

/// How many rows the "slowest" and "most expensive" tables list, and sample ids per error kind.
const TOP: usize = 10;
const SAMPLES: usize = 5;
/// Points of the ETA line per run.
const ETA_POINTS: usize = 120;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    pub p50: i64,
    pub p90: i64,
    pub p99: i64,
    pub max: i64,
}

/// A kind of failed attempt: its class and status, how many, and some of its rows.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorKind {
    pub class: String,
    pub status: Option<i64>,
    pub count: u64,
    pub sample_ids: Vec<String>,
}

pub struct View {
    pub scope: Scope,
    pub attempts: u64,
    pub latency_ms: Percentiles,
    pub errors: Vec<ErrorKind>,
    /// (row id, ms, status) of the slowest attempts.
    pub slowest: Vec<(String, i64, Option<i64>)>,
    /// (row id, dollars) of the rows whose attempts cost most.
    pub expensive: Vec<(String, f64)>,
    /// Dollars of the scope's attempts.
    pub cost: f64,
    /// (seconds into the scope, ETA seconds) as the progress line showed it; a gap (`None`)
    /// where it showed `?` or between runs.
    pub eta: Vec<(f64, Option<u64>)>,
}

impl View {
    pub fn of(scope: Scope, all: &[StoredAttempt], ends: &[RowEnd], ctx: &EtaContext<'_>) -> View {
        let attempts: Vec<&StoredAttempt> = scope.attempts(all).collect();
        View {
            attempts: attempts.len() as u64,
            latency_ms: percentiles(attempts.iter().map(|a| a.latency_ms).collect()),
            errors: error_kinds(&attempts),
            slowest: slowest(&attempts),
            expensive: expensive(&attempts),
            cost: attempts.iter().map(|a| a.cost_nanos).sum::<i64>() as f64 / 1e9,
            eta: eta(&scope, ends, ctx),
            scope,
        }
    }
}

/// What the ETA of a run was computed from.
pub struct EtaContext<'a> {
    pub runs: &'a [RunRecord],
    /// Rows of the job (`status`'s `rows.total`).
    pub total: u64,
    /// Rows skipped as invalid: settled before any run, as the progress line counts them.
    pub invalid: u64,
}

/// The ETA each run's progress line showed, reconstructed with the line's own formula
/// ([`crate::progress::eta_secs`]): the rows settled so far in the run over the time since it
/// began, into the rows the job has left. Rows settled before the run (and skipped rows) count as
/// settled, as in the run's baseline. A row's end is its last update, so a row settled again by a
/// later run (`--retry-failed`) counts in the later one only.
fn eta(scope: &Scope, ends: &[RowEnd], ctx: &EtaContext<'_>) -> Vec<(f64, Option<u64>)> {
    let clock = Clock::of(scope);
    let mut out = Vec::new();
    for (i, run) in ctx.runs.iter().enumerate() {
        if scope.run.is_some_and(|r| r != run.run) {
            continue;
        }
        let next = ctx.runs.get(i + 1).map_or(i64::MAX, |n| n.started_at);
        let end = run
            .ended_at
            .or(run.updated_at)
            .unwrap_or(scope.to)
            .min(next)
            .min(scope.to);
        if end <= run.started_at {
            continue;
        }
        let before = ends.iter().filter(|e| e.at < run.started_at).count() as u64 + ctx.invalid;
        let mut settled = ends
            .iter()
            .filter(|e| e.at >= run.started_at)
            .map(|e| e.at)
            .peekable();
        let mut now = 0u64;
        for k in 0..=ETA_POINTS {
            let t = run.started_at + (end - run.started_at) * k as i64 / ETA_POINTS as i64;
            while settled.next_if(|&at| at <= t).is_some() {
                now += 1;
            }
            let rate = now as f64 / ((t - run.started_at) as f64 / 1000.0).max(0.001);
            let left = ctx.total.saturating_sub(before + now);
            out.push((clock.at(t), crate::progress::eta_secs(left, now, rate, false)));
        }
        out.push((clock.at(end), None));
    }
    out
}

/// Nearest-rank percentiles.
pub fn percentiles(mut values: Vec<i64>) -> Percentiles {
    if values.is_empty() {
        return Percentiles::default();
    }
    values.sort_unstable();
    let at = |q: f64| {
        let rank = (q * values.len() as f64).ceil() as usize;
        values[rank.clamp(1, values.len()) - 1]
    };
    Percentiles {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        max: values[values.len() - 1],
    }
}

fn error_kinds(attempts: &[&StoredAttempt]) -> Vec<ErrorKind> {
    let mut kinds: BTreeMap<(String, Option<i64>), ErrorKind> = BTreeMap::new();
    for a in attempts {
        let Some(class) = &a.class else { continue };
        let kind = kinds
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
    let mut kinds: Vec<ErrorKind> = kinds.into_values().collect();
    kinds.sort_by_key(|k| std::cmp::Reverse(k.count));
    kinds
}

fn slowest(attempts: &[&StoredAttempt]) -> Vec<(String, i64, Option<i64>)> {
    let mut by = attempts.to_vec();
    by.sort_by_key(|a| std::cmp::Reverse(a.latency_ms));
    by.into_iter()
        .take(TOP)
        .map(|a| (a.id.clone(), a.latency_ms, a.status))
        .collect()
}

fn expensive(attempts: &[&StoredAttempt]) -> Vec<(String, f64)> {
    let mut cost: BTreeMap<&str, i64> = BTreeMap::new();
    for a in attempts.iter().filter(|a| a.cost_nanos > 0) {
        *cost.entry(&a.id).or_default() += a.cost_nanos;
    }
    let mut rows: Vec<(String, f64)> = cost
        .into_iter()
        .map(|(id, nanos)| (id.to_string(), nanos as f64 / 1e9))
        .collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    rows.truncate(TOP);
    rows
}

#[cfg(test)]
#[path = "tests_view.rs"]
mod tests;
