//! JSON Lines rows: one JSON object per line; its top-level fields are the row's fields. Blank
//! lines are passed over, a UTF-8 byte-order mark and CRLF endings are accepted. A line is read
//! whole whatever its length (a 50 MB line is one row, not an error), and is checked for UTF-8
//! before it is parsed so the error can say where the bad byte is.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{json_type_name, RawRow, ReadError, RowResult};
use crate::error::InputError;

pub(super) struct JsonlRows {
    path: PathBuf,
    reader: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
    line: u64,
    number: u64,
}

impl JsonlRows {
    pub(super) fn new<R: Read + Send + 'static>(path: &Path, reader: BufReader<R>) -> Self {
        JsonlRows {
            path: path.to_path_buf(),
            reader: Box::new(reader),
            buf: Vec::new(),
            line: 0,
            number: 0,
        }
    }

    pub(super) fn next_row(&mut self) -> Option<Result<RowResult, ReadError>> {
        loop {
            self.buf.clear();
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(source) => {
                    return Some(Err(ReadError::Io {
                        path: self.path.clone(),
                        source,
                    }))
                }
            }
            self.line += 1;
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
        let value: Value = serde_json::from_str(text).map_err(|e| {
            if e.is_eof() && !complete {
                err("the JSON is cut off at the end of the file (the last line is incomplete)".to_string())
            } else if e.is_eof() {
                err(format!("the JSON is incomplete ({e})"))
            } else {
                err(format!("not valid JSON ({e})"))
            }
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
