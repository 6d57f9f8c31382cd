//! Reading the input into the checkpoint: one transaction for the whole file.
//!
//! Either every row (and the job record) is committed, or none is: a run that dies while reading
//! the input leaves no half-read job behind, and a file with errors (without `--skip-invalid`)
//! leaves the checkpoint as it was. Duplicate ids are caught by the unique index as rows go in.

use rusqlite::{params, ErrorCode, OptionalExtension, Transaction};

use super::{now_ms, state, Store};
use crate::job::JobRecord;

/// A row to insert.
pub struct NewRow<'a> {
    pub seq: u64,
    pub id: &'a str,
    pub line: u64,
    pub fields: &'a str,
    /// The request body; `None` for a row that failed validation.
    pub request: Option<&'a str>,
    /// Why the row is invalid, when it is.
    pub error: Option<&'a str>,
}

/// The row id was already used; carries the line of its first use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duplicate {
    pub first_line: u64,
}

impl Store {
    /// Calls `each` with every row's line and stored input fields (JSON text), in input order,
    /// until it returns `false`.
    pub fn for_each_input_row(
        &self,
        mut each: impl FnMut(u64, &str) -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        let mut stmt = self.conn.prepare("SELECT line, fields FROM rows ORDER BY seq")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let line: i64 = r.get(0)?;
            let fields: String = r.get(1)?;
            if !each(line.max(0) as u64, &fields)? {
                break;
            }
        }
        Ok(())
    }
}

/// An open ingest transaction. Dropping it without [`Ingest::commit`] rolls everything back.
pub struct Ingest<'a> {
    tx: Transaction<'a>,
    now: i64,
}

impl Store {
    pub fn begin_ingest(&mut self) -> anyhow::Result<Ingest<'_>> {
        let tx = self.conn().transaction()?;
        Ok(Ingest { tx, now: now_ms() })
    }
}

impl Ingest<'_> {
    pub fn add(&mut self, row: &NewRow<'_>) -> anyhow::Result<Result<(), Duplicate>> {
        let (row_state, invalid) = match row.request {
            Some(_) => (state::PENDING, 0),
            None => (state::FAILED, 1),
        };
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO rows (seq, id, line, invalid, state, fields, request, error, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
        )?;
        let result = stmt.execute(params![
            row.seq as i64,
            row.id,
            row.line as i64,
            invalid,
            row_state,
            row.fields,
            row.request,
            row.error,
            self.now
        ]);
        match result {
            Ok(_) => Ok(Ok(())),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == ErrorCode::ConstraintViolation
                    && e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
            {
                let first_line: i64 = self.tx.query_row(
                    "SELECT line FROM rows WHERE id = ?1 AND invalid = 0",
                    params![row.id],
                    |r| r.get(0),
                )?;
                Ok(Err(Duplicate {
                    first_line: first_line as u64,
                }))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The stored input fields of row `seq` (JSON text), if there is such a row.
    pub fn fields_of(&self, seq: u64) -> anyhow::Result<Option<String>> {
        Ok(self
            .tx
            .query_row(
                "SELECT fields FROM rows WHERE seq = ?1",
                params![seq as i64],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Records the job of an input that grew (it replaces the job's record) and commits the
    /// rows added to it.
    pub fn commit_grown(self, job: &JobRecord, total_rows: u64) -> anyhow::Result<()> {
        let updated = self.tx.execute(
            "UPDATE job SET record = ?1, total_rows = ?2 WHERE key = 1",
            params![serde_json::to_string(job)?, total_rows as i64],
        )?;
        anyhow::ensure!(updated == 1, "the checkpoint has no job to add rows to");
        self.tx.commit()?;
        Ok(())
    }

    /// Records the job and commits every row added.
    pub fn commit(self, job: &JobRecord, total_rows: u64) -> anyhow::Result<()> {
        self.tx.execute(
            "INSERT INTO job (key, record, total_rows, created_at) VALUES (1, ?1, ?2, ?3)",
            params![
                serde_json::to_string(&job.for_storage())?,
                total_rows as i64,
                self.now
            ],
        )?;
        self.tx.commit()?;
        Ok(())
    }
}
