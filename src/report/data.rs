//! What the run report shows, read from the checkpoint: the numbers `status --json` also shows
//! (taken through the same store calls, so the two agree), the per-attempt records, the rows'
//! ends, the batches, and the job's reproducibility facts (never a key, a credential header or a
//! credential query parameter: the stored record has none, and headers are shown by name only).
//!
//! Everything here is computed once; the charts and the page only lay it out.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::attempts::{RowEnd, StoredAttempt};
use crate::store::{Counts, PartRecord, RunRecord, Store};

/// How many rows the "slowest" and "most expensive" tables list, and sample ids per error kind.
const TOP: usize = 10;
const SAMPLES: usize = 5;

/// The numbers the report and `status --json` share, under the same names. Embedded in the
/// page as JSON (`<script type="application/json" id="numbers">`).
#[derive(Debug, Clone, Serialize)]
pub struct Numbers {
    pub rows: Counts,
    /// Requests the checkpoint knows were sent beyond one per row (as `status`'s `retries`).
    pub retries: u64,
    /// 429 answers over every run (the sum of `status`'s `runs[].http_429`).
    pub http_429: u64,
    /// Requests sent over every run (the sum of `runs[].requests`).
    pub requests: u64,
    pub cost: Option<f64>,
    pub max_cost: Option<f64>,
    /// Latency of the recorded attempts, in ms.
    pub latency_ms: Percentiles,
    /// Attempts recorded for the report (runs before this build recorded none).
    pub attempts_recorded: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    pub p50: i64,
    pub p90: i64,
    pub p99: i64,
    pub max: i64,
}

/// Where the job came from and how it was sent: enough to run it again.
#[derive(Debug, Clone, Serialize)]
pub struct Repro {
    pub checkpoint: String,
    pub input: String,
    pub fingerprint: String,
    pub template: Option<String>,
    pub system: Option<String>,
    pub model: Option<String>,
    pub family: String,
    pub endpoint: String,
    pub provider: String,
    /// As stored: credential-like query parameters withheld.
    pub base_url: String,
    /// Extra headers by name only; credential headers are never stored.
    pub header_names: Vec<String>,
    pub settings: String,
    pub params: String,
    pub mode: String,
    pub tool_version: String,
}

/// A kind of failed attempt: its class and status, how many, and some of its rows.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorKind {
    pub class: String,
    pub status: Option<i64>,
    pub count: u64,
    pub sample_ids: Vec<String>,
}

pub struct Report {
    pub numbers: Numbers,
    pub repro: Repro,
    pub runs: Vec<RunRecord>,
    pub attempts: Vec<StoredAttempt>,
    pub ends: Vec<RowEnd>,
    pub finish_reasons: Vec<(String, u64)>,
    pub row_errors: Vec<(String, u64)>,
    pub errors: Vec<ErrorKind>,
    /// (row id, ms, status) of the slowest attempts.
    pub slowest: Vec<(String, i64, Option<i64>)>,
    /// (row id, dollars) of the rows that cost most.
    pub expensive: Vec<(String, f64)>,
    pub parts: Vec<PartRecord>,
}

impl Report {
    pub fn read(store: &Store, db: &std::path::Path) -> anyhow::Result<Report> {
        let job = store
            .job()?
            .ok_or_else(|| crate::error::CheckpointError::NoJob { db: db.to_path_buf() })?
            .for_storage();
        let runs = store.runs()?;
        let attempts = store.attempts()?;
        let numbers = Numbers {
            rows: store.counts()?,
            retries: runs.iter().map(|r| r.retries.max(0) as u64).sum(),
            http_429: runs.iter().map(|r| r.http_429.max(0) as u64).sum(),
            requests: runs.iter().map(|r| r.requests.max(0) as u64).sum(),
            cost: crate::budget::job_cost(store, &job)?,
            max_cost: job.max_cost,
            latency_ms: percentiles(attempts.iter().map(|a| a.latency_ms).collect()),
            attempts_recorded: attempts.len() as u64,
        };
        let spec = &job.spec;
        let send = &job.send;
        let repro = Repro {
            checkpoint: db.display().to_string(),
            input: spec.input.display().to_string(),
            fingerprint: spec.fingerprint.clone(),
            template: spec.template.clone(),
            system: spec.system.clone(),
            model: spec.model.clone(),
            family: format!("{:?}", job.endpoint).to_lowercase(),
            endpoint: job.endpoint.path().to_string(),
            provider: serde_json::to_string(&job.provider)?,
            base_url: job.base_url.clone(),
            header_names: job.headers.iter().map(|(name, _)| name.clone()).collect(),
            settings: format!(
                "concurrency {}, rpm {}, tpm {}, {} attempts, timeout {}, max_tokens {}, temperature {}",
                send.concurrency,
                send.rpm.map_or("learned".into(), |n| n.to_string()),
                send.tpm.map_or("learned".into(), |n| n.to_string()),
                send.max_attempts,
                humantime::format_duration(send.timeout),
                spec.max_tokens.map_or("-".into(), |n| n.to_string()),
                spec.temperature.map_or("-".into(), |t| t.to_string()),
            ),
            params: serde_json::to_string(&spec.params)?,
            mode: format!("{:?}", job.batch.mode).to_lowercase(),
            tool_version: job.tool_version.clone(),
        };
        let (ends, finish_reasons) = store.row_ends()?;
        Ok(Report {
            errors: error_kinds(&attempts),
            slowest: slowest(&attempts),
            expensive: expensive(&attempts),
            row_errors: store.top_errors(TOP)?,
            parts: store.parts()?,
            numbers,
            repro,
            runs,
            attempts,
            ends,
            finish_reasons,
        })
    }
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

fn error_kinds(attempts: &[StoredAttempt]) -> Vec<ErrorKind> {
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

fn slowest(attempts: &[StoredAttempt]) -> Vec<(String, i64, Option<i64>)> {
    let mut by: Vec<&StoredAttempt> = attempts.iter().collect();
    by.sort_by_key(|a| std::cmp::Reverse(a.latency_ms));
    by.into_iter()
        .take(TOP)
        .map(|a| (a.id.clone(), a.latency_ms, a.status))
        .collect()
}

fn expensive(attempts: &[StoredAttempt]) -> Vec<(String, f64)> {
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
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let p = percentiles((1..=100).collect());
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50, 90, 99, 100));
        let one = percentiles(vec![7]);
        assert_eq!((one.p50, one.p99, one.max), (7, 7, 7));
        assert_eq!(percentiles(Vec::new()).max, 0);
    }
}
