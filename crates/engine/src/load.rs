//! Reading a prompts file into a new checkpoint, in one streaming pass.
//!
//! Each row is read, validated and prepared (`prepare.rs`), then inserted with its rendered
//! request into the checkpoint's ingest transaction. Nothing is sent before the whole file has
//! been read: without `--skip-invalid`, any invalid row (or duplicate id) rolls the transaction
//! back and the error lists them; with it, invalid rows are recorded as failed with their reason
//! and the rest are committed. Memory stays flat whatever the file's size: one row at a time.
//!
//! An input that only grew since its job was made (`changed.rs` tells) is read the same way, but
//! only the rows past the job's are prepared and added, in one transaction too.

mod changed;

pub use changed::{compare, InputChange};

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::cache::key::Repeats;
use crate::prepare::{Prepared, Preparer};
use crate::store::{Ingest, NewRow, Store};
use promptmill_core::error::InputError;
use promptmill_core::family::ApiFamily;
use promptmill_core::input::{RawRow, ReadError, RowReader, RowResult};
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
    let mut rows = 0u64;
    let mut last_progress = std::time::Instant::now();
    let mut fields_text = String::new();
    let mut repeats = Repeats::default();
    while let Some(item) = reader.next_row() {
        let item = item.map_err(LoadError::Read)?;
        rows += 1;
        if let Some(known) = known {
            if is_known(&ingest, file, known, rows, &item)? {
                count_repeat(&mut preparer, &item, &mut repeats);
                continue;
            }
        }
        let row = read_row(&mut preparer, rows, item)?;
        fields_text.clear();
        match &row.fields {
            Some(f) => fields_text.push_str(&serde_json::to_string(f).map_err(anyhow::Error::from)?),
            None => fields_text.push_str("{}"),
        }
        let family = preparer.endpoint().family();
        if let Some(e) = add_row(&mut ingest, (file, family), &row, &fields_text, &mut repeats)? {
            invalid.note(&mut ingest, &row, &fields_text, e, skip_invalid)?;
        }
        if last_progress.elapsed() > Duration::from_millis(200) {
            progress(rows);
            last_progress = std::time::Instant::now();
        }
    }
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
/// Whether the row is one the job holds already (an input that grew). The last of them must be
/// the job's last row, and the first new one must start after it.
fn is_known(
    ingest: &Ingest<'_>,
    file: &Path,
    known: Known,
    rows: u64,
    item: &RowResult,
) -> Result<bool, LoadError> {
    if rows <= known.rows {
        if rows == known.rows {
            changed::same_last_row(ingest, file, rows, item).map_err(LoadError::Refused)?;
        }
        return Ok(true);
    }
    if rows == known.rows + 1 {
        changed::starts_after(file, known, item).map_err(LoadError::Refused)?;
    }
    Ok(false)
}

/// Numbers a row the job holds already as a repeat of its request (see [`Repeats`]), so a
/// row appended later that repeats it keys as the next sample, as it would had the input been
/// read whole.
fn count_repeat(preparer: &mut Preparer, item: &RowResult, repeats: &mut Repeats) {
    if !preparer.takes_digests() {
        return;
    }
    if let Ok(row) = item {
        if let Ok(Prepared { digest: Some(d), .. }) = preparer.prepare(row) {
            repeats.number(d);
        }
    }
}

/// One row as read and prepared, before it is recorded.
struct ReadRow {
    number: u64,
    line: u64,
    id: String,
    /// The field the id came from, to name in a duplicate's error.
    id_field: Option<String>,
    prepared: Result<Prepared, InputError>,
    /// The fields kept for output (`None`: the row could not be read).
    fields: Option<serde_json::Map<String, Value>>,
}

/// Prepares a row read (or takes the reason it could not be read); a flag that cannot apply to
/// the row refuses the whole input.
fn read_row(preparer: &mut Preparer, rows: u64, item: RowResult) -> Result<ReadRow, LoadError> {
    let row = match item {
        Ok(row) => row,
        Err(e) => {
            return Ok(ReadRow {
                number: rows,
                line: e.line,
                id: rows.to_string(),
                id_field: None,
                prepared: Err(e),
                fields: None,
            })
        }
    };
    preparer.check_flags_fit(&row).map_err(LoadError::Refused)?;
    let prepared = preparer.prepare(&row);
    let id = match &prepared {
        Ok(p) => p.id.clone(),
        Err(_) => preparer.fallback_id(&row),
    };
    let id_field = preparer.id_field(&row).map(str::to_string);
    Ok(ReadRow {
        number: row.number,
        line: row.line,
        id,
        id_field,
        prepared,
        fields: Some(stored_fields(row)),
    })
}

/// Adds a prepared row to the ingest; returns why the row is invalid, if it is (it could not be
/// prepared, or its id is taken by an earlier row). A row of a family that joins rows into one
/// request keeps its prompt tokens: the weights its request's usage is split by, counted once
/// here rather than on the sending side.
fn add_row(
    ingest: &mut Ingest<'_>,
    (file, family): (&Path, &dyn ApiFamily),
    row: &ReadRow,
    fields: &str,
    repeats: &mut Repeats,
) -> Result<Option<InputError>, LoadError> {
    let (body, digest) = match &row.prepared {
        Ok(Prepared { body, digest, .. }) => (body, digest.map(|d| repeats.number(d))),
        Err(e) => return Ok(Some(e.clone())),
    };
    let input_tokens = (family.max_rows_per_request() > 1).then(|| family.prompt_tokens(body));
    let inserted = ingest.add(&NewRow {
        seq: row.number,
        id: &row.id,
        line: row.line,
        fields,
        request: Some(body),
        error: None,
        input_tokens,
        digest: digest.as_ref(),
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
        fields: &str,
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
                    fields,
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
