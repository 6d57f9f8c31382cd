//! Reading a prompts file into a new checkpoint, in one streaming pass.
//!
//! Each row is read, validated and prepared (`prepare.rs`) on a thread of its own (`ahead.rs`),
//! then inserted on this one with its rendered request into the checkpoint's ingest
//! transaction. Nothing is sent before the whole file has been read: without `--skip-invalid`,
//! any invalid row (or duplicate id) rolls the transaction back and the error lists them; with
//! it, invalid rows are recorded as failed with their reason and the rest are committed. Memory
//! stays flat whatever the file's size: a few chunks of rows at a time.
//!
//! An input that only grew since its job was made (`changed.rs` tells) is read the same way, but
//! only the rows past the job's are prepared and added, in one transaction too.

mod ahead;
mod changed;

use ahead::{Ahead, ReadRow};

pub use changed::{compare, InputChange};

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::prepare::{Prepared, Preparer};
use crate::store::{Ingest, NewRow, Store};
use promptmill_core::error::InputError;
use promptmill_core::input::{RawRow, ReadError, RowReader};
use promptmill_core::job::{Endpoint, JobRecord};

/// How many invalid rows an error lists before it says "and N more".
const LISTED: usize = 10;

/// What reading the input found.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub rows: u64,
    pub invalid: u64,
    pub endpoint: Endpoint,
    pub columns: Vec<String>,
    /// How the columns are typed, for a Parquet input (see `input::ColumnType`); else empty.
    pub column_types: Vec<promptmill_core::input::ColumnType>,
    /// The Parquet schema text of a Parquet input's nested columns, by name; else empty.
    pub column_schemas: std::collections::BTreeMap<String, String>,
    pub fingerprint: String,
    /// The input's size in bytes, as fingerprinted.
    pub size: u64,
}

/// What the job already holds of an input that grew: its rows, and the line breaks of the bytes
/// they were read from (the appended rows start after them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    pub rows: u64,
    pub lines: u64,
}

/// Why the input was not taken.
#[derive(Debug)]
pub enum LoadError {
    /// Rows that cannot be sent (and `--skip-invalid` was not given). Nothing was recorded.
    Invalid {
        file: PathBuf,
        listed: Vec<InputError>,
        total: u64,
    },
    /// The CSV header lacks a column every row needs (a template field, `--id-column`, `prompt`):
    /// the whole file is refused, `--skip-invalid` or not, since no row could be sent.
    Columns(InputError),
    /// A flag that cannot apply to the input (`--template` with rows that carry their own
    /// `messages`), or a template field that no row has: the whole file is refused, whatever
    /// `--skip-invalid` says, since it would fail every row it concerns.
    Refused(String),
    /// The file has no rows. `header` when it is a CSV file that has a header (and nothing else).
    Empty {
        file: PathBuf,
        header: bool,
    },
    Read(ReadError),
    Other(anyhow::Error),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Invalid { file, listed, total } => {
                let rows = if *total == 1 { "row" } else { "rows" };
                writeln!(f, "{}: {total} invalid {rows}; nothing was sent:", file.display())?;
                for e in listed {
                    writeln!(f, "  {e}")?;
                }
                if *total > listed.len() as u64 {
                    writeln!(f, "  … and {} more", *total - listed.len() as u64)?;
                }
                write!(
                    f,
                    "Fix the input, or pass --skip-invalid to record these rows as failed and send the rest."
                )
            }
            LoadError::Columns(e) => write!(f, "{e}"),
            LoadError::Refused(message) => write!(f, "{message}"),
            LoadError::Empty { file, header: true } => {
                write!(f, "{}:1: the input has no rows, only a header", file.display())
            }
            LoadError::Empty { file, header: false } => write!(
                f,
                "{}: the input has no rows (the file is empty or has only blank lines)",
                file.display()
            ),
            LoadError::Read(e) => write!(f, "{e}"),
            LoadError::Other(e) => write!(f, "{e:#}"),
        }
    }
}

impl std::error::Error for LoadError {}

impl From<anyhow::Error> for LoadError {
    fn from(e: anyhow::Error) -> Self {
        LoadError::Other(e)
    }
}

/// Reads the input into `store` and records the job made by `job` from what was found. With
/// `known`, the job exists and the input grew: its first `known.rows` rows are passed over (they
/// are the job's already) and the rest are added; `Loaded::rows` counts them all.
#[allow(clippy::too_many_arguments)]
pub fn load(
    store: &mut Store,
    file: &std::path::Path,
    reader: RowReader,
    mut preparer: Preparer,
    skip_invalid: bool,
    known: Option<Known>,
    progress: &dyn Fn(u64),
    job: impl FnOnce(&Loaded) -> JobRecord,
) -> Result<Loaded, LoadError> {
    let mut reader = reader;
    if reader.has_header() {
        preparer
            .check_columns(reader.columns())
            .map_err(LoadError::Columns)?;
    }
    let mut ingest = store.begin_ingest()?;
    let mut invalid = InvalidRows::default();
    let (tx, rx) = std::sync::mpsc::sync_channel(ahead::CHUNKS);
    let (rows, inserted) = std::thread::scope(|scope| {
        let (reader, preparer) = (&mut reader, &mut preparer);
        // The sender goes with the reading side: when it is done, the channel ends.
        let reading = scope.spawn(move || ahead::read_all(reader, preparer, file, known, tx));
        let inserted = insert_all(&mut ingest, file, &rx, &mut invalid, skip_invalid, progress);
        // Closing the channel stops the reading side if the inserting side stopped first.
        drop(rx);
        let rows = reading
            .join()
            .map_err(|_| anyhow::anyhow!("reading the input panicked"));
        (rows, inserted)
    });
    inserted?;
    let rows = rows?;
    let invalid = check_whole(&reader, &preparer, file, rows, invalid, skip_invalid)?;
    let loaded = Loaded {
        rows,
        invalid,
        endpoint: preparer.endpoint(),
        columns: reader.columns().to_vec(),
        column_types: reader.column_types(),
        column_schemas: reader.column_schemas(),
        fingerprint: reader.fingerprint(),
        size: reader.bytes_read(),
    };
    match known {
        None => ingest.commit(&job(&loaded), rows)?,
        Some(_) => ingest.commit_grown(&job(&loaded), rows)?,
    }
    Ok(loaded)
}
/// Inserts the rows the reading side hands over, in input order, until it is done or sends
/// an error.
fn insert_all(
    ingest: &mut Ingest<'_>,
    file: &Path,
    rx: &std::sync::mpsc::Receiver<ahead::Chunk>,
    invalid: &mut InvalidRows,
    skip_invalid: bool,
    progress: &dyn Fn(u64),
) -> Result<(), LoadError> {
    let mut last_progress = std::time::Instant::now();
    for chunk in rx.iter() {
        for ahead in chunk? {
            let row = match ahead {
                Ahead::LastKnown { seq, item } => {
                    changed::same_last_row(ingest, file, seq, &item).map_err(LoadError::Refused)?;
                    continue;
                }
                Ahead::Row(row) => row,
            };
            if let Some(e) = add_row(ingest, file, &row)? {
                invalid.note(ingest, &row, e, skip_invalid)?;
            }
            if last_progress.elapsed() > Duration::from_millis(200) {
                progress(row.number);
                last_progress = std::time::Instant::now();
            }
        }
    }
    Ok(())
}

/// Adds a prepared row to the ingest; returns why the row is invalid, if it is (it could not be
/// prepared, or its id is taken by an earlier row). A row of a family that joins rows into one
/// request keeps its prompt tokens: the weights its request's usage is split by, counted once
/// as it is read rather than on the sending side.
fn add_row(ingest: &mut Ingest<'_>, file: &Path, row: &ReadRow) -> Result<Option<InputError>, LoadError> {
    let body = match &row.prepared {
        Ok(Prepared { body, .. }) => body,
        Err(e) => return Ok(Some(e.clone())),
    };
    let inserted = ingest.add(&NewRow {
        seq: row.number,
        id: &row.id,
        line: row.line,
        fields: &row.fields,
        request: Some(body),
        error: None,
        input_tokens: row.input_tokens,
        digest: row.digest.as_ref(),
    })?;
    let Err(dup) = inserted else {
        return Ok(None);
    };
    let mut e = InputError::new(
        file,
        row.line,
        format!(
            "duplicate id `{}` (first used on line {})",
            row.id, dup.first_line
        ),
    );
    if let Some(f) = &row.id_field {
        e = e.field(f.clone());
    }
    Ok(Some(e))
}

/// The invalid rows met so far: counted; recorded as failed with `--skip-invalid`, else the
/// first [`LISTED`] kept for the error.
#[derive(Default)]
struct InvalidRows {
    count: u64,
    listed: Vec<InputError>,
}

impl InvalidRows {
    fn note(
        &mut self,
        ingest: &mut Ingest<'_>,
        row: &ReadRow,
        e: InputError,
        skip_invalid: bool,
    ) -> Result<(), LoadError> {
        self.count += 1;
        if skip_invalid {
            ingest
                .add(&NewRow {
                    seq: row.number,
                    id: &row.id,
                    line: row.line,
                    fields: &row.fields,
                    request: None,
                    error: Some(&e.reason()),
                    input_tokens: None,
                    digest: None,
                })?
                .map_err(|_| anyhow::anyhow!("invalid rows are not subject to the id index"))?;
        } else if self.listed.len() < LISTED {
            self.listed.push(e);
        }
        Ok(())
    }
}

/// The checks on the whole input once read: it has rows; a template field that no row has
/// refuses it whole; invalid rows refuse it without `--skip-invalid`. Returns how many rows are
/// invalid.
fn check_whole(
    reader: &RowReader,
    preparer: &Preparer,
    file: &Path,
    rows: u64,
    invalid: InvalidRows,
    skip_invalid: bool,
) -> Result<u64, LoadError> {
    if rows == 0 {
        return Err(LoadError::Empty {
            file: file.to_path_buf(),
            header: reader.has_header(),
        });
    }
    if invalid.count > 0 && !reader.has_header() {
        if let Some(message) = preparer.absent_field(reader.columns()) {
            return Err(LoadError::Refused(message));
        }
    }
    if invalid.count > 0 && !skip_invalid {
        return Err(LoadError::Invalid {
            file: file.to_path_buf(),
            listed: invalid.listed,
            total: invalid.count,
        });
    }
    Ok(invalid.count)
}

/// The fields kept for output. A Batch input line's `body` is the request itself (stored
/// separately), so it is not kept twice.
pub(crate) fn stored_fields(row: RawRow) -> serde_json::Map<String, Value> {
    let mut fields = row.fields;
    if fields.contains_key("url") && matches!(fields.get("body"), Some(Value::Object(_))) {
        fields.shift_remove("body");
    }
    fields
}
