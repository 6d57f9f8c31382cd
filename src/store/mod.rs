//! The checkpoint: a SQLite database that holds the job and the state of every row.
//!
//! This module owns the connection, its pragmas, and every query. The database is the single
//! source of truth of a job: the input is read once into it (rows with their rendered requests),
//! runs claim pending rows from it and record outcomes in it, and every output is exported from
//! it. Writes during a run go through one writer thread (`writer.rs`) that commits in groups;
//! everything else here is called from one thread at a time.
//!
//! Durability: WAL with `synchronous=NORMAL`. A committed transaction survives a crash of the
//! process (SIGKILL, panic); a power loss may lose the last commits, never corrupt the file.

pub mod attempts;
pub mod batch_states;
mod ingest;
mod outputs;
mod parts;
mod schema;
mod usage;
pub mod writer;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::Serialize;

use crate::api::MAX_TOKENS;
use crate::error::CheckpointError;
use crate::job::JobRecord;
use crate::limits::InForce;

pub use ingest::{Duplicate, Ingest, NewRow};
pub use outputs::FileStamp;
pub use parts::{stage, Candidate, Collected, Collection, Measure, Measured, PartLimits, PartRecord};
pub use schema::MIGRATIONS;
pub use usage::{JobUsage, UsageGroup, UsageSums};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_ingest;
#[cfg(test)]
mod tests_usage;
#[cfg(test)]
mod tests_writer;

/// Row states as stored.
pub mod state {
    pub const PENDING: &str = "pending";
    pub const IN_FLIGHT: &str = "in_flight";
    pub const DONE: &str = "done";
    pub const FAILED: &str = "failed";
    /// In a Batch API part that is not collected yet (see `parts.rs`).
    pub const BATCHED: &str = "batched";
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Claim only the rows of the calibration sample (`estimate --sample`).
    sample_only: bool,
    /// Claim only rows numbered up to this (`run --limit`); `i64::MAX` for all.
    through: i64,
}

/// Rows by state, and the token totals of the done rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub total: u64,
    pub pending: u64,
    pub in_flight: u64,
    /// In a Batch API part waiting for its batch to finish (`run --mode batch`).
    pub batched: u64,
    pub done: u64,
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

/// One row as exported.
#[derive(Debug, Clone)]
pub struct ExportRow {
    pub seq: i64,
    pub id: String,
    pub state: String,
    pub invalid: bool,
    pub fields: String,
    pub request: Option<String>,
    pub response: Option<String>,
    pub completion: Option<String>,
    pub finish_reason: Option<String>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    pub model: Option<String>,
    pub response_id: Option<String>,
    pub http_status: Option<i64>,
    pub error: Option<String>,
    /// The usage details the server reported for a done row (`None`: not reported).
    pub cached_tokens: Option<i64>,
    pub cache_creation_tokens: Option<i64>,
    pub reasoning_tokens: Option<i64>,
    /// Done through the Batch API, so priced at its prices.
    pub via_batch: bool,
    /// Dollars the row cost: not read from the checkpoint but priced by the exporter, at the
    /// job's prices (`None`: not done, or its model has no price).
    pub cost: Option<f64>,
}

/// A sampled row that is done (`estimate --sample`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamplePrompt {
    pub seq: u64,
    /// The request body as sent.
    pub request: String,
    /// The prompt tokens the server billed.
    pub server: u64,
}

/// A run of the program as recorded in `runs`.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub run: i64,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub outcome: Option<String>,
    pub requests: i64,
    pub retries: i64,
    pub http_429: i64,
    /// The limits in force, as last recorded during the run (`None` before promptmill recorded
    /// them).
    pub limits: Option<InForce>,
    /// The process that ran it (`None` before promptmill recorded it).
    pub pid: Option<u32>,
    /// Requests on the wire at the run's last commit.
    pub on_wire: u64,
    /// When the run last committed (unix ms).
    pub updated_at: Option<i64>,
}

impl Store {
    /// Opens (or, with `create`, creates) a checkpoint. A new file is created with mode 0600:
    /// it holds the prompts and completions, which may be private.
    pub fn open(path: &Path, create: bool) -> Result<Store, anyhow::Error> {
        let exists = path.exists();
        if !exists && !create {
            anyhow::bail!("{}: no such checkpoint database", path.display());
        }
        if path.is_dir() {
            anyhow::bail!("{}: is a directory, not a checkpoint database", path.display());
        }
        if !exists {
            create_private_file(path)?;
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(|e| explain(path, e.into()))?;
        Store::setup(conn, path)
    }

    /// An in-memory store, for tests.
    pub fn open_in_memory() -> Result<Store, anyhow::Error> {
        Store::setup(Connection::open_in_memory()?, Path::new(":memory:"))
    }

    fn setup(mut conn: Connection, path: &Path) -> Result<Store, anyhow::Error> {
        let explained = |e: rusqlite::Error| explain(path, e.into());
        // Reading the header is the first thing that fails on a file that is not SQLite.
        let app_id: i64 = conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .map_err(explained)?;
        let has_tables: bool = conn
            .query_row("SELECT count(*) > 0 FROM sqlite_master", [], |r| r.get(0))
            .map_err(explained)?;
        if has_tables && app_id != schema::APPLICATION_ID {
            return Err(CheckpointError::NotACheckpoint {
                db: path.to_path_buf(),
                reason: "it holds other tables".into(),
            }
            .into());
        }
        // Refuse a newer schema before writing anything (switching to WAL writes the header).
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let known = schema::MIGRATIONS.len() as i64;
        if version > known {
            return Err(CheckpointError::TooNew {
                db: path.to_path_buf(),
                found: version,
                known,
            }
            .into());
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(explained)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        schema::migrate(&mut conn).map_err(|e| match e {
            schema::MigrateError::TooNew { found, known } => anyhow::Error::from(CheckpointError::TooNew {
                db: path.to_path_buf(),
                found,
                known,
            }),
            schema::MigrateError::Sqlite(e) => explained(e),
        })?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            sample_only: false,
            through: i64::MAX,
        })
    }

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

    /// Makes the calibration sample `n` rows: keeps the rows already chosen, and adds valid rows
    /// at random until there are `n` (or no more). Returns the sample's size.
    pub fn choose_sample(&self, n: u64) -> anyhow::Result<u64> {
        let have: u64 = self
            .conn
            .query_row("SELECT count(*) FROM sample", [], |r| r.get(0))?;
        if have < n {
            self.conn.execute(
                "INSERT INTO sample (seq) SELECT seq FROM rows
                  WHERE invalid = 0 AND seq NOT IN (SELECT seq FROM sample)
                  ORDER BY random() LIMIT ?1",
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

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn conn(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Marks a failed write as a full disk ([`DiskFull`]) when it was one: SQLite says so itself
    /// (`SQLITE_FULL`) for some writes, and reports others (a write past the file-size limit, an
    /// exhausted quota, often a short write) as a plain I/O error, whose errno it keeps.
    pub fn mark_disk_full(&self, e: anyhow::Error) -> anyhow::Error {
        let full = e.chain().any(|cause| {
            matches!(
                cause.downcast_ref::<rusqlite::Error>(),
                Some(rusqlite::Error::SqliteFailure(f, _)) if f.code == rusqlite::ErrorCode::DiskFull
            )
        });
        // SAFETY: the handle is the open connection's, valid while `self` is borrowed;
        // sqlite3_system_errno only reads the errno SQLite recorded for its last failed system
        // call.
        let errno = unsafe { rusqlite::ffi::sqlite3_system_errno(self.conn.handle()) };
        if full || crate::error::disk_full_errno(errno) {
            e.context(crate::error::DiskFull)
        } else {
            e
        }
    }

    /// The recorded job, if the input has been read into this checkpoint.
    pub fn job(&self) -> anyhow::Result<Option<JobRecord>> {
        let text: Option<String> = self
            .conn
            .query_row("SELECT record FROM job WHERE key = 1", [], |r| r.get(0))
            .optional()?;
        match text {
            None => Ok(None),
            Some(t) => Ok(Some(serde_json::from_str(&t).map_err(|e| {
                CheckpointError::NotACheckpoint {
                    db: self.path.clone(),
                    reason: format!("its job record does not parse: {e}"),
                }
            })?)),
        }
    }

    /// Replaces the job record (used when a resume changes where requests go, e.g. `--base-url`).
    pub fn update_job(&self, job: &JobRecord) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE job SET record = ?1 WHERE key = 1",
            params![serde_json::to_string(&job.for_storage())?],
        )?;
        Ok(())
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

    pub fn counts(&self) -> anyhow::Result<Counts> {
        self.counts_of(i64::MAX)
    }

    /// [`Store::counts`] of the rows a run of this store claims from (all, or up to `--limit`).
    pub fn counts_claimable(&self) -> anyhow::Result<Counts> {
        self.counts_of(self.through)
    }

    fn counts_of(&self, through: i64) -> anyhow::Result<Counts> {
        let mut c = Counts::default();
        let mut stmt = self.conn.prepare(&format!(
            "SELECT state, invalid, count(*), {}, {}, {}, coalesce(sum(attempts), 0),
                    coalesce(sum(attempts > 1), 0), coalesce(max(attempts), 0)
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

    /// Every run of the program on this checkpoint, oldest first.
    pub fn runs(&self) -> anyhow::Result<Vec<RunRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT run, started_at, ended_at, outcome, requests, retries, http_429, limits, pid, on_wire,
                    updated_at
               FROM runs ORDER BY run",
        )?;
        let rows = stmt.query_map([], |r| {
            let limits: Option<String> = r.get(7)?;
            Ok(RunRecord {
                run: r.get(0)?,
                started_at: r.get(1)?,
                ended_at: r.get(2)?,
                outcome: r.get(3)?,
                requests: r.get(4)?,
                retries: r.get(5)?,
                http_429: r.get(6)?,
                limits: limits.and_then(|l| serde_json::from_str(&l).ok()),
                pid: r.get::<_, Option<i64>>(8)?.and_then(|p| u32::try_from(p).ok()),
                on_wire: r.get::<_, i64>(9)?.max(0) as u64,
                updated_at: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records the start of a run; returns its number.
    pub fn start_run(&self) -> anyhow::Result<i64> {
        self.conn.execute(
            "INSERT INTO runs (started_at, pid, updated_at) VALUES (?1, ?2, ?1)",
            params![now_ms(), std::process::id()],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records how a run ended and the summary it printed.
    pub fn end_run(&self, run: i64, outcome: &str, summary: &str) -> anyhow::Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "UPDATE runs SET ended_at = ?1, outcome = ?2, on_wire = 0, updated_at = ?1 WHERE run = ?3",
            params![now_ms(), outcome, run],
        )?;
        tx.execute("UPDATE job SET summary = ?1 WHERE key = 1", params![summary])?;
        tx.commit()?;
        Ok(())
    }

    /// When the job was read into this checkpoint (unix ms).
    pub fn job_created_at(&self) -> anyhow::Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT created_at FROM job WHERE key = 1", [], |r| r.get(0))?)
    }

    /// Whether a Batch API part is submitted (or half-submitted) and not collected yet.
    pub fn has_open_parts(&self) -> anyhow::Result<bool> {
        Ok(self.conn.query_row(
            "SELECT count(*) > 0 FROM parts WHERE stage NOT IN ('collected', 'released')",
            [],
            |r| r.get(0),
        )?)
    }

    /// The summary the last run stored, as JSON text.
    pub fn last_summary(&self) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT summary FROM job WHERE key = 1", [], |r| r.get(0))
            .optional()?
            .flatten())
    }

    /// Calls `each` for every row in input order, reading in pages so memory stays flat.
    pub fn for_each_row(&self, mut each: impl FnMut(ExportRow) -> anyhow::Result<()>) -> anyhow::Result<()> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, id, state, invalid, fields, request, response, completion, finish_reason,
                    prompt_tokens, completion_tokens, total_tokens, model, response_id, http_status, error,
                    cached_tokens, cache_creation_tokens, reasoning_tokens, part IS NOT NULL
             FROM rows ORDER BY seq",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let (prompt_tokens, completion_tokens, total_tokens) =
                trusted_usage([r.get(9)?, r.get(10)?, r.get(11)?]);
            let detail = |i| -> rusqlite::Result<Option<i64>> {
                Ok(r.get::<_, Option<i64>>(i)?
                    .filter(|&v| trusted_tokens(v).is_some()))
            };
            each(ExportRow {
                seq: r.get(0)?,
                id: r.get(1)?,
                state: r.get(2)?,
                invalid: r.get(3)?,
                fields: r.get(4)?,
                request: r.get(5)?,
                response: r.get(6)?,
                completion: r.get(7)?,
                finish_reason: r.get(8)?,
                prompt_tokens,
                completion_tokens,
                total_tokens,
                model: r.get(12)?,
                response_id: r.get(13)?,
                http_status: r.get(14)?,
                error: r.get(15)?,
                cached_tokens: detail(16)?,
                cache_creation_tokens: detail(17)?,
                reasoning_tokens: detail(18)?,
                via_batch: r.get(19)?,
                cost: None,
            })?;
        }
        Ok(())
    }
}

/// Names the checkpoint in an error from SQLite, and says what it means: a file that is not a
/// database, a damaged one, or one that cannot be written (a read-only file or directory: SQLite
/// needs to create the `-wal` and `-shm` files beside it). Other SQLite errors keep their text,
/// prefixed with the path; errors that do not come from SQLite are returned as they are.
pub fn explain(db: &Path, err: anyhow::Error) -> anyhow::Error {
    use rusqlite::ErrorCode;
    let Some(sqlite) = err.chain().find_map(|e| e.downcast_ref::<rusqlite::Error>()) else {
        return err;
    };
    let code = sqlite.sqlite_error_code();
    let reason = match sqlite {
        // SQLite's own text, without rusqlite's "Error code N: …" restatement of it.
        rusqlite::Error::SqliteFailure(_, Some(message)) => message.clone(),
        _ => err.to_string(),
    };
    let db = db.to_path_buf();
    match code {
        Some(ErrorCode::NotADatabase) => CheckpointError::NotACheckpoint { db, reason }.into(),
        Some(ErrorCode::DatabaseCorrupt) => CheckpointError::Damaged { db, reason }.into(),
        Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
            CheckpointError::NotWritable { db, reason }.into()
        }
        _ => err.context(format!("{}: checkpoint database error", db.display())),
    }
}

/// Creates an empty file readable and writable by its owner only. SQLite gives its `-wal` and
/// `-shm` files the same permissions as the database file.
pub fn create_private_file(path: &Path) -> anyhow::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot create the file: {e}", path.display()))
}

/// The SQL sum of a usage column over the selected rows, counting only values that can be true
/// (whole numbers from 0 to [`MAX_TOKENS`]): a checkpoint that holds an absurd count (written
/// before it was checked, or edited) still opens, and such a count adds nothing. `total()` sums
/// in floating point, so it never fails with SQLite's "integer overflow" as `sum()` does.
fn token_sum(column: &str) -> String {
    format!(
        "total(CASE WHEN typeof({column}) = 'integer' AND {column} BETWEEN 0 AND {MAX_TOKENS} \
         THEN {column} ELSE 0 END)"
    )
}

/// A sum from [`token_sum`] as a count (the cast saturates; the sum is never negative).
fn tokens_of(sum: f64) -> u64 {
    sum as u64
}

/// A stored usage count, when it is one that can be true (see [`token_sum`]).
fn trusted_tokens(stored: i64) -> Option<u64> {
    u64::try_from(stored).ok().filter(|&v| v <= MAX_TOKENS)
}

/// A row's stored usage as exported: as stored, or none at all when one of its counts cannot be
/// true (a row's usage is not made of some true and some invented numbers).
fn trusted_usage(stored: [Option<i64>; 3]) -> (Option<i64>, Option<i64>, Option<i64>) {
    if stored.iter().flatten().any(|&v| trusted_tokens(v).is_none()) {
        return (None, None, None);
    }
    (stored[0], stored[1], stored[2])
}

/// A usage count as stored: checked on the way in, clamped here all the same so that no count
/// can wrap into a negative INTEGER.
pub(crate) fn stored_tokens(count: u64) -> i64 {
    i64::try_from(count.min(MAX_TOKENS)).unwrap_or(0)
}
