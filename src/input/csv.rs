//! CSV rows: a header row is required and names the fields; every data row must have as many
//! fields as the header. Fields are read as bytes and checked for UTF-8 one by one, so an invalid
//! byte is reported with the column it is in. A UTF-8 byte-order mark and CRLF line endings are
//! accepted (the `csv` crate handles both).

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{RawRow, ReadError, RowResult};
use crate::error::InputError;

pub(super) struct CsvRows {
    path: PathBuf,
    reader: csv::Reader<Box<dyn Read + Send>>,
    columns: Vec<String>,
    record: csv::ByteRecord,
    number: u64,
}

impl CsvRows {
    pub(super) fn new(path: &Path, reader: impl Read + Send + 'static) -> Result<Self, ReadError> {
        let reader: Box<dyn Read + Send> = Box::new(reader);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .buffer_capacity(256 * 1024)
            .from_reader(reader);
        let header = match reader.byte_headers() {
            Ok(h) => h.clone(),
            Err(e) => return Err(fatal(path, e)),
        };
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
                let line = self.record.position().map(|p| p.line()).unwrap_or(0);
                Some(Ok(self.convert(line)))
            }
            Err(e) => match e.kind() {
                csv::ErrorKind::UnequalLengths {
                    pos,
                    expected_len,
                    len,
                } => {
                    self.number += 1;
                    let line = pos.as_ref().map(|p| p.line()).unwrap_or(0);
                    Some(Ok(Err(InputError::new(
                        &self.path,
                        line,
                        format!("row has {len} fields, but the header has {expected_len}"),
                    ))))
                }
                _ => Some(Err(fatal(&self.path, e))),
            },
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

fn fatal(path: &Path, e: csv::Error) -> ReadError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    match e.into_kind() {
        csv::ErrorKind::Io(source) => ReadError::Io {
            path: path.to_path_buf(),
            source,
        },
        other => InputError::new(path, line, format!("unreadable CSV: {other:?}")).into(),
    }
}
