//! The HTTP face of OpenAI's Files and Batches APIs in the mock: which paths and methods exist
//! ([`route`]: OpenAI's `/v1/files…`, `/v1/batches…`, and the same under Azure's `/openai/`, see
//! [`Dialect`]; Anthropic's `/v1/messages/batches…`, answered by `messages/batches.rs`; Mistral's
//! `/v1/batch/jobs…`, answered by `batches/mistral.rs`), what a handler gets ([`Request`]) and how it refuses ([`Refusal`]: an OpenAI
//! error, or a dropped connection for the crash-test hooks), the `limit`/`after` pagination the
//! list endpoints share, and `GET /mock/batches`. Auth, latency, stats and the log are applied
//! around these handlers by `service`; storing files is `files`' job, batches `batches`'.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use hyper::header::HeaderMap;
use hyper::{Method, Response, StatusCode};
use serde::Serialize;

use super::errors::{ApiError, Body};
use super::messages::batches as message_batches;
use super::service::{Endpoint, State};
use super::{batches, files};

/// Largest file accepted by `POST /v1/files`.
pub(crate) const MAX_UPLOAD: usize = 512 * 1024 * 1024;
/// Largest upload request body: the file plus room for the multipart framing and `purpose`.
pub(crate) const MAX_UPLOAD_BODY: usize = MAX_UPLOAD + 1024 * 1024;

/// A Files or Batches endpoint, with the id from its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BatchRoute {
    UploadFile,
    ListFiles,
    GetFile(String),
    FileContent(String),
    DeleteFile(String),
    CreateBatch,
    ListBatches,
    GetBatch(String),
    CancelBatch(String),
    /// Anthropic's Message Batches (`/v1/messages/batches…`).
    CreateMessageBatch,
    ListMessageBatches,
    GetMessageBatch(String),
    CancelMessageBatch(String),
    MessageBatchResults(String),
    /// Mistral's batch jobs (`/v1/batch/jobs…`).
    CreateJob,
    ListJobs,
    GetJob(String),
    CancelJob(String),
}

/// Whose form of the Files and Batches APIs a request uses: OpenAI's (`/v1/…`; a batch's
/// `endpoint` and its lines' `url` are `/v1/chat/completions`, `/v1/responses`, …) or Azure
/// OpenAI's (`/openai/…` with `?api-version=`; they are `/chat/completions`, `/embeddings`, …, and an upload is `pending` until it has
/// been read once, and refused as a batch's input until then, as Azure processes uploads).
///
/// The OpenAI-format providers (see `promptmill_core::provider::compatible`): Groq's routes are
/// OpenAI's under `/openai/v1/…`, Gemini's under `/v1beta/openai/…` (both always served, as
/// their prefix names them; [`Dialect::unprefix`]); Together's are OpenAI's `/v1/…` paths, so
/// `--dialect together` decides that `/v1/` speaks Together: uploads with `purpose=batch-api`,
/// lines `{custom_id, body}`, a create answer wrapped in `{"job": …}`, upper-case statuses and
/// `created_at` as a date-time text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Dialect {
    #[default]
    #[value(name = "openai")]
    OpenAi,
    #[value(skip)]
    Azure,
    Groq,
    Together,
    Gemini,
}

/// Groq's and Gemini's path prefixes, and what they stand for under `/v1/`.
const PREFIXES: [(&str, Dialect); 2] = [
    ("/openai/v1/", Dialect::Groq),
    ("/v1beta/openai/", Dialect::Gemini),
];

impl Dialect {
    /// The dialect of a Files or Batches path (`/v1/` paths: OpenAI's; see [`Dialect::unprefix`]).
    pub fn of(path: &str) -> Dialect {
        if let Some((_, d)) = PREFIXES.iter().find(|(p, _)| path.starts_with(p)) {
            *d
        } else if path.starts_with("/openai/") {
            Dialect::Azure
        } else {
            Dialect::OpenAi
        }
    }

    /// A Groq or Gemini path as the `/v1/` path it stands for, with its dialect; any other
    /// path as it is, with `v1` (the dialect `/v1/` speaks: `--dialect`).
    pub fn unprefix(path: &str, v1: Dialect) -> (Dialect, std::borrow::Cow<'_, str>) {
        for (prefix, dialect) in PREFIXES {
            if let Some(rest) = path.strip_prefix(prefix) {
                return (dialect, format!("/v1/{rest}").into());
            }
        }
        match Dialect::of(path) {
            Dialect::OpenAi => (v1, path.into()),
            other => (other, path.into()),
        }
    }

    /// The `purpose` a batch input upload carries.
    pub fn batch_purpose(self) -> &'static str {
        match self {
            Dialect::Together => "batch-api",
            _ => "batch",
        }
    }

    /// Whether its lines may leave out `method` and `url` (Together's `{custom_id, body}`).
    pub fn body_only_lines(self) -> bool {
        self == Dialect::Together
    }

    /// The endpoints its Batch API runs: Groq's and Together's chat completions only, Gemini's
    /// chat completions and embeddings, all of the mock's otherwise.
    pub(crate) fn batch_endpoints(self) -> &'static [Endpoint] {
        match self {
            Dialect::Groq | Dialect::Together => &[Endpoint::Chat],
            Dialect::Gemini => &[Endpoint::Chat, Endpoint::Embeddings],
            Dialect::OpenAi | Dialect::Azure => &Endpoint::ALL,
        }
    }

    /// A batch object (or create answer, when `created` is set) in this dialect's words.
    pub fn batch_words(self, mut object: serde_json::Value, created: bool) -> serde_json::Value {
        if self != Dialect::Together {
            return object;
        }
        if let Some(map) = object.as_object_mut() {
            if let Some(serde_json::Value::String(status)) = map.get_mut("status") {
                *status = match status.as_str() {
                    "finalizing" => "IN_PROGRESS".into(),
                    other => other.to_ascii_uppercase(),
                };
            }
            if let Some(t) = map.get("created_at").and_then(serde_json::Value::as_u64) {
                map.insert(
                    "created_at".into(),
                    humantime::format_rfc3339_seconds(
                        std::time::UNIX_EPOCH + std::time::Duration::from_secs(t),
                    )
                    .to_string()
                    .into(),
                );
            }
        }
        match created {
            true => serde_json::json!({"job": object, "warning": null}),
            false => object,
        }
    }

    /// How a batch and its lines name `endpoint`.
    pub(crate) fn endpoint_path(self, endpoint: Endpoint) -> &'static str {
        match (self, endpoint) {
            (Dialect::OpenAi | Dialect::Groq | Dialect::Together | Dialect::Gemini, _) => endpoint.path(),
            (Dialect::Azure, Endpoint::Chat) => "/chat/completions",
            (Dialect::Azure, Endpoint::Completions) => "/completions",
            (Dialect::Azure, Endpoint::Responses) => "/responses",
            (Dialect::Azure, Endpoint::Embeddings) => "/embeddings",
            // Not in `Endpoint::ALL`: no batch runs it.
            (Dialect::Azure, Endpoint::Messages) => "/messages",
        }
    }

    /// The endpoint a batch's `endpoint` names, if the mock runs it.
    pub(crate) fn endpoint(self, path: &str) -> Option<Endpoint> {
        self.batch_endpoints()
            .iter()
            .copied()
            .find(|e| self.endpoint_path(*e) == path)
    }
}

/// A Files or Batches path asked for with a method it does not take.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct WrongMethod;

/// `None` when `path` is not a Files or Batches path (under `/v1/` or Azure's `/openai/`).
pub(crate) fn route(method: &Method, path: &str) -> Option<Result<BatchRoute, WrongMethod>> {
    let rest = path
        .strip_prefix("/v1/")
        .or_else(|| path.strip_prefix("/openai/"))?;
    let segments: Vec<&str> = rest.split('/').collect();
    let (get, other) = match segments[..] {
        ["files"] => (
            Some(BatchRoute::ListFiles),
            Some((Method::POST, BatchRoute::UploadFile)),
        ),
        ["files", id] if !id.is_empty() => (
            Some(BatchRoute::GetFile(id.into())),
            Some((Method::DELETE, BatchRoute::DeleteFile(id.into()))),
        ),
        ["files", id, "content"] if !id.is_empty() => (Some(BatchRoute::FileContent(id.into())), None),
        ["batches"] => (
            Some(BatchRoute::ListBatches),
            Some((Method::POST, BatchRoute::CreateBatch)),
        ),
        ["batches", id] if !id.is_empty() => (Some(BatchRoute::GetBatch(id.into())), None),
        ["batches", id, "cancel"] if !id.is_empty() => {
            (None, Some((Method::POST, BatchRoute::CancelBatch(id.into()))))
        }
        ["messages", ..] | ["batch", ..] if path.starts_with("/openai/") => return None,
        ["batch", "jobs"] => (
            Some(BatchRoute::ListJobs),
            Some((Method::POST, BatchRoute::CreateJob)),
        ),
        ["batch", "jobs", id] if !id.is_empty() => (Some(BatchRoute::GetJob(id.into())), None),
        ["batch", "jobs", id, "cancel"] if !id.is_empty() => {
            (None, Some((Method::POST, BatchRoute::CancelJob(id.into()))))
        }
        ["messages", "batches"] => (
            Some(BatchRoute::ListMessageBatches),
            Some((Method::POST, BatchRoute::CreateMessageBatch)),
        ),
        ["messages", "batches", id] if !id.is_empty() => (Some(BatchRoute::GetMessageBatch(id.into())), None),
        ["messages", "batches", id, "cancel"] if !id.is_empty() => (
            None,
            Some((Method::POST, BatchRoute::CancelMessageBatch(id.into()))),
        ),
        ["messages", "batches", id, "results"] if !id.is_empty() => {
            (Some(BatchRoute::MessageBatchResults(id.into())), None)
        }
        _ => return None,
    };
    if *method == Method::GET {
        if let Some(route) = get {
            return Some(Ok(route));
        }
    }
    match other {
        Some((wanted, route)) if *method == wanted => Some(Ok(route)),
        _ => Some(Err(WrongMethod)),
    }
}

/// What a handler needs from its request.
pub(crate) struct Request<'a> {
    pub dialect: Dialect,
    pub headers: &'a HeaderMap,
    pub query: Option<&'a str>,
    pub body: Bytes,
}

/// Why a handler gives no normal answer.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// An OpenAI error answer.
    Error(ApiError),
    /// A crash-test hook fired: close the connection without answering.
    Drop,
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Refusal::Error(error)
    }
}

pub(crate) type Handled = Result<Response<Body>, Refusal>;

/// Answers one Files or Batches request (auth already passed).
pub(crate) async fn handle(state: &Arc<State>, route: BatchRoute, request: Request<'_>) -> Handled {
    match route {
        BatchRoute::UploadFile => files::upload(state, request).await,
        BatchRoute::ListFiles => files::list(state, request.query),
        BatchRoute::GetFile(id) => files::retrieve(state, &id),
        BatchRoute::FileContent(id) => files::content(state, &id),
        BatchRoute::DeleteFile(id) => files::delete(state, &id),
        BatchRoute::CreateBatch => batches::create(state, &request),
        BatchRoute::ListBatches => batches::list(state, request.query),
        BatchRoute::GetBatch(id) => batches::retrieve(state, &id).await,
        BatchRoute::CancelBatch(id) => batches::cancel(state, &id),
        BatchRoute::CreateMessageBatch => message_batches::create(state, &request),
        BatchRoute::ListMessageBatches => message_batches::list(state, request.query),
        BatchRoute::GetMessageBatch(id) => message_batches::retrieve(state, &id).await,
        BatchRoute::CancelMessageBatch(id) => message_batches::cancel(state, &id),
        BatchRoute::MessageBatchResults(id) => message_batches::results(state, &id),
        BatchRoute::CreateJob => batches::mistral::create(state, &request),
        BatchRoute::ListJobs => batches::mistral::list(state, request.query),
        BatchRoute::GetJob(id) => batches::mistral::retrieve(state, &id).await,
        BatchRoute::CancelJob(id) => batches::mistral::cancel(state, &id),
    }
}

/// A query parameter, percent-decoded; the first one wins.
pub(crate) fn query_param<'q>(query: Option<&'q str>, name: &str) -> Option<Cow<'q, str>> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

/// A 400 about one query or body parameter.
pub(crate) fn invalid(param: &'static str, message: impl Into<Cow<'static, str>>) -> ApiError {
    ApiError::for_status(StatusCode::BAD_REQUEST, message).with_param(Some(param))
}

/// OpenAI's 500, for a blocking task that did not finish (it panicked).
pub(crate) fn internal_error() -> ApiError {
    ApiError::for_status(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The server had an error while processing your request. Sorry about that!",
    )
}

/// `limit` and `after` of a list request: `after` is the id of the last object of the
/// previous page. Ids carry their creation number, so a cursor still works after its
/// object is deleted.
pub(crate) struct Page {
    pub limit: usize,
    /// The creation number of the `after` object.
    pub after: Option<u64>,
}

impl Page {
    /// Reads `limit` (1..=`max`, default `default`) and `after` (an id with `id_prefix`).
    pub fn from_query(
        query: Option<&str>,
        default: usize,
        max: usize,
        id_prefix: &str,
    ) -> Result<Page, ApiError> {
        let limit = match query_param(query, "limit") {
            None => default,
            Some(text) => text
                .parse()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    invalid(
                        "limit",
                        format!("Invalid 'limit': expected an integer from 1 to {max}, got '{text}'."),
                    )
                })?,
        };
        let after = match query_param(query, "after") {
            None => None,
            Some(id) => Some(
                seq_of(&id, id_prefix)
                    .ok_or_else(|| invalid("after", format!("No such object: after='{id}'.")))?,
            ),
        };
        Ok(Page { limit, after })
    }

    /// One page of `items` (in list order, each with its creation number), and whether
    /// more follow it.
    pub fn take<T>(&self, items: impl IntoIterator<Item = (u64, T)>, newest_first: bool) -> (Vec<T>, bool) {
        let mut rest = items.into_iter().filter(|&(seq, _)| match self.after {
            None => true,
            Some(after) if newest_first => seq < after,
            Some(after) => seq > after,
        });
        let page: Vec<T> = rest.by_ref().take(self.limit).map(|(_, item)| item).collect();
        let more = rest.next().is_some();
        (page, more)
    }
}

/// The `{"object":"list",…}` envelope of the list endpoints.
#[derive(Serialize)]
pub(crate) struct List<T: Serialize> {
    object: &'static str,
    data: Vec<T>,
    first_id: Option<String>,
    last_id: Option<String>,
    has_more: bool,
}

impl<T: Serialize> List<T> {
    pub fn new(data: Vec<T>, has_more: bool, id: impl Fn(&T) -> String) -> Self {
        List {
            object: "list",
            first_id: data.first().map(&id),
            last_id: data.last().map(&id),
            data,
            has_more,
        }
    }
}

/// The creation number in an id made by [`make_id`], if `id` is one.
pub(crate) fn seq_of(id: &str, prefix: &str) -> Option<u64> {
    id.strip_prefix(prefix)?.parse().ok()
}

pub(crate) fn make_id(prefix: &str, seq: u64) -> String {
    format!("{prefix}{seq}")
}

/// The `GET /mock/batches` body: every batch ever created and every upload ever stored, in
/// creation order, so that tests can check that nothing was uploaded or submitted twice.
pub(crate) fn overview(state: &State) -> Bytes {
    super::reply::to_bytes(&serde_json::json!({
        "batches": state.batches.overview(),
        "uploads": state.files.uploads(),
        "message_batches": state.message_batches.overview(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_methods_route_to_their_endpoint() {
        let r = |m: Method, p: &str| route(&m, p);
        assert_eq!(r(Method::POST, "/v1/files"), Some(Ok(BatchRoute::UploadFile)));
        assert_eq!(
            r(Method::GET, "/v1/files/file-1/content"),
            Some(Ok(BatchRoute::FileContent("file-1".into())))
        );
        assert_eq!(
            r(Method::DELETE, "/v1/files/f"),
            Some(Ok(BatchRoute::DeleteFile("f".into())))
        );
        assert_eq!(
            r(Method::POST, "/v1/batches/b/cancel"),
            Some(Ok(BatchRoute::CancelBatch("b".into())))
        );
        assert_eq!(r(Method::GET, "/v1/batches/b/cancel"), Some(Err(WrongMethod)));
        assert_eq!(r(Method::PUT, "/v1/batches"), Some(Err(WrongMethod)));
        assert_eq!(r(Method::GET, "/v1/files/"), None);
        assert_eq!(r(Method::GET, "/v1/chat/completions"), None);
        assert_eq!(r(Method::POST, "/openai/files"), Some(Ok(BatchRoute::UploadFile)));
        assert_eq!(
            r(Method::POST, "/openai/batches/b/cancel"),
            Some(Ok(BatchRoute::CancelBatch("b".into())))
        );
        assert_eq!(r(Method::POST, "/openai/deployments/d/chat/completions"), None);
    }

    #[test]
    fn anthropic_message_batch_paths_route_under_v1_only() {
        let r = |m: Method, p: &str| route(&m, p);
        assert_eq!(
            r(Method::POST, "/v1/messages/batches"),
            Some(Ok(BatchRoute::CreateMessageBatch))
        );
        assert_eq!(
            r(Method::GET, "/v1/messages/batches"),
            Some(Ok(BatchRoute::ListMessageBatches))
        );
        assert_eq!(
            r(Method::GET, "/v1/messages/batches/m_1/results"),
            Some(Ok(BatchRoute::MessageBatchResults("m_1".into())))
        );
        assert_eq!(
            r(Method::POST, "/v1/messages/batches/m_1/cancel"),
            Some(Ok(BatchRoute::CancelMessageBatch("m_1".into())))
        );
        assert_eq!(
            r(Method::POST, "/v1/messages/batches/m_1"),
            Some(Err(WrongMethod))
        );
        assert_eq!(
            r(Method::POST, "/v1/messages"),
            None,
            "the live route is not a batch one"
        );
        assert_eq!(r(Method::POST, "/openai/messages/batches"), None);
    }

    #[test]
    fn mistral_batch_job_paths_route_under_v1_only() {
        let r = |m: Method, p: &str| route(&m, p);
        assert_eq!(r(Method::POST, "/v1/batch/jobs"), Some(Ok(BatchRoute::CreateJob)));
        assert_eq!(r(Method::GET, "/v1/batch/jobs"), Some(Ok(BatchRoute::ListJobs)));
        assert_eq!(
            r(Method::GET, "/v1/batch/jobs/j1"),
            Some(Ok(BatchRoute::GetJob("j1".into())))
        );
        assert_eq!(
            r(Method::POST, "/v1/batch/jobs/j1/cancel"),
            Some(Ok(BatchRoute::CancelJob("j1".into())))
        );
        assert_eq!(r(Method::DELETE, "/v1/batch/jobs/j1"), Some(Err(WrongMethod)));
        assert_eq!(r(Method::POST, "/openai/batch/jobs"), None);
    }

    #[test]
    fn azure_names_endpoints_without_v1() {
        assert_eq!(Dialect::of("/openai/batches"), Dialect::Azure);
        assert_eq!(Dialect::of("/v1/batches"), Dialect::OpenAi);
        assert_eq!(Dialect::Azure.endpoint("/chat/completions"), Some(Endpoint::Chat));
        assert_eq!(Dialect::Azure.endpoint("/v1/chat/completions"), None);
        assert_eq!(
            Dialect::OpenAi.endpoint("/v1/chat/completions"),
            Some(Endpoint::Chat)
        );
        assert_eq!(Dialect::OpenAi.endpoint("/chat/completions"), None);
    }

    #[test]
    fn pages_follow_the_cursor_in_either_order() {
        let page = Page::from_query(Some("limit=2&after=b_5"), 20, 100, "b_").unwrap();
        let newest_first = [(7, 'g'), (6, 'f'), (5, 'e'), (4, 'd'), (3, 'c'), (2, 'b')];
        assert_eq!(page.take(newest_first, true), (vec!['d', 'c'], true));
        let oldest_first = [(4, 'd'), (5, 'e'), (6, 'f'), (7, 'g')];
        assert_eq!(page.take(oldest_first, false), (vec!['f', 'g'], false));
        assert!(Page::from_query(Some("limit=0"), 20, 100, "b_").is_err());
        assert!(Page::from_query(Some("after=nope"), 20, 100, "b_").is_err());
    }
}
