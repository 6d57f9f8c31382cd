//! Parquet rows: every top-level column of the file's schema is a field. Rows are read through
//! the `parquet` crate's record API, one row group after another and a page at a time within one,
//! so memory follows the largest page, not the file. Values become the JSON a template sees:
//! integers and floats as numbers, booleans, strings as strings, dates and timestamps as their
//! text (`2026-01-31`, `2026-01-31 12:00:00 +00:00`), decimals as exact numbers, and lists,
//! structs and maps as JSON arrays and objects. A Parquet file is read from its end (the footer
//! holds the schema), so it must be a file, not standard input; its fingerprint is the BLAKE3 of
//! its bytes as for the other formats, hashed when it is opened. Rows have no lines: a row's
//! `line` is its 1-based row number, so errors read `file:ROW: field `name`: …`.
//!
//! What the Parquet file's columns are typed as is kept ([`ColumnType`]) so that a Parquet
//! output can give the input columns the same types (`output/parquet.rs`); a list, struct or
//! map column also keeps its Parquet schema, as the message text the `parquet` crate prints and
//! parses (`output/parquet/nested.rs` writes it back with that type).

use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::basic::{ConvertedType, LogicalType, Type as Physical};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::reader::RowIter;
use parquet::record::Field;
use parquet::schema::types::Type;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use super::{RawRow, ReadError, RowResult};
use crate::error::InputError;

/// How an input column is typed in a Parquet output: the primitive types a Parquet input
/// column had, or `Json` for anything else (text, nested values, dates), written as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    Bool,
    Int32,
    Int64,
    Float,
    Double,
    /// UTF-8 text: a string column, or any other value as its JSON text.
    Text,
}

pub(super) struct ParquetRows {
    path: PathBuf,
    rows: RowIter<'static>,
    number: u64,
    columns: Vec<String>,
    types: Vec<ColumnType>,
    /// The schema text of each nested column, by name.
    schemas: Vec<(String, String)>,
}

impl ParquetRows {
    /// Opens a Parquet file: reads its footer and schema. A file that is not Parquet, or is cut
    /// short (the footer is at the end), is refused here, before any row.
    pub(super) fn open(path: &Path, file: File) -> Result<ParquetRows, ReadError> {
        let not_parquet = |e: parquet::errors::ParquetError| ReadError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "not a readable Parquet file ({e}); a Parquet file ends with its footer, \
                     so one that was cut short cannot be read"
                ),
            ),
        };
        let reader = SerializedFileReader::new(file).map_err(not_parquet)?;
        let schema = reader.metadata().file_metadata().schema();
        let columns = schema.get_fields().iter().map(|f| f.name().to_string()).collect();
        let types = schema.get_fields().iter().map(|f| column_type(f)).collect();
        let schemas = schema
            .get_fields()
            .iter()
            .filter_map(|f| Some((f.name().to_string(), schema_text(f)?)))
            .collect();
        let rows = RowIter::from_file_into(Box::new(reader));
        Ok(ParquetRows {
            path: path.to_path_buf(),
            rows,
            number: 0,
            columns,
            types,
            schemas,
        })
    }

    pub(super) fn columns(&self) -> &[String] {
        &self.columns
    }

    pub(super) fn types(&self) -> &[ColumnType] {
        &self.types
    }

    pub(super) fn schemas(&self) -> &[(String, String)] {
        &self.schemas
    }

    pub(super) fn next_row(&mut self) -> Option<Result<RowResult, ReadError>> {
        let row = self.rows.next()?;
        self.number += 1;
        let row = match row {
            Ok(row) => row,
            // A page that cannot be decoded ends the read: the rows after it cannot be found.
            Err(e) => {
                let message = format!("the file is damaged here ({e}); no row after this one can be read");
                return Some(Err(InputError::new(&self.path, self.number, message).into()));
            }
        };
        let mut fields = Map::new();
        for (name, field) in row.into_columns() {
            match to_json(field) {
                Ok(value) => {
                    fields.insert(name, value);
                }
                Err(message) => {
                    let e = InputError::new(&self.path, self.number, message).field(name);
                    return Some(Ok(Err(e)));
                }
            }
        }
        Some(Ok(Ok(RawRow {
            number: self.number,
            line: self.number,
            fields,
        })))
    }
}

/// The output type of a top-level column: its own for the primitive types promptmill writes,
/// text for the rest.
fn column_type(field: &Type) -> ColumnType {
    if !field.is_primitive() || field.get_basic_info().repetition() == parquet::basic::Repetition::REPEATED {
        return ColumnType::Text;
    }
    let info = field.get_basic_info();
    let plain = info.logical_type_ref().is_none()
        && matches!(
            info.converted_type(),
            ConvertedType::NONE | ConvertedType::INT_32 | ConvertedType::INT_64
        );
    let int = |bits: i8, signed: bool| matches!(info.logical_type_ref(), Some(LogicalType::Integer(t)) if t.bit_width <= bits && t.is_signed == signed);
    match field.get_physical_type() {
        Physical::BOOLEAN => ColumnType::Bool,
        Physical::INT32 if plain || int(32, true) => ColumnType::Int32,
        Physical::INT32 if int(32, false) => ColumnType::Int64,
        Physical::INT64 if plain || int(64, true) => ColumnType::Int64,
        Physical::FLOAT if plain => ColumnType::Float,
        Physical::DOUBLE if plain => ColumnType::Double,
        _ => ColumnType::Text,
    }
}

/// A nested column's (a group, or a repeated field) schema as a message of that one field, in
/// the text `parquet::schema::parser` reads back; `None` for a column of one value.
fn schema_text(field: &std::sync::Arc<Type>) -> Option<String> {
    let info = field.get_basic_info();
    if field.is_primitive() && info.repetition() != parquet::basic::Repetition::REPEATED {
        return None;
    }
    let message = Type::group_type_builder("column")
        .with_fields(vec![field.clone()])
        .build()
        .ok()?;
    let mut text = Vec::new();
    parquet::schema::printer::print_schema(&mut text, &message);
    String::from_utf8(text).ok()
}

/// A Parquet value as the JSON a template sees; an error for bytes that are not UTF-8 text.
fn to_json(field: Field) -> Result<Value, String> {
    Ok(match field {
        Field::Null => Value::Null,
        Field::Bool(b) => Value::Bool(b),
        Field::Byte(n) => n.into(),
        Field::Short(n) => n.into(),
        Field::Int(n) => n.into(),
        Field::Long(n) => n.into(),
        Field::UByte(n) => n.into(),
        Field::UShort(n) => n.into(),
        Field::UInt(n) => n.into(),
        Field::ULong(n) => n.into(),
        // Through the shortest text that reads back as the same float: 0.1f32 is 0.1, not
        // 0.10000000149011612.
        Field::Float16(x) => float(f64::from(x), x.to_string()),
        Field::Float(x) => float(f64::from(x), x.to_string()),
        Field::Double(x) => float(x, x.to_string()),
        Field::Decimal(_) => {
            let text = field.to_string();
            text.parse::<Number>()
                .map(Value::Number)
                .unwrap_or(Value::String(text))
        }
        Field::Str(s) => Value::String(s),
        Field::Bytes(b) => match String::from_utf8(b.data().to_vec()) {
            Ok(s) => Value::String(s),
            Err(e) => {
                return Err(format!(
                    "a binary value that is not UTF-8 text (invalid byte at {}); promptmill reads text",
                    e.utf8_error().valid_up_to() + 1
                ))
            }
        },
        Field::Date(_)
        | Field::TimeMillis(_)
        | Field::TimeMicros(_)
        | Field::TimestampMillis(_)
        | Field::TimestampMicros(_) => Value::String(field.to_string()),
        Field::Group(row) => {
            let mut object = Map::new();
            for (name, f) in row.into_columns() {
                object.insert(name, to_json(f)?);
            }
            Value::Object(object)
        }
        Field::ListInternal(list) => {
            let items: Result<Vec<Value>, String> = list.elements().iter().cloned().map(to_json).collect();
            Value::Array(items?)
        }
        Field::MapInternal(map) => {
            let mut object = Map::new();
            for (k, v) in map.entries().iter().cloned() {
                let key = match k {
                    Field::Str(s) => s,
                    other => match to_json(other)? {
                        Value::String(s) => s,
                        v => v.to_string(),
                    },
                };
                object.insert(key, to_json(v)?);
            }
            Value::Object(object)
        }
    })
}

/// A finite float as a JSON number written as `text`; NaN and the infinities as their text.
fn float(x: f64, text: String) -> Value {
    if x.is_finite() {
        match text.parse::<Number>() {
            Ok(n) => Value::Number(n),
            Err(_) => Number::from_f64(x)
                .map(Value::Number)
                .unwrap_or(Value::String(text)),
        }
    } else {
        Value::String(text)
    }
}
