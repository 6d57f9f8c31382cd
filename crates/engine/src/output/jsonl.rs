//! JSON Lines output: one object per row with its id, position, status, input fields,
//! completion, finish reason, usage (with `cached_tokens`, `cache_creation_tokens` and
//! `reasoning_tokens` when the server reported them), cost in dollars (`null` when unknown),
//! model, response id and error (`null` when the row is done), and `"cached": true` for a row
//! answered from the response cache. An embeddings row also has
//! `embedding`, its vector as an array of numbers. A `--schema` job's rows also have `schema`,
//! the outcome (`valid`, `invalid`, `truncated`, `refused`), and `data`, the parsed answer of a
//! valid row (`null` otherwise).

use std::io::Write;

use serde::Serialize;
use serde_json::value::RawValue;

use super::{status, Out, RowWriter};
use crate::store::ExportRow;

pub(super) struct Jsonl {
    out: Out,
    /// A `--schema` job: every line has `schema` (the outcome) and `data`.
    structured: bool,
}

impl Jsonl {
    pub(super) fn new(out: Out, structured: bool) -> Jsonl {
        Jsonl { out, structured }
    }
}

#[derive(Serialize)]
struct Line<'a> {
    id: &'a str,
    row: i64,
    status: &'a str,
    input: &'a RawValue,
    completion: Option<&'a str>,
    /// An embeddings row's vector; absent for the other families.
    #[serde(skip_serializing_if = "Option::is_none")]
    embedding: Option<&'a [f32]>,
    finish_reason: Option<&'a str>,
    usage: Option<Usage>,
    cost: Option<f64>,
    model: Option<&'a str>,
    response_id: Option<&'a str>,
    error: Option<&'a str>,
    /// Answered from the response cache (present only then).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    cached: bool,
    /// A `--schema` job's outcome (`valid`, `invalid`, `truncated`, `refused`; `null` while
    /// unsettled) and a valid row's parsed answer; both absent for other jobs.
    #[serde(skip_serializing_if = "Option::is_none")]
    schema: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Option<&'a serde_json::Value>>,
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: i64,
    completion_tokens: i64,
    total_tokens: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cached_tokens: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_creation_tokens: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_tokens: Option<i64>,
}

impl RowWriter for Jsonl {
    fn finish(self: Box<Self>) -> anyhow::Result<Out> {
        Ok(self.out)
    }

    fn row(&mut self, row: &ExportRow) -> anyhow::Result<()> {
        let input: &RawValue = serde_json::from_str(&row.fields)?;
        let usage = row.total_tokens.map(|total| Usage {
            prompt_tokens: row.prompt_tokens.unwrap_or(0),
            completion_tokens: row.completion_tokens.unwrap_or(0),
            total_tokens: total,
            cached_tokens: row.cached_tokens,
            cache_creation_tokens: row.cache_creation_tokens,
            reasoning_tokens: row.reasoning_tokens,
        });
        let line = Line {
            id: &row.id,
            row: row.seq,
            status: status(row),
            input,
            completion: row.completion.as_deref(),
            embedding: row.embedding.as_deref(),
            finish_reason: row.finish_reason.as_deref(),
            usage,
            cost: row.cost,
            model: row.model.as_deref(),
            response_id: row.response_id.as_deref(),
            error: row.error.as_deref(),
            cached: row.cached,
            schema: self.structured.then_some(row.outcome.as_deref()),
            data: self.structured.then_some(row.data.as_ref()),
        };
        serde_json::to_writer(&mut self.out, &line)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }
}
