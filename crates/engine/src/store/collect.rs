//! Collecting a Batch API part: its output and error files recorded into the rows, in one
//! transaction, and the rows in neither file failed with the reason given. Reading the files is
//! `batch::results`'s.

use std::collections::HashMap;

use rusqlite::{params, Transaction};

use super::record::{paid_usage, record_outcome};
use super::writer::{Outcome, OutcomeKind};
use super::{now_ms, stage, stored_tokens, Store};
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
    /// Rows whose answer broke the job's `--schema` and that go back to pending, for a
    /// follow-up batch (see [`Collection::rejected`]).
    pub again: u64,
}

impl Store {
    /// Starts collecting `part`: the returned [`Collection`] records its output and error lines
    /// in one transaction, which [`Collection::finish`] commits.
    pub fn collect(&mut self, part: i64) -> anyhow::Result<Collection<'_>> {
        let tx = self.conn.transaction()?;
        let mut ids = HashMap::new();
        {
            let mut q =
                tx.prepare("SELECT id, seq, reasked FROM rows WHERE part = ?1 AND state = 'batched'")?;
            let mut rows = q.query([part])?;
            while let Some(r) = rows.next()? {
                let reasked = u32::try_from(r.get::<_, i64>(2)?).unwrap_or(u32::MAX);
                ids.insert(r.get::<_, String>(0)?, (r.get::<_, i64>(1)?, reasked));
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

/// How an answer broke the job's `--schema`, for [`Collection::rejected`].
pub struct Rejection<'e> {
    /// `invalid`, `truncated` or `refused`.
    pub outcome: &'static str,
    pub error: &'e str,
    /// Whether asking again may help (not for a refusal).
    pub retryable: bool,
    /// `--schema-retries`: how often a row is sent back.
    pub retries: u32,
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
    /// The part's rows not collected yet, by id: their seq, and how often a batch answer of
    /// theirs was sent back already.
    ids: HashMap<String, (i64, u32)>,
    counts: Collected,
}

impl Collection<'_> {
    /// Records row `custom_id` as done. Returns `false` for a line that names no row of this part
    /// waiting for a result.
    pub fn done(&mut self, custom_id: &str, completion: Completion) -> anyhow::Result<bool> {
        self.record(custom_id, OutcomeKind::Done(completion))
    }

    /// Records row `custom_id`, whose answer broke the job's `--schema` (`outcome`, `error`):
    /// back to pending for a follow-up batch while `retryable` and it was sent back fewer than
    /// `retries` times (its answer's usage kept, for the bill), else failed with its outcome.
    pub fn rejected(
        &mut self,
        custom_id: &str,
        answer: Completion,
        judged: Rejection<'_>,
    ) -> anyhow::Result<bool> {
        let Some(&(seq, reasked)) = self.ids.get(custom_id) else {
            self.counts.strays += 1;
            return Ok(false);
        };
        if !judged.retryable || reasked >= judged.retries {
            let asked = match reasked {
                0 => String::new(),
                n => format!(" (after {n} follow-up batches)"),
            };
            let kind = OutcomeKind::Rejected {
                answer,
                outcome: judged.outcome,
                error: format!("{}{asked}", judged.error),
            };
            return self.record(custom_id, kind);
        }
        self.ids.remove(custom_id);
        self.counts.again += 1;
        let sql = concat!(
            "UPDATE rows SET state = 'pending', attempts = attempts + 1, reasked = reasked + 1,
                    error = ?18, http_status = 200, updated_at = ?11, ",
            paid_usage!(),
            " WHERE seq = ?12"
        );
        let u = &answer.usage;
        self.tx.prepare_cached(sql)?.execute(rusqlite::named_params! {
            "?6": stored_tokens(u.prompt_tokens),
            "?7": stored_tokens(u.completion_tokens),
            "?8": stored_tokens(u.total_tokens),
            "?11": now_ms(),
            "?12": seq,
            "?13": u.cached_tokens.map(stored_tokens),
            "?14": u.cache_creation_tokens.map(stored_tokens),
            "?15": u.reasoning_tokens.map(stored_tokens),
            "?18": judged.error,
        })?;
        Ok(true)
    }

    /// Records row `custom_id` as failed.
    pub fn failed(&mut self, custom_id: &str, error: String, status: Option<u16>) -> anyhow::Result<bool> {
        self.record(custom_id, OutcomeKind::Failed { error, status })
    }

    fn record(&mut self, custom_id: &str, kind: OutcomeKind) -> anyhow::Result<bool> {
        let Some((seq, _)) = self.ids.remove(custom_id) else {
            self.counts.strays += 1;
            return Ok(false);
        };
        match kind {
            OutcomeKind::Done(_) | OutcomeKind::Cached(_) => self.counts.done += 1,
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
        let seqs: Vec<i64> = self.ids.drain().map(|(_, (seq, _))| seq).collect();
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
