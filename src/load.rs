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
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::error::InputError;
use crate::input::{RawRow, ReadError, RowReader};
use crate::job::{Endpoint, JobRecord};
use crate::prepare::{Prepared, Preparer};
use crate::store::{NewRow, Store};

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
    pub column_types: Vec<crate::input::ColumnType>,
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
    let mut listed = Vec::new();
    let mut invalid = 0u64;
    let mut rows = 0u64;
    let mut last_progress = std::time::Instant::now();
    let mut fields_text = String::new();
    while let Some(item) = reader.next_row() {
        let item = item.map_err(LoadError::Read)?;
        rows += 1;
        if let Some(known) = known {
            if rows <= known.rows {
                if rows == known.rows {
                    changed::same_last_row(&ingest, file, rows, &item).map_err(LoadError::Refused)?;
                }
                continue;
            }
            if rows == known.rows + 1 {
                changed::starts_after(file, known, &item).map_err(LoadError::Refused)?;
            }
        }
        let (number, line, id, id_field, prepared, fields) = match item {
            Ok(row) => {
                preparer.check_flags_fit(&row).map_err(LoadError::Refused)?;
                let prepared = preparer.prepare(&row);
                let id = match &prepared {
                    Ok(p) => p.id.clone(),
                    Err(_) => preparer.fallback_id(&row),
                };
                let id_field = preparer.id_field(&row).map(str::to_string);
                (
                    row.number,
                    row.line,
                    id,
                    id_field,
                    prepared,
                    Some(stored_fields(row)),
                )
            }
            Err(e) => (rows, e.line, rows.to_string(), None, Err(e), None),
        };
        fields_text.clear();
        match &fields {
            Some(f) => fields_text.push_str(&serde_json::to_string(f).map_err(anyhow::Error::from)?),
            None => fields_text.push_str("{}"),
        }
        let mut error = prepared.as_ref().err().cloned();
        if let Ok(Prepared { body, .. }) = &prepared {
            let inserted = ingest.add(&NewRow {
                seq: number,
                id: &id,
                line,
                fields: &fields_text,
                request: Some(body),
                error: None,
            })?;
            if let Err(dup) = inserted {
                let mut e = InputError::new(
                    file,
                    line,
                    format!("duplicate id `{id}` (first used on line {})", dup.first_line),
                );
                if let Some(f) = id_field {
                    e = e.field(f);
                }
                error = Some(e);
            }
        }
        if let Some(e) = error {
            invalid += 1;
            if skip_invalid {
                ingest
                    .add(&NewRow {
                        seq: number,
                        id: &id,
                        line,
                        fields: &fields_text,
                        request: None,
                        error: Some(&e.reason()),
                    })?
                    .map_err(|_| anyhow::anyhow!("invalid rows are not subject to the id index"))?;
            } else if listed.len() < LISTED {
                listed.push(e);
            }
        }
        if last_progress.elapsed() > Duration::from_millis(200) {
            progress(rows);
            last_progress = std::time::Instant::now();
        }
    }
    if rows == 0 {
        return Err(LoadError::Empty {
            file: file.to_path_buf(),
            header: reader.has_header(),
        });
    }
    if invalid > 0 && !reader.has_header() {
        if let Some(message) = preparer.absent_field(reader.columns()) {
            return Err(LoadError::Refused(message));
        }
    }
    if invalid > 0 && !skip_invalid {
        return Err(LoadError::Invalid {
            file: file.to_path_buf(),
            listed,
            total: invalid,
        });
    }
    let loaded = Loaded {
        rows,
        invalid,
        endpoint: preparer.endpoint(),
        columns: reader.columns().to_vec(),
        column_types: reader.column_types(),
        fingerprint: reader.fingerprint(),
        size: reader.bytes_read(),
    };
    match known {
        None => ingest.commit(&job(&loaded), rows)?,
        Some(_) => ingest.commit_grown(&job(&loaded), rows)?,
    }
    Ok(loaded)
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
