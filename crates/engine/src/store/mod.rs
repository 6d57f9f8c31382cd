//! The checkpoint: a SQLite database that holds the job and the state of every row.
//!
//! This module owns the connection, its pragmas, and every query. The database is the single
//! source of truth of a job: the input is read once into it (rows with their rendered requests),
//! runs claim pending rows from it and record outcomes in it, and every output is exported from
//! it. Writes during a run go through one writer thread (`writer.rs`) that commits in groups;
//! everything else here is called from one thread at a time.
//!
//! This file opens the checkpoint (pragmas, schema check, migrations) and explains SQLite's
//! errors; the queries sit beside it by table and concern: the job record (`job_record`), rows
//! by state (`counts`), the runs (`runs`), the export (`export`), the requests still to send
//! (`pending`), the calibration sample (`sample`), usage sums (`usage`, `token_counts`), reading
//! the input in (`ingest`), Batch API parts (`plan`, `parts`, `collect`, `batch_states`), attempts,
//! outputs, and the writer.
//!
//! Durability: WAL with `synchronous=NORMAL`. A committed transaction survives a crash of the
//! process (SIGKILL, panic); a power loss may lose the last commits, never corrupt the file.

pub mod attempts;
pub mod batch_states;
mod checkpointer;
pub use checkpointer::Checkpointer;
mod collect;
mod counts;
mod export;
mod ingest;
mod job_record;
mod kept;
mod outcomes;
mod outputs;
mod parts;
mod pending;
mod plan;
mod record;
mod runs;
mod sample;
mod schema;
mod token_counts;
mod usage;
pub mod writer;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags};

use promptmill_core::error::CheckpointError;

pub use collect::{Collected, Collection, Rejection};
pub use counts::Counts;
pub use export::ExportRow;
pub use ingest::{Duplicate, Ingest, NewRow};
pub use kept::{KeptAnswer, KeptReader};
pub use outcomes::SchemaCounts;
pub use outputs::FileStamp;
pub use parts::{stage, BatchError, BatchSeen, PartRecord};
pub use pending::PendingKey;
pub use plan::{Candidate, Measure, Measured, PartLimits};
pub use runs::RunRecord;
pub use sample::SamplePrompt;
pub use schema::MIGRATIONS;
pub(crate) use token_counts::stored_tokens;
use token_counts::{token_sum, tokens_of, trusted_tokens, trusted_usage};
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
        if full || promptmill_core::error::disk_full_errno(errno) {
            e.context(promptmill_core::error::DiskFull)
        } else {
            e
        }
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
