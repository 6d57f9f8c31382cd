//! Reading input rows as a stream.
//!
//! This module owns turning a prompts file into a sequence of [`RawRow`]s: the 1-based row number,
//! the line the row starts on, and its fields as JSON values in file order. It knows file formats
//! (CSV with a header, JSON Lines, Parquet) and nothing about prompts or requests: `prepare.rs` turns fields
//! into requests. Files are never loaded whole; while rows are read, the bytes pass through a
//! BLAKE3 hasher so the input's fingerprint costs no second pass. One row is held in memory at a
//! time, and a row may be at most [`MAX_ROW_BYTES`] long, so memory is bounded whatever the file.

mod csv;
mod jsonl;
mod parquet;
/// The bounded line reader, shared with the batch driver's reading of result files.
pub use jsonl::{read_line, Line};
pub use parquet::ColumnType;

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::InputError;

/// The longest row read, in bytes: 64 MiB. A longer JSON line is an invalid row (it is skipped
/// without being held in memory); a longer CSV record stops the read, since the parser cannot
/// resynchronise after it. No API takes a request near this size (a 1M-token context window is
/// about 4 MB of text); the limit exists so a file without line breaks cannot exhaust memory.
pub const MAX_ROW_BYTES: u64 = 64 * 1024 * 1024;

/// A byte count for messages: `64 MiB`, or the exact number when it is not a whole MiB.
fn describe_size(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// The format of an input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    Csv,
    Jsonl,
    Parquet,
}

impl InputFormat {
    /// The format implied by a file name: `.csv`, `.jsonl`, `.ndjson`, `.parquet` (also under `.gz`-less names
    /// only; compressed input is not read).
    pub fn from_path(path: &Path) -> Option<InputFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(InputFormat::Csv),
            "jsonl" | "ndjson" => Some(InputFormat::Jsonl),
            "parquet" => Some(InputFormat::Parquet),
            _ => None,
        }
    }
}

/// One input row, before it becomes a request.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRow {
    /// 1-based position among the data rows (the header is not a row).
    pub number: u64,
    /// 1-based line of the file where the row starts.
    pub line: u64,
    /// The row's fields, in file order.
    pub fields: Map<String, Value>,
}

/// What a reader yields: a row, or a row that is broken (the reader has moved past it).
pub type RowResult = Result<RawRow, InputError>;

/// Why reading stopped for good (as opposed to one bad row, which is an [`InputError`] item).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// A streaming reader of rows of either format.
pub struct RowReader {
    inner: Inner,
    hasher: Arc<Mutex<blake3::Hasher>>,
    /// Column names for CSV (known up front), field names in first-seen order for JSON Lines.
    columns: Vec<String>,
}

enum Inner {
    Csv(csv::CsvRows),
    Jsonl(jsonl::JsonlRows),
    Parquet(parquet::ParquetRows),
}

impl RowReader {
    /// Opens `path` and reads the CSV header, if any. Fails when the file cannot be opened or the
    /// header is unusable (empty file, duplicate column names, invalid UTF-8 in the header).
    pub fn open(path: &Path, format: InputFormat) -> Result<RowReader, ReadError> {
        RowReader::open_limited(path, format, MAX_ROW_BYTES)
    }

    /// [`RowReader::open`] with another row limit than [`MAX_ROW_BYTES`] (tests use small ones).
    pub fn open_limited(path: &Path, format: InputFormat, max_row: u64) -> Result<RowReader, ReadError> {
        if format == InputFormat::Parquet {
            return RowReader::open_parquet(path);
        }
        let csv = format == InputFormat::Csv;
        let file: Box<dyn Read + Send> = if is_stdin(path) {
            Box::new(io::stdin())
        } else {
            Box::new(File::open(path).map_err(|source| ReadError::Io {
                path: path.to_path_buf(),
                source,
            })?)
        };
        let hasher = Arc::new(Mutex::new(blake3::Hasher::new()));
        let reader = HashingReader {
            inner: file,
            hasher: Arc::clone(&hasher),
        };
        let (inner, columns) = if csv {
            let rows = csv::CsvRows::new(path, reader, max_row)?;
            let columns = rows.columns().to_vec();
            (Inner::Csv(rows), columns)
        } else {
            let reader = BufReader::with_capacity(256 * 1024, reader);
            (
                Inner::Jsonl(jsonl::JsonlRows::new(path, reader, max_row)),
                Vec::new(),
            )
        };
        Ok(RowReader {
            inner,
            hasher,
            columns,
        })
    }

    /// A Parquet file: hashed whole first (it is read from its footer, not front to back), then
    /// opened for its rows. Standard input cannot be read this way.
    fn open_parquet(path: &Path) -> Result<RowReader, ReadError> {
        let io_error = |source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        };
        if is_stdin(path) {
            return Err(io_error(io::Error::new(
                io::ErrorKind::InvalidInput,
                "Parquet input is read from its end, so it must be a file, not standard input",
            )));
        }
        let mut file = File::open(path).map_err(io_error)?;
        let mut hasher = blake3::Hasher::new();
        hasher.update_reader(&mut file).map_err(io_error)?;
        let rows = parquet::ParquetRows::open(path, file)?;
        let columns = rows.columns().to_vec();
        Ok(RowReader {
            inner: Inner::Parquet(rows),
            hasher: Arc::new(Mutex::new(hasher)),
            columns,
        })
    }

    /// How each of [`RowReader::columns`] is typed, for a Parquet file; empty for the other
    /// formats (their values are JSON or text).
    pub fn column_types(&self) -> Vec<ColumnType> {
        match &self.inner {
            Inner::Parquet(rows) => rows.types().to_vec(),
            _ => Vec::new(),
        }
    }

    /// The Parquet schema, as message text, of each nested column (list, struct, map) of a
    /// Parquet file, by name; empty for the other formats.
    pub fn column_schemas(&self) -> std::collections::BTreeMap<String, String> {
        match &self.inner {
            Inner::Parquet(rows) => rows.schemas().iter().cloned().collect(),
            _ => Default::default(),
        }
    }

    /// The CSV header's or the Parquet schema's column names; empty for JSON Lines until rows have
    /// been read, after which it lists every top-level field seen, in first-seen order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Whether the column set is fixed up front (CSV, Parquet), so a template can be checked
    /// before any row.
    pub fn has_header(&self) -> bool {
        matches!(self.inner, Inner::Csv(_) | Inner::Parquet(_))
    }

    /// The next row, `None` at the end of the file, or a fatal read error.
    pub fn next_row(&mut self) -> Option<Result<RowResult, ReadError>> {
        let item = match &mut self.inner {
            Inner::Csv(rows) => rows.next_row(),
            Inner::Jsonl(rows) => rows.next_row(),
            Inner::Parquet(rows) => rows.next_row(),
        };
        if let Some(Ok(Ok(row))) = &item {
            if matches!(self.inner, Inner::Jsonl(_)) {
                for key in row.fields.keys() {
                    if !self.columns.iter().any(|c| c == key) {
                        self.columns.push(key.clone());
                    }
                }
            }
        }
        item
    }

    /// How many bytes have been read; after the last row, the file's size as fingerprinted.
    pub fn bytes_read(&self) -> u64 {
        self.hasher.lock().unwrap_or_else(|e| e.into_inner()).count()
    }

    /// The BLAKE3 hash of every byte read so far, hex; after the last row, the file's fingerprint.
    pub fn fingerprint(&self) -> String {
        let hasher = self.hasher.lock().unwrap_or_else(|e| e.into_inner());
        hasher.finalize().to_hex().to_string()
    }
}

/// The input path that means standard input (`promptmill run -`).
pub const STDIN: &str = "-";

/// Whether `path` names standard input rather than a file.
pub fn is_stdin(path: &Path) -> bool {
    path == Path::new(STDIN)
}

/// The fingerprint of a whole file (or of all of standard input), as [`RowReader::fingerprint`]
/// computes it while reading.
pub fn fingerprint_file(path: &Path) -> anyhow::Result<String> {
    let mut hasher = blake3::Hasher::new();
    let file: Box<dyn Read> = if is_stdin(path) {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(path).with_context(|| format!("could not open {}", path.display()))?)
    };
    hasher
        .update_reader(file)
        .with_context(|| format!("could not read {}", path.display()))?;
    Ok(hasher.finalize().to_hex().to_string())
}

/// Passes every byte it reads to a hasher.
struct HashingReader<R> {
    inner: R,
    hasher: Arc<Mutex<blake3::Hasher>>,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .update(&buf[..n]);
        Ok(n)
    }
}

/// Describes a JSON value's type for error messages ("found an array").
pub fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_quoting;
