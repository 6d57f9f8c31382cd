//! The checkpoint's record of Batch API parts (`run --mode batch`): the stages of submitting a
//! part and the batch's status as last seen. Planning a part (choosing its rows and marking them
//! `batched` in one transaction) is `plan.rs`'s; collecting its output and error files into the
//! rows is `collect.rs`'s.
//!
//! The order of the stages is what makes a crash harmless. A part is planned (its rows fixed)
//! before its file exists; marked `uploading` before the upload is sent and `uploaded` with the
//! file id once it answers; marked `creating` before the batch is created and `submitted` with the
//! batch id once that answers. A run that finds a part `uploading` or `creating` knows a request
//! may have taken effect without its answer being recorded, and looks at the provider's files or
//! batches before sending it again.

use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::{now_ms, Store};

/// A provider's batch as a poll (or a create) showed it: what the checkpoint records of it.
/// Built by the batch driver from what the service showed (`batch::service::BatchView::seen`).
#[derive(Debug, Clone, Copy)]
pub struct BatchSeen<'a> {
    pub id: &'a str,
    /// The provider's status, e.g. `in_progress`.
    pub status: &'a str,
    pub completed: u64,
    pub failed: u64,
    pub total: u64,
    pub errors: &'a [BatchError],
    pub output_file_id: Option<&'a str>,
    pub error_file_id: Option<&'a str>,
}

/// `BatchError`: why a batch (or one line of its input) failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchError {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub param: Option<String>,
    #[serde(default)]
    pub line: Option<u64>,
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(code) = &self.code {
            write!(f, "{code}: ")?;
        }
        f.write_str(self.message.as_deref().unwrap_or("(no message)"))?;
        if let Some(param) = &self.param {
            write!(f, " (param `{param}`)")?;
        }
        Ok(())
    }
}

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
    pub errors: Vec<BatchError>,
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

    /// The seqs of the rows of `part` not collected yet, in input order (from the index alone).
    pub fn part_seqs(&self, part: i64) -> anyhow::Result<Vec<i64>> {
        let mut q = self
            .conn
            .prepare("SELECT seq FROM rows WHERE part = ?1 AND state = 'batched' ORDER BY seq")?;
        let seqs = q.query_map([part], |r| r.get(0))?;
        Ok(seqs.collect::<Result<_, _>>()?)
    }

    /// Calls `each` with the seq, id and request of every row of `part`, in input order.
    pub fn part_rows_seq(
        &self,
        part: i64,
        mut each: impl FnMut(i64, &str, &str) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut q = self.conn.prepare(
            "SELECT seq, id, request FROM rows WHERE part = ?1 AND state = 'batched' ORDER BY seq",
        )?;
        let mut rows = q.query([part])?;
        while let Some(r) = rows.next()? {
            each(r.get(0)?, r.get_ref(1)?.as_str()?, r.get_ref(2)?.as_str()?)?;
        }
        Ok(())
    }

    /// `part` is about to be uploaded as a file of `bytes` bytes (its exact size: the plan's is
    /// an upper bound when rows are joined into lines), which a later look for it matches.
    pub fn set_uploading(&self, part: i64, bytes: u64) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE parts SET stage = ?1, bytes = ?2, updated_at = ?3 WHERE part = ?4",
            params![stage::UPLOADING, bytes as i64, now_ms(), part],
        )?;
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
    pub fn record_batch(&self, part: i64, batch: &BatchSeen<'_>) -> anyhow::Result<()> {
        let errors = if batch.errors.is_empty() {
            None
        } else {
            Some(serde_json::to_string(batch.errors)?)
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
                batch.status,
                batch.completed as i64,
                batch.failed as i64,
                batch.total as i64,
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
            status: batch.status.to_string(),
            completed: batch.completed,
            failed: batch.failed,
            total: batch.total,
        };
        super::batch_states::note(&self.conn, &seen)?;
        Ok(())
    }
}
