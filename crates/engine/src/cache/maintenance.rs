//! `promptmill cache stats | prune | clear`: reading and trimming a cache file outside a run.
//! Each opens the file as a run does (WAL, busy timeout), so it can run while jobs use the
//! cache; a file that does not exist is an empty cache and is not created by `stats`.

use std::path::Path;
use std::time::Duration;

use rusqlite::params;

use super::open_conn;

/// What a cache holds.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    pub answers: u64,
    /// The answers' bodies, in bytes.
    pub bytes: u64,
    /// When the oldest and newest answers were stored (unix ms).
    pub oldest_ms: Option<i64>,
    pub newest_ms: Option<i64>,
    /// Answers by family name, most first.
    pub families: Vec<(String, u64)>,
}

/// What the cache at `path` holds (an absent file holds nothing).
pub fn stats(path: &Path) -> anyhow::Result<CacheStats> {
    if !path.exists() {
        return Ok(CacheStats::default());
    }
    let conn = open_conn(path)?;
    let (answers, bytes, oldest_ms, newest_ms) = conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(LENGTH(response)), 0), MIN(created_at), MAX(created_at) FROM answers",
        [],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, Option<i64>>(3)?,
            ))
        },
    )?;
    let mut by_family =
        conn.prepare("SELECT family, COUNT(*) AS n FROM answers GROUP BY family ORDER BY n DESC, family")?;
    let families = by_family
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
        })?
        .collect::<Result<_, _>>()?;
    Ok(CacheStats {
        answers: answers.max(0) as u64,
        bytes: bytes.max(0) as u64,
        oldest_ms,
        newest_ms,
        families,
    })
}

/// Removes the answers stored more than `older_than` ago; returns how many.
pub fn prune(path: &Path, older_than: Duration) -> anyhow::Result<u64> {
    if !path.exists() {
        return Ok(0);
    }
    let conn = open_conn(path)?;
    let age = i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
    let cutoff = crate::store::now_ms().saturating_sub(age);
    let removed = conn.execute("DELETE FROM answers WHERE created_at < ?1", params![cutoff])?;
    Ok(removed as u64)
}

/// Removes every answer; returns how many.
pub fn clear(path: &Path) -> anyhow::Result<u64> {
    if !path.exists() {
        return Ok(0);
    }
    let conn = open_conn(path)?;
    let removed = conn.execute("DELETE FROM answers", [])?;
    conn.execute_batch("VACUUM")?;
    Ok(removed as u64)
}
