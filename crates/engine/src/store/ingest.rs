//! Reading the input into the checkpoint: one transaction for the whole file.
//!
//! Either every row (and the job record) is committed, or none is: a run that dies while reading
//! the input leaves no half-read job behind, and a file with errors (without `--skip-invalid`)
//! leaves the checkpoint as it was. Duplicate ids are caught by the unique index as rows go in.
//!
//! Disk use: in WAL mode one transaction the size of the input would put every page in the WAL
//! first and copy it into the database at commit, needing twice the checkpoint's size on disk
//! (575 MB + 578 MB for 1M rows). So the ingest runs in rollback-journal mode (`DELETE`, with
//! `synchronous = FULL`, which that mode needs to survive a power loss): pages appended to the
//! database are not journaled at all, only the original content of the few pages the
//! transaction changes, and a crash mid-load is rolled back from the `-journal` file when the
//! checkpoint is next opened. WAL mode comes back when the ingest ends. If the mode cannot be
//! switched (another process has the checkpoint open, e.g. `status`), the ingest runs in WAL
//! mode, as before: correct, only larger on disk for a while.

use rusqlite::{params, Connection, ErrorCode, OptionalExtension};

use super::{now_ms, state, Store};
use promptmill_core::job::JobRecord;

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
    /// The request's prompt tokens, for a family that joins rows (`rows.input_tokens`).
    pub input_tokens: Option<u64>,
    /// The request body's cache digest (`rows.digest`), when it was taken.
    pub digest: Option<&'a [u8; 32]>,
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

/// An open ingest transaction. Dropping it without [`Ingest::commit`] rolls everything back
/// (and puts the checkpoint back in WAL mode).
pub struct Ingest<'a> {
    tx: &'a Connection,
    now: i64,
    /// The transaction is still open: a drop rolls it back.
    open: bool,
    /// The ingest switched the checkpoint out of WAL mode, and switches it back when it ends.
    left_wal: bool,
}

impl Store {
    pub fn begin_ingest(&mut self) -> anyhow::Result<Ingest<'_>> {
        let conn = self.conn();
        let left_wal = leave_wal(conn);
        let mut ingest = Ingest {
            tx: conn,
            now: now_ms(),
            open: false,
            left_wal,
        };
        ingest.tx.execute_batch("BEGIN")?;
        ingest.open = true;
        Ok(ingest)
    }
}

/// Switches a WAL checkpoint to rollback-journal mode for the ingest; `false` when it is not in
/// WAL mode (an in-memory store) or cannot be switched now.
fn leave_wal(conn: &Connection) -> bool {
    let mode = |c: &Connection| c.query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0));
    if !matches!(mode(conn), Ok(m) if m.eq_ignore_ascii_case("wal")) {
        return false;
    }
    if conn.pragma_update(None, "synchronous", "FULL").is_err() {
        return false;
    }
    match conn.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get::<_, String>(0)) {
        Ok(m) if m.eq_ignore_ascii_case("delete") => true,
        outcome => {
            tracing::debug!("the ingest stays in WAL mode: {outcome:?}");
            let _ = conn.pragma_update(None, "synchronous", "NORMAL");
            false
        }
    }
}

/// Puts the checkpoint back in WAL mode with `synchronous = NORMAL`, as `Store::open` sets it.
fn back_to_wal(conn: &Connection) -> anyhow::Result<()> {
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    anyhow::ensure!(
        mode.eq_ignore_ascii_case("wal"),
        "the checkpoint could not return to WAL mode (it is in {mode} mode)"
    );
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

impl Drop for Ingest<'_> {
    fn drop(&mut self) {
        if self.open {
            // Nothing to report to: the error that dropped the ingest is on its way up. A
            // rollback that fails leaves the journal, which the next open rolls back from.
            let _ = self.tx.execute_batch("ROLLBACK");
        }
        if self.left_wal {
            let _ = back_to_wal(self.tx);
        }
    }
}

impl Ingest<'_> {
    pub fn add(&mut self, row: &NewRow<'_>) -> anyhow::Result<Result<(), Duplicate>> {
        let (row_state, invalid) = match row.request {
            Some(_) => (state::PENDING, 0),
            None => (state::FAILED, 1),
        };
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO rows (seq, id, line, invalid, state, fields, request, error, created_at, updated_at,
                               input_tokens, digest)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11)",
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
            self.now,
            row.input_tokens.map(super::stored_tokens),
            row.digest.map(|d| &d[..]),
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
        self.finish()
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
        self.finish()
    }

    /// Commits, and returns the checkpoint to WAL mode.
    fn finish(mut self) -> anyhow::Result<()> {
        self.tx.execute_batch("COMMIT")?;
        self.open = false;
        if self.left_wal {
            self.left_wal = false;
            back_to_wal(self.tx)?;
        }
        Ok(())
    }
}
