//! The answers a checkpoint holds for the response cache: the rows done by a request (not
//! from the cache) since the last copy, read a page at a time in input order, and how far the
//! copy has come (`cache_copied`). Nothing is written per row while a run sends: a run's end
//! reads what its rows were answered. The copy itself is `cache/keep.rs`'s.

use std::path::Path;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::Store;

/// A done row's answer, to be copied into the response cache.
pub struct KeptAnswer {
    pub seq: i64,
    /// Its request's digest as taken when it was read (`None`: read by an older promptmill).
    pub digest: Option<[u8; 32]>,
    /// Its request body as sent.
    pub request: String,
    /// The answer's body as received.
    pub response: String,
}

/// A read-only connection to a checkpoint, to read its answers on a thread of their own while
/// the store's connection goes on (WAL lets them read at once).
pub struct KeptReader {
    conn: Connection,
}

impl KeptReader {
    pub fn open(path: &Path) -> anyhow::Result<KeptReader> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        Ok(KeptReader { conn })
    }

    /// Up to `limit` answers of rows after `after` (in input order) done by a request and
    /// recorded at or after `since_ms`, not cut short or refused (the finish reasons
    /// `Completion::may_be_cached` refuses; a refusal with another reason is refused again on a
    /// hit, which reads the answer as a fresh one).
    pub fn kept_answers(&self, since_ms: i64, after: i64, limit: usize) -> anyhow::Result<Vec<KeptAnswer>> {
        kept_answers(&self.conn, since_ms, after, limit)
    }
}

fn kept_answers(
    conn: &Connection,
    since_ms: i64,
    after: i64,
    limit: usize,
) -> anyhow::Result<Vec<KeptAnswer>> {
    let mut q = conn.prepare_cached(
        "SELECT seq, digest, request, response FROM rows
              WHERE seq > ?1 AND state = 'done' AND cached = 0 AND updated_at >= ?2
                AND request IS NOT NULL AND response IS NOT NULL
                AND coalesce(finish_reason, '') NOT IN ('length', 'max_tokens', 'content_filter', 'refusal')
              ORDER BY seq LIMIT ?3",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows = q.query(params![after, since_ms, limit])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let digest = r
            .get::<_, Option<Vec<u8>>>(1)?
            .and_then(|d| <[u8; 32]>::try_from(d.as_slice()).ok());
        out.push(KeptAnswer {
            seq: r.get(0)?,
            digest,
            request: r.get(2)?,
            response: r.get(3)?,
        });
    }
    Ok(out)
}

impl Store {
    /// Since when the checkpoint's answers are not in the response cache yet (unix ms; 0: none
    /// was ever copied).
    pub fn cache_copied_since(&self) -> anyhow::Result<i64> {
        let since: Option<i64> = self
            .conn
            .query_row("SELECT max(since_ms) FROM cache_copied", [], |r| r.get(0))
            .optional()?
            .flatten();
        Ok(since.unwrap_or(0))
    }

    /// Records that the answers recorded before `since_ms` are in the response cache.
    pub fn set_cache_copied(&self, since_ms: i64) -> anyhow::Result<()> {
        self.conn.execute_batch("DELETE FROM cache_copied")?;
        self.conn
            .execute("INSERT INTO cache_copied (since_ms) VALUES (?1)", [since_ms])?;
        Ok(())
    }
}
