//! CSV output: `id`, the input columns, then `status`, `completion`, `finish_reason`,
//! `prompt_tokens`, `completion_tokens`, `total_tokens`, `model`, `response_id`, `error`.
//! Input values that are not strings are written as JSON text. An input column whose name is
//! `id` or one of the result columns is written as `input.<name>` so no column is ambiguous.

use serde_json::{Map, Value};

use super::{status, Out, RowWriter};
use crate::store::ExportRow;

const RESULT_COLUMNS: &[&str] = &[
    "status",
    "completion",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "model",
    "response_id",
    "error",
];

pub(super) struct Csv {
    writer: csv::Writer<Out>,
    columns: Vec<String>,
    record: Vec<String>,
}

impl Csv {
    pub(super) fn new(out: Out, columns: &[String]) -> anyhow::Result<Csv> {
        let mut writer = csv::WriterBuilder::new().from_writer(out);
        let mut header = vec!["id".to_string()];
        for c in columns {
            if c == "id" || RESULT_COLUMNS.contains(&c.as_str()) {
                header.push(format!("input.{c}"));
            } else {
                header.push(c.clone());
            }
        }
        header.extend(RESULT_COLUMNS.iter().map(|c| c.to_string()));
        writer.write_record(&header)?;
        Ok(Csv {
            writer,
            columns: columns.to_vec(),
            record: Vec::new(),
        })
    }
}

impl RowWriter for Csv {
    fn row(&mut self, row: &ExportRow) -> anyhow::Result<()> {
        let fields: Map<String, Value> = serde_json::from_str(&row.fields)?;
        let num = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        self.record.clear();
        self.record.push(row.id.clone());
        for c in &self.columns {
            self.record.push(match fields.get(c) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            });
        }
        self.record.extend([
            status(row).to_string(),
            text(&row.completion),
            text(&row.finish_reason),
            num(row.prompt_tokens),
            num(row.completion_tokens),
            num(row.total_tokens),
            text(&row.model),
            text(&row.response_id),
            text(&row.error),
        ]);
        self.writer.write_record(&self.record)?;
        Ok(())
    }

    fn finish(self: Box<Self>) -> anyhow::Result<Out> {
        self.writer
            .into_inner()
            .map_err(|e| anyhow::anyhow!("{}", e.error()))
    }
}
