//! OpenAI's Files and Batches APIs call by call: [`FilesBatchesApi`] is the calls the OpenAI
//! batch service (`openai.rs`, which holds the protocol and its lookups) makes, and
//! [`HttpBatchApi`] speaks them to `{base}/files` and `{base}/batches` (Azure:
//! `{endpoint}/openai/files` and `…/openai/batches` with `?api-version=`, see
//! [`Provider::batch_api_url`]) with the same client (and so the same key and headers) as live
//! requests.
//!
//! What the OpenAI-format providers word differently (the upload's `purpose`, Together's
//! upper-case statuses and `{"job": …}` wrapper, a bare array for a list) is read from the
//! provider's row of `provider/compatible.rs` and undone here, in [`normalize`], so that the
//! service above sees OpenAI's objects only.
//!
//! Every call is made once: retrying is the driver's decision, because a POST that got no answer
//! may still have happened (an upload stored, a batch created), and only the driver, which knows
//! what the checkpoint recorded, can look before it tries again. The one exception is a read:
//! Azure refuses a batch whose input file it is still processing, so on Azure `create` first
//! reads the file until it is processed (Azure's documented practice), for at most
//! [`PROCESSING_WAIT`].

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use super::api_error::ApiError;
use super::wire::{Batch, FileObject, List};
use crate::api::http::{self, HttpSettings};
use crate::api::{error_message, is_insufficient_quota, parse_retry_after};
use promptmill_core::provider::compatible::{self, Dialect, StatusWords};
use promptmill_core::provider::Provider;

/// `POST /batches`.
#[derive(Debug, Clone, Serialize)]
pub struct CreateBatch {
    pub input_file_id: String,
    /// `/v1/chat/completions` or `/v1/completions` (Azure: `/chat/completions`).
    pub endpoint: &'static str,
    pub completion_window: &'static str,
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// The calls of OpenAI's Files and Batches APIs.
pub trait FilesBatchesApi: Send + Sync {
    /// `POST /files` with `purpose=batch`.
    fn upload(
        &self,
        filename: &str,
        content: Bytes,
    ) -> impl Future<Output = Result<FileObject, ApiError>> + Send;
    /// One page of `GET /files?purpose=batch`.
    fn list_files(
        &self,
        after: Option<&str>,
    ) -> impl Future<Output = Result<List<FileObject>, ApiError>> + Send;
    /// `DELETE /files/{id}`.
    fn delete_file(&self, id: &str) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// `POST /batches`.
    fn create(&self, request: &CreateBatch) -> impl Future<Output = Result<Batch, ApiError>> + Send;
    /// `GET /batches/{id}`.
    fn retrieve(&self, id: &str) -> impl Future<Output = Result<Batch, ApiError>> + Send;
    /// `POST /batches/{id}/cancel`.
    fn cancel(&self, id: &str) -> impl Future<Output = Result<Batch, ApiError>> + Send;
    /// One page of `GET /batches`, newest first.
    fn list_batches(&self, after: Option<&str>)
        -> impl Future<Output = Result<List<Batch>, ApiError>> + Send;
    /// `GET /files/{id}/content`, handed to `each` chunk by chunk as it arrives.
    fn download<F>(&self, id: &str, each: F) -> impl Future<Output = Result<(), anyhow::Error>> + Send
    where
        F: FnMut(&[u8]) -> anyhow::Result<()> + Send;
}

/// [`FilesBatchesApi`] over HTTP.
pub struct HttpBatchApi {
    client: reqwest::Client,
    /// The base URL, e.g. `https://api.openai.com/v1`, or Azure's resource endpoint; every call's
    /// URL is it with path segments appended (its query kept).
    base: reqwest::Url,
    /// Decides the URLs (and whether uploads must be processed before a batch may use them).
    provider: Provider,
    /// `--max-response-size`: the most bytes of one object or error body held in memory, and of
    /// one line of a downloaded file (downloads themselves stream to disk).
    max_response: u64,
}

/// Page size of the list calls (OpenAI allows up to 100 batches and 10,000 files).
const PAGE: u32 = 100;

/// The longest Azure's processing of an upload is waited for before creating its batch anyway
/// (Azure then refuses it, and a later run tries again).
pub const PROCESSING_WAIT: Duration = Duration::from_secs(600);
/// The first wait between two reads of an upload's status; it doubles up to [`LOOK_CAP`].
const FIRST_LOOK: Duration = Duration::from_millis(250);
const LOOK_CAP: Duration = Duration::from_secs(15);

impl HttpBatchApi {
    /// `settings.url` is the API's base URL (Azure: the resource endpoint).
    pub fn new(settings: &HttpSettings, provider: Provider) -> anyhow::Result<HttpBatchApi> {
        Ok(HttpBatchApi {
            client: http::client(settings)?,
            base: settings.url.clone(),
            provider,
            max_response: settings.max_response,
        })
    }

    /// The provider's row of the OpenAI-format table (OpenAI's for OpenAI and Azure).
    fn dialect(&self) -> &'static Dialect {
        self.provider.dialect().unwrap_or(&compatible::OPENAI)
    }

    /// A call whose answer is a batch, or a list of batches, in the provider's words: read as
    /// JSON, put into OpenAI's words ([`normalize`]), then read as `T`.
    async fn call_batch<T: DeserializeOwned>(
        &self,
        what: String,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ApiError> {
        let value: serde_json::Value = self.call(what.clone(), request).await?;
        serde_json::from_value(normalize(value, self.dialect())).map_err(|e| ApiError::Unexpected {
            what,
            detail: e.to_string(),
        })
    }

    /// The URL of a call: `segments` under the base URL (see [`Provider::batch_api_url`]).
    fn url(&self, what: &str, segments: &[&str]) -> Result<reqwest::Url, ApiError> {
        self.provider
            .batch_api_url(&self.base, segments)
            .map_err(|e| ApiError::Unexpected {
                what: what.to_string(),
                detail: e.to_string(),
            })
    }

    /// On Azure, reads the upload `id` until Azure has processed it: a batch of a file still
    /// `pending` or `running` is refused ("Only files with status 'Processed' are accepted").
    /// Any other status (`processed`, `error`, none) ends the wait, and the create request gets
    /// the server's own answer.
    async fn wait_processed(&self, id: &str) -> Result<(), ApiError> {
        if !matches!(self.provider, Provider::Azure { .. }) {
            return Ok(());
        }
        let started = Instant::now();
        let mut wait = FIRST_LOOK;
        loop {
            let what = format!("reading file {id}");
            let request = self.client.get(self.url(&what, &["files", id])?);
            let file: FileObject = self.call(what, request).await?;
            let processing = matches!(
                file.status.as_deref(),
                Some("uploaded" | "pending" | "running" | "processing")
            );
            if !processing || started.elapsed() + wait > PROCESSING_WAIT {
                return Ok(());
            }
            tracing::info!(
                "file {id} is {}; reading it again in {wait:?}",
                file.status.as_deref().unwrap_or("")
            );
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(LOOK_CAP);
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        what: String,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ApiError> {
        let response = request.send().await.map_err(|e| ApiError::NoAnswer {
            what: what.clone(),
            detail: http::describe(&e),
        })?;
        let status = response.status().as_u16();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
        if (300..400).contains(&status) {
            return Err(ApiError::Redirect {
                what,
                status,
                location: header("location").map(promptmill_core::base_url::redact),
            });
        }
        let retry_after =
            parse_retry_after(header("retry-after-ms"), header("retry-after"), SystemTime::now());
        let body = match http::read_capped(response, self.max_response).await {
            Ok(body) => body,
            Err(too_large @ http::ReadError::TooLarge(_)) => {
                return Err(ApiError::Unexpected {
                    what,
                    detail: format!("HTTP {status}: {too_large}"),
                })
            }
            Err(http::ReadError::Http(e)) => {
                return Err(ApiError::NoAnswer {
                    what,
                    detail: http::describe(&e),
                })
            }
        };
        if status == 429 && is_insufficient_quota(&body) {
            return Err(ApiError::Quota {
                what,
                message: error_message(&body),
            });
        }
        if !(200..300).contains(&status) {
            return Err(ApiError::Status {
                what,
                status,
                message: error_message(&body),
                retry_after,
            });
        }
        serde_json::from_slice(&body).map_err(|e| ApiError::Unexpected {
            what,
            detail: format!("{e} in {}", error_message(&body)),
        })
    }
}

/// The calls any batch protocol over this client makes (Anthropic's Message Batches use these
/// directly): a JSON GET or POST under the base URL, and a streamed download.
impl HttpBatchApi {
    /// The base URL the key belongs to: a results URL elsewhere is not followed.
    pub fn base(&self) -> &reqwest::Url {
        &self.base
    }

    /// `GET {base}/{segments}?{query}`, its JSON answer read.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        what: String,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<T, ApiError> {
        let request = self.client.get(self.url(&what, segments)?).query(query);
        self.call(what, request).await
    }

    /// `POST {base}/{segments}` with `body` (JSON, or empty), its JSON answer read.
    pub async fn post_json<T: DeserializeOwned>(
        &self,
        what: String,
        segments: &[&str],
        body: Vec<u8>,
    ) -> Result<T, ApiError> {
        let request = self.client.post(self.url(&what, segments)?).body(body);
        self.call(what, request).await
    }

    /// `GET url`, handed to `each` chunk by chunk as it arrives; a redirect is refused, an
    /// error status read for its message only.
    pub async fn download_from<F>(&self, what: String, url: reqwest::Url, mut each: F) -> anyhow::Result<()>
    where
        F: FnMut(&[u8]) -> anyhow::Result<()> + Send,
    {
        let no_answer = |e: reqwest::Error| ApiError::NoAnswer {
            what: what.clone(),
            detail: http::describe(&e),
        };
        let mut response = self.client.get(url).send().await.map_err(no_answer)?;
        let status = response.status().as_u16();
        if (300..400).contains(&status) {
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(promptmill_core::base_url::redact);
            return Err(ApiError::Redirect {
                what,
                status,
                location,
            }
            .into());
        }
        if !(200..300).contains(&status) {
            // An error body is only read for its message: a long one is cut, not refused.
            let body = http::read_capped(response, self.max_response)
                .await
                .unwrap_or_default();
            return Err(ApiError::Status {
                what,
                status,
                message: error_message(&body),
                retry_after: None,
            }
            .into());
        }
        while let Some(chunk) = response.chunk().await.map_err(no_answer)? {
            each(&chunk)?;
        }
        Ok(())
    }
}

impl FilesBatchesApi for HttpBatchApi {
    async fn upload(&self, filename: &str, content: Bytes) -> Result<FileObject, ApiError> {
        let size = content.len() as u64;
        let part = reqwest::multipart::Part::stream_with_length(content, size)
            .file_name(filename.to_string())
            .mime_str("application/jsonl")
            .map_err(|e| ApiError::Unexpected {
                what: format!("uploading {filename}"),
                detail: e.to_string(),
            })?;
        let form = reqwest::multipart::Form::new()
            .text("purpose", self.dialect().purpose)
            .part("file", part);
        let what = format!("uploading {filename}");
        let request = self.client.post(self.url(&what, &["files"])?).multipart(form);
        self.call(what, request).await
    }

    async fn list_files(&self, after: Option<&str>) -> Result<List<FileObject>, ApiError> {
        let mut query = vec![
            ("purpose", self.dialect().purpose.to_string()),
            ("limit", PAGE.to_string()),
        ];
        query.extend(after.map(|a| ("after", a.to_string())));
        let request = self
            .client
            .get(self.url("listing files", &["files"])?)
            .query(&query);
        self.call("listing files".into(), request).await
    }

    async fn delete_file(&self, id: &str) -> Result<(), ApiError> {
        let what = format!("deleting file {id}");
        let request = self.client.delete(self.url(&what, &["files", id])?);
        let _: serde_json::Value = self.call(what, request).await?;
        Ok(())
    }

    async fn create(&self, body: &CreateBatch) -> Result<Batch, ApiError> {
        self.wait_processed(&body.input_file_id).await?;
        let json = serde_json::to_vec(body).map_err(|e| ApiError::Unexpected {
            what: "creating a batch".into(),
            detail: e.to_string(),
        })?;
        let what = format!("creating a batch of {}", body.input_file_id);
        let request = self.client.post(self.url(&what, &["batches"])?).body(json);
        self.call_batch(what, request).await
    }

    async fn retrieve(&self, id: &str) -> Result<Batch, ApiError> {
        let what = format!("reading batch {id}");
        let request = self.client.get(self.url(&what, &["batches", id])?);
        self.call_batch(what, request).await
    }

    async fn cancel(&self, id: &str) -> Result<Batch, ApiError> {
        let what = format!("cancelling batch {id}");
        let request = self.client.post(self.url(&what, &["batches", id, "cancel"])?);
        self.call_batch(what, request).await
    }

    async fn list_batches(&self, after: Option<&str>) -> Result<List<Batch>, ApiError> {
        let mut query = vec![("limit", PAGE.to_string())];
        query.extend(after.map(|a| ("after", a.to_string())));
        let request = self
            .client
            .get(self.url("listing batches", &["batches"])?)
            .query(&query);
        self.call_batch("listing batches".into(), request).await
    }

    async fn download<F>(&self, id: &str, each: F) -> anyhow::Result<()>
    where
        F: FnMut(&[u8]) -> anyhow::Result<()> + Send,
    {
        let what = format!("downloading file {id}");
        let url = self.url(&what, &["files", id, "content"])?;
        self.download_from(what, url, each).await
    }
}

/// A batch answer (or a list of them) in OpenAI's words: a bare array becomes a one-page list,
/// the dialect's create wrapper (`{"job": {…}}`) is taken off, upper-case statuses are lowered,
/// and a `created_at` that is not a number of seconds (Together's date-time text) is dropped
/// (it only bounds the search for a lost batch).
pub fn normalize(value: serde_json::Value, dialect: &Dialect) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Array(items) => {
            let data = items.into_iter().map(|b| normalize_batch(b, dialect)).collect();
            serde_json::json!({"data": Value::Array(data), "has_more": false})
        }
        Value::Object(mut map) if map.contains_key("data") => {
            if let Some(Value::Array(items)) = map.remove("data") {
                let data = items.into_iter().map(|b| normalize_batch(b, dialect)).collect();
                map.insert("data".into(), Value::Array(data));
            }
            Value::Object(map)
        }
        other => normalize_batch(other, dialect),
    }
}

fn normalize_batch(value: serde_json::Value, dialect: &Dialect) -> serde_json::Value {
    use serde_json::Value;
    let mut value = match (value, dialect.create_wrapper) {
        (Value::Object(mut map), Some(wrapper)) if !map.contains_key("id") && map.contains_key(wrapper) => {
            map.remove(wrapper).unwrap_or(Value::Null)
        }
        (value, _) => value,
    };
    if let Value::Object(map) = &mut value {
        if dialect.statuses == StatusWords::Upper {
            if let Some(Value::String(status)) = map.get_mut("status") {
                *status = status.to_ascii_lowercase();
            }
        }
        if map.get("created_at").is_some_and(|t| !t.is_i64()) {
            map.remove("created_at");
        }
    }
    value
}

/// A borrowed API is the API (the driver's tests keep the fake they inspect).
impl<T: FilesBatchesApi> FilesBatchesApi for &T {
    async fn upload(&self, filename: &str, content: Bytes) -> Result<FileObject, ApiError> {
        (**self).upload(filename, content).await
    }

    async fn list_files(&self, after: Option<&str>) -> Result<List<FileObject>, ApiError> {
        (**self).list_files(after).await
    }

    async fn delete_file(&self, id: &str) -> Result<(), ApiError> {
        (**self).delete_file(id).await
    }

    async fn create(&self, request: &CreateBatch) -> Result<Batch, ApiError> {
        (**self).create(request).await
    }

    async fn retrieve(&self, id: &str) -> Result<Batch, ApiError> {
        (**self).retrieve(id).await
    }

    async fn cancel(&self, id: &str) -> Result<Batch, ApiError> {
        (**self).cancel(id).await
    }

    async fn list_batches(&self, after: Option<&str>) -> Result<List<Batch>, ApiError> {
        (**self).list_batches(after).await
    }

    async fn download<F>(&self, id: &str, each: F) -> anyhow::Result<()>
    where
        F: FnMut(&[u8]) -> anyhow::Result<()> + Send,
    {
        (**self).download(id, each).await
    }
}
