//! Mistral's batch jobs (`--provider mistral --mode batch`): an [`Intake::Upload`] service. A
//! part is a JSONL file of `{custom_id, body}` lines uploaded to `POST {base}/files` with
//! `purpose=batch` (the Files call is OpenAI's, [`FilesBatchesApi::upload`]), then a job is
//! created with `POST {base}/batch/jobs` naming `input_files`, the part's `model`, the
//! `endpoint` (`/v1/chat/completions`) and `metadata` (the job's tag and the part's number). A
//! job is read with `GET {base}/batch/jobs/{id}` and cancelled with `POST …/{id}/cancel`; its
//! `output_file` and `error_file` are downloaded from `GET {base}/files/{id}/content`, always
//! under the base URL (a file id is one path segment, so the key goes nowhere else), and their
//! lines have OpenAI's shape (`{custom_id, response: {status_code, body}, error}`).
//!
//! Never twice: a lost upload is looked for by its file name and size in `GET {base}/files`
//! (paged with `page` and `page_size`, Mistral's paging); a lost create is looked for in
//! `GET {base}/batch/jobs?metadata=…` by the metadata recorded at create, checked again here (a
//! server that ignores the filter still matches nothing else). One job is adopted, none means the
//! create may be sent again, several are [`Found::Ambiguous`]. Statuses map as `QUEUED` →
//! queued, `RUNNING` → running, `CANCELLATION_REQUESTED` → finishing, `SUCCESS` → completed,
//! `FAILED` → failed, `TIMEOUT_EXCEEDED` → expired, `CANCELLED` → cancelled. Counts a server
//! sends are bounded before they are believed.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::api_error::ApiError;
use super::calls::{Calls, Step};
use super::client::{FilesBatchesApi, HttpBatchApi};
use super::service::{
    BatchService, BatchView, Counts, Create, End, Found, FoundUpload, Input, Intake, ResultLine, State,
};
use super::wire::FileObject;
use crate::store::BatchError;
use promptmill_core::family::Endpoint;
use promptmill_core::provider::Provider;

/// Pages of a list searched after a lost answer, and objects a page.
const MAX_PAGES: u64 = 100;
const PAGE: u64 = 100;
/// Request counts past this are not believed (no batch file holds this many lines).
const MAX_COUNT: u64 = 10_000_000;
/// Error entries of a job kept (a server may list many).
const MAX_ERRORS: usize = 100;
/// The hours a job may run before it is `TIMEOUT_EXCEEDED` (Mistral's default, as OpenAI's
/// completion window).
const TIMEOUT_HOURS: u32 = 24;
/// The metadata keys a create records and a lost create is found by.
const JOB_KEY: &str = "promptmill_job";
const PART_KEY: &str = "promptmill_part";

/// Mistral's batch jobs over the batch HTTP client.
pub struct MistralBatches {
    api: HttpBatchApi,
    provider: Provider,
}

impl MistralBatches {
    pub fn new(api: HttpBatchApi) -> Self {
        MistralBatches {
            api,
            provider: Provider::Mistral,
        }
    }
}

/// A batch job object (`BatchJobOut`), as far as it is read.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Job {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default)]
    pub output_file: Option<String>,
    #[serde(default)]
    pub error_file: Option<String>,
    #[serde(default)]
    pub errors: Vec<JobError>,
    #[serde(default)]
    pub total_requests: Option<u64>,
    #[serde(default)]
    pub succeeded_requests: Option<u64>,
    #[serde(default)]
    pub failed_requests: Option<u64>,
    /// Unix seconds.
    #[serde(default)]
    pub created_at: Option<i64>,
}

/// One of a job's `errors`: `{message, count}`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct JobError {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub count: Option<u64>,
}

/// A page of `GET /batch/jobs` or `GET /files`: `{data, object, total}`.
#[derive(Deserialize)]
struct Page<T> {
    #[serde(default = "Vec::new")]
    data: Vec<T>,
    #[serde(default)]
    total: Option<u64>,
}

/// Where a Mistral status stands in the driver's terms; a word it does not know reads as
/// running (the job is polled again rather than taken as final).
pub(crate) fn state_of(status: &str) -> State {
    match status {
        "QUEUED" => State::Queued,
        "RUNNING" => State::Running,
        "CANCELLATION_REQUESTED" => State::Finishing,
        "SUCCESS" => State::Ended(End::Completed),
        "FAILED" => State::Ended(End::Failed),
        "TIMEOUT_EXCEEDED" => State::Ended(End::Expired),
        "CANCELLED" => State::Ended(End::Cancelled),
        _ => State::Running,
    }
}

/// A job as the driver sees it.
pub(crate) fn view(job: Job) -> BatchView {
    let b = |n: Option<u64>| n.unwrap_or(0).min(MAX_COUNT);
    let errors = job
        .errors
        .iter()
        .take(MAX_ERRORS)
        .map(|e| BatchError {
            code: None,
            message: Some(match e.count {
                Some(n) if n > 1 => format!("{} ({n} times)", e.message.as_deref().unwrap_or("")),
                _ => e.message.clone().unwrap_or_default(),
            }),
            param: None,
            line: None,
        })
        .collect();
    BatchView {
        state: state_of(&job.status),
        counts: Counts {
            total: b(job.total_requests),
            completed: b(job.succeeded_requests),
            failed: b(job.failed_requests),
        },
        errors,
        output: job.output_file,
        error_output: job.error_file,
        status: job.status,
        id: job.id,
    }
}

/// Whether `job` carries the metadata a create of `request` recorded, and was created since the
/// part was planned (less an hour for clocks that disagree; a job without a time is not ruled
/// out by it).
fn is_for(job: &Job, request: &Create) -> bool {
    let field = |key: &str| {
        job.metadata
            .as_ref()
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
    };
    let since = request.planned_at / 1000 - 3600;
    field(JOB_KEY) == Some(request.tag.as_str())
        && field(PART_KEY) == Some(request.part.to_string().as_str())
        && job.created_at.is_none_or(|t| t >= since)
}

/// The metadata a part's job records: the job's tag and the part's number.
fn metadata(request: &Create) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(JOB_KEY.into(), request.tag.clone().into());
    m.insert(PART_KEY.into(), request.part.to_string().into());
    m
}

/// `POST /batch/jobs` for a part.
pub(crate) fn create_body(request: &Create, endpoint: &str) -> Result<Vec<u8>, ApiError> {
    let unexpected = |detail: String| ApiError::Unexpected {
        what: format!("creating a batch job (batch {})", request.part),
        detail,
    };
    let Input::File(file_id) = &request.input else {
        return Err(unexpected(
            "Mistral's batch jobs are created from uploaded files only".into(),
        ));
    };
    if request.model.is_empty() {
        return Err(unexpected(
            "a Mistral batch job names its model, and this part's rows name none: pass --model".into(),
        ));
    }
    let body = serde_json::json!({
        "input_files": [file_id],
        "model": request.model,
        "endpoint": endpoint,
        "metadata": metadata(request),
        "timeout_hours": TIMEOUT_HOURS,
    });
    serde_json::to_vec(&body).map_err(|e| unexpected(e.to_string()))
}

/// A batch line, newline included: `{"custom_id", "body"}` with the request body as it is (the
/// OpenAI line without `method` and `url`).
pub fn request_line(custom_id: &str, body: &str) -> Result<Vec<u8>, String> {
    let body: &RawValue =
        serde_json::from_str(body).map_err(|e| format!("the request does not parse: {e}"))?;
    let line = super::wire::InputLine {
        custom_id,
        method: None,
        url: None,
        body,
    };
    let mut line = serde_json::to_vec(&line).map_err(|e| e.to_string())?;
    line.push(b'\n');
    Ok(line)
}

/// Whether a page of `page_size` objects was the last one.
fn last_page(len: usize, seen: u64, total: Option<u64>) -> bool {
    len == 0 || (len as u64) < PAGE || total.is_some_and(|t| seen >= t.min(MAX_COUNT))
}

impl BatchService for MistralBatches {
    fn intake(&self) -> Intake {
        Intake::Upload
    }

    fn encode(&self, custom_id: &str, body: &str, _endpoint: Endpoint) -> Result<Vec<u8>, String> {
        request_line(custom_id, body)
    }

    async fn upload(&self, filename: &str, content: Bytes) -> Result<String, ApiError> {
        self.api.upload(filename, content).await.map(|f| f.id)
    }

    async fn find_upload(&self, calls: &Calls, filename: &str, bytes: u64) -> Step<FoundUpload> {
        let mut found = FoundUpload::default();
        let mut seen = 0u64;
        for page in 0..MAX_PAGES {
            let query = [
                ("purpose", "batch".to_string()),
                ("page", page.to_string()),
                ("page_size", PAGE.to_string()),
            ];
            let listed: Page<FileObject> = calls
                .retried(|| self.api.get_json("listing files".into(), &["files"], &query))
                .await?;
            seen += listed.data.len() as u64;
            found
                .sort_page(&self.api, calls, &listed.data, (filename, bytes))
                .await?;
            if last_page(listed.data.len(), seen, listed.total) {
                break;
            }
        }
        Ok(found)
    }

    async fn delete_upload(&self, id: &str) -> Result<(), ApiError> {
        self.api.delete_file(id).await
    }

    async fn create(&self, request: &Create) -> Result<BatchView, ApiError> {
        let body = create_body(request, self.provider.batch_endpoint(request.endpoint))?;
        let what = format!("creating a batch job (batch {})", request.part);
        let job: Job = self.api.post_json(what, &["batch", "jobs"], body).await?;
        Ok(view(job))
    }

    async fn find_created(&self, calls: &Calls, request: &Create) -> Step<Found> {
        let filter = Value::Object(metadata(request)).to_string();
        let mut found: Vec<Job> = Vec::new();
        let mut seen = 0u64;
        for page in 0..MAX_PAGES {
            let query = [
                ("metadata", filter.clone()),
                ("page", page.to_string()),
                ("page_size", PAGE.to_string()),
            ];
            let listed: Page<Job> = calls
                .retried(|| {
                    self.api
                        .get_json("listing batch jobs".into(), &["batch", "jobs"], &query)
                })
                .await?;
            seen += listed.data.len() as u64;
            let last = last_page(listed.data.len(), seen, listed.total);
            found.extend(listed.data.into_iter().filter(|j| is_for(j, request)));
            if last {
                break;
            }
        }
        Ok(verdict(found, request))
    }

    async fn poll(&self, id: &str) -> Result<BatchView, ApiError> {
        let what = format!("reading batch job {id}");
        let job: Job = self.api.get_json(what, &["batch", "jobs", id], &[]).await?;
        Ok(view(job))
    }

    async fn cancel(&self, id: &str) -> Result<BatchView, ApiError> {
        let what = format!("cancelling batch job {id}");
        let job: Job = self
            .api
            .post_json(what, &["batch", "jobs", id, "cancel"], Vec::new())
            .await?;
        Ok(view(job))
    }

    fn has_ended(&self, status: &str) -> bool {
        matches!(state_of(status), State::Ended(_))
    }

    async fn download<F>(&self, location: &str, each: F) -> anyhow::Result<()>
    where
        F: FnMut(&[u8]) -> anyhow::Result<()> + Send,
    {
        FilesBatchesApi::download(&self.api, location, each).await
    }

    fn read_line<'a>(&self, line: &'a str) -> Option<ResultLine<'a>> {
        super::openai::read_output_line(line)
    }
}

/// One job carrying the part's metadata is its job; none means no job was made; several (the
/// create was sent twice by hand, or metadata was copied) cannot be told apart.
fn verdict(mut found: Vec<Job>, request: &Create) -> Found {
    match found.len() {
        0 => Found::Nothing,
        1 => Found::Batch(view(found.remove(0))),
        n => {
            let ids: Vec<&str> = found.iter().map(|j| j.id.as_str()).take(10).collect();
            Found::Ambiguous(format!(
                "{n} batch jobs carry this part's metadata ({JOB_KEY}={}, {PART_KEY}={}): {}; promptmill \
                 cannot tell which is this part's. Cancel the ones this job did not make \
                 (POST /v1/batch/jobs/ID/cancel) and run `promptmill resume` again: it adopts the one left",
                request.tag,
                request.part,
                ids.join(", ")
            ))
        }
    }
}

#[cfg(test)]
#[path = "tests_mistral.rs"]
mod tests;
