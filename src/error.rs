//! Typed errors a user can see, and the exit codes they map to.
//!
//! Every error names what it is about: the flag, the file and line, the row id or the database.
//! Errors that come from plain I/O at the edges are wrapped with context by the caller (anyhow);
//! the variants here are the ones the rest of the program branches on or that need a precise text.
//! The exit codes are documented in `--help` (see `cli.rs`) and in the README.

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
         Run with the original settings to resume, or add --restart to discard the checkpoint and start over."
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
}
