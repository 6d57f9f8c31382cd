//! CSV rows: a header row is required and names the fields; every data row must have as many
//! fields as the header. Fields are read as bytes and checked for UTF-8 one by one, so an invalid
//! byte is reported with the column it is in. A UTF-8 byte-order mark and CRLF line endings are
//! accepted (the `csv` crate handles both). Quoting the `csv` crate would forgive (a quote never
//! closed, text after a closing quote) is caught on the way in (`csv/quotes.rs`) and makes the
//! record that contains it invalid.

mod quotes;

use std::collections::VecDeque;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

use self::quotes::{Problem, Problems, QuoteCheck, RowTooLong};
use super::{RawRow, ReadError, RowResult};
use crate::error::InputError;

pub(super) struct CsvRows {
    path: PathBuf,
    reader: csv::Reader<Box<dyn Read + Send>>,
    columns: Vec<String>,
    record: csv::ByteRecord,
    number: u64,
    newlines: Newlines,
    quote_problems: Problems,
}

impl CsvRows {
    /// Reads the header. `max_row` is the longest record allowed, in bytes.
    pub(super) fn new(
        path: &Path,
        reader: impl Read + Send + 'static,
        max_row: u64,
    ) -> Result<Self, ReadError> {
        let newlines = Newlines::default();
        let quote_problems = Problems::default();
        let reader: Box<dyn Read + Send> = Box::new(NewlineTracker {
            inner: QuoteCheck::new(reader, Arc::clone(&quote_problems), max_row),
            offset: 0,
            newlines: Arc::clone(&newlines),
        });
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .buffer_capacity(256 * 1024)
            .from_reader(reader);
        let header = match reader.byte_headers() {
            Ok(h) => h.clone(),
            Err(e) => return Err(fatal(path, e)),
        };
        if let Some(problem) = take_problem(&quote_problems, reader.position().byte()) {
            return Err(InputError::new(path, 1, problem.message()).into());
        }
        if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
            return Err(InputError::new(
                path,
                1,
                "the file is empty; a CSV input needs a header row naming its columns",
            )
            .into());
        }
        let mut columns: Vec<String> = Vec::with_capacity(header.len());
        for (i, raw) in header.iter().enumerate() {
            let name = std::str::from_utf8(raw).map_err(|e| {
                InputError::new(
                    path,
                    1,
                    format!(
                        "header column {} is not valid UTF-8 (byte {} of the name)",
                        i + 1,
                        e.valid_up_to()
                    ),
                )
            })?;
            let name = name.trim().to_string();
            if name.is_empty() {
                return Err(InputError::new(path, 1, format!("header column {} has no name", i + 1)).into());
            }
            if columns.contains(&name) {
                return Err(
                    InputError::new(path, 1, format!("column `{name}` appears twice in the header")).into(),
                );
            }
            columns.push(name);
        }
        Ok(CsvRows {
            path: path.to_path_buf(),
            reader,
            columns,
            record: csv::ByteRecord::new(),
            number: 0,
            newlines,
            quote_problems,
        })
    }

    pub(super) fn columns(&self) -> &[String] {
        &self.columns
    }

    pub(super) fn next_row(&mut self) -> Option<Result<RowResult, ReadError>> {
        match self.reader.read_byte_record(&mut self.record) {
            Ok(false) => None,
            Ok(true) => {
                self.number += 1;
                let line = self.start_line();
                if let Some(problem) = self.quote_problem() {
                    return Some(Ok(Err(self.quoting_error(problem))));
                }
                Some(Ok(self.convert(line)))
            }
            Err(e) => match e.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => {
                    let (expected_len, len) = (*expected_len, *len);
                    self.number += 1;
                    let line = self.start_line();
                    // Bad quoting is the cause when both are wrong: it moves the commas.
                    if let Some(problem) = self.quote_problem() {
                        return Some(Ok(Err(self.quoting_error(problem))));
                    }
                    let fields = if len == 1 { "field" } else { "fields" };
                    Some(Ok(Err(InputError::new(
                        &self.path,
                        line,
                        format!("row has {len} {fields}, but the header has {expected_len}"),
                    ))))
                }
                _ => Some(Err(fatal(&self.path, e))),
            },
        }
    }

    /// The line the record just read starts on. The `csv` crate positions a record where the
    /// previous one ended, before it skips blank lines and the `\n` of a CRLF, so that line can be
    /// too low; where the record ends is exact. Counting back from there: the `\n`s inside its
    /// (quoted) fields, and the `\n` that ended it, if one did.
    fn start_line(&self) -> u64 {
        let start = self.record.position().map(|p| p.byte()).unwrap_or(0);
        let end = self.reader.position();
        let mut newlines = self.newlines.lock().unwrap_or_else(|e| e.into_inner());
        while newlines.front().is_some_and(|&at| at < start) {
            newlines.pop_front();
        }
        let ended_by_newline = end.byte() > 0 && newlines.binary_search(&(end.byte() - 1)).is_ok();
        let inside = self.record.as_slice().iter().filter(|&&b| b == b'\n').count() as u64;
        end.line()
            .saturating_sub(inside + u64::from(ended_by_newline))
            .max(1)
    }

    /// The first quoting problem in the record just read, if any.
    fn quote_problem(&self) -> Option<Problem> {
        take_problem(&self.quote_problems, self.reader.position().byte())
    }

    /// The error for a record with bad quoting, at the line the record starts on. (The `csv`
    /// crate's positions cannot give that line for a record that an unclosed quote ran to the end
    /// of the file; the quote checker knows it.)
    fn quoting_error(&self, problem: Problem) -> InputError {
        let error = InputError::new(&self.path, problem.record_line, problem.message());
        match self.columns.get(problem.column) {
            Some(name) => error.field(name.clone()),
            None => error,
        }
    }

    fn convert(&self, line: u64) -> RowResult {
        let mut fields = Map::with_capacity(self.columns.len());
        for (name, raw) in self.columns.iter().zip(self.record.iter()) {
            let text = std::str::from_utf8(raw).map_err(|e| {
                InputError::new(
                    &self.path,
                    line,
                    format!("invalid UTF-8 (byte {} of the field)", e.valid_up_to() + 1),
                )
                .field(name.clone())
            })?;
            fields.insert(name.clone(), Value::String(text.to_string()));
        }
        Ok(RawRow {
            number: self.number,
            line,
            fields,
        })
    }
}

/// Byte offsets of the `\n`s read from the file that the parser may not have reached yet. The
/// reader below pushes them as the `csv` crate's buffer fills; [`CsvRows::start_line`] drops those
/// before the current record, so this holds about one buffer's worth.
type Newlines = Arc<Mutex<VecDeque<u64>>>;

struct NewlineTracker<R> {
    inner: R,
    offset: u64,
    newlines: Newlines,
}

impl<R: Read> Read for NewlineTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut newlines = self.newlines.lock().unwrap_or_else(|e| e.into_inner());
        for (i, _) in buf[..n].iter().enumerate().filter(|(_, &b)| b == b'\n') {
            newlines.push_back(self.offset + i as u64);
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// Removes the quoting problems found before `end` (the end of the record just read) and returns
/// the first: problems are noted in file order, so earlier records' are gone already.
fn take_problem(problems: &Problems, end: u64) -> Option<Problem> {
    let mut problems = problems.lock().unwrap_or_else(|e| e.into_inner());
    let mut first = None;
    while let Some(problem) = problems.front().copied().filter(|p| p.offset < end) {
        problems.pop_front();
        first.get_or_insert(problem);
    }
    first
}

fn fatal(path: &Path, e: csv::Error) -> ReadError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    match e.into_kind() {
        csv::ErrorKind::Io(source) => match source.get_ref().and_then(|s| s.downcast_ref::<RowTooLong>()) {
            Some(too_long) => InputError::new(
                path,
                too_long.line,
                format!(
                    "the row is longer than {}, the most promptmill reads as one row; \
                     reading stopped here (is a quote never closed?)",
                    super::describe_size(too_long.limit)
                ),
            )
            .into(),
            None => ReadError::Io {
                path: path.to_path_buf(),
                source,
            },
        },
        other => InputError::new(path, line, format!("unreadable CSV: {other:?}")).into(),
    }
}
