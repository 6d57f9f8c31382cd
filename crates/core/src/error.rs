//! Typed errors a user can see, and the exit codes they map to.
//!
//! Every error names what it is about: the flag, the file and line, the row id or the database.
//! Errors that come from plain I/O at the edges are wrapped with context by the caller (anyhow);
//! the variants here are the ones the rest of the program branches on or that need a precise text.
//! The exit codes are documented in `--help` (see `cli/help.rs`) and in the README.

use std::path::PathBuf;

/// Process exit codes. Stable: scripts branch on them.
pub mod exit_code {
    /// Every row is done.
    pub const SUCCESS: i32 = 0;
    /// An error stopped the program before or while it ran (bad input, bad flags, I/O, a database
    /// that does not match the command).
    pub const ERROR: i32 = 1;
    /// Command-line usage error (clap's own code).
    pub const USAGE: i32 = 2;
    /// The run finished, but some rows failed or were skipped as invalid.
    pub const ROWS_FAILED: i32 = 3;
    /// The run was stopped before finishing: interrupted (Ctrl-C, SIGTERM, SIGHUP), refused by the API
    /// (401/403), or out of quota (429 `insufficient_quota`). The checkpoint is intact; rerun the
    /// printed command to resume.
    pub const STOPPED: i32 = 4;
    /// The run stopped because its `--max-cost` budget would have been exceeded. The checkpoint
    /// is intact; resume with a larger budget to go on.
    pub const BUDGET: i32 = 5;
}

/// An input row that could not become a request. Carries the file, the 1-based line where the row
/// starts, and the field concerned when there is one.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{}:{line}: {}{message}", file.display(), field.as_ref().map(|f| format!("field `{f}`: ")).unwrap_or_default())]
pub struct InputError {
    pub file: PathBuf,
    pub line: u64,
    pub field: Option<String>,
    pub message: String,
}

impl InputError {
    pub fn new(file: &std::path::Path, line: u64, message: impl Into<String>) -> Self {
        InputError {
            file: file.to_path_buf(),
            line,
            field: None,
            message: message.into(),
        }
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The text stored as a skipped row's reason: the same as the message, without the file name
    /// (the row already says which line it was).
    pub fn reason(&self) -> String {
        match &self.field {
            Some(f) => format!(
                "invalid input at line {}: field `{f}`: {}",
                self.line, self.message
            ),
            None => format!("invalid input at line {}: {}", self.line, self.message),
        }
    }
}

/// A flag, or a combination of flags, that cannot work. Names the flag.
#[derive(Debug, thiserror::Error)]
#[error("{flag}: {message}")]
pub struct ConfigError {
    pub flag: &'static str,
    pub message: String,
}

impl ConfigError {
    pub fn new(flag: &'static str, message: impl Into<String>) -> Self {
        ConfigError {
            flag,
            message: message.into(),
        }
    }
}

/// The checkpoint database disagrees with the command that wants to resume it.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(
        "{db}: this checkpoint was made for a different job; changed: {changes}.\n\
         Run with the original settings to resume, or add --restart to discard the checkpoint and start over \
         (the response cache, on unless --no-cache, answers the rows whose request did not change: only the others are sent)."
    )]
    Mismatch { db: PathBuf, changes: String },
    #[error("{db}: not a promptmill checkpoint database ({reason})")]
    NotACheckpoint { db: PathBuf, reason: String },
    #[error(
        "{db}: the checkpoint database is damaged ({reason}). Restore it from a copy, or run the job \
         again with --restart to discard it and start over"
    )]
    Damaged { db: PathBuf, reason: String },
    #[error(
        "{db}: cannot write the checkpoint database ({reason}). promptmill writes the file and creates \
         `-wal` and `-shm` files beside it: check that the file and its directory are writable"
    )]
    NotWritable { db: PathBuf, reason: String },
    #[error("{db}: no job recorded in this database (the first run stopped before its input was read)")]
    NoJob { db: PathBuf },
    #[error("{db}: written by a newer promptmill (schema version {found}, this build knows up to {known})")]
    TooNew { db: PathBuf, found: i64, known: i64 },
    #[error(
        "{db}: written by a newer promptmill (job record version {found}, this build reads up to {known})"
    )]
    RecordTooNew { db: PathBuf, found: u32, known: u32 },
}

/// A write failed because there is no room: the disk or the user's quota is full (`ENOSPC`,
/// `EDQUOT`), or the file may not grow (`EFBIG`: the file-size limit). Not a failure of the job:
/// what was committed is safe, and one command finishes it once there is room. The checkpoint
/// writer attaches it as context (it alone can ask SQLite which errno failed a write); for
/// other files [`is_disk_full`] reads the `std::io::Error` in the chain.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("no room to write (the disk or the quota is full, or the file-size limit is reached)")]
pub struct DiskFull;

/// Whether an `errno` says there is no room to write.
pub fn disk_full_errno(errno: i32) -> bool {
    #[cfg(unix)]
    {
        errno == libc::ENOSPC || errno == libc::EFBIG || errno == libc::EDQUOT
    }
    #[cfg(not(unix))]
    {
        let _ = errno;
        false
    }
}

/// Whether `err` (or anything in its chain) is a write that found no room.
pub fn is_disk_full(err: &anyhow::Error) -> bool {
    err.downcast_ref::<DiskFull>().is_some()
        || err.chain().any(|cause| {
            cause
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::raw_os_error)
                .is_some_and(disk_full_errno)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_room_is_told_by_errno_or_the_marker_at_any_depth() {
        #[cfg(unix)]
        for errno in [libc::ENOSPC, libc::EFBIG, libc::EDQUOT] {
            let err = anyhow::Error::from(std::io::Error::from_raw_os_error(errno))
                .context("could not write out.csv");
            assert!(is_disk_full(&err), "{errno}");
        }
        let marked = anyhow::anyhow!("disk I/O error")
            .context(DiskFull)
            .context("out.db: could not write the checkpoint");
        assert!(is_disk_full(&marked));
        let denied = anyhow::Error::from(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        assert!(!is_disk_full(&denied));
        assert!(!is_disk_full(&anyhow::anyhow!(
            "no space left on device, says the text"
        )));
    }
}
