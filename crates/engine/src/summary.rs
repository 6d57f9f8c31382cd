//! The totals of a run: printed as a short table to stderr, stored in the checkpoint, and written
//! as JSON with `--summary PATH`. Row counts and token totals cover the whole job (every run so
//! far); requests, retries, 429s, wall time and rate cover this run.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::estimate::report::{dollars, duration, thousands};
use crate::stats::Snapshot;
use crate::store::Counts;
use promptmill_core::models::CostSplit;

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
    /// Rows done from the response cache, when there are some (set after [`Summary::new`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheTotals>,
    /// A `--schema` job's rows by outcome, and the answers this run asked again (set after
    /// [`Summary::new`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<SchemaTotals>,
}

/// "950 valid, 30 invalid, 15 truncated, 5 refused", and the rows asked again in follow-up
/// batches when there are some (the summary's and `status`'s line).
pub fn describe_schema(c: &crate::store::SchemaCounts) -> String {
    let n = thousands;
    let mut out = format!(
        "{} valid, {} invalid, {} truncated, {} refused",
        n(c.valid),
        n(c.invalid),
        n(c.truncated),
        n(c.refused)
    );
    if c.follow_up_rows > 0 {
        let rows = count(c.follow_up_rows, "row", "rows");
        out.push_str(&format!("; {rows} asked again in follow-up batches"));
    }
    out
}

/// A `--schema` job's rows by outcome (every run of the job), and the invalid or cut answers
/// this run asked again live: each a request, counted in `run.requests` and paid for.
#[derive(Debug, Clone, Serialize)]
pub struct SchemaTotals {
    #[serde(flatten)]
    pub rows: crate::store::SchemaCounts,
    pub run_reasked: u64,
}

/// Rows answered from the response cache, without a request, and what they saved.
#[derive(Debug, Clone, Serialize)]
pub struct CacheTotals {
    /// Every run of the job so far.
    pub rows: u64,
    pub run_rows: u64,
    /// Dollars those rows would have cost at the job's prices (`None`: not priced).
    pub saved: Option<f64>,
}

impl CacheTotals {
    /// "12 rows from the cache (this run 12), saved $0.0040"
    pub fn describe(&self) -> String {
        let saved = self
            .saved
            .map(|d| format!(", saved {}", dollars(d)))
            .unwrap_or_default();
        format!(
            "{} from the cache (this run {}){saved}",
            count(self.rows, "row", "rows"),
            thousands(self.run_rows)
        )
    }
}

/// What the job has cost, at the prices it was run with.
#[derive(Debug, Clone, Serialize)]
pub struct CostTotals {
    /// Every run of the job so far.
    pub job: f64,
    pub run: f64,
    pub budget: Option<f64>,
    /// The job's cost by kind of token (reasoning within output), when its prices are known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<CostSplit>,
}

/// "input $0.0012, cached input $0.0003, output $0.0040 (reasoning $0.0010)": how a cost
/// splits, as the summary and `status` print it. Cache writes and reasoning only when there
/// are some.
pub fn describe_split(c: &CostSplit) -> String {
    let mut out = format!(
        "input {}, cached input {}",
        dollars(c.input),
        dollars(c.cached_input)
    );
    if c.cache_creation > 0.0 {
        out.push_str(&format!(", cache writes {}", dollars(c.cache_creation)));
    }
    out.push_str(&format!(", output {}", dollars(c.output)));
    if c.reasoning > 0.0 {
        out.push_str(&format!(" (reasoning {})", dollars(c.reasoning)));
    }
    out
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
            cache: None,
            schema: None,
        }
    }
}

/// "1 row", "2 rows", "1,000 rows".
pub fn count(n: u64, one: &str, many: &str) -> String {
    match n {
        1 => format!("1 {one}"),
        n => format!("{} {many}", thousands(n)),
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
        let n = |v: u64| thousands(v);
        writeln!(
            f,
            "  rows       {} total: {} done, {} failed, {} skipped (invalid), {} pending{batches}",
            n(r.total),
            n(r.done),
            n(r.failed),
            n(r.skipped),
            n(r.pending)
        )?;
        writeln!(
            f,
            "  tokens     {} prompt + {} completion = {} total",
            n(t.prompt),
            n(t.completion),
            n(t.total)
        )?;
        // On its own line: beside the tokens it took a line past 80 columns.
        if let Some(c) = &self.cost {
            let budget = c
                .budget
                .map(|b| format!(" of a {} budget", dollars(b)))
                .unwrap_or_default();
            writeln!(
                f,
                "  cost       {}{budget} (this run {})",
                dollars(c.job),
                dollars(c.run)
            )?;
            if let Some(split) = &c.split {
                writeln!(f, "             {}", describe_split(split))?;
            }
        }
        if let Some(c) = &self.cache {
            writeln!(f, "  cache      {}", c.describe())?;
        }
        if let Some(s) = &self.schema {
            let again = match s.run_reasked {
                0 => String::new(),
                n => format!(" ({} asked again this run)", count(n, "answer", "answers")),
            };
            writeln!(f, "  schema     {}{again}", describe_schema(&s.rows))?;
        }
        writeln!(
            f,
            "  this run   {}, {}, {} × 429",
            count(run.requests, "request", "requests"),
            count(run.retries, "retry", "retries"),
            n(run.http_429)
        )?;
        let time = duration(Duration::from_secs_f64(run.wall_seconds.max(0.0)));
        // A rate over no rows (a `cancel`, a run that sent nothing) says nothing.
        match run.rows_done + run.rows_failed {
            0 => writeln!(f, "  time       {time}")?,
            _ => writeln!(f, "  time       {time} ({} rows/s)", run.rows_per_second)?,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(done: u64, wall: Duration, requests: u64) -> String {
        let counts = Counts {
            total: 1234,
            done,
            pending: 1234 - done,
            prompt_tokens: 12_345,
            ..Counts::default()
        };
        let run = Snapshot {
            requests,
            done,
            ..Snapshot::default()
        };
        Summary::new("finished", &counts, &run, wall, None, None, "x.db".into()).to_string()
    }

    #[test]
    fn the_table_reads_one_way_only() {
        let s = summary(1, Duration::from_millis(60_009), 1);
        assert!(s.contains("  time       1m 0s (0 rows/s)"), "{s}");
        assert!(s.contains("  this run   1 request, 0 retries, 0 × 429"), "{s}");
        assert!(s.contains("  rows       1,234 total: 1 done"), "{s}");
        assert!(s.contains("  tokens     12,345 prompt"), "{s}");
        // No rate over no rows (`cancel`, a run that sent nothing).
        let s = summary(0, Duration::from_millis(89), 0);
        assert!(s.contains("  time       0.089s\n"), "{s}");
    }

    #[test]
    fn the_cost_is_split_by_kind_of_token() {
        let split = CostSplit {
            input: 0.0012,
            cached_input: 0.0003,
            cache_creation: 0.0,
            output: 0.004,
            reasoning: 0.001,
        };
        assert_eq!(
            describe_split(&split),
            "input $0.001200, cached input $0.000300, output $0.004000 (reasoning $0.001000)"
        );
        let cost = CostTotals {
            job: split.total(),
            run: split.total(),
            budget: None,
            split: Some(split),
        };
        let s = Summary::new(
            "finished",
            &Counts::default(),
            &Snapshot::default(),
            Duration::ZERO,
            Some(cost),
            None,
            "x.db".into(),
        )
        .to_string();
        assert!(
            s.contains("  cost       $0.005500 (this run $0.005500)\n             input $0.001200, cached"),
            "{s}"
        );
    }

    #[test]
    fn counts_are_plural_unless_one() {
        assert_eq!(count(1, "batch", "batches"), "1 batch");
        assert_eq!(count(2, "batch", "batches"), "2 batches");
        assert_eq!(count(1500, "row", "rows"), "1,500 rows");
    }
}
