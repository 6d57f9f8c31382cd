//! Rows by state: the counts and token totals `status`, the progress line and the summary show,
//! the most common errors, and the two moves a run makes before it claims rows (rows a dead run
//! left in flight, and `--retry-failed`'s failed rows, go back to pending).

use rusqlite::params;
use serde::Serialize;

use super::{now_ms, state, token_sum, tokens_of, Store};

/// Rows by state, and the token totals of the done rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub total: u64,
    pub pending: u64,
    pub in_flight: u64,
    /// In a Batch API part waiting for its batch to finish (`run --mode batch`).
    pub batched: u64,
    pub done: u64,
    /// Of the done rows, those answered from the response cache (no request).
    pub cached: u64,
    /// Failed after being sent (or refused by the API).
    pub failed: u64,
    /// Failed validation and were never sent (`--skip-invalid`); not counted in `failed`.
    pub invalid: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    /// Sum of attempts over all rows (requests the checkpoint knows were sent).
    pub attempts: u64,
    /// Rows that needed more than one attempt.
    pub retried_rows: u64,
    pub max_attempts: u64,
}

impl Store {
    pub fn counts(&self) -> anyhow::Result<Counts> {
        self.counts_of(i64::MAX)
    }

    /// [`Store::counts`] of the rows a run of this store claims from (all, or up to `--limit`).
    pub fn counts_claimable(&self) -> anyhow::Result<Counts> {
        self.counts_of(self.through)
    }

    /// [`Store::counts`] and [`Store::counts_claimable`], in one scan of the table when the run
    /// claims from every row (no `--limit`): the two are then the same.
    pub fn counts_and_claimable(&self) -> anyhow::Result<(Counts, Counts)> {
        let all = self.counts()?;
        let claimable = match self.through {
            i64::MAX => all.clone(),
            through => self.counts_of(through)?,
        };
        Ok((all, claimable))
    }

    fn counts_of(&self, through: i64) -> anyhow::Result<Counts> {
        let mut c = Counts::default();
        let mut stmt = self.conn.prepare(&format!(
            "SELECT state, invalid, count(*), {}, {}, {}, coalesce(sum(attempts), 0),
                    coalesce(sum(attempts > 1), 0), coalesce(max(attempts), 0), coalesce(sum(cached), 0)
             FROM rows WHERE seq <= ?1 GROUP BY state, invalid",
            token_sum("prompt_tokens"),
            token_sum("completion_tokens"),
            token_sum("total_tokens"),
        ))?;
        let mut rows = stmt.query([through])?;
        while let Some(r) = rows.next()? {
            let state: String = r.get(0)?;
            let invalid: bool = r.get(1)?;
            let n: u64 = r.get::<_, i64>(2)? as u64;
            c.total += n;
            match state.as_str() {
                _ if invalid => c.invalid += n,
                state::PENDING => c.pending += n,
                state::IN_FLIGHT => c.in_flight += n,
                state::BATCHED => c.batched += n,
                state::DONE => c.done += n,
                _ => c.failed += n,
            }
            let tokens = |i| r.get::<_, f64>(i).map(tokens_of);
            c.prompt_tokens = c.prompt_tokens.saturating_add(tokens(3)?);
            c.completion_tokens = c.completion_tokens.saturating_add(tokens(4)?);
            c.total_tokens = c.total_tokens.saturating_add(tokens(5)?);
            c.attempts += r.get::<_, i64>(6)? as u64;
            c.retried_rows += r.get::<_, i64>(7)? as u64;
            c.max_attempts = c.max_attempts.max(r.get::<_, i64>(8)? as u64);
            c.cached += r.get::<_, i64>(9)?.max(0) as u64;
        }
        Ok(c)
    }

    /// The `n` most common errors of failed rows, with how many rows each.
    pub fn top_errors(&self, n: usize) -> anyhow::Result<Vec<(String, u64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT error, count(*) AS c FROM rows WHERE state = 'failed' AND error IS NOT NULL
             GROUP BY error ORDER BY c DESC, error LIMIT ?1",
        )?;
        let rows = stmt.query_map(params![n as i64], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Rows a dead run left in flight go back to pending; returns how many.
    pub fn reset_in_flight(&self) -> anyhow::Result<u64> {
        let n = self
            .conn
            .execute("UPDATE rows SET state = 'pending' WHERE state = 'in_flight'", [])?;
        Ok(n as u64)
    }

    /// Failed rows that were sent go back to pending (`--retry-failed`); invalid rows stay failed.
    pub fn requeue_failed(&self) -> anyhow::Result<u64> {
        let n = self.conn.execute(
            "UPDATE rows SET state = 'pending', error = NULL, http_status = NULL, part = NULL, updated_at = ?1
             WHERE state = 'failed' AND invalid = 0",
            params![now_ms()],
        )?;
        Ok(n as u64)
    }
}
