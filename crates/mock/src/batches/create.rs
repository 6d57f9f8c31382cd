//! `POST /v1/batches`: reading the create body, checking it against the input file (its lines,
//! its endpoint, Azure's processing state) and storing the new batch, or refusing it as OpenAI
//! does. The --drop-batch-create hook (the batch is made, its answer lost) is applied here.

use super::*;

#[derive(Deserialize)]
struct CreateBody {
    input_file_id: Option<String>,
    endpoint: Option<String>,
    completion_window: Option<String>,
    metadata: Option<Value>,
}

/// `POST /v1/batches`.
pub(crate) fn create(state: &State, request: &Request<'_>) -> Handled {
    let asked = read_create(request)?;
    let input = batch_input(state, &asked.input_file_id)?;
    let dialect = request.dialect;
    let batch = make(
        state,
        NewBatch {
            input,
            input_file_id: asked.input_file_id,
            endpoint: asked.endpoint,
            dialect,
            metadata: asked.metadata,
            header: asked.header,
            mistral_model: None,
        },
    )?;
    let object = serde_json::to_value(lock(&batch).object()).unwrap_or(Value::Null);
    let body = to_bytes(&dialect.batch_words(object, true));
    Ok(json_response(StatusCode::OK, body))
}

/// A batch a create asks for, its input file found and read.
pub(super) struct NewBatch {
    pub input: Arc<ParsedInput>,
    pub input_file_id: String,
    pub endpoint: Endpoint,
    pub dialect: Dialect,
    pub metadata: Option<Map<String, Value>>,
    pub header: Option<Outcome>,
    /// The model a Mistral job names (its lines carry no url, see `mistral.rs`).
    pub mistral_model: Option<String>,
}

/// Stores a new batch, validated against its lines when first retrieved, and applies the
/// --drop-batch-create hook (the answer dropped before anything is made, or after).
pub(super) fn make(state: &State, new: NewBatch) -> Result<Arc<Mutex<Batch>>, Refusal> {
    let store = &state.batches;
    let hook = store.create_hook();
    if hook.is_some_and(|after| !after) {
        return Err(Refusal::Drop);
    }
    let url = match new.mistral_model {
        Some(_) => super::super::batch_lines::MISTRAL_URL,
        None => new.dialect.endpoint_path(new.endpoint),
    };
    let mut problems = new.input.check(url);
    let batch = {
        let mut batches = lock(&store.batches);
        let seq = batches.len() as u64 + 1;
        let outcome = store.outcomes.choose(seq, new.header);
        if outcome == Outcome::Failed && problems.is_empty() {
            problems.push(LineError {
                code: "mock_failed",
                message: "mock: this batch was made to fail (X-Mock-Batch-Outcome or --batch-outcome)."
                    .into(),
                param: None,
                line: None,
            });
        }
        let batch = Arc::new(Mutex::new(Batch {
            id: make_id(ID_PREFIX, seq),
            seq,
            endpoint: new.endpoint,
            dialect: new.dialect,
            input_file_id: new.input_file_id,
            metadata: new.metadata,
            created_at: unix_now(),
            input: new.input,
            outcome,
            problems,
            status: Status::Validating,
            polls: 0,
            times: Times::default(),
            run: Run::default(),
            output_file_id: None,
            error_file_id: None,
            mistral_model: new.mistral_model,
        }));
        batches.push(Arc::clone(&batch));
        batch
    };
    state.stats.count(Event::BatchCreated);
    if hook.is_some() {
        return Err(Refusal::Drop);
    }
    Ok(batch)
}

/// What a `POST /v1/batches` asks for, checked as the API checks it.
struct Asked {
    input_file_id: String,
    endpoint: Endpoint,
    metadata: Option<serde_json::Map<String, Value>>,
    /// The outcome `X-Mock-Batch-Outcome` asks for.
    header: Option<Outcome>,
}

fn read_create(request: &Request<'_>) -> Result<Asked, Refusal> {
    let body: CreateBody = serde_json::from_slice(&request.body).map_err(|err| {
        ApiError::for_status(StatusCode::BAD_REQUEST, format!("Invalid request body: {err}"))
    })?;
    let missing = |param: &'static str| invalid(param, format!("Missing required parameter: '{param}'."));
    let input_file_id = body.input_file_id.ok_or_else(|| missing("input_file_id"))?;
    let endpoint = body.endpoint.ok_or_else(|| missing("endpoint"))?;
    let dialect = request.dialect;
    let endpoint = dialect.endpoint(&endpoint).ok_or_else(|| {
        invalid(
            "endpoint",
            format!(
                "Invalid endpoint '{endpoint}': the mock runs batches for {}.",
                dialect
                    .batch_endpoints()
                    .iter()
                    .map(|e| dialect.endpoint_path(*e))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })?;
    // Together's window is optional (and always 24h).
    let window = match (body.completion_window, dialect) {
        (None, Dialect::Together) => "24h".to_string(),
        (window, _) => window.ok_or_else(|| missing("completion_window"))?,
    };
    if window != "24h" {
        return Err(invalid(
            "completion_window",
            format!("Invalid completion_window '{window}': only '24h' is supported."),
        )
        .into());
    }
    let metadata = match body.metadata {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) if map.len() <= MAX_METADATA_KEYS && map.values().all(Value::is_string) => {
            Some(map)
        }
        Some(_) => {
            return Err(invalid(
                "metadata",
                format!("Invalid 'metadata': an object of at most {MAX_METADATA_KEYS} string values."),
            )
            .into())
        }
    };
    let header = outcome_header(request.headers)?;
    Ok(Asked {
        input_file_id,
        endpoint,
        metadata,
        header,
    })
}

/// The rows of the batch input file `input_file_id`: it exists, is processed and has purpose
/// `batch`.
pub(super) fn batch_input(state: &State, input_file_id: &str) -> Result<Arc<ParsedInput>, Refusal> {
    let file = state.files.get(input_file_id).ok_or_else(|| {
        ApiError::for_status(
            StatusCode::NOT_FOUND,
            format!("No such File object: {input_file_id}"),
        )
        .with_param(Some("input_file_id"))
    })?;
    if file.is_pending() {
        return Err(invalid(
            "input_file_id",
            format!(
                "The input file '{input_file_id}' is in 'pending' state. Only files with status 'Processed' \
                 are accepted for batch inferencing. Please check the file status and try again"
            ),
        )
        .into());
    }
    let Some(input) = file.batch_input.clone() else {
        let why = format!(
            "The input file {input_file_id} has purpose '{}'; a batch needs a file with purpose 'batch'.",
            file.purpose
        );
        return Err(invalid("input_file_id", why).into());
    };
    Ok(input)
}

/// The outcome `X-Mock-Batch-Outcome` asks for, if the create request has the header.
pub(crate) fn outcome_header(headers: &hyper::HeaderMap) -> Result<Option<Outcome>, ApiError> {
    let Some(value) = headers.get(OUTCOME_HEADER) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("(not text)");
    Outcome::parse(text)
        .map(Some)
        .map_err(|why| ApiError::for_status(StatusCode::BAD_REQUEST, format!("X-Mock-Batch-Outcome: {why}")))
}
