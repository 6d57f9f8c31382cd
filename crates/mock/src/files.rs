//! OpenAI's Files API in the mock: `POST /v1/files` (multipart, parsed by `multer`),
//! `GET /v1/files` (list), `GET /v1/files/{id}`, `GET /v1/files/{id}/content` and
//! `DELETE /v1/files/{id}`, over an in-memory [`FileStore`] that also keeps the output and
//! error files batches generate (purpose `batch_output`), a record of every upload for
//! `/mock/batches`, and the --drop-upload hook. A `batch` file's lines are parsed at upload
//! (`batch_lines`); what a batch does with them is `batches`' business. The same routes under
//! Azure's `/openai/` store an upload `pending` until its first retrieve, as Azure processes
//! uploads before a batch may use them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde::Serialize;

use super::batch_api::{self, invalid, make_id, Dialect, Handled, List, Page, Refusal, Request};
use super::batch_lines::{self, ParsedInput};
use super::errors::{json_response, ApiError};
use super::reply::{to_bytes, unix_now};
use super::service::State;
use super::stats::Event;

const ID_PREFIX: &str = "file-mock-";
/// Purposes `POST /v1/files` accepts (OpenAI's `CreateFileRequest`).
const PURPOSES: [&str; 7] = [
    "assistants",
    "batch",
    "fine-tune",
    "vision",
    "user_data",
    "evals",
    "batch-api",
];
/// The purpose of the files batches write.
pub(crate) const BATCH_OUTPUT: &str = "batch_output";

/// A stored file.
pub(crate) struct StoredFile {
    pub id: String,
    /// Creation number: orders the list and is the id's suffix.
    seq: u64,
    pub filename: String,
    pub purpose: &'static str,
    pub created_at: u64,
    pub content: Bytes,
    /// For purpose `batch`: the lines, parsed at upload.
    pub batch_input: Option<Arc<ParsedInput>>,
    /// Retrieves that will still find the file `pending` (an Azure upload: one, then it is
    /// `processed`); a batch refuses a pending input file, as Azure does.
    pending_reads: AtomicU32,
}

/// OpenAI's `OpenAIFile` object.
#[derive(Serialize)]
struct FileObject<'a> {
    id: &'a str,
    object: &'static str,
    bytes: usize,
    created_at: u64,
    expires_at: Option<u64>,
    filename: &'a str,
    purpose: &'a str,
    status: &'static str,
    status_details: Option<()>,
}

impl StoredFile {
    fn object(&self) -> FileObject<'_> {
        FileObject {
            id: &self.id,
            object: "file",
            bytes: self.content.len(),
            created_at: self.created_at,
            expires_at: None,
            filename: &self.filename,
            purpose: self.purpose,
            status: if self.is_pending() { "pending" } else { "processed" },
            status_details: None,
        }
    }

    /// Whether the file is still being "processed" (an Azure upload not yet retrieved).
    pub fn is_pending(&self) -> bool {
        self.pending_reads.load(Relaxed) > 0
    }
}

/// One `POST /v1/files` that stored a file, kept after the file is deleted.
#[derive(Serialize, Clone)]
pub(crate) struct UploadRecord {
    id: String,
    filename: String,
    bytes: usize,
    lines: u64,
}

#[derive(Default)]
struct Files {
    next_seq: u64,
    by_id: HashMap<String, Arc<StoredFile>>,
    uploads: Vec<UploadRecord>,
}

/// Every file the server holds, behind one lock.
pub(crate) struct FileStore {
    // A std Mutex: held for a map update or a clone of the list, never across an await and
    // never while parsing or copying a file's content.
    files: Mutex<Files>,
    /// --drop-upload: the Nth stored upload (1-based) loses its answer.
    drop_upload: Option<u64>,
}

impl FileStore {
    pub fn new(drop_upload: Option<u64>) -> Self {
        FileStore {
            files: Mutex::new(Files::default()),
            drop_upload,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Files> {
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores an upload; `true` when --drop-upload says its answer is to be dropped.
    fn store_upload(
        &self,
        filename: String,
        purpose: &'static str,
        content: Bytes,
        dialect: Dialect,
    ) -> (Arc<StoredFile>, bool) {
        let batch_input = (purpose == dialect.batch_purpose())
            .then(|| Arc::new(ParsedInput::parse(&content, dialect.body_only_lines())));
        let lines = match &batch_input {
            Some(input) => input.line_count,
            None => batch_lines::count_lines(&content),
        };
        let mut files = self.lock();
        let file = insert(&mut files, filename, purpose, content, batch_input);
        if dialect == Dialect::Azure {
            file.pending_reads.store(1, Relaxed);
        }
        files.uploads.push(UploadRecord {
            id: file.id.clone(),
            filename: file.filename.clone(),
            bytes: file.content.len(),
            lines,
        });
        let dropped = self.drop_upload == Some(files.uploads.len() as u64);
        (file, dropped)
    }

    /// Stores a file a batch wrote (purpose `batch_output`) and returns its id.
    pub fn store_output(&self, filename: String, content: Bytes) -> String {
        let mut files = self.lock();
        insert(&mut files, filename, BATCH_OUTPUT, content, None)
            .id
            .clone()
    }

    pub fn get(&self, id: &str) -> Option<Arc<StoredFile>> {
        self.lock().by_id.get(id).cloned()
    }

    fn remove(&self, id: &str) -> bool {
        self.lock().by_id.remove(id).is_some()
    }

    /// Every upload ever stored, in order (for `/mock/batches`).
    pub fn uploads(&self) -> Vec<UploadRecord> {
        self.lock().uploads.clone()
    }
}

fn insert(
    files: &mut Files,
    filename: String,
    purpose: &'static str,
    content: Bytes,
    batch_input: Option<Arc<ParsedInput>>,
) -> Arc<StoredFile> {
    files.next_seq += 1;
    let seq = files.next_seq;
    let file = Arc::new(StoredFile {
        id: make_id(ID_PREFIX, seq),
        seq,
        filename,
        purpose,
        created_at: unix_now(),
        content,
        batch_input,
        pending_reads: AtomicU32::new(0),
    });
    files.by_id.insert(file.id.clone(), Arc::clone(&file));
    file
}

fn no_such_file(id: &str) -> ApiError {
    ApiError::for_status(StatusCode::NOT_FOUND, format!("No such File object: {id}")).with_param(Some("id"))
}

/// The two fields of an upload form.
struct Form {
    filename: String,
    content: Bytes,
    purpose: &'static str,
}

/// Reads the multipart form of `POST /v1/files`. Fields other than `file` and `purpose`
/// (e.g. `expires_after`) are read and ignored.
async fn read_form(headers: &HeaderMap, body: Bytes) -> Result<Form, ApiError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        ApiError::for_status(
            StatusCode::BAD_REQUEST,
            "Invalid request: the body must be multipart/form-data with 'file' and 'purpose' fields.",
        )
    })?;
    let constraints = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().for_field("file", batch_api::MAX_UPLOAD as u64));
    let stream = Full::new(body).into_data_stream();
    let mut form = multer::Multipart::with_constraints(stream, boundary, constraints);
    let (mut file, mut purpose) = (None, None);
    let broken = |err: multer::Error| match err {
        multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => {
            ApiError::for_status(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "File too large: the mock accepts files up to {} bytes.",
                    batch_api::MAX_UPLOAD
                ),
            )
        }
        other => ApiError::for_status(
            StatusCode::BAD_REQUEST,
            format!("Invalid multipart/form-data body: {other}"),
        ),
    };
    while let Some(field) = form.next_field().await.map_err(broken)? {
        match field.name() {
            Some("file") => {
                let filename = field.file_name().unwrap_or("file").to_string();
                file = Some((filename, field.bytes().await.map_err(broken)?));
            }
            Some("purpose") => purpose = Some(field.text().await.map_err(broken)?),
            _ => {
                field.bytes().await.map_err(broken)?;
            }
        }
    }
    let missing = |param: &'static str| invalid(param, format!("Missing required parameter: '{param}'."));
    let (filename, content) = file.ok_or_else(|| missing("file"))?;
    let purpose = purpose.ok_or_else(|| missing("purpose"))?;
    let purpose = PURPOSES
        .into_iter()
        .find(|p| *p == purpose.trim())
        .ok_or_else(|| {
            invalid(
                "purpose",
                format!("'{purpose}' is not one of {PURPOSES:?} - 'purpose'"),
            )
        })?;
    Ok(Form {
        filename,
        content,
        purpose,
    })
}

/// `POST /v1/files`. A batch file's lines are parsed in a blocking task: 50,000 of them take
/// a moment, which a runtime worker should not spend.
pub(crate) async fn upload(state: &Arc<State>, request: Request<'_>) -> Handled {
    let form = read_form(request.headers, request.body).await?;
    let store = Arc::clone(state);
    let dialect = request.dialect;
    // Each dialect has its own batch purpose (Together's `batch-api`) and refuses the other's.
    if ["batch", "batch-api"].contains(&form.purpose) && form.purpose != dialect.batch_purpose() {
        return Err(invalid(
            "purpose",
            format!(
                "'{}' is not a purpose here: batch input files are uploaded with purpose '{}'",
                form.purpose,
                dialect.batch_purpose()
            ),
        )
        .into());
    }
    let (file, dropped) = tokio::task::spawn_blocking(move || {
        store
            .files
            .store_upload(form.filename, form.purpose, form.content, dialect)
    })
    .await
    .map_err(|_| batch_api::internal_error())?;
    state.stats.count(Event::FileUploaded);
    if dropped {
        return Err(Refusal::Drop);
    }
    Ok(json_response(StatusCode::OK, to_bytes(&file.object())))
}

/// `GET /v1/files`: `purpose`, `order` (`desc`, the default, or `asc`), `limit` (default and
/// most 10,000) and `after`; or Mistral's `page` and `page_size`.
pub(crate) fn list(state: &State, query: Option<&str>) -> Handled {
    let page = Page::from_query(query, 10_000, 10_000, ID_PREFIX)?;
    let purpose = batch_api::query_param(query, "purpose");
    let newest_first = match batch_api::query_param(query, "order").as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(other) => {
            return Err(invalid(
                "order",
                format!("Invalid 'order': '{other}' (expected 'asc' or 'desc')."),
            )
            .into())
        }
    };
    let mut files: Vec<Arc<StoredFile>> = state
        .files
        .lock()
        .by_id
        .values()
        .filter(|f| purpose.as_deref().is_none_or(|p| p == f.purpose))
        .cloned()
        .collect();
    files.sort_unstable_by_key(|f| f.seq);
    if newest_first {
        files.reverse();
    }
    if let Some(size) = batch_api::query_param(query, "page_size") {
        return numbered_page(&files, query, &size);
    }
    let (page, has_more) = page.take(files.iter().map(|f| (f.seq, f.object())), newest_first);
    let list = List::new(page, has_more, |f| f.id.to_string());
    Ok(json_response(StatusCode::OK, to_bytes(&list)))
}

/// Mistral's paging of `GET /v1/files`: `page` (from 0) of `page_size` files, with the `total`.
fn numbered_page(files: &[Arc<StoredFile>], query: Option<&str>, size: &str) -> Handled {
    let size: usize = size
        .parse()
        .ok()
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| invalid("page_size", format!("Invalid 'page_size': '{size}'.")))?;
    let page: usize = match batch_api::query_param(query, "page") {
        None => 0,
        Some(text) => text
            .parse()
            .map_err(|_| invalid("page", format!("Invalid 'page': '{text}'.")))?,
    };
    let data: Vec<FileObject<'_>> = files
        .iter()
        .skip(page.saturating_mul(size))
        .take(size)
        .map(|f| f.object())
        .collect();
    let body = serde_json::json!({"data": data, "object": "list", "total": files.len()});
    Ok(json_response(StatusCode::OK, to_bytes(&body)))
}

/// `GET /v1/files/{id}`. A pending (Azure) upload is answered `pending` once and is
/// `processed` from then on.
pub(crate) fn retrieve(state: &State, id: &str) -> Handled {
    let file = state.files.get(id).ok_or_else(|| no_such_file(id))?;
    let body = to_bytes(&file.object());
    // Never below zero, however many retrieves race.
    let _ = file
        .pending_reads
        .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
    Ok(json_response(StatusCode::OK, body))
}

/// `GET /v1/files/{id}/content`: the bytes as stored.
pub(crate) fn content(state: &State, id: &str) -> Handled {
    let file = state.files.get(id).ok_or_else(|| no_such_file(id))?;
    let mut response = Response::new(Full::new(file.content.clone()));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    Ok(response)
}

/// `DELETE /v1/files/{id}`. A batch already created from the file keeps its lines.
pub(crate) fn delete(state: &State, id: &str) -> Handled {
    if !state.files.remove(id) {
        return Err(no_such_file(id).into());
    }
    state.stats.count(Event::FileDeleted);
    let body = serde_json::json!({"id": id, "object": "file", "deleted": true});
    Ok(json_response(StatusCode::OK, to_bytes(&body)))
}
