//! The totals of a run: printed as a short table to stderr, stored in the checkpoint, and written
//! as JSON with `--summary PATH`. Row counts and token totals cover the whole job (every run so
//! far); requests, retries, 429s, wall time and rate cover this run.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::estimate::report::dollars;
use crate::stats::Snapshot;
use crate::store::Counts;

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// finished | interrupted | stopped_auth | stopped_quota | checkpoint_error | budget | incomplete
    /// | submitted (`--mode batch --no-wait`)
    pub outcome: String,
    pub rows: RowTotals,
    pub tokens: TokenTotals,
    pub run: RunTotals,
    /// Dollars, when the prices of the job's models are known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<CostTotals>,
    pub output: Option<PathBuf>,
    pub checkpoint: PathBuf,
}

/// What the job has cost, at the prices it was run with (cached-input discounts not applied).
#[derive(Debug, Clone, Serialize)]
pub struct CostTotals {
    /// Every run of the job so far.
    pub job: f64,
    pub run: f64,
    pub budget: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RowTotals {
    pub total: u64,
    pub done: u64,
    pub failed: u64,
    /// Invalid input rows recorded as failed by `--skip-invalid` (never sent).
    pub skipped: u64,
    pub pending: u64,
    /// In Batch API batches not collected yet.
    pub in_batches: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenTotals {
    pub prompt: u64,
    pub completion: u64,
    pub total: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunTotals {
    pub requests: u64,
    pub retries: u64,
    pub http_429: u64,
    pub rows_done: u64,
    pub rows_failed: u64,
    pub wall_seconds: f64,
    pub rows_per_second: f64,
}

impl Summary {
    pub fn new(
        outcome: &str,
        counts: &Counts,
        run: &Snapshot,
        wall: Duration,
        cost: Option<CostTotals>,
        output: Option<PathBuf>,
        checkpoint: PathBuf,
    ) -> Summary {
        let secs = wall.as_secs_f64();
        let settled = run.done + run.failed;
        Summary {
            outcome: outcome.to_string(),
            rows: RowTotals {
                total: counts.total,
                done: counts.done,
                failed: counts.failed,
                skipped: counts.invalid,
                pending: counts.pending + counts.in_flight,
                in_batches: counts.batched,
            },
            tokens: TokenTotals {
                prompt: counts.prompt_tokens,
                completion: counts.completion_tokens,
                total: counts.total_tokens,
            },
            run: RunTotals {
                requests: run.requests,
                retries: run.retries,
                http_429: run.http_429,
                rows_done: run.done,
                rows_failed: run.failed,
                wall_seconds: (secs * 1000.0).round() / 1000.0,
                rows_per_second: if secs > 0.0 {
                    ((settled as f64 / secs) * 10.0).round() / 10.0
                } else {
                    0.0
                },
            },
            cost,
            output,
            checkpoint,
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.rows;
        let t = &self.tokens;
        let run = &self.run;
        writeln!(f, "── promptmill: {} ──", self.outcome.replace('_', " "))?;
        let batches = if r.in_batches > 0 {
            format!(", {} in batches", r.in_batches)
        } else {
            String::new()
        };
        writeln!(
            f,
            "  rows       {} total: {} done, {} failed, {} skipped (invalid), {} pending{batches}",
            r.total, r.done, r.failed, r.skipped, r.pending
        )?;
        write!(
            f,
            "  tokens     {} prompt + {} completion = {} total",
            t.prompt, t.completion, t.total
        )?;
        match &self.cost {
            Some(c) => {
                let budget = c
                    .budget
                    .map(|b| format!(" of a {} budget", dollars(b)))
                    .unwrap_or_default();
                writeln!(
                    f,
                    "   cost {}{budget} (this run {})",
                    dollars(c.job),
                    dollars(c.run)
                )?;
            }
            None => writeln!(f)?,
        }
        writeln!(
            f,
            "  this run   {} requests, {} retries, {} × 429",
            run.requests, run.retries, run.http_429
        )?;
        writeln!(
            f,
            "  time       {} ({} rows/s)",
            humantime::format_duration(Duration::from_millis((run.wall_seconds * 1000.0) as u64)),
            run.rows_per_second
        )?;
        match &self.output {
            Some(o) if o.as_os_str() == crate::output::OutputSpec::STDOUT => {
                writeln!(f, "  output     standard output")?
            }
            Some(o) => writeln!(f, "  output     {}", o.display())?,
            None => {}
        }
        write!(f, "  checkpoint {}", self.checkpoint.display())
    }
}
