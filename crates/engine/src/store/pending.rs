//! The requests still to send, read before they are sent: to price them (the models they name,
//! for the estimate; their bodies, for the cost line before a job's first request), and to look
//! them up in the response cache before a Batch API job plans its parts, the rows answered
//! there settled done in one transaction a page.

use rusqlite::params;

use super::record::record_outcome;
use super::writer::{Outcome, OutcomeKind};
use super::Store;
use promptmill_core::family::Completion;

/// A pending row, as the response cache keys it.
pub struct PendingKey {
    pub seq: i64,
    /// Its request's digest as taken when it was read (`None`: read by an older promptmill).
    pub digest: Option<[u8; 32]>,
    /// Its request body, read only when it has no usable digest (empty otherwise): the digest
    /// is the key, so a body of kilobytes is not copied out of the checkpoint for nothing.
    pub request: String,
}

impl Store {
    /// The models the valid rows' requests name (`""` for none). `fixed`: the job's `--model`,
    /// which every request carries, so the rows need not be read.
    pub fn request_models(&self, fixed: Option<&str>) -> anyhow::Result<Vec<String>> {
        if let Some(m) = fixed {
            return Ok(vec![m.to_string()]);
        }
        let mut q = self.conn.prepare(
            "SELECT DISTINCT coalesce(json_extract(request, '$.model'), '') FROM rows WHERE invalid = 0",
        )?;
        let models = q
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<_, _>>()?;
        Ok(models)
    }

    /// Calls `f` with the request body of every pending row this run may send (within
    /// `--limit`), in input order (the cost line before a job's first request prices them).
    pub fn each_pending_request(&self, mut f: impl FnMut(&str)) -> anyhow::Result<()> {
        let mut q = self.conn.prepare(
            "SELECT request FROM rows WHERE state = 'pending' AND invalid = 0 AND request IS NOT NULL
               AND seq <= ?1 ORDER BY seq",
        )?;
        let mut rows = q.query([self.through])?;
        while let Some(r) = rows.next()? {
            f(r.get_ref(0)?.as_str()?);
        }
        Ok(())
    }

    /// Up to `limit` pending rows after `after` (in input order) this run may send, with what
    /// their cache keys are made of.
    pub fn pending_keys(&self, after: i64, limit: usize) -> anyhow::Result<Vec<PendingKey>> {
        let mut q = self.conn.prepare_cached(
            "SELECT seq, digest, CASE WHEN length(digest) IS 32 THEN '' ELSE request END FROM rows
              WHERE seq > ?1 AND seq <= ?2 AND state = 'pending' AND invalid = 0 AND request IS NOT NULL
              ORDER BY seq LIMIT ?3",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = q.query(params![after, self.through, limit])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let digest = r
                .get::<_, Option<Vec<u8>>>(1)?
                .and_then(|d| <[u8; 32]>::try_from(d.as_slice()).ok());
            out.push(PendingKey {
                seq: r.get(0)?,
                digest,
                request: r.get(2)?,
            });
        }
        Ok(out)
    }

    /// Settles each row of `answers` (seq, answer) done from the response cache, in one
    /// transaction, as the checkpoint writer records a live run's hits.
    pub fn settle_cached(&mut self, answers: Vec<(i64, Completion)>) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        for (seq, answer) in answers {
            let outcome = Outcome {
                seq,
                attempts: 0,
                kind: OutcomeKind::Cached(answer),
                tries: Vec::new(),
            };
            record_outcome(&tx, outcome)?;
        }
        tx.commit()?;
        Ok(())
    }
}
