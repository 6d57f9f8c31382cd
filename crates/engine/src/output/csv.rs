//! CSV output: `id`, the input columns, then `status`, `completion`, `finish_reason`,
//! `prompt_tokens`, `completion_tokens`, `total_tokens`, `cached_tokens`,
//! `cache_creation_tokens`, `reasoning_tokens` (empty when not reported), `cost` (dollars; empty
//! when unknown), `model`, `response_id`, `error`, `cached` (`true` for a row answered from the
//! response cache, else `false`).
//! An embeddings job has one more column at the end, `embedding`: the vector as a JSON array.
//! A `--schema` job has `schema` (the outcome: `valid`, `invalid`, `truncated`, `refused`) and
//! then one `data.<property>` column per top-level property of the schema, in its order: a
//! valid row's value, strings as they are, arrays, objects and numbers as JSON text.
//! Input values that are not strings are written as JSON text. The input column the row ids come
//! from is not repeated (its values are the `id` column; the caller leaves it out of `columns`).
//! Any other input column whose name is `id` or one of the result columns is written as
//! `input.<name>`, prefixed again while that name is taken too, so no column name appears twice.

use serde_json::{Map, Value};

use super::{data_text, status, Out, RowWriter};
use crate::store::ExportRow;

const RESULT_COLUMNS: &[&str] = &[
    "status",
    "completion",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "cache_creation_tokens",
    "reasoning_tokens",
    "cost",
    "model",
    "response_id",
    "error",
    "cached",
];

/// The column of an embeddings job's vectors, after [`RESULT_COLUMNS`].
const VECTOR_COLUMN: &str = "embedding";

pub(super) struct Csv {
    writer: csv::Writer<Out>,
    columns: Vec<String>,
    record: Vec<String>,
    /// Whether the rows' answers are vectors (the `embedding` column).
    vectors: bool,
    /// A `--schema` job's top-level properties (the `schema` and `data.*` columns).
    properties: Option<Vec<String>>,
}

impl Csv {
    pub(super) fn new(
        out: Out,
        columns: &[String],
        vectors: bool,
        properties: Option<&[String]>,
    ) -> anyhow::Result<Csv> {
        let mut writer = csv::WriterBuilder::new().from_writer(out);
        writer.write_record(header(columns, vectors, properties))?;
        Ok(Csv {
            writer,
            columns: columns.to_vec(),
            record: Vec::new(),
            vectors,
            properties: properties.map(<[String]>::to_vec),
        })
    }
}

/// `id`, the input columns, the result columns (see [`input_names`]), `embedding` for an
/// embeddings job, and `schema` and `data.*` for a `--schema` job.
fn header(columns: &[String], vectors: bool, properties: Option<&[String]>) -> Vec<String> {
    let mut results: Vec<String> = RESULT_COLUMNS.iter().map(|c| c.to_string()).collect();
    if vectors {
        results.push(VECTOR_COLUMN.into());
    }
    if let Some(properties) = properties {
        results.push("schema".into());
        results.extend(properties.iter().map(|p| format!("data.{p}")));
    }
    let taken: Vec<&str> = results.iter().map(String::as_str).collect();
    let mut header = vec!["id".to_string()];
    header.extend(input_names(columns, &taken));
    header.extend(results.iter().cloned());
    header
}

/// The names the input columns are written under beside `id` and `results`: an input column
/// named like a column already taken is prefixed with `input.` until its name is unique (the
/// input columns are distinct). The Parquet output names its columns the same way.
pub(super) fn input_names(columns: &[String], results: &[&str]) -> Vec<String> {
    let mut header = vec!["id".to_string()];
    for c in columns {
        let taken = |name: &str, header: &[String]| {
            results.contains(&name)
                || header.iter().any(|h| h == name)
                || columns.iter().any(|other| other != c && other == name)
        };
        let mut name = c.clone();
        while taken(&name, &header) {
            name = format!("input.{name}");
        }
        header.push(name);
    }
    header.remove(0);
    header
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
            num(row.cached_tokens),
            num(row.cache_creation_tokens),
            num(row.reasoning_tokens),
            row.cost.map(|c| c.to_string()).unwrap_or_default(),
            text(&row.model),
            text(&row.response_id),
            text(&row.error),
            row.cached.to_string(),
        ]);
        if self.vectors {
            self.record.push(match &row.embedding {
                Some(v) => serde_json::to_string(v)?,
                None => String::new(),
            });
        }
        if let Some(properties) = &self.properties {
            self.record.push(text(&row.outcome));
            for p in properties {
                self.record.push(data_text(row, p).unwrap_or_default());
            }
        }
        self.writer.write_record(&self.record)?;
        Ok(())
    }

    fn finish(self: Box<Self>) -> anyhow::Result<Out> {
        self.writer
            .into_inner()
            .map_err(|e| anyhow::anyhow!("{}", e.error()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(columns: &[&str]) -> Vec<String> {
        let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        header(&columns, false, None)[..=columns.len()].to_vec()
    }

    #[test]
    fn input_columns_named_like_output_columns_are_prefixed_until_unique() {
        assert_eq!(names(&["prompt", "status"]), ["id", "prompt", "input.status"]);
        assert_eq!(
            names(&["status", "input.status", "error"]),
            ["id", "input.input.status", "input.status", "input.error"]
        );
        assert_eq!(names(&["id", "model"]), ["id", "input.id", "input.model"]);
    }

    #[test]
    fn no_header_name_appears_twice() {
        let columns: Vec<String> = ["id", "input.id", "status", "input.status", "error"]
            .iter()
            .map(|c| c.to_string())
            .collect();
        let props = ["title".to_string()];
        let h = header(&columns, true, Some(&props));
        assert!(
            h.ends_with(&["schema".to_string(), "data.title".to_string()]),
            "{h:?}"
        );
        let unique: std::collections::BTreeSet<&String> = h.iter().collect();
        assert_eq!(unique.len(), h.len(), "{h:?}");
    }

    #[test]
    fn every_row_says_whether_it_came_from_the_cache_before_the_schema_columns() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("o.csv");
        let out = std::io::BufWriter::new(std::fs::File::create(&path).expect("a file"));
        let props = ["title".to_string(), "price".to_string()];
        let mut writer = Box::new(Csv::new(out, &[], false, Some(&props)).expect("a writer"));
        let mut row = crate::output::blank_row("{}");
        writer.row(&row).expect("a row");
        row.cached = true;
        row.outcome = Some("valid".into());
        row.data = Some(serde_json::json!({"title": "A lamp", "price": 12.5}));
        writer.row(&row).expect("a row");
        writer.finish().expect("finished").into_inner().expect("flushed");
        let text = std::fs::read_to_string(&path).expect("the output");
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].ends_with(",response_id,error,cached,schema,data.title,data.price"),
            "{}",
            lines[0]
        );
        assert!(lines[1].ends_with(",false,,,"), "{}", lines[1]);
        assert!(lines[2].ends_with(",true,valid,A lamp,12.5"), "{}", lines[2]);
    }
}
