//! Mistral's batch jobs in the mock: `POST /v1/batch/jobs` (`input_files` with one uploaded
//! file of `{custom_id, body}` lines, `model`, `endpoint`, `metadata`, `timeout_hours`),
//! `GET /v1/batch/jobs/{id}`, `POST /v1/batch/jobs/{id}/cancel` and `GET /v1/batch/jobs`
//! (`metadata`, `status`, `page`, `page_size`; newest first; `{data, object, total}`). A job is
//! a batch of the OpenAI store (same life driven by retrieves, same answers, fault directives,
//! --batch-polls, --batch-outcome and --drop-batch-create) shown in Mistral's shape: statuses
//! `QUEUED`, `RUNNING`, `SUCCESS`, `FAILED`, `TIMEOUT_EXCEEDED`, `CANCELLATION_REQUESTED`,
//! `CANCELLED`, counts as `total_requests`/`succeeded_requests`/`failed_requests`, files as
//! `output_file`/`error_file`. Only one input file a job is taken (the mock's simplification).

use super::create::{batch_input, make, outcome_header, NewBatch};
use super::*;

/// Largest `page_size` of the list.
const MAX_PAGE_SIZE: usize = 1000;

#[derive(Deserialize)]
struct CreateBody {
    input_files: Option<Vec<String>>,
    model: Option<String>,
    endpoint: Option<String>,
    metadata: Option<Value>,
    timeout_hours: Option<Value>,
}

fn bad(message: impl Into<std::borrow::Cow<'static, str>>) -> ApiError {
    ApiError::for_status(StatusCode::BAD_REQUEST, message)
}

/// `POST /v1/batch/jobs`.
pub(crate) fn create(state: &State, request: &Request<'_>) -> Handled {
    let body: CreateBody =
        serde_json::from_slice(&request.body).map_err(|err| bad(format!("Invalid request body: {err}")))?;
    let missing = |param: &'static str| invalid(param, format!("Missing required parameter: '{param}'."));
    let files = body.input_files.ok_or_else(|| missing("input_files"))?;
    let [input_file_id] = <[String; 1]>::try_from(files)
        .map_err(|_| invalid("input_files", "The mock takes exactly one input file a job."))?;
    let model = body
        .model
        .filter(|m| !m.is_empty())
        .ok_or_else(|| missing("model"))?;
    let endpoint = body.endpoint.ok_or_else(|| missing("endpoint"))?;
    let endpoint = Dialect::OpenAi
        .endpoint(&endpoint)
        .ok_or_else(|| invalid("endpoint", format!("Invalid endpoint '{endpoint}'.")))?;
    match body.timeout_hours {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_u64().is_some_and(|h| (1..=168).contains(&h)) => {}
        Some(_) => return Err(invalid("timeout_hours", "timeout_hours must be 1 to 168.").into()),
    }
    let metadata = match body.metadata {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) if map.len() <= MAX_METADATA_KEYS && map.values().all(Value::is_string) => {
            Some(map)
        }
        Some(_) => return Err(invalid("metadata", "metadata must be an object of strings.").into()),
    };
    let header = outcome_header(request.headers)?;
    let input = batch_input(state, &input_file_id)?;
    let batch = make(
        state,
        NewBatch {
            input,
            input_file_id,
            endpoint,
            dialect: Dialect::OpenAi,
            metadata,
            header,
            mistral_model: Some(model),
        },
    )?;
    let body = to_bytes(&lock(&batch).job_object());
    Ok(json_response(StatusCode::OK, body))
}

fn no_such_job(id: &str) -> ApiError {
    ApiError::for_status(StatusCode::NOT_FOUND, format!("Batch job {id} not found"))
}

/// The job `id`, if it is a Mistral job.
fn job(state: &State, id: &str) -> Result<Arc<Mutex<Batch>>, ApiError> {
    state
        .batches
        .get(id)
        .filter(|b| lock(b).mistral_model.is_some())
        .ok_or_else(|| no_such_job(id))
}

/// `GET /v1/batch/jobs/{id}`: counts as a poll, as OpenAI's retrieve does.
pub(crate) async fn retrieve(state: &Arc<State>, id: &str) -> Handled {
    let batch = job(state, id)?;
    let state = Arc::clone(state);
    let polls = state.batches.polls;
    let body = tokio::task::spawn_blocking(move || {
        let mut batch = lock(&batch);
        batch.poll(&state, polls);
        to_bytes(&batch.job_object())
    })
    .await
    .map_err(|_| super::super::batch_api::internal_error())?;
    Ok(json_response(StatusCode::OK, body))
}

/// `POST /v1/batch/jobs/{id}/cancel`.
pub(crate) fn cancel(state: &State, id: &str) -> Handled {
    job(state, id)?;
    super::cancel(state, id)?;
    let batch = job(state, id)?;
    let body = to_bytes(&lock(&batch).job_object());
    Ok(json_response(StatusCode::OK, body))
}

/// `GET /v1/batch/jobs`: newest first, only the jobs whose metadata has every pair of the
/// `metadata` filter (a JSON object) and, if given, of `status`.
pub(crate) fn list(state: &State, query: Option<&str>) -> Handled {
    let param = |name| super::super::batch_api::query_param(query, name);
    let number = |name: &'static str, default: usize, max: usize| -> Result<usize, ApiError> {
        match param(name) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| invalid(name, format!("Invalid '{name}': '{text}'."))),
        }
    };
    let page = number("page", 0, usize::MAX)?;
    let size = number("page_size", 100, MAX_PAGE_SIZE)?.max(1);
    let filter: Option<Map<String, Value>> = match param("metadata") {
        None => None,
        Some(text) => Some(
            serde_json::from_str(&text)
                .map_err(|_| invalid("metadata", "metadata must be a JSON object."))?,
        ),
    };
    let status = param("status");
    let mut jobs: Vec<Value> = Vec::new();
    for batch in state.batches.all().iter().rev() {
        let batch = lock(batch);
        if batch.mistral_model.is_none() {
            continue;
        }
        let has = |(k, v): (&String, &Value)| batch.metadata.as_ref().and_then(|m| m.get(k)) == Some(v);
        if filter.as_ref().is_some_and(|f| !f.iter().all(has)) {
            continue;
        }
        if status.as_deref().is_some_and(|s| s != job_status(batch.status)) {
            continue;
        }
        jobs.push(serde_json::to_value(batch.job_object()).unwrap_or(Value::Null));
    }
    let total = jobs.len();
    let data: Vec<Value> = jobs
        .into_iter()
        .skip(page.saturating_mul(size))
        .take(size)
        .collect();
    let body = serde_json::json!({"data": data, "object": "list", "total": total});
    Ok(json_response(StatusCode::OK, to_bytes(&body)))
}

/// Mistral's word for a status.
fn job_status(status: Status) -> &'static str {
    match status {
        Status::Validating => "QUEUED",
        Status::InProgress | Status::Finalizing => "RUNNING",
        Status::Completed => "SUCCESS",
        Status::Failed => "FAILED",
        Status::Expired => "TIMEOUT_EXCEEDED",
        Status::Cancelling => "CANCELLATION_REQUESTED",
        Status::Cancelled => "CANCELLED",
    }
}

#[derive(Serialize)]
struct JobError<'a> {
    message: &'a str,
    count: u64,
}

impl Batch {
    /// Mistral's `BatchJobOut` as the job stands.
    fn job_object(&self) -> Value {
        let validated = !matches!(self.status, Status::Validating | Status::Failed);
        let errors: Vec<JobError> = match self.status {
            Status::Failed => self
                .problems
                .iter()
                .map(|p| JobError {
                    message: &p.message,
                    count: 1,
                })
                .collect(),
            _ => Vec::new(),
        };
        let total = if validated {
            self.input.lines.len() as u64
        } else {
            0
        };
        serde_json::json!({
            "id": self.id,
            "object": "batch",
            "input_files": [self.input_file_id],
            "metadata": self.metadata,
            "endpoint": self.endpoint.path(),
            "model": self.mistral_model,
            "agent_id": null,
            "output_file": self.output_file_id,
            "error_file": self.error_file_id,
            "errors": errors,
            "outputs": null,
            "status": job_status(self.status),
            "created_at": self.created_at,
            "total_requests": total,
            "completed_requests": self.run.completed + self.run.failed,
            "succeeded_requests": self.run.completed,
            "failed_requests": self.run.failed,
            "started_at": self.times.in_progress_at,
            "completed_at": self.times.completed_at.or(self.times.expired_at).or(self.times.cancelled_at),
        })
    }
}
