//! OpenAI's batch service (and Azure OpenAI's, which differs only in URLs, the api-version and
//! the deployment a line names, see `provider.rs`; and the OpenAI-format providers', whose
//! differences are their row of `provider/compatible.rs`): a part is a JSONL file of Batch input lines
//! uploaded with `purpose=batch`, then a batch created from its file id; results are the output
//! and error files, whose lines `{custom_id, response: {status_code, body}, error}` this reads.
//!
//! The lookups after a lost answer are this protocol's own: an upload is found by its file name
//! (unique to the job and part) and size, and a batch by its input file id, newest first, down to
//! the time the part was planned. The calls themselves are [`FilesBatchesApi`]'s.

use bytes::Bytes;

use super::api_error::ApiError;
use super::calls::{Calls, Step};
use super::client::{CreateBatch, FilesBatchesApi};
use super::service::{
    BatchService, BatchView, Counts, Create, End, Found, FoundUpload, Input, Intake, LineOutcome, ResultLine,
    State,
};
use super::wire::{Batch, BatchStatus, InputLine, OutputLine};
use promptmill_core::family::Endpoint;
use promptmill_core::provider::{LineShape, Provider};

/// Pages of the provider's lists searched for an upload or batch a crash left unrecorded.
const MAX_PAGES: usize = 100;

/// The OpenAI Files + Batches protocol over `api` (HTTP in a run, a fake in tests).
pub struct OpenAiBatches<A> {
    api: A,
    provider: Provider,
}

impl<A: FilesBatchesApi> OpenAiBatches<A> {
    pub fn new(api: A, provider: Provider) -> Self {
        OpenAiBatches { api, provider }
    }

    pub fn api(&self) -> &A {
        &self.api
    }
}

/// A batch as the driver sees it.
pub fn view(b: Batch) -> BatchView {
    let c = b.counts();
    let errors = b.error_list().to_vec();
    BatchView {
        status: b.status.as_str().to_string(),
        state: state(b.status),
        counts: Counts {
            total: c.total,
            completed: c.completed,
            failed: c.failed,
        },
        errors,
        output: b.output_file_id,
        error_output: b.error_file_id,
        id: b.id,
    }
}

fn state(s: BatchStatus) -> State {
    match s {
        BatchStatus::Validating => State::Queued,
        BatchStatus::InProgress => State::Running,
        BatchStatus::Finalizing | BatchStatus::Cancelling => State::Finishing,
        BatchStatus::Completed => State::Ended(End::Completed),
        BatchStatus::Failed => State::Ended(End::Failed),
        BatchStatus::Expired => State::Ended(End::Expired),
        BatchStatus::Cancelled => State::Ended(End::Cancelled),
    }
}

impl<A: FilesBatchesApi> BatchService for OpenAiBatches<A> {
    fn intake(&self) -> Intake {
        Intake::Upload
    }

    fn encode(&self, custom_id: &str, body: &str, endpoint: Endpoint) -> Result<Vec<u8>, String> {
        input_line(custom_id, body, endpoint, &self.provider)
    }

    async fn upload(&self, filename: &str, content: Bytes) -> Result<String, ApiError> {
        self.api.upload(filename, content).await.map(|f| f.id)
    }

    async fn find_upload(&self, calls: &Calls, filename: &str, bytes: u64) -> Step<FoundUpload> {
        let mut after: Option<String> = None;
        let mut found = FoundUpload::default();
        for _ in 0..MAX_PAGES {
            let page = calls.retried(|| self.api.list_files(after.as_deref())).await?;
            found
                .sort_page(&self.api, calls, &page.data, (filename, bytes))
                .await?;
            after = page
                .last_id
                .clone()
                .or_else(|| page.data.last().map(|f| f.id.clone()));
            if !page.has_more || page.data.is_empty() {
                break;
            }
        }
        Ok(found)
    }

    async fn delete_upload(&self, id: &str) -> Result<(), ApiError> {
        self.api.delete_file(id).await
    }

    async fn create(&self, request: &Create) -> Result<BatchView, ApiError> {
        let body = self.create_body(request)?;
        self.api.create(&body).await.map(view)
    }

    async fn find_created(&self, calls: &Calls, request: &Create) -> Step<Found> {
        let Input::File(file_id) = &request.input else {
            return Ok(Found::Nothing);
        };
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = calls.retried(|| self.api.list_batches(after.as_deref())).await?;
            if let Some(b) = page
                .data
                .iter()
                .find(|b| b.input_file_id.as_deref() == Some(file_id.as_str()))
            {
                return Ok(Found::Batch(view(b.clone())));
            }
            after = page
                .last_id
                .clone()
                .or_else(|| page.data.last().map(|b| b.id.clone()));
            // Newest first: past batches made before the part was planned (less an hour for
            // clocks that disagree), it cannot be further down.
            let oldest = page.data.iter().filter_map(|b| b.created_at).min();
            let planned = request.planned_at / 1000 - 3600;
            if !page.has_more || page.data.is_empty() || oldest.is_some_and(|t| t < planned) {
                break;
            }
        }
        Ok(Found::Nothing)
    }

    async fn poll(&self, id: &str) -> Result<BatchView, ApiError> {
        self.api.retrieve(id).await.map(view)
    }

    async fn cancel(&self, id: &str) -> Result<BatchView, ApiError> {
        self.api.cancel(id).await.map(view)
    }

    fn has_ended(&self, status: &str) -> bool {
        BatchStatus::parse(status).is_some_and(|s| s.is_terminal())
    }

    async fn download<F>(&self, location: &str, each: F) -> anyhow::Result<()>
    where
        F: FnMut(&[u8]) -> anyhow::Result<()> + Send,
    {
        self.api.download(location, each).await
    }

    fn read_line<'a>(&self, line: &'a str) -> Option<ResultLine<'a>> {
        read_output_line(line)
    }
}

impl<A> OpenAiBatches<A> {
    /// `POST /batches` for a part: its file, the endpoint as the provider names it, 24 hours, and
    /// metadata naming the job and the part.
    fn create_body(&self, request: &Create) -> Result<CreateBatch, ApiError> {
        let Input::File(file_id) = &request.input else {
            return Err(ApiError::Unexpected {
                what: "creating a batch".into(),
                detail: "OpenAI's Batch API creates batches from uploaded files only".into(),
            });
        };
        let mut metadata = serde_json::Map::new();
        metadata.insert("promptmill_job".into(), request.tag.clone().into());
        metadata.insert("promptmill_part".into(), request.part.to_string().into());
        Ok(CreateBatch {
            input_file_id: file_id.clone(),
            endpoint: self.provider.batch_endpoint(request.endpoint),
            completion_window: self.provider.dialect().map_or("24h", |d| d.completion_window),
            metadata,
        })
    }
}

/// A Batch input line, newline included: the request body as it is, except that a provider
/// which runs a batch on a deployment (Azure) gets that deployment as `body.model`, and a
/// provider whose lines carry only `custom_id` and `body` (Together) gets no `method`/`url`.
pub fn input_line(
    id: &str,
    request: &str,
    endpoint: Endpoint,
    provider: &Provider,
) -> Result<Vec<u8>, String> {
    let unreadable = |e: serde_json::Error| format!("the request does not parse: {e}");
    let rebuilt;
    let body: &serde_json::value::RawValue = match provider.batch_model() {
        None => serde_json::from_str(request).map_err(unreadable)?,
        Some(model) => {
            let mut body: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(request).map_err(unreadable)?;
            body.insert("model".into(), model.into());
            rebuilt = serde_json::value::to_raw_value(&body).map_err(|e| e.to_string())?;
            &rebuilt
        }
    };
    let with_url = provider.dialect().is_none_or(|d| d.line == LineShape::MethodUrl);
    let mut line = serde_json::to_vec(&InputLine {
        custom_id: id,
        method: with_url.then_some("POST"),
        url: with_url.then(|| provider.batch_endpoint(endpoint)),
        body,
    })
    .map_err(|e| e.to_string())?;
    line.push(b'\n');
    Ok(line)
}

/// One output or error file line, `{custom_id, response: {status_code, body}, error}` (OpenAI's,
/// and Mistral's, which has the same shape).
pub(crate) fn read_output_line(line: &str) -> Option<ResultLine<'_>> {
    let parsed: OutputLine<'_> = serde_json::from_str(line).ok()?;
    let outcome = match (parsed.response, parsed.error) {
        (Some(r), _) => LineOutcome::Response {
            status: r.status_code,
            body: r.body.map(|b| b.get()).unwrap_or(""),
        },
        (None, Some(e)) => LineOutcome::Error(match (e.code, e.message) {
            (Some(code), Some(m)) => format!("{code}: {m}"),
            (Some(code), None) => code,
            (None, Some(m)) => m,
            (None, None) => "the batch reported an error without a message".into(),
        }),
        (None, None) => {
            LineOutcome::Error("the batch's result line has neither a response nor an error".into())
        }
    };
    Some(ResultLine {
        custom_id: parsed.custom_id,
        outcome,
    })
}
