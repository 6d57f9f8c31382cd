//! One view of the report: the numbers of a [`Scope`] (the whole job, or one run) that the
//! page shows beside its charts — latency percentiles, failed attempts by kind with sample rows,
//! the slowest attempts, the most expensive rows, what its attempts cost — the ETA the
//! progress line showed while each of its runs went, and its rows done and failed over time.
//! Built from a [`Tally`] of its attempts and a [`Timeline`] of the rows' ends, so nothing
//! here holds a record per row.

use serde::Serialize;

use super::bins::{Latencies, Timeline};
use super::scope::{Clock, Scope};
use super::tally::Tally;
use crate::store::RunRecord;

/// Points of the ETA line per run.
const ETA_POINTS: usize = 120;
/// Points of the rows line: the counts at evenly spaced moments, however many rows settled.
pub const ROW_POINTS: usize = 200;

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
    /// (seconds into the scope, rows done, rows failed) at [`ROW_POINTS`] + 1 evenly spaced
    /// moments (rows settled before the scope began included).
    pub rows: Vec<(f64, u64, u64)>,
    /// The scope's attempts folded for the charts.
    pub tally: Tally,
}

impl View {
    /// The view of `tally`'s scope; `timeline` answers the moments [`View::moments`] asked for,
    /// `expensive` is the scope's most expensive rows in billionths of a dollar.
    pub fn of(
        tally: Tally,
        timeline: &Timeline,
        ctx: &EtaContext<'_>,
        expensive: Vec<(String, i64)>,
    ) -> View {
        let scope = tally.scope().clone();
        let clock = Clock::of(&scope);
        let rows = clock
            .samples(ROW_POINTS)
            .map(|t| {
                let (d, f) = timeline.at(clock.ms(t));
                (t, d, f)
            })
            .collect();
        View {
            attempts: tally.attempts,
            latency_ms: tally.latencies.percentiles(),
            errors: tally.errors(),
            slowest: tally.slowest(),
            expensive: expensive
                .into_iter()
                .map(|(id, nanos)| (id, nanos as f64 / 1e9))
                .collect(),
            cost: tally.cost_nanos as f64 / 1e9,
            eta: eta(&scope, timeline, ctx),
            rows,
            scope,
            tally,
        }
    }

    /// The moments whose row counts the view of `scope` needs: its rows chart's samples and
    /// its runs' ETA points.
    pub fn moments(scope: &Scope, ctx: &EtaContext<'_>) -> Vec<i64> {
        let clock = Clock::of(scope);
        let mut out: Vec<i64> = clock.samples(ROW_POINTS).map(|t| clock.ms(t)).collect();
        for_each_run(scope, ctx, |run, end| {
            out.push(run.started_at - 1);
            out.extend(eta_moments(run.started_at, end));
        });
        out
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

/// Calls `each` with every run of `scope` that lasted, and the moment its view of it ends.
fn for_each_run(scope: &Scope, ctx: &EtaContext<'_>, mut each: impl FnMut(&RunRecord, i64)) {
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
        if end > run.started_at {
            each(run, end);
        }
    }
}

fn eta_moments(start: i64, end: i64) -> impl Iterator<Item = i64> {
    (0..=ETA_POINTS).map(move |k| start + (end - start) * k as i64 / ETA_POINTS as i64)
}

/// The ETA each run's progress line showed, reconstructed with the line's own formula
/// ([`crate::progress::eta_secs`]): the rows settled so far in the run over the time since it
/// began, into the rows the job has left. Rows settled before the run (and skipped rows) count as
/// settled, as in the run's baseline. A row's end is its last update, so a row settled again by a
/// later run (`--retry-failed`) counts in the later one only.
fn eta(scope: &Scope, timeline: &Timeline, ctx: &EtaContext<'_>) -> Vec<(f64, Option<u64>)> {
    let clock = Clock::of(scope);
    let settled = |at: i64| {
        let (d, f) = timeline.at(at);
        d + f
    };
    let mut out = Vec::new();
    for_each_run(scope, ctx, |run, end| {
        let ended_before = settled(run.started_at - 1);
        let before = ended_before + ctx.invalid;
        for t in eta_moments(run.started_at, end) {
            let now = settled(t) - ended_before;
            let rate = now as f64 / ((t - run.started_at) as f64 / 1000.0).max(0.001);
            let left = ctx.total.saturating_sub(before + now);
            out.push((clock.at(t), crate::progress::eta_secs(left, now, rate, false)));
        }
        out.push((clock.at(end), None));
    });
    out
}

/// Nearest-rank percentiles of `values` (through [`Latencies`], as the report computes them).
pub fn percentiles(values: Vec<i64>) -> Percentiles {
    let mut counts = Latencies::default();
    for v in values {
        counts.add(v);
    }
    counts.percentiles()
}

#[cfg(test)]
#[path = "tests_view.rs"]
mod tests;
