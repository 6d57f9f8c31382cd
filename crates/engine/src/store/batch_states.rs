//! The states a part's batch went through, as the batch driver saw them when it polled: one row
//! of `batch_states` per change of (status, completed, failed), for the report's batch
//! timelines (submitted, in progress, finalizing, ended) and counts.
//!
//! Recorded by [`Store::record_batch`](super::Store::record_batch), the one place a polled (or
//! created, or found) batch is stored, so every caller records it without knowing of this table.
//! A poll that sees nothing new adds nothing: the table holds a few rows per batch, however long
//! the batch runs and however often it is polled.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::Store;

/// One state of a part's batch, from when it was first seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchState {
    pub part: i64,
    /// Unix ms.
    pub at: i64,
    pub status: String,
    pub completed: u64,
    pub failed: u64,
    pub total: u64,
}

/// Appends `state` unless it is the part's last recorded state already (inside the caller's
/// transaction, or on its own).
pub(crate) fn note(conn: &Connection, state: &BatchState) -> rusqlite::Result<()> {
    let last: Option<(String, i64, i64)> = conn
        .prepare_cached(
            "SELECT status, completed, failed FROM batch_states WHERE part = ?1
             ORDER BY at DESC, rowid DESC LIMIT 1",
        )?
        .query_row([state.part], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let now = (state.status.clone(), state.completed as i64, state.failed as i64);
    if last.as_ref() == Some(&now) {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO batch_states (part, at, status, completed, failed, total)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        state.part,
        state.at,
        state.status,
        state.completed as i64,
        state.failed as i64,
        state.total as i64
    ])?;
    Ok(())
}

impl Store {
    /// Every recorded batch state, by part and then time.
    pub fn batch_states(&self) -> anyhow::Result<Vec<BatchState>> {
        let mut stmt = self.conn.prepare(
            "SELECT part, at, status, completed, failed, total FROM batch_states
             ORDER BY part, at, rowid",
        )?;
        let count = |v: i64| v.max(0) as u64;
        let rows = stmt
            .query_map([], |r| {
                Ok(BatchState {
                    part: r.get(0)?,
                    at: r.get(1)?,
                    status: r.get(2)?,
                    completed: count(r.get(3)?),
                    failed: count(r.get(4)?),
                    total: count(r.get(5)?),
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(at: i64, status: &str, completed: u64) -> BatchState {
        BatchState {
            part: 1,
            at,
            status: status.into(),
            completed,
            failed: 0,
            total: 10,
        }
    }

    #[test]
    fn a_poll_that_sees_nothing_new_records_nothing() {
        let store = Store::open_in_memory().unwrap();
        for s in [
            state(1, "validating", 0),
            state(2, "in_progress", 0),
            state(3, "in_progress", 0),
            state(4, "in_progress", 4),
            state(5, "in_progress", 4),
            state(6, "completed", 10),
        ] {
            note(&store.conn, &s).unwrap();
        }
        let seen: Vec<(i64, String, u64)> = store
            .batch_states()
            .unwrap()
            .into_iter()
            .map(|s| (s.at, s.status, s.completed))
            .collect();
        assert_eq!(
            seen,
            [
                (1, "validating".to_string(), 0),
                (2, "in_progress".to_string(), 0),
                (4, "in_progress".to_string(), 4),
                (6, "completed".to_string(), 10),
            ]
        );
    }
}
