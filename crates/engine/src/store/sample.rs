//! The calibration sample of `estimate --sample` (the `sample` table: which rows, and the prompt
//! tokens counted locally beside the server's), and which rows a run of this store claims: the
//! sample's only, or those within `run --limit`. Claiming them is the writer's.

use rusqlite::params;

use super::{trusted_tokens, Store};

/// A sampled row that is done (`estimate --sample`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamplePrompt {
    pub seq: u64,
    /// The request body as sent.
    pub request: String,
    /// The prompt tokens the server billed.
    pub server: u64,
}

impl Store {
    /// Makes the calibration sample `n` rows: keeps the rows already chosen, and adds valid rows
    /// in a pseudo-random order until there are `n` (or no more). Returns the sample's size.
    /// The order is a fixed scramble of the rows' positions (multiplication by an odd constant
    /// modulo 2^32, a permutation), not SQLite's `random()`: the rows it picks are spread over
    /// the input as a random draw's are, and the same input gives the same sample, so an
    /// estimate can be repeated and its tests do not depend on the draw.
    pub fn choose_sample(&self, n: u64) -> anyhow::Result<u64> {
        let have: u64 = self
            .conn
            .query_row("SELECT count(*) FROM sample", [], |r| r.get(0))?;
        if have < n {
            self.conn.execute(
                "INSERT INTO sample (seq) SELECT seq FROM rows
                  WHERE invalid = 0 AND seq NOT IN (SELECT seq FROM sample)
                  ORDER BY (seq * 2654435761) % 4294967296 LIMIT ?1",
                [n - have],
            )?;
        }
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM sample", [], |r| r.get(0))?)
    }

    /// From now on, runs of this store claim only the rows of the calibration sample.
    pub fn claim_sample_only(&mut self) {
        self.sample_only = true;
    }

    /// From now on, runs of this store claim only rows numbered up to `limit` (`run --limit`).
    pub fn claim_through(&mut self, limit: Option<u64>) {
        self.through = limit.map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Completion tokens of the sampled rows that are done, and how many sampled rows are not.
    pub fn sample_completions(&self) -> anyhow::Result<(Vec<u64>, u64)> {
        let mut done = Vec::new();
        let mut other = 0;
        let mut q = self
            .conn
            .prepare("SELECT rows.state, rows.completion_tokens FROM sample JOIN rows USING (seq)")?;
        let mut rows = q.query([])?;
        while let Some(r) = rows.next()? {
            let state: String = r.get(0)?;
            match (state.as_str(), r.get::<_, Option<i64>>(1)?) {
                ("done", Some(t)) => done.push(trusted_tokens(t).unwrap_or(0)),
                _ => other += 1,
            }
        }
        Ok((done, other))
    }

    /// The sampled rows that are done: their request body and the prompt tokens the server
    /// billed, in sample order.
    pub fn sample_prompts(&self) -> anyhow::Result<Vec<SamplePrompt>> {
        let mut q = self.conn.prepare(
            "SELECT seq, rows.request, rows.prompt_tokens FROM sample JOIN rows USING (seq)
              WHERE rows.state = 'done' AND rows.request IS NOT NULL AND rows.prompt_tokens IS NOT NULL
              ORDER BY seq",
        )?;
        let mut rows = q.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let Some(server) = trusted_tokens(r.get(2)?) else {
                continue;
            };
            out.push(SamplePrompt {
                seq: r.get::<_, i64>(0)?.max(0) as u64,
                request: r.get(1)?,
                server,
            });
        }
        Ok(out)
    }

    /// Records the prompt tokens counted locally for sampled rows (`(seq, tokens)`), beside the
    /// server's count, in one transaction.
    pub fn record_sample_local_counts(&mut self, counts: &[(u64, u64)]) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut q = tx.prepare("UPDATE sample SET local_prompt_tokens = ?2 WHERE seq = ?1")?;
            for &(seq, tokens) in counts {
                q.execute(params![seq as i64, i64::try_from(tokens).unwrap_or(i64::MAX)])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}
