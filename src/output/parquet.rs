//! Parquet output: one typed column per value, snappy-compressed, in row groups of
//! [`ROWS_PER_GROUP`] rows (one row group is held in memory at a time, so memory stays flat
//! whatever the job's size). Columns: `id` and `row`, the input columns (typed as they were in a
//! Parquet input, see `input::ColumnType`; text otherwise, non-string values as JSON text), then
//! `status`, `completion`, `finish_reason`, the usage counts `prompt_tokens`,
//! `completion_tokens`, `total_tokens`, `cached_tokens`, `reasoning_tokens` (int64, null where the
//! server did not say), `cost` (double, dollars at the job's recorded prices, null when the model
//! has none), `model`, `response_id`, `error`. Input columns named like another column are
//! prefixed with `input.` as in CSV. The column buffers and their conversion live in
//! `parquet/columns.rs`; this file owns the schema and the row groups.

mod columns;

use std::collections::BTreeMap;
use std::sync::Arc;

use parquet::basic::{Compression, LogicalType, Repetition, Type as Physical};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;

use self::columns::{Buffer, Kind};
use super::{status, Out, RowWriter};
use crate::input::ColumnType;
use crate::store::ExportRow;

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
];

pub(super) struct Parquet {
    writer: SerializedFileWriter<Out>,
    /// The input columns, by the name the rows' fields have.
    inputs: Vec<String>,
    /// One buffer per column of the schema, in its order.
    buffers: Vec<Buffer>,
    rows: usize,
}

/// What the job tells the writer beyond the rows (`output/mod.rs` reads it from the checkpoint,
/// so this file does not depend on the job's record): the input columns' types. A row's cost
/// comes priced in its [`ExportRow`] (`output/cost.rs`), as for the other formats.
#[derive(Default)]
pub(super) struct JobFacts {
    /// The types of a Parquet input's columns, by name; empty for other inputs.
    pub types: BTreeMap<String, ColumnType>,
}

impl Parquet {
    /// A writer of the job's rows: `columns` are the input columns exported (the id's column left
    /// out), typed as `job` says.
    pub(super) fn new(out: Out, columns: &[String], job: JobFacts) -> anyhow::Result<Parquet> {
        let types = job.types;
        let result_names: Vec<&str> = RESULT_COLUMNS.iter().map(|(n, _)| *n).collect();
        let names = super::csv::input_names(columns, &result_names);
        let mut schema: Vec<(String, Kind)> = vec![
            ("id".into(), Kind::RequiredText),
            ("row".into(), Kind::RequiredInt64),
        ];
        for (column, name) in columns.iter().zip(names) {
            let kind = match types.get(column.as_str()) {
                Some(ColumnType::Bool) => Kind::Bool,
                Some(ColumnType::Int32) => Kind::Int32,
                Some(ColumnType::Int64) => Kind::Int64,
                Some(ColumnType::Float) => Kind::Float,
                Some(ColumnType::Double) => Kind::Double,
                Some(ColumnType::Text) | None => Kind::Text,
            };
            schema.push((name, kind));
        }
        schema.extend(RESULT_COLUMNS.iter().map(|(n, k)| (n.to_string(), *k)));
        let fields = schema
            .iter()
            .map(|(name, kind)| field(name, *kind).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let message = Type::group_type_builder("promptmill")
            .with_fields(fields)
            .build()?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROWS_PER_GROUP))
            .set_created_by(format!("promptmill {}", env!("CARGO_PKG_VERSION")))
            .build();
        let writer = SerializedFileWriter::new(out, Arc::new(message), Arc::new(props))?;
        Ok(Parquet {
            writer,
            inputs: columns.to_vec(),
            buffers: schema.iter().map(|(_, kind)| Buffer::new(*kind)).collect(),
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
            let Some(mut column) = group.next_column()? else {
                anyhow::bail!("the Parquet schema has fewer columns than promptmill writes");
            };
            buffer.write(&mut column)?;
            column.close()?;
        }
        group.close()?;
        self.rows = 0;
        Ok(())
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

impl RowWriter for Parquet {
    fn row(&mut self, row: &ExportRow) -> anyhow::Result<()> {
        let fields: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&row.fields)?;
        let mut b = self.buffers.iter_mut();
        let mut next = || {
            b.next()
                .ok_or_else(|| anyhow::anyhow!("more values than Parquet columns"))
        };
        next()?.text(Some(&row.id));
        next()?.int(Some(row.seq));
        for column in &self.inputs {
            next()?.value(fields.get(column));
        }
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
        self.rows += 1;
        if self.rows >= ROWS_PER_GROUP {
            self.flush_group()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> anyhow::Result<Out> {
        self.flush_group()?;
        Ok(self.writer.into_inner()?)
    }
}
