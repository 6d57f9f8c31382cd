//! The checkpoint's record of Batch API parts (`run --mode batch`): planning a part (choosing its
//! rows and marking them `batched` in one transaction), the stages of submitting it, the batch's
//! status as last seen, and collecting its output and error files into the rows.
//!
//! The order of the stages is what makes a crash harmless. A part is planned (its rows fixed)
//! before its file exists; marked `uploading` before the upload is sent and `uploaded` with the
//! file id once it answers; marked `creating` before the batch is created and `submitted` with the
//! batch id once that answers. A run that finds a part `uploading` or `creating` knows a request
//! may have taken effect without its answer being recorded, and looks at the provider's files or
//! batches before sending it again.

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension, Transaction};
use serde::Serialize;

use super::writer::{record_outcome, Outcome, OutcomeKind};
use super::{now_ms, state, Store};
use crate::api::Completion;

/// How far a part got.
pub mod stage {
    pub const PLANNED: &str = "planned";
    pub const UPLOADING: &str = "uploading";
    pub const UPLOADED: &str = "uploaded";
    pub const CREATING: &str = "creating";
    pub const SUBMITTED: &str = "submitted";
    pub const COLLECTED: &str = "collected";
    /// Never submitted, and given up (`cancel`, `--finish-live`): its rows went back to pending.
    /// Its number (and so its file name) is never used again.
    pub const RELEASED: &str = "released";
}

/// A part as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartRecord {
    pub part: i64,
    pub model: String,
    pub filename: String,
    pub rows: u64,
    pub bytes: u64,
    pub tokens: u64,
    /// Dollars the part costs if every row uses its max_tokens (0 without a budget).
    pub worst_cost: f64,
    pub stage: String,
    pub file_id: Option<String>,
    pub batch_id: Option<String>,
    /// The provider's batch status, as last seen.
    pub status: Option<String>,
    pub completed: u64,
    pub failed: u64,
    pub total: u64,
    /// The batch's `errors.data`, when it failed validation.
    pub errors: Vec<crate::batch::wire::BatchError>,
    pub output_file_id: Option<String>,
    pub error_file_id: Option<String>,
    /// When the part was planned (unix ms).
    pub created_at: i64,
    /// When its stage or status last changed (unix ms): the end of its timeline in the report.
    #[serde(skip)]
    pub updated_at: i64,
}

impl PartRecord {
    /// Submitted to the provider and not collected yet: its tokens are in the provider's queue.
    pub fn is_open(&self) -> bool {
        self.stage != stage::COLLECTED && self.stage != stage::RELEASED
    }
}

/// The limits of one part.
#[derive(Debug, Clone, Copy)]
pub struct PartLimits {
    pub max_rows: u64,
    pub max_bytes: u64,
    /// Prompt tokens the part may hold (the room left in the provider's queue).
    pub max_tokens: Option<u64>,
    /// A first row over `max_tokens` may make a part alone (when the queue is empty, it would
    /// never fit otherwise); else no part is planned.
    pub alone_may_exceed: bool,
    /// Dollars of worst case the part may hold (what is left of `--max-cost`); never exceeded.
    pub max_cost: Option<f64>,
}

/// What a row adds to a part.
#[derive(Debug, Clone, Copy, Default)]
pub struct Measured {
    /// Bytes of its input line.
    pub size: u64,
    /// Prompt tokens (0 when nobody needs them).
    pub tokens: u64,
    /// Worst-case dollars (0 without a budget).
    pub cost: f64,
}

/// A pending row, as a part is planned.
pub struct Candidate<'a> {
    pub seq: i64,
    pub id: &'a str,
    pub request: &'a str,
}

/// What [`Store::plan_part`] asks of each row; `Err` fails the row with that reason instead.
pub type Measure<'f> = dyn FnMut(&Candidate<'_>) -> Result<Measured, String> + 'f;

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

fn part_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PartRecord> {
    let n = |i| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
    let errors: Option<String> = r.get(13)?;
    let worst_cost: f64 = r.get(16)?;
    let created_at: i64 = r.get(17)?;
    let updated_at: i64 = r.get(18)?;
    Ok(PartRecord {
        part: r.get(0)?,
        model: r.get(1)?,
        filename: r.get(2)?,
        rows: n(3)?,
        bytes: n(4)?,
        tokens: n(5)?,
        stage: r.get(6)?,
        file_id: r.get(7)?,
        batch_id: r.get(8)?,
        status: r.get(9)?,
        completed: n(10)?,
        failed: n(11)?,
        total: n(12)?,
        errors: errors
            .and_then(|e| serde_json::from_str(&e).ok())
            .unwrap_or_default(),
        output_file_id: r.get(14)?,
        error_file_id: r.get(15)?,
        worst_cost,
        created_at,
        updated_at,
    })
}

impl Store {
    /// Every part, in the order planned.
    pub fn parts(&self) -> anyhow::Result<Vec<PartRecord>> {
        let mut q = self.conn.prepare(
            "SELECT part, model, filename, rows, bytes, tokens, stage, file_id, batch_id, status,
                    completed, failed, total, errors, output_file_id, error_file_id, worst_cost, created_at, updated_at
             FROM parts ORDER BY part",
        )?;
        let parts = q.query_map([], part_row)?.collect::<Result<_, _>>()?;
        Ok(parts)
    }

    pub fn part(&self, part: i64) -> anyhow::Result<PartRecord> {
        let mut q = self.conn.prepare_cached(
            "SELECT part, model, filename, rows, bytes, tokens, stage, file_id, batch_id, status,
                    completed, failed, total, errors, output_file_id, error_file_id, worst_cost, created_at, updated_at
             FROM parts WHERE part = ?1",
        )?;
        Ok(q.query_row([part], part_row)?)
    }

    /// Chooses the next part: pending rows in input order that name the same model as the first
    /// pending row, up to `limits`, and marks them `batched` in it, in one transaction. A row whose
    /// `measure` fails is recorded as failed with the reason. `filename` gets the part number.
    /// Returns `None` when no row is pending.
    ///
    /// `after` is a cursor: only rows past it are looked at, and it moves to the part's last row,
    /// so that planning a million rows does not read the table from the top for every part. When
    /// nothing is found past it (rows of another model were skipped, or failed rows requeued), the
    /// search starts over from the top once.
    pub fn plan_part(
        &mut self,
        limits: PartLimits,
        after: &mut i64,
        filename: impl Fn(i64) -> String,
        measure: &mut Measure<'_>,
    ) -> anyhow::Result<Option<PartRecord>> {
        let tx = self.conn.transaction()?;
        let first: Option<String> = tx
            .query_row(
                "SELECT coalesce(json_extract(request, '$.model'), '') FROM rows
                  WHERE state = 'pending' AND invalid = 0 AND seq > ?1 ORDER BY seq LIMIT 1",
                [*after],
                |r| r.get(0),
            )
            .optional()?;
        let Some(model) = first else {
            drop(tx);
            if *after > 0 {
                *after = 0;
                return self.plan_part(limits, after, filename, measure);
            }
            return Ok(None);
        };
        let part: i64 = tx.query_row("SELECT coalesce(max(part), 0) + 1 FROM parts", [], |r| r.get(0))?;
        let (mut rows, mut bytes, mut tokens, mut cost) = (0u64, 0u64, 0u64, 0.0f64);
        let mut chosen = Vec::new();
        let mut refused = Vec::new();
        {
            let mut q = tx.prepare(
                "SELECT seq, id, request FROM rows
                  WHERE state = 'pending' AND invalid = 0 AND seq > ?2
                    AND coalesce(json_extract(request, '$.model'), '') = ?1
                  ORDER BY seq",
            )?;
            let mut found = q.query(rusqlite::params![&model, *after])?;
            while let Some(r) = found.next()? {
                let (seq, id, request): (i64, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
                let candidate = Candidate {
                    seq,
                    id: &id,
                    request: &request,
                };
                match measure(&candidate) {
                    Err(why) => refused.push((seq, why)),
                    Ok(m) => {
                        let over_tokens = limits.max_tokens.is_some_and(|max| tokens + m.tokens > max);
                        let over_cost = limits.max_cost.is_some_and(|max| cost + m.cost > max);
                        if rows == 0 && ((over_tokens && !limits.alone_may_exceed) || over_cost) {
                            break;
                        }
                        let full = rows + 1 > limits.max_rows || bytes + m.size > limits.max_bytes;
                        if rows > 0 && (full || over_tokens || over_cost) {
                            break;
                        }
                        rows += 1;
                        bytes += m.size;
                        tokens += m.tokens;
                        cost += m.cost;
                        chosen.push(seq);
                    }
                }
            }
        }
        let now = now_ms();
        for (seq, why) in &refused {
            tx.execute(
                "UPDATE rows SET state = 'failed', error = ?1, updated_at = ?2 WHERE seq = ?3",
                params![why, now, seq],
            )?;
        }
        if chosen.is_empty() {
            let none_refused = refused.is_empty();
            tx.commit()?;
            if none_refused {
                // The first row does not fit in the room left in the queue or the budget.
                return Ok(None);
            }
            // Every row of this model was refused; the next model's rows may still make a part.
            return self.plan_part(limits, after, filename, measure);
        }
        if let Some(&last) = chosen.last() {
            *after = last;
        }
        tx.execute(
            "INSERT INTO parts (part, model, filename, rows, bytes, tokens, worst_cost, stage, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
            params![
                part,
                model,
                filename(part),
                rows as i64,
                bytes as i64,
                tokens as i64,
                cost,
                stage::PLANNED,
                now
            ],
        )?;
        {
            let mut mark =
                tx.prepare("UPDATE rows SET state = ?1, part = ?2, updated_at = ?3 WHERE seq = ?4")?;
            for seq in &chosen {
                mark.execute(params![state::BATCHED, part, now, seq])?;
            }
        }
        tx.commit()?;
        Ok(Some(self.part(part)?))
    }

    /// Calls `each` with the id and request of every row of `part`, in input order.
    pub fn part_rows(
        &self,
        part: i64,
        mut each: impl FnMut(&str, &str) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut q = self
            .conn
            .prepare("SELECT id, request FROM rows WHERE part = ?1 AND state = 'batched' ORDER BY seq")?;
        let mut rows = q.query([part])?;
        while let Some(r) = rows.next()? {
            each(r.get_ref(0)?.as_str()?, r.get_ref(1)?.as_str()?)?;
        }
        Ok(())
    }

    /// Records that `part` reached `stage`, with what the provider answered.
    pub fn set_stage(&self, part: i64, to: &str) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE parts SET stage = ?1, updated_at = ?2 WHERE part = ?3",
            params![to, now_ms(), part],
        )?;
        Ok(())
    }

    /// The part's file is uploaded (or an earlier upload of it was found).
    pub fn record_file(&self, part: i64, file_id: &str) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE parts SET stage = ?1, file_id = ?2, updated_at = ?3 WHERE part = ?4",
            params![stage::UPLOADED, file_id, now_ms(), part],
        )?;
        Ok(())
    }

    /// The part's upload is gone (deleted, or never made): it is uploaded again from its rows.
    pub fn forget_file(&self, part: i64) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE parts SET stage = ?1, file_id = NULL, updated_at = ?2 WHERE part = ?3",
            params![stage::PLANNED, now_ms(), part],
        )?;
        Ok(())
    }

    /// Gives up a part that has no batch: its rows go back to pending, in one transaction.
    pub fn release(&mut self, part: i64) -> anyhow::Result<u64> {
        let tx = self.conn.transaction()?;
        let n = tx.execute(
            "UPDATE rows SET state = 'pending', part = NULL, updated_at = ?1 WHERE part = ?2 AND state = 'batched'",
            params![now_ms(), part],
        )?;
        tx.execute(
            "UPDATE parts SET stage = ?1, updated_at = ?2 WHERE part = ?3",
            params![stage::RELEASED, now_ms(), part],
        )?;
        tx.commit()?;
        Ok(n as u64)
    }

    /// The part's batch exists (created now, or found after a crash), and how it stands.
    pub fn record_batch(&self, part: i64, batch: &crate::batch::wire::Batch) -> anyhow::Result<()> {
        let c = batch.counts();
        let errors = if batch.error_list().is_empty() {
            None
        } else {
            Some(serde_json::to_string(batch.error_list())?)
        };
        self.conn.execute(
            "UPDATE parts SET stage = CASE WHEN stage IN ('collected', 'released') THEN stage ELSE ?1 END,
                    batch_id = ?2, status = ?3, completed = ?4, failed = ?5, total = ?6,
                    errors = coalesce(?7, errors), output_file_id = coalesce(?8, output_file_id),
                    error_file_id = coalesce(?9, error_file_id), updated_at = ?10
              WHERE part = ?11",
            params![
                stage::SUBMITTED,
                batch.id,
                batch.status.as_str(),
                c.completed as i64,
                c.failed as i64,
                c.total as i64,
                errors,
                batch.output_file_id,
                batch.error_file_id,
                now_ms(),
                part
            ],
        )?;
        let seen = super::batch_states::BatchState {
            part,
            at: now_ms(),
            status: batch.status.as_str().to_string(),
            completed: c.completed,
            failed: c.failed,
            total: c.total,
        };
        super::batch_states::note(&self.conn, &seen)?;
        Ok(())
    }

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
