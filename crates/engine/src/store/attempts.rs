//! Per-attempt records: one row of the `attempts` table for every request a live run sent, the
//! data of `promptmill report` (latency, status, error class, waits, tokens, cost, the window
//! and the limits as they changed).
//!
//! Written by the checkpoint writer in the transaction that records the row's outcome (never a
//! commit of their own), read back by the report, streamed ([`Store::each_attempt`]) or as SQL aggregates. Batch-mode rows have no attempts: their
//! story is the parts table. Each record is small (about 40 bytes with SQLite's overhead for a
//! row that succeeds on its first attempt; NULLs cost one header byte), so a job of 1M rows
//! holds about 40 MB of them beside its prompts and completions.

use rusqlite::{params, Connection};
use serde::Serialize;

use super::Store;

/// What one request of a row came to.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Attempt {
    /// When it was sent, unix ms.
    pub started_at: i64,
    pub latency_ms: u32,
    /// The HTTP status; `None` when no answer came (a timeout, a refused connection).
    pub status: Option<u16>,
    /// `None` when it gave the row its completion; else what went wrong ([`class`]).
    pub class: Option<&'static str>,
    /// The wait before the row's next attempt (the server's Retry-After, or the backoff).
    pub wait_ms: Option<u32>,
    /// The wait paused every worker (a limit's headers said it was spent).
    pub paused: bool,
    /// The adaptive concurrency window after this answer.
    pub window: u32,
    /// The RPM and TPM limits in force after this answer, when it changed them (learned from
    /// the server's headers).
    pub limits: Option<(Option<u32>, Option<u32>)>,
    /// Usage of a completion, when this attempt gave one.
    pub tokens: Option<Tokens>,
    /// What this attempt cost, in billionths of a dollar (0 when unpriced).
    pub cost_nanos: u64,
}

/// Usage of one completion; cached and reasoning tokens where the server reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tokens {
    pub prompt: u64,
    pub completion: u64,
    pub cached: Option<u64>,
    pub reasoning: Option<u64>,
}

/// The error classes an attempt is filed under.
pub mod class {
    /// A 429 (rate limited).
    pub const RATE_LIMITED: &str = "rate limited (429)";
    /// A 5xx, 408 or 409.
    pub const SERVER: &str = "server error";
    /// No answer: a timeout, a reset or refused connection.
    pub const NO_ANSWER: &str = "no answer";
    /// A 2xx whose body was no usable completion.
    pub const BAD_BODY: &str = "unusable answer";
    /// The row cannot succeed as it is (400, 404, 422, ...).
    pub const REFUSED: &str = "refused";
    /// An answer that stops the run (401, 403, an exhausted quota).
    pub const STOP: &str = "stopped the run";
    /// Abandoned on the wire when the run was aborted.
    pub const ABANDONED: &str = "abandoned";
}

/// An attempt as stored, with its row and run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredAttempt {
    pub run: i64,
    pub seq: i64,
    pub id: String,
    pub started_at: i64,
    pub latency_ms: i64,
    pub status: Option<i64>,
    pub class: Option<String>,
    pub wait_ms: Option<i64>,
    pub paused: bool,
    pub window: Option<i64>,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    pub limits_changed: bool,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub cached_tokens: Option<i64>,
    pub reasoning_tokens: Option<i64>,
    pub cost_nanos: i64,
}

/// A sent row's end: when it was settled (unix ms) and whether it was done (else failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowEnd {
    pub at: i64,
    pub done: bool,
}

/// Finish reasons with how many done rows gave each, most frequent first.
pub type FinishReasons = Vec<(String, u64)>;

/// Whether attempts are recorded: always, unless the hidden `PROMPTMILL_BENCH_NO_ATTEMPTS` is
/// set, which exists only so `examples/bench.rs` can measure what recording costs (the same
/// binary, the same session, with and without). Read once per process.
fn recording() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("PROMPTMILL_BENCH_NO_ATTEMPTS").is_none())
}

/// Appends a row's attempts of run `run` (inside the caller's transaction).
pub(crate) fn record(conn: &Connection, run: i64, seq: i64, tries: &[Attempt]) -> rusqlite::Result<()> {
    if tries.is_empty() || !recording() {
        return Ok(());
    }
    let mut insert = conn.prepare_cached(
        "INSERT INTO attempts (run, seq, started_at, latency_ms, status, class, wait_ms, paused,
                window, limits_changed, rpm, tpm, prompt_tokens, completion_tokens, cached_tokens,
                reasoning_tokens, cost_nanos)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )?;
    let count = |n: u64| super::stored_tokens(n);
    for a in tries {
        let t = a.tokens;
        insert.execute(params![
            run,
            seq,
            a.started_at,
            a.latency_ms,
            a.status,
            a.class,
            a.wait_ms,
            a.paused.then_some(1),
            a.window,
            a.limits.map(|_| 1),
            a.limits.and_then(|l| l.0),
            a.limits.and_then(|l| l.1),
            t.map(|t| count(t.prompt)),
            t.map(|t| count(t.completion)),
            t.and_then(|t| t.cached).map(count),
            t.and_then(|t| t.reasoning).map(count),
            (a.cost_nanos > 0).then(|| i64::try_from(a.cost_nanos).unwrap_or(i64::MAX)),
        ])?;
    }
    Ok(())
}

impl Store {
    /// Calls `each` with every attempt of the job, in the order they were sent, one at a time
    /// (streamed from SQLite: memory does not grow with the attempts).
    pub fn each_attempt(&self, each: &mut dyn FnMut(StoredAttempt)) -> anyhow::Result<()> {
        let mut stmt = self.conn.prepare(
            "SELECT a.run, a.seq, r.id, a.started_at, a.latency_ms, a.status, a.class, a.wait_ms,
                    a.paused, a.window, a.limits_changed, a.rpm, a.tpm, a.prompt_tokens,
                    a.completion_tokens, a.cached_tokens, a.reasoning_tokens, a.cost_nanos
             FROM attempts a JOIN rows r ON r.seq = a.seq
             ORDER BY a.started_at, a.rowid",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            each(StoredAttempt {
                run: r.get(0)?,
                seq: r.get(1)?,
                id: r.get(2)?,
                started_at: r.get(3)?,
                latency_ms: r.get(4)?,
                status: r.get(5)?,
                class: r.get(6)?,
                wait_ms: r.get(7)?,
                paused: r.get::<_, Option<i64>>(8)?.is_some(),
                window: r.get(9)?,
                limits_changed: r.get::<_, Option<i64>>(10)?.is_some(),
                rpm: r.get(11)?,
                tpm: r.get(12)?,
                prompt_tokens: r.get(13)?,
                completion_tokens: r.get(14)?,
                cached_tokens: r.get(15)?,
                reasoning_tokens: r.get(16)?,
                cost_nanos: r.get::<_, Option<i64>>(17)?.unwrap_or(0),
            });
        }
        Ok(())
    }

    /// Every attempt of the job in one `Vec`: for tests and small jobs (the report streams them
    /// through [`Store::each_attempt`]).
    pub fn attempts(&self) -> anyhow::Result<Vec<StoredAttempt>> {
        let mut all = Vec::new();
        self.each_attempt(&mut |a| all.push(a))?;
        Ok(all)
    }

    /// Each run's attempts' first start and last end (start + latency), unix ms.
    pub fn attempt_spans(&self) -> anyhow::Result<Vec<(i64, i64, i64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT run, min(started_at), max(started_at + latency_ms) FROM attempts GROUP BY run",
        )?;
        let spans = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        Ok(spans)
    }

    /// The first and last end of the rows settled in `[from, to)` (unix ms), as
    /// [`Store::each_row_end`] counts them; `None` when none was.
    pub fn row_end_span(&self, from: i64, to: i64) -> anyhow::Result<Option<(i64, i64)>> {
        let span = self.conn.query_row(
            "SELECT min(updated_at), max(updated_at) FROM rows
             WHERE invalid = 0 AND part IS NULL AND state IN ('done', 'failed')
               AND updated_at >= ?1 AND updated_at < ?2",
            params![from, to],
            |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?)),
        )?;
        Ok(span.0.zip(span.1))
    }

    /// The `n` rows whose recorded attempts (of run `run`, or of every run) cost most, with their
    /// billionths of a dollar: most first, ties by row id.
    pub fn most_expensive(&self, run: Option<i64>, n: usize) -> anyhow::Result<Vec<(String, i64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT r.id, sum(a.cost_nanos) FROM attempts a JOIN rows r ON r.seq = a.seq
             WHERE a.cost_nanos > 0 AND (?1 IS NULL OR a.run = ?1)
             GROUP BY r.id ORDER BY 2 DESC, 1 LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![run, n as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }
}

impl Store {
    /// Calls `each` with when each sent row was settled (done or failed), in order of time,
    /// streamed. Batch-mode rows are left out (the parts tell their story).
    pub fn each_row_end(&self, each: &mut dyn FnMut(RowEnd)) -> anyhow::Result<()> {
        let mut stmt = self.conn.prepare(
            "SELECT updated_at, state = 'done' FROM rows
             WHERE invalid = 0 AND part IS NULL AND state IN ('done', 'failed') ORDER BY updated_at",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            each(RowEnd {
                at: r.get(0)?,
                done: r.get(1)?,
            });
        }
        Ok(())
    }

    /// The done rows' finish reasons with their counts, most frequent first (batch-mode rows
    /// included).
    pub fn finish_reasons(&self) -> anyhow::Result<FinishReasons> {
        let mut stmt = self.conn.prepare(
            "SELECT coalesce(finish_reason, '(none given)'), count(*) FROM rows
             WHERE state = 'done' GROUP BY 1 ORDER BY 2 DESC",
        )?;
        let reasons = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?
            .collect::<Result<_, _>>()?;
        Ok(reasons)
    }
}

impl Store {
    /// Calls `each` with the request body of every row that is sent (not invalid), in input
    /// order; for the report's estimate, which counts them as `estimate` does.
    pub fn each_request(&self, each: &mut dyn FnMut(&str)) -> anyhow::Result<()> {
        let mut stmt = self
            .conn
            .prepare("SELECT request FROM rows WHERE invalid = 0 AND request IS NOT NULL ORDER BY seq")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            each(row.get_ref(0)?.as_str()?);
        }
        Ok(())
    }
}
