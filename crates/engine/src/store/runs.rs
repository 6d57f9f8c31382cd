//! The `runs` table: each run of the program on the checkpoint, when it started and ended, how it
//! ended, and what it last recorded (requests, retries, the limits in force, the process). The
//! writer updates a running run's counters with its commits.

use rusqlite::params;
use serde::Serialize;

use super::{now_ms, Store};
use crate::limits::InForce;

/// A run of the program as recorded in `runs`.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub run: i64,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub outcome: Option<String>,
    pub requests: i64,
    pub retries: i64,
    pub http_429: i64,
    /// The limits in force, as last recorded during the run (`None` before promptmill recorded
    /// them).
    pub limits: Option<InForce>,
    /// The process that ran it (`None` before promptmill recorded it).
    pub pid: Option<u32>,
    /// Requests on the wire at the run's last commit.
    pub on_wire: u64,
    /// Rows the run had claimed and not settled at its last commit (0 before promptmill
    /// recorded them, and once the run ended cleanly).
    pub claimed: u64,
    /// When the run last committed (unix ms).
    pub updated_at: Option<i64>,
}

impl Store {
    /// Every run of the program on this checkpoint, oldest first.
    pub fn runs(&self) -> anyhow::Result<Vec<RunRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT run, started_at, ended_at, outcome, requests, retries, http_429, limits, pid, on_wire,
                    updated_at, claimed
               FROM runs ORDER BY run",
        )?;
        let rows = stmt.query_map([], |r| {
            let limits: Option<String> = r.get(7)?;
            Ok(RunRecord {
                run: r.get(0)?,
                started_at: r.get(1)?,
                ended_at: r.get(2)?,
                outcome: r.get(3)?,
                requests: r.get(4)?,
                retries: r.get(5)?,
                http_429: r.get(6)?,
                limits: limits.and_then(|l| serde_json::from_str(&l).ok()),
                pid: r.get::<_, Option<i64>>(8)?.and_then(|p| u32::try_from(p).ok()),
                on_wire: r.get::<_, i64>(9)?.max(0) as u64,
                updated_at: r.get(10)?,
                claimed: r.get::<_, i64>(11)?.max(0) as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records the start of a run; returns its number.
    pub fn start_run(&self) -> anyhow::Result<i64> {
        self.conn.execute(
            "INSERT INTO runs (started_at, pid, updated_at) VALUES (?1, ?2, ?1)",
            params![now_ms(), std::process::id()],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records how a run ended and the summary it printed.
    pub fn end_run(&self, run: i64, outcome: &str, summary: &str) -> anyhow::Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "UPDATE runs SET ended_at = ?1, outcome = ?2, on_wire = 0, claimed = 0, updated_at = ?1 WHERE run = ?3",
            params![now_ms(), outcome, run],
        )?;
        tx.execute("UPDATE job SET summary = ?1 WHERE key = 1", params![summary])?;
        tx.commit()?;
        Ok(())
    }
}
