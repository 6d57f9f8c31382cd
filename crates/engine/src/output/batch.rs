//! OpenAI Batch output lines (`BatchRequestOutput` in the OpenAPI spec), so tools written for
//! the Batch API can read a live run's results: `{"id", "custom_id", "response": {"status_code",
//! "request_id", "body"}, "error"}`. A done row carries the response body exactly as received;
//! a row the API refused carries its status and error message; a row that never got a response
//! (invalid input, retries exhausted on timeouts, not finished yet) has `response: null` and an
//! `error` with a code saying which.

use std::io::Write;

use serde::Serialize;
use serde_json::json;
use serde_json::value::RawValue;

use super::{status, Out, RowWriter};
use crate::store::ExportRow;

pub(super) struct Batch {
    out: Out,
}

impl Batch {
    pub(super) fn new(out: Out) -> Batch {
        Batch { out }
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
        match (status(row), &row.response, row.http_status) {
            ("done", Some(raw), _) => {
                line.response = Some(Response {
                    status_code: 200,
                    request_id: row.response_id.as_deref(),
                    body: Body::Raw(serde_json::from_str(raw)?),
                })
            }
            ("failed", _, Some(code)) => {
                line.response = Some(Response {
                    status_code: code,
                    request_id: None,
                    body: Body::Value(json!({"error": {"message": error, "type": "promptmill_error"}})),
                })
            }
            ("invalid", _, _) => line.error = Some(json!({"code": "invalid_input", "message": error})),
            ("failed", _, None) => line.error = Some(json!({"code": "request_failed", "message": error})),
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
