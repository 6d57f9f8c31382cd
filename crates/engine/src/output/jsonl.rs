//! JSON Lines output: one object per row with its id, position, status, input fields,
//! completion, finish reason, usage (with `cached_tokens`, `cache_creation_tokens` and
//! `reasoning_tokens` when the server reported them), cost in dollars (`null` when unknown),
//! model, response id and error (`null` when the row is done), and `"cached": true` for a row
//! answered from the response cache. An embeddings row also has
//! `embedding`, its vector as an array of numbers.

use std::io::Write;

use serde::Serialize;
use serde_json::value::RawValue;

use super::{status, Out, RowWriter};
use crate::store::ExportRow;

pub(super) struct Jsonl {
    out: Out,
}

impl Jsonl {
    pub(super) fn new(out: Out) -> Jsonl {
        Jsonl { out }
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
        };
        serde_json::to_writer(&mut self.out, &line)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }
}
