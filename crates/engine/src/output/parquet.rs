//! Parquet output: one typed column per value, snappy-compressed, in row groups of
//! [`ROWS_PER_GROUP`] rows (one row group is held in memory at a time, so memory stays flat
//! whatever the job's size). Columns: `id` and `row`, the input columns (typed as they were in a
//! Parquet input, see `input::ColumnType`; text otherwise, non-string values as JSON text), then
//! `status`, `completion`, `finish_reason`, the usage counts `prompt_tokens`,
//! `completion_tokens`, `total_tokens`, `cached_tokens`, `cache_creation_tokens`,
//! `reasoning_tokens` (int64, null where the server did not say), `cost` (double, dollars at the
//! job's recorded prices, null when the model has none), `model`, `response_id`, `error`, and
//! `cached` (boolean: answered from the response cache). A `--schema` job has `schema` (string:
//! the outcome, `valid`, `invalid`, `truncated` or `refused`) and one string column
//! `data.<property>` per top-level property of the schema, in its order, holding what the CSV
//! holds (a valid row's value: strings as they are, other values as JSON text). Input columns
//! named like another column are prefixed with `input.` as in CSV. An embeddings job (never a
//! `--schema` one) has one more column at the end, `embedding`: each row's vector as
//! `list<float32>`, null without one (`parquet/vectors.rs`, which also cuts row groups by vector
//! values so they stay small). A Parquet input's list, struct and map columns keep their Parquet
//! type, from the schema the job recorded (`parquet/shape.rs`, `parquet/nested.rs`). The flat
//! column buffers and their conversion live in `parquet/columns.rs`; this file owns the schema
//! and the row groups.

mod columns;
mod nested;
mod shape;
mod vectors;

use std::collections::BTreeMap;
use std::sync::Arc;

use parquet::basic::{Compression, LogicalType, Repetition, Type as Physical};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;

use self::columns::{Buffer, Kind};
use self::nested::NestedColumn;
use self::vectors::VectorColumn;
use super::{data_text, status, Out, RowWriter};
use crate::store::ExportRow;
use promptmill_core::input::ColumnType;

/// Rows per row group: a reader's unit of work, and what this writer holds in memory.
pub const ROWS_PER_GROUP: usize = 64 * 1024;

const RESULT_COLUMNS: &[(&str, Kind)] = &[
    ("status", Kind::RequiredText),
    ("completion", Kind::Text),
    ("finish_reason", Kind::Text),
    ("prompt_tokens", Kind::Int64),
    ("completion_tokens", Kind::Int64),
    ("total_tokens", Kind::Int64),
    ("cached_tokens", Kind::Int64),
    ("cache_creation_tokens", Kind::Int64),
    ("reasoning_tokens", Kind::Int64),
    ("cost", Kind::Double),
    ("model", Kind::Text),
    ("response_id", Kind::Text),
    ("error", Kind::Text),
    ("cached", Kind::Bool),
];

pub(super) struct Parquet {
    writer: SerializedFileWriter<Out>,
    /// The input columns, by the name the rows' fields have.
    inputs: Vec<String>,
    /// One buffer per top-level column of the schema, in its order.
    buffers: Vec<Column>,
    /// A `--schema` job's top-level properties, in the order of their `data.*` columns.
    properties: Option<Vec<String>>,
    /// The rows' vectors, for a job whose answers are vectors; after every other column.
    vectors: Option<VectorColumn>,
    rows: usize,
}

/// A top-level column's values for the row group being built.
enum Column {
    /// One leaf column: a value or a null per row.
    Flat(Buffer),
    /// A list, struct or map, typed as the Parquet input had it: several leaf columns.
    Nested(NestedColumn),
}

/// What the job tells the writer beyond the rows (`output/mod.rs` reads it from the checkpoint,
/// so this file does not depend on the job's record): the input columns' types. A row's cost
/// comes priced in its [`ExportRow`] (`output/cost.rs`), as for the other formats.
#[derive(Default)]
pub(super) struct JobFacts {
    /// The types of a Parquet input's columns, by name; empty for other inputs.
    pub types: BTreeMap<String, ColumnType>,
    /// The Parquet schema (as message text) of a Parquet input's nested columns, by name; a
    /// column without one (or whose schema `parquet/nested.rs` cannot write) is JSON text.
    pub schemas: BTreeMap<String, String>,
    /// Whether the job's answers are vectors (the `embedding` column).
    pub vectors: bool,
    /// A `--schema` job's top-level properties, in its order (the `schema` and `data.*`
    /// columns); `None` for other jobs.
    pub properties: Option<Vec<String>>,
}

impl Parquet {
    /// A writer of the job's rows: `columns` are the input columns exported (the id's column left
    /// out), typed as `job` says.
    pub(super) fn new(out: Out, columns: &[String], job: JobFacts) -> anyhow::Result<Parquet> {
        let results = result_columns(&job);
        let mut taken: Vec<&str> = results.iter().map(|(n, _)| n.as_str()).collect();
        if job.vectors {
            taken.push(vectors::NAME);
        }
        let names = super::csv::input_names(columns, &taken);
        let mut fields = Vec::new();
        let mut buffers = Vec::new();
        let flat = |name: &str, kind: Kind, buffers: &mut Vec<Column>| {
            buffers.push(Column::Flat(Buffer::new(kind)));
            field(name, kind).map(Arc::new)
        };
        fields.push(flat("id", Kind::RequiredText, &mut buffers)?);
        fields.push(flat("row", Kind::RequiredInt64, &mut buffers)?);
        for (column, name) in columns.iter().zip(names) {
            if let Some((field, nested)) = job.schemas.get(column).and_then(|s| nested_column(s, &name)) {
                fields.push(Arc::new(field));
                buffers.push(Column::Nested(nested));
                continue;
            }
            let kind = match job.types.get(column.as_str()) {
                Some(ColumnType::Bool) => Kind::Bool,
                Some(ColumnType::Int32) => Kind::Int32,
                Some(ColumnType::Int64) => Kind::Int64,
                Some(ColumnType::Float) => Kind::Float,
                Some(ColumnType::Double) => Kind::Double,
                Some(ColumnType::Text) | None => Kind::Text,
            };
            fields.push(flat(&name, kind, &mut buffers)?);
        }
        for (name, kind) in &results {
            fields.push(flat(name, *kind, &mut buffers)?);
        }
        if job.vectors {
            fields.push(Arc::new(vectors::field()?));
        }
        let message = Type::group_type_builder("promptmill")
            .with_fields(fields)
            .build()?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROWS_PER_GROUP))
            .set_created_by(format!("promptmill {}", env!("CARGO_PKG_VERSION")))
            // A vector's floats never repeat: a dictionary would only cost memory.
            .set_column_dictionary_enabled(vectors::leaf_path(), false)
            .build();
        let writer = SerializedFileWriter::new(out, Arc::new(message), Arc::new(props))?;
        Ok(Parquet {
            writer,
            inputs: columns.to_vec(),
            buffers,
            properties: job.properties,
            vectors: job.vectors.then(VectorColumn::default),
            rows: 0,
        })
    }

    /// Writes the buffered rows as one row group.
    fn flush_group(&mut self) -> anyhow::Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let mut group = self.writer.next_row_group()?;
        for buffer in &mut self.buffers {
            let buffer = match buffer {
                Column::Flat(buffer) => buffer,
                Column::Nested(nested) => {
                    nested.write(&mut group)?;
                    continue;
                }
            };
            let Some(mut column) = group.next_column()? else {
                anyhow::bail!("the Parquet schema has fewer columns than promptmill writes");
            };
            buffer.write(&mut column)?;
            column.close()?;
        }
        if let Some(vectors) = &mut self.vectors {
            vectors.write(&mut group)?;
        }
        group.close()?;
        self.rows = 0;
        Ok(())
    }
}

/// The flat columns after the input columns: [`RESULT_COLUMNS`], then a `--schema` job's
/// `schema` and `data.*` (the `embedding` column, written apart, comes after them).
fn result_columns(job: &JobFacts) -> Vec<(String, Kind)> {
    let mut results: Vec<(String, Kind)> = RESULT_COLUMNS
        .iter()
        .map(|(name, kind)| (name.to_string(), *kind))
        .collect();
    if let Some(properties) = &job.properties {
        results.push(("schema".into(), Kind::Text));
        results.extend(properties.iter().map(|p| (format!("data.{p}"), Kind::Text)));
    }
    results
}

/// The schema field and writer of a nested input column, from the Parquet schema its input
/// recorded; `None` when it cannot be written natively (it is then written as JSON text).
fn nested_column(schema: &str, name: &str) -> Option<(Type, NestedColumn)> {
    let built = nested::parse(schema).and_then(|field| {
        let column = NestedColumn::new(&field)?;
        Ok((nested::renamed(&field, name).map_err(|e| e.to_string())?, column))
    });
    match built {
        Ok(built) => Some(built),
        Err(why) => {
            tracing::debug!("the Parquet column `{name}` is written as JSON text: {why}");
            None
        }
    }
}

/// The schema field of one column.
fn field(name: &str, kind: Kind) -> parquet::errors::Result<Type> {
    let (physical, logical, repetition) = match kind {
        Kind::RequiredText => (
            Physical::BYTE_ARRAY,
            Some(LogicalType::String),
            Repetition::REQUIRED,
        ),
        Kind::RequiredInt64 => (Physical::INT64, None, Repetition::REQUIRED),
        Kind::Text => (
            Physical::BYTE_ARRAY,
            Some(LogicalType::String),
            Repetition::OPTIONAL,
        ),
        Kind::Bool => (Physical::BOOLEAN, None, Repetition::OPTIONAL),
        Kind::Int32 => (Physical::INT32, None, Repetition::OPTIONAL),
        Kind::Int64 => (Physical::INT64, None, Repetition::OPTIONAL),
        Kind::Float => (Physical::FLOAT, None, Repetition::OPTIONAL),
        Kind::Double => (Physical::DOUBLE, None, Repetition::OPTIONAL),
    };
    Type::primitive_type_builder(name, physical)
        .with_logical_type(logical)
        .with_repetition(repetition)
        .build()
}

/// The next column's buffer, which must be a flat one.
fn flat(column: Option<&mut Column>) -> anyhow::Result<&mut Buffer> {
    match column {
        Some(Column::Flat(buffer)) => Ok(buffer),
        Some(Column::Nested(_)) => {
            anyhow::bail!("a Parquet column is nested where promptmill writes a value")
        }
        None => anyhow::bail!("more values than Parquet columns"),
    }
}

impl RowWriter for Parquet {
    fn row(&mut self, row: &ExportRow) -> anyhow::Result<()> {
        let fields: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&row.fields)?;
        let mut b = self.buffers.iter_mut();
        flat(b.next())?.text(Some(&row.id));
        flat(b.next())?.int(Some(row.seq));
        for name in &self.inputs {
            match b.next() {
                Some(Column::Nested(nested)) => nested
                    .push(fields.get(name))
                    .map_err(|e| anyhow::anyhow!("row `{}`: column `{name}`: {e}", row.id))?,
                other => flat(other)?.value(fields.get(name)),
            }
        }
        let mut next = || flat(b.next());
        next()?.text(Some(status(row)));
        next()?.text(row.completion.as_deref());
        next()?.text(row.finish_reason.as_deref());
        next()?.int(row.prompt_tokens);
        next()?.int(row.completion_tokens);
        next()?.int(row.total_tokens);
        next()?.int(row.cached_tokens);
        next()?.int(row.cache_creation_tokens);
        next()?.int(row.reasoning_tokens);
        next()?.float(row.cost);
        next()?.text(row.model.as_deref());
        next()?.text(row.response_id.as_deref());
        next()?.text(row.error.as_deref());
        next()?.bool(Some(row.cached));
        if let Some(properties) = &self.properties {
            next()?.text(row.outcome.as_deref());
            for p in properties {
                next()?.text(data_text(row, p).as_deref());
            }
        }
        if let Some(vectors) = &mut self.vectors {
            vectors.push(row.embedding.as_deref());
        }
        self.rows += 1;
        if self.rows >= ROWS_PER_GROUP || self.vectors.as_ref().is_some_and(VectorColumn::full) {
            self.flush_group()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> anyhow::Result<Out> {
        self.flush_group()?;
        Ok(self.writer.into_inner()?)
    }
}

#[cfg(test)]
mod tests;
