//! Anthropic's Message Batches (`--provider anthropic --mode batch`): an [`Intake::Inline`]
//! service. A part's requests go in the create call itself (`POST {base}/v1/messages/batches`
//! with `{"requests": [{"custom_id", "params"}, …]}`), a batch is read with
//! `GET …/batches/{id}`, cancelled with `POST …/{id}/cancel`, and its results are one JSONL file
//! at the batch's `results_url`, lines `{custom_id, result: {type, message | error}}` in no
//! particular order (collecting joins them to the rows by `custom_id`).
//!
//! A `custom_id` must match `^[A-Za-z0-9_-]{1,64}$`, which row ids need not, so every request is
//! sent under its row's place in the input (`promptmill-rows-SEQ-SEQ`, see `grouped.rs` and
//! [`BatchService::ids_by_seq`]): the seq is in the checkpoint, so a resume names and maps back
//! the same rows. A create whose answer was lost is looked for in the batch list (newest
//! first): a batch created since the part was planned (less an hour of clock skew), that no
//! other part of the job recorded, with as many requests as the part. One is adopted, none
//! means the create may be sent again, and several are [`Found::Ambiguous`]: the run stops
//! rather than pay twice. The HTTP calls themselves are [`HttpBatchApi`]'s.

use std::borrow::Cow;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::api_error::ApiError;
use super::calls::{Calls, Step};
use super::client::HttpBatchApi;
use super::service::{
    BatchService, BatchView, Counts, Create, End, Found, FoundUpload, Input, Intake, LineOutcome, ResultLine,
    State,
};
use promptmill_core::family::Endpoint;

/// Pages of the batch list searched after a lost create, and batches a page.
const MAX_PAGES: usize = 20;
const PAGE: u32 = 100;
/// The clock skew allowed between this machine and the provider when matching a lost create.
const SKEW_MS: i64 = 3600 * 1000;
/// Request counts past this are not believed (a batch holds at most 100,000 requests).
const MAX_COUNT: u64 = 10_000_000;

/// The Message Batches protocol over the batch HTTP client.
pub struct AnthropicBatches {
    api: HttpBatchApi,
}

impl AnthropicBatches {
    pub fn new(api: HttpBatchApi) -> Self {
        AnthropicBatches { api }
    }
}

/// A `MessageBatch` object, as far as it is read.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct MessageBatch {
    pub id: String,
    pub processing_status: String,
    #[serde(default)]
    pub request_counts: RequestCounts,
    pub results_url: Option<String>,
    pub created_at: Option<String>,
    pub cancel_initiated_at: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RequestCounts {
    pub processing: u64,
    pub succeeded: u64,
    pub errored: u64,
    pub canceled: u64,
    pub expired: u64,
}

impl RequestCounts {
    fn total(self) -> u64 {
        let b = |n: u64| n.min(MAX_COUNT);
        b(self.processing) + b(self.succeeded) + b(self.errored) + b(self.canceled) + b(self.expired)
    }
}

#[derive(Deserialize)]
struct BatchList {
    #[serde(default)]
    data: Vec<MessageBatch>,
    #[serde(default)]
    has_more: bool,
    last_id: Option<String>,
}

/// A batch as the driver sees it: `in_progress` runs, `canceling` winds down, `ended` is final
/// (cancelled if any request was, else expired if any was, else completed).
pub(crate) fn view(b: MessageBatch) -> BatchView {
    let c = b.request_counts;
    let bounded = |n: u64| n.min(MAX_COUNT);
    let state = match b.processing_status.as_str() {
        "ended" if c.canceled > 0 || (b.cancel_initiated_at.is_some() && c.succeeded == 0) => {
            State::Ended(End::Cancelled)
        }
        "ended" if c.expired > 0 => State::Ended(End::Expired),
        "ended" => State::Ended(End::Completed),
        "canceling" => State::Finishing,
        _ => State::Running,
    };
    BatchView {
        status: b.processing_status,
        state,
        counts: Counts {
            total: c.total(),
            completed: bounded(c.succeeded),
            failed: bounded(c.errored) + bounded(c.canceled) + bounded(c.expired),
        },
        errors: Vec::new(),
        output: b.results_url,
        error_output: None,
        id: b.id,
    }
}

/// Unix ms of an RFC 3339 time, if it reads as one.
fn unix_ms(text: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339_weak(text.trim_end_matches('Z')).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_millis()).ok()
}

fn not_inline(what: &str) -> ApiError {
    ApiError::Unexpected {
        what: what.to_string(),
        detail: "Anthropic's Message Batches take their requests inline: there are no uploads".into(),
    }
}

impl BatchService for AnthropicBatches {
    fn intake(&self) -> Intake {
        Intake::Inline
    }

    fn ids_by_seq(&self) -> bool {
        true
    }

    fn encode(&self, custom_id: &str, body: &str, _endpoint: Endpoint) -> Result<Vec<u8>, String> {
        request_line(custom_id, body)
    }

    async fn upload(&self, _filename: &str, _content: Bytes) -> Result<String, ApiError> {
        Err(not_inline("uploading"))
    }

    async fn find_upload(&self, _calls: &Calls, _filename: &str, _bytes: u64) -> Step<FoundUpload> {
        Ok(FoundUpload::default())
    }

    async fn delete_upload(&self, _id: &str) -> Result<(), ApiError> {
        Err(not_inline("deleting an upload"))
    }

    async fn create(&self, request: &Create) -> Result<BatchView, ApiError> {
        let Input::Inline(lines) = &request.input else {
            return Err(not_inline("creating a batch from a file"));
        };
        let body = create_body(lines);
        let what = format!(
            "creating a message batch of {} requests (batch {})",
            request.requests, request.part
        );
        let batch: MessageBatch = self
            .api
            .post_json(what, &["v1", "messages", "batches"], body)
            .await?;
        Ok(view(batch))
    }

    async fn find_created(&self, calls: &Calls, request: &Create) -> Step<Found> {
        let mut after: Option<String> = None;
        let mut found: Vec<MessageBatch> = Vec::new();
        for _ in 0..MAX_PAGES {
            let mut query = vec![("limit", PAGE.to_string())];
            query.extend(after.clone().map(|a| ("after_id", a)));
            let page: BatchList = calls
                .retried(|| {
                    self.api.get_json(
                        "listing message batches".into(),
                        &["v1", "messages", "batches"],
                        &query,
                    )
                })
                .await?;
            let older = matches(&page.data, request, &mut found);
            after = page
                .last_id
                .clone()
                .or_else(|| page.data.last().map(|b| b.id.clone()));
            if !page.has_more || page.data.is_empty() || older {
                break;
            }
        }
        Ok(verdict(found, request))
    }

    async fn poll(&self, id: &str) -> Result<BatchView, ApiError> {
        let what = format!("reading message batch {id}");
        let batch: MessageBatch = self
            .api
            .get_json(what, &["v1", "messages", "batches", id], &[])
            .await?;
        Ok(view(batch))
    }

    async fn cancel(&self, id: &str) -> Result<BatchView, ApiError> {
        let what = format!("cancelling message batch {id}");
        let segments = ["v1", "messages", "batches", id, "cancel"];
        let batch: MessageBatch = self.api.post_json(what, &segments, Vec::new()).await?;
        Ok(view(batch))
    }

    fn has_ended(&self, status: &str) -> bool {
        status == "ended"
    }

    async fn download<F>(&self, location: &str, each: F) -> anyhow::Result<()>
    where
        F: FnMut(&[u8]) -> anyhow::Result<()> + Send,
    {
        let what = format!(
            "downloading the results at {}",
            promptmill_core::base_url::redact(location)
        );
        let url = same_origin(self.api.base(), location).map_err(|detail| ApiError::Unexpected {
            what: what.clone(),
            detail,
        })?;
        self.api.download_from(what, url, each).await
    }

    fn read_line<'a>(&self, line: &'a str) -> Option<ResultLine<'a>> {
        read_result(line)
    }
}

/// The batches of one list page (newest first) that may be the lost create's, added to `found`:
/// created since the part was planned (less [`SKEW_MS`]; a time that does not read rules
/// nothing out), recorded by no other part of the job, of as many requests as the part. Returns
/// whether the page reached batches older than that, past which none can be the part's.
fn matches(page: &[MessageBatch], request: &Create, found: &mut Vec<MessageBatch>) -> bool {
    let since = request.planned_at - SKEW_MS;
    let mut older = false;
    for b in page {
        let at = b.created_at.as_deref().and_then(unix_ms);
        older |= at.is_some_and(|t| t < since);
        let recent = at.is_none_or(|t| t >= since);
        if recent && !request.known.contains(&b.id) && b.request_counts.total() == request.requests {
            found.push(b.clone());
        }
    }
    older
}

/// One candidate is the part's batch, none means no batch was made, more cannot be told apart.
fn verdict(mut found: Vec<MessageBatch>, request: &Create) -> Found {
    match found.len() {
        0 => Found::Nothing,
        1 => Found::Batch(view(found.remove(0))),
        n => Found::Ambiguous(ambiguity(n, request, &found)),
    }
}

/// Why a lost create cannot be matched: the candidates, and how to resolve it.
fn ambiguity(n: usize, request: &Create, found: &[MessageBatch]) -> String {
    let ids: Vec<&str> = found.iter().map(|b| b.id.as_str()).take(10).collect();
    format!(
        "{n} message batches of {} requests each were created since it was planned ({}); promptmill \
         cannot tell which, if any, is this part's. Cancel the ones this job did not make \
         (POST /v1/messages/batches/ID/cancel) and run `promptmill resume` again: it adopts the one left",
        request.requests,
        ids.join(", ")
    )
}

/// One request of a Message Batch, newline included: `{"custom_id", "params"}`.
pub fn request_line(custom_id: &str, body: &str) -> Result<Vec<u8>, String> {
    if custom_id.is_empty()
        || custom_id.len() > 64
        || !custom_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "`{custom_id}` is not a Message Batches custom_id (1 to 64 of A-Z a-z 0-9 _ -)"
        ));
    }
    let params: &RawValue =
        serde_json::from_str(body).map_err(|e| format!("the request does not parse: {e}"))?;
    #[derive(serde::Serialize)]
    struct Line<'a> {
        custom_id: &'a str,
        params: &'a RawValue,
    }
    let mut line = serde_json::to_vec(&Line { custom_id, params }).map_err(|e| e.to_string())?;
    line.push(b'\n');
    Ok(line)
}

/// `{"requests": [line, line, …]}` from a part's request lines.
fn create_body(lines: &Bytes) -> Vec<u8> {
    let mut body = Vec::with_capacity(lines.len() + 16);
    body.extend_from_slice(b"{\"requests\":[");
    let mut first = true;
    for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        if !first {
            body.push(b',');
        }
        first = false;
        body.extend_from_slice(line);
    }
    body.extend_from_slice(b"]}");
    body
}

/// `location` as a URL, if it is on the base URL's origin (scheme, host and port): the key goes
/// with the request, and is never sent anywhere else.
fn same_origin(base: &reqwest::Url, location: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(location).map_err(|e| format!("the results URL does not parse: {e}"))?;
    if url.origin() != base.origin() {
        return Err(format!(
            "the results URL is on {}, not on the base URL's {}: it is not followed, so that the \
             key goes nowhere else",
            url.origin().ascii_serialization(),
            base.origin().ascii_serialization()
        ));
    }
    Ok(url)
}

#[derive(Deserialize)]
struct ResultJson<'a> {
    #[serde(borrow)]
    custom_id: Cow<'a, str>,
    #[serde(borrow)]
    result: Option<Outcome<'a>>,
}

#[derive(Deserialize)]
struct Outcome<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    message: Option<&'a RawValue>,
    error: Option<ErrorResponse>,
}

/// `{"type": "error", "error": {"type", "message"}}`.
#[derive(Deserialize)]
struct ErrorResponse {
    error: Option<ErrorDetail>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(rename = "type")]
    kind: Option<String>,
    message: Option<String>,
}

/// One results line: a succeeded request's `message` is the answer the Messages family reads; an
/// errored one fails with the error's type and message; a canceled or expired one fails with
/// that reason (and `--retry-failed` sends it again).
pub(crate) fn read_result(line: &str) -> Option<ResultLine<'_>> {
    let parsed: ResultJson<'_> = serde_json::from_str(line).ok()?;
    let outcome = match parsed.result {
        None => LineOutcome::Error("the results line has no result".into()),
        Some(r) => match (r.kind.as_ref(), r.message) {
            ("succeeded", Some(message)) => LineOutcome::Response {
                status: 200,
                body: message.get(),
            },
            ("succeeded", None) => LineOutcome::Error("a succeeded result without its message".into()),
            ("errored", _) => {
                let detail = r.error.and_then(|e| e.error);
                let kind = detail.as_ref().and_then(|d| d.kind.clone());
                let message = detail.and_then(|d| d.message);
                LineOutcome::Error(match (kind, message) {
                    (Some(k), Some(m)) => format!("{k}: {m}"),
                    (Some(k), None) => k,
                    (None, Some(m)) => m,
                    (None, None) => "the request errored without a message".into(),
                })
            }
            ("canceled", _) => {
                LineOutcome::Error("canceled: the batch was cancelled before this request ran".into())
            }
            ("expired", _) => {
                LineOutcome::Error("expired: the batch expired (24 hours) before this request ran".into())
            }
            (other, _) => LineOutcome::Error(format!("the result is `{other}`, not one promptmill knows")),
        },
    };
    Some(ResultLine {
        custom_id: parsed.custom_id,
        outcome,
    })
}

#[cfg(test)]
#[path = "tests_anthropic.rs"]
mod tests;
