//! What the run report shows, read from the checkpoint: the numbers `status --json` also shows
//! (taken through the same store calls, so the two agree), the per-attempt records and the rows'
//! ends (folded, never held), the batches and their states, the dry run's estimate, and the job's reproducibility
//! facts (never a key, a credential header or a credential query parameter: the stored record
//! has none, and headers are shown by name only).
//!
//! Everything here is computed once; the charts and the page only lay it out. The per-scope
//! numbers (the whole job, each run) are [`View`]s. Nothing is held per attempt or per row:
//! they stream through [`Tally`]s and a [`Timeline`], so a 1M-row job's report stays small.

use serde::Serialize;

use super::bins::Timeline;
use super::estimate::Estimate;
use super::scope::Scope;
use super::tally::{Tally, TOP};
pub use super::view::{ErrorKind, Percentiles};
use super::view::{EtaContext, View};
use crate::store::batch_states::BatchState;
use crate::store::{Counts, PartRecord, RunRecord, Store};

/// How many failed rows' errors the report lists.
const TOP_ERRORS: usize = 10;

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
    /// Each run's numbers, as `status --json`'s `runs[]` has them.
    pub runs: Vec<RunNumbers>,
    /// The dry run's figures for the job's rows, when their models are priced.
    pub estimate: Option<Estimate>,
}

/// A run's numbers, under the names `status --json`'s `runs[]` gives them.
#[derive(Debug, Clone, Serialize)]
pub struct RunNumbers {
    pub run: i64,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub outcome: Option<String>,
    pub requests: i64,
    pub retries: i64,
    pub http_429: i64,
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

pub struct Report {
    pub numbers: Numbers,
    pub repro: Repro,
    pub runs: Vec<RunRecord>,
    pub finish_reasons: Vec<(String, u64)>,
    pub row_errors: Vec<(String, u64)>,
    pub parts: Vec<PartRecord>,
    pub batch_states: Vec<BatchState>,
    /// The whole job first, then each run when there was more than one.
    pub views: Vec<View>,
}

impl Report {
    pub fn read(store: &Store, db: &std::path::Path) -> anyhow::Result<Report> {
        let job = store
            .job()?
            .ok_or_else(|| promptmill_core::error::CheckpointError::NoJob { db: db.to_path_buf() })?
            .for_storage();
        let runs = store.runs()?;
        let rows = store.counts()?;
        let ctx = EtaContext {
            runs: &runs,
            total: rows.total,
            invalid: rows.invalid,
        };
        let views = views(store, &runs, &ctx)?;
        let numbers = Numbers {
            retries: runs.iter().map(|r| r.retries.max(0) as u64).sum(),
            http_429: runs.iter().map(|r| r.http_429.max(0) as u64).sum(),
            requests: runs.iter().map(|r| r.requests.max(0) as u64).sum(),
            cost: crate::budget::job_cost(store, &job)?,
            max_cost: job.max_cost,
            latency_ms: views[0].latency_ms,
            attempts_recorded: views[0].attempts,
            runs: runs
                .iter()
                .map(|r| RunNumbers {
                    run: r.run,
                    started_at: r.started_at,
                    ended_at: r.ended_at,
                    outcome: r.outcome.clone(),
                    requests: r.requests,
                    retries: r.retries,
                    http_429: r.http_429,
                })
                .collect(),
            estimate: super::estimate::of_job(store, &job)?,
            rows,
        };
        Ok(Report {
            repro: repro(&job, db)?,
            row_errors: store.top_errors(TOP_ERRORS)?,
            parts: store.parts()?,
            batch_states: store.batch_states()?,
            finish_reasons: store.finish_reasons()?,
            numbers,
            runs,
            views,
        })
    }
}

/// The whole job's view, then each run's when there was more than one: the scopes from SQL
/// aggregates, then one streamed pass over the attempts (folded into each scope's [`Tally`])
/// and one over the rows' ends (counted at the moments the views ask for).
fn views(store: &Store, runs: &[RunRecord], ctx: &EtaContext<'_>) -> anyhow::Result<Vec<View>> {
    let spans = store.attempt_spans()?;
    let of_run = |run: i64| spans.iter().find(|s| s.0 == run).map(|s| (s.1, s.2));
    let all = spans
        .iter()
        .map(|s| s.1)
        .min()
        .zip(spans.iter().map(|s| s.2).max());
    let mut scopes = vec![Scope::job(runs, all, store.row_end_span(i64::MIN, i64::MAX)?)];
    if runs.len() > 1 {
        for (i, run) in runs.iter().enumerate() {
            let (from, to) = Scope::run_window(runs, i);
            scopes.push(Scope::run(
                runs,
                i,
                of_run(run.run),
                store.row_end_span(from, to)?,
            ));
        }
    }
    let mut tallies: Vec<Tally> = scopes.iter().map(Tally::new).collect();
    store.each_attempt(&mut |a| tallies.iter_mut().for_each(|t| t.add(&a)))?;
    let moments = scopes.iter().flat_map(|s| View::moments(s, ctx)).collect();
    let mut timeline = Timeline::new(moments);
    store.each_row_end(&mut |e| timeline.add(e.at, e.done))?;
    timeline.seal();
    tallies
        .into_iter()
        .map(|tally| {
            let expensive = store.most_expensive(tally.scope().run, TOP)?;
            Ok(View::of(tally, &timeline, ctx, expensive))
        })
        .collect()
}

fn repro(job: &promptmill_core::job::JobRecord, db: &std::path::Path) -> anyhow::Result<Repro> {
    let spec = &job.spec;
    let send = &job.send;
    Ok(Repro {
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
    })
}
