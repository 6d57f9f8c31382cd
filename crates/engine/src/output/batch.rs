//! OpenAI Batch output lines (`BatchRequestOutput` in the OpenAPI spec), so tools written for
//! the Batch API can read a live run's results: `{"id", "custom_id", "response": {"status_code",
//! "request_id", "body"}, "error"}`. A done row carries the response body exactly as received;
//! a row the API refused carries its status and error message; a row that never got a response
//! (invalid input, retries exhausted on timeouts, not finished yet) has `response: null` and an
//! `error` with a code saying which.
//!
//! An embeddings row keeps its vector, not its answer's body (a request of many rows had one
//! body for all of them), so its body is made again as the `CreateEmbeddingResponse` of a
//! request of that row alone: `{"object": "list", "data": [{"object": "embedding", "index": 0,
//! "embedding": [..]}], "model", "usage": {"prompt_tokens", "total_tokens"}}`, the vector as
//! JSON numbers and the usage the row's share (as in the other outputs).

use std::io::Write;

use serde::Serialize;
use serde_json::json;
use serde_json::value::RawValue;

use super::{status, Out, RowWriter};
use crate::store::ExportRow;

pub(super) struct Batch {
    out: Out,
    /// The model the job asked for: an embeddings body's `model` when the answer named none.
    model: Option<String>,
}

impl Batch {
    pub(super) fn new(out: Out, model: Option<String>) -> Batch {
        Batch { out, model }
    }
}

#[derive(Serialize)]
struct Line<'a> {
    id: String,
    custom_id: &'a str,
    response: Option<Response<'a>>,
    error: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct Response<'a> {
    status_code: i64,
    request_id: Option<&'a str>,
    body: Body<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Body<'a> {
    Raw(&'a RawValue),
    Value(serde_json::Value),
    Embeddings(EmbeddingList<'a>),
}

/// `CreateEmbeddingResponse` of one row's vector (typed, so the floats are written as the f32
/// values they are, as JSON Lines writes them).
#[derive(Serialize)]
struct EmbeddingList<'a> {
    object: &'static str,
    data: [EmbeddingItem<'a>; 1],
    model: &'a str,
    usage: EmbeddingUsage,
}

#[derive(Serialize)]
struct EmbeddingItem<'a> {
    object: &'static str,
    index: u32,
    embedding: &'a [f32],
}

#[derive(Serialize)]
struct EmbeddingUsage {
    prompt_tokens: i64,
    total_tokens: i64,
}

impl<'a> EmbeddingList<'a> {
    fn new(row: &'a ExportRow, vector: &'a [f32], model: Option<&'a str>) -> EmbeddingList<'a> {
        let prompt_tokens = row.prompt_tokens.unwrap_or(0);
        EmbeddingList {
            object: "list",
            data: [EmbeddingItem {
                object: "embedding",
                index: 0,
                embedding: vector,
            }],
            model: row.model.as_deref().or(model).unwrap_or_default(),
            usage: EmbeddingUsage {
                prompt_tokens,
                total_tokens: row.total_tokens.unwrap_or(prompt_tokens),
            },
        }
    }
}

impl RowWriter for Batch {
    fn finish(self: Box<Self>) -> anyhow::Result<Out> {
        Ok(self.out)
    }

    fn row(&mut self, row: &ExportRow) -> anyhow::Result<()> {
        let mut line = Line {
            id: format!("batch_req_{}", row.seq),
            custom_id: &row.id,
            response: None,
            error: None,
        };
        let error = row.error.as_deref().unwrap_or("");
        match (
            status(row),
            &row.response,
            row.http_status,
            row.embedding.as_deref(),
        ) {
            ("done", _, _, Some(vector)) => {
                line.response = Some(Response {
                    status_code: 200,
                    request_id: row.response_id.as_deref(),
                    body: Body::Embeddings(EmbeddingList::new(row, vector, self.model.as_deref())),
                })
            }
            ("done", Some(raw), _, None) => {
                line.response = Some(Response {
                    status_code: 200,
                    request_id: row.response_id.as_deref(),
                    body: Body::Raw(serde_json::from_str(raw)?),
                })
            }
            ("failed", _, Some(code), _) => {
                line.response = Some(Response {
                    status_code: code,
                    request_id: None,
                    body: Body::Value(json!({"error": {"message": error, "type": "promptmill_error"}})),
                })
            }
            ("invalid", _, _, _) => line.error = Some(json!({"code": "invalid_input", "message": error})),
            ("failed", _, None, _) => line.error = Some(json!({"code": "request_failed", "message": error})),
            _ => {
                line.error = Some(
                    json!({"code": "not_finished", "message": "the row has not been sent yet; resume the run"}),
                )
            }
        }
        serde_json::to_writer(&mut self.out, &line)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }
}
