//! Collecting a Batch API part: its output and error files recorded into the rows, in one
//! transaction, and the rows in neither file failed with the reason given. Reading the files is
//! `batch::results`'s.

use std::collections::HashMap;

use rusqlite::{params, Transaction};

use super::writer::{record_outcome, Outcome, OutcomeKind};
use super::{now_ms, stage, Store};
use promptmill_core::family::Completion;

/// Counts of one collection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Collected {
    pub done: u64,
    pub failed: u64,
    /// Rows in neither file, failed with the reason given.
    pub missing: u64,
    /// Lines naming a row that is not in this part (or was already collected): ignored.
    pub strays: u64,
}

impl Store {
    /// Starts collecting `part`: the returned [`Collection`] records its output and error lines
    /// in one transaction, which [`Collection::finish`] commits.
    pub fn collect(&mut self, part: i64) -> anyhow::Result<Collection<'_>> {
        let tx = self.conn.transaction()?;
        let mut ids = HashMap::new();
        {
            let mut q = tx.prepare("SELECT id, seq FROM rows WHERE part = ?1 AND state = 'batched'")?;
            let mut rows = q.query([part])?;
            while let Some(r) = rows.next()? {
                ids.insert(r.get::<_, String>(0)?, r.get::<_, i64>(1)?);
            }
        }
        Ok(Collection {
            tx,
            part,
            ids,
            counts: Collected::default(),
        })
    }
}

/// A row of a joined Batch line that waits for its result.
pub struct Waiting {
    pub id: String,
    pub body: String,
    /// Its prompt tokens as counted when it was read (`rows.input_tokens`), if they were.
    pub tokens: Option<u64>,
}

/// The collection of one part's results, in one transaction.
pub struct Collection<'a> {
    tx: Transaction<'a>,
    part: i64,
    /// The part's rows not collected yet, by id.
    ids: HashMap<String, i64>,
    counts: Collected,
}

impl Collection<'_> {
    /// Records row `custom_id` as done. Returns `false` for a line that names no row of this part
    /// waiting for a result.
    pub fn done(&mut self, custom_id: &str, completion: Completion) -> anyhow::Result<bool> {
        self.record(custom_id, OutcomeKind::Done(completion))
    }

    /// Records row `custom_id` as failed.
    pub fn failed(&mut self, custom_id: &str, error: String, status: Option<u16>) -> anyhow::Result<bool> {
        self.record(custom_id, OutcomeKind::Failed { error, status })
    }

    fn record(&mut self, custom_id: &str, kind: OutcomeKind) -> anyhow::Result<bool> {
        let Some(seq) = self.ids.remove(custom_id) else {
            self.counts.strays += 1;
            return Ok(false);
        };
        match kind {
            OutcomeKind::Done(_) => self.counts.done += 1,
            _ => self.counts.failed += 1,
        }
        record_outcome(
            &self.tx,
            Outcome {
                seq,
                attempts: 1,
                kind,
                tries: Vec::new(),
            },
        )?;
        Ok(true)
    }

    /// Whether row `id` is of this part and has no result yet.
    pub fn is_waiting(&self, id: &str) -> bool {
        self.ids.contains_key(id)
    }

    /// The rows of the part with no result yet whose seq is in `first..=last`, in input order,
    /// with their requests: the rows of a joined Batch line.
    pub fn waiting_between(&self, first: i64, last: i64) -> anyhow::Result<Vec<Waiting>> {
        let mut q = self.tx.prepare_cached(
            "SELECT id, request, input_tokens FROM rows
              WHERE part = ?1 AND state = 'batched' AND seq BETWEEN ?2 AND ?3 ORDER BY seq",
        )?;
        let mut rows = q.query(params![self.part, first, last])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            if self.ids.contains_key(&id) {
                out.push(Waiting {
                    id,
                    body: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    tokens: r.get::<_, Option<i64>>(2)?.and_then(super::trusted_tokens),
                });
            }
        }
        Ok(out)
    }

    /// Counts a line that names no row of this part waiting for a result.
    pub fn stray(&mut self) {
        self.counts.strays += 1;
    }

    /// Rows of the part with no result yet.
    pub fn waiting(&self) -> usize {
        self.ids.len()
    }

    /// Fails every row that got no line with `reason`, marks the part collected, and commits.
    pub fn finish(mut self, reason: &str) -> anyhow::Result<Collected> {
        let seqs: Vec<i64> = self.ids.drain().map(|(_, seq)| seq).collect();
        for seq in seqs {
            self.counts.missing += 1;
            record_outcome(
                &self.tx,
                Outcome {
                    seq,
                    attempts: 1,
                    kind: OutcomeKind::Failed {
                        error: reason.to_string(),
                        status: None,
                    },
                    tries: Vec::new(),
                },
            )?;
        }
        self.tx.execute(
            "UPDATE parts SET stage = ?1, updated_at = ?2 WHERE part = ?3",
            params![stage::COLLECTED, now_ms(), self.part],
        )?;
        self.tx.commit()?;
        Ok(self.counts)
    }
}
