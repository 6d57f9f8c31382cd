//! JSON Lines rows: one JSON object per line; its top-level fields are the row's fields. Blank
//! lines are passed over, a UTF-8 byte-order mark and CRLF endings are accepted. A line is read
//! whole up to the row limit (a 50 MB line is one row, not an error); a longer one is an invalid
//! row, passed over without being held in memory. A line is checked for UTF-8 before it is parsed
//! so the error can say where the bad byte is. A key repeated in one object is a row error, and a
//! number out of `f64`'s range keeps its field as the text written (see `jsonl/strict.rs`).

mod strict;

use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde_json::Value;

use self::strict::StrictError;
use super::{describe_size, json_type_name, RawRow, ReadError, RowResult};
use crate::error::InputError;

pub(super) struct JsonlRows {
    path: PathBuf,
    reader: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
    line: u64,
    number: u64,
    /// The longest line kept, in bytes, without its line ending.
    max_row: u64,
}

/// A buffer that held a line longer than this is given back after it (one huge line must not
/// keep its memory for the rest of the file).
const KEEP_CAPACITY: usize = 1024 * 1024;

impl JsonlRows {
    pub(super) fn new<R: Read + Send + 'static>(path: &Path, reader: BufReader<R>, max_row: u64) -> Self {
        JsonlRows {
            path: path.to_path_buf(),
            reader: Box::new(reader),
            buf: Vec::new(),
            line: 0,
            number: 0,
            max_row,
        }
    }

    pub(super) fn next_row(&mut self) -> Option<Result<RowResult, ReadError>> {
        loop {
            if self.buf.capacity() > KEEP_CAPACITY {
                self.buf = Vec::new();
            }
            self.buf.clear();
            let too_long = match read_line(&mut *self.reader, &mut self.buf, self.max_row) {
                Ok(Line::End) => return None,
                Ok(Line::Read) => None,
                Ok(Line::TooLong(length)) => Some(length),
                Err(source) => {
                    return Some(Err(ReadError::Io {
                        path: self.path.clone(),
                        source,
                    }))
                }
            };
            self.line += 1;
            if let Some(length) = too_long {
                self.number += 1;
                let message = format!(
                    "the line is {length} bytes long, more than the {} promptmill reads as one row",
                    describe_size(self.max_row)
                );
                return Some(Ok(Err(InputError::new(&self.path, self.line, message))));
            }
            let complete = self.buf.last() == Some(&b'\n');
            let mut bytes: &[u8] = &self.buf;
            if self.line == 1 {
                bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            }
            while let Some((last, rest)) = bytes.split_last() {
                if matches!(last, b'\n' | b'\r') {
                    bytes = rest;
                } else {
                    break;
                }
            }
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.number += 1;
            return Some(Ok(self.parse(bytes, complete)));
        }
    }

    fn parse(&self, bytes: &[u8], complete: bool) -> RowResult {
        let err = |message: String| InputError::new(&self.path, self.line, message);
        let text = std::str::from_utf8(bytes).map_err(|e| {
            err(format!(
                "invalid UTF-8 at byte {} of the line",
                e.valid_up_to() + 1
            ))
        })?;
        let value: Value = strict::parse(text).map_err(|e| match e {
            StrictError::Duplicate(key) => err(format!("field `{key}` appears twice on this line")),
            StrictError::Json(e) if e.is_eof() && !complete => {
                err("the JSON is cut off at the end of the file (the last line is incomplete)".to_string())
            }
            StrictError::Json(e) if e.is_eof() => err(format!("the JSON is incomplete ({e})")),
            StrictError::Json(e) => err(format!("not valid JSON ({e})")),
        })?;
        match value {
            Value::Object(fields) => Ok(RawRow {
                number: self.number,
                line: self.line,
                fields,
            }),
            other => Err(err(format!(
                "each line must be a JSON object, found {}",
                json_type_name(&other)
            ))),
        }
    }
}

/// What [`read_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// The end of the file: nothing was read.
    End,
    /// A line, in the buffer, with its `\n` when it has one.
    Read,
    /// A line longer than the limit, of this many bytes (line ending included); it was read
    /// past, and the buffer holds no more than the limit.
    TooLong(u64),
}

/// `read_until(b'\n')` that stops keeping bytes past `max` (not counting the `\n`) but
/// still reads to the end of the line, so the next call starts on the next line.
pub fn read_line(reader: &mut dyn BufRead, buf: &mut Vec<u8>, max: u64) -> io::Result<Line> {
    let mut length: u64 = 0;
    let mut too_long = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            break;
        }
        let (chunk, ended) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let n = chunk.len();
        length += n as u64;
        if !too_long {
            // The `\n` does not count; a `\r` before it does.
            if buf.len() as u64 + n as u64 - u64::from(ended) > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        reader.consume(n);
        if ended {
            break;
        }
    }
    Ok(match (length, too_long) {
        (0, _) => Line::End,
        (_, true) => Line::TooLong(length),
        (_, false) => Line::Read,
    })
}
