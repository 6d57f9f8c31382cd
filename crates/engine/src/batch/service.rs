//! The batch-service seam: what the batch driver needs of a provider's asynchronous batch API,
//! whatever its protocol. A [`BatchService`] takes a part's requests either as a file uploaded
//! first ([`Intake::Upload`], OpenAI's Files + Batches) or inline in the create call
//! ([`Intake::Inline`], Anthropic's Message Batches); submitting returns the provider's batch id,
//! polling returns a provider-neutral [`BatchView`] (state and counts), and collecting hands back
//! result lines as [`ResultLine`]s, whose bodies the job's API family decodes.
//!
//! The never-twice rules are the driver's, and the service answers the two questions they ask:
//! each submitting call ([`BatchService::upload`], [`BatchService::create`]) is made exactly once
//! (retrying is the driver's decision, taken after a look), and after a call whose answer was lost
//! the service looks for what it may have made ([`BatchService::find_upload`],
//! [`BatchService::find_created`]); a service that cannot tell for sure says
//! [`Found::Ambiguous`], and the run stops rather than pay twice.

use std::future::Future;

use bytes::Bytes;

use super::api_error::ApiError;
use super::calls::{Calls, Step};
use super::client::FilesBatchesApi;
use super::wire::FileObject;
use crate::store::{BatchError, BatchSeen};
use promptmill_core::family::Endpoint;

/// How a part's requests reach the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intake {
    /// A file is uploaded first (its id recorded), then a batch is created from it.
    Upload,
    /// The create call carries the requests.
    Inline,
}

/// Where a batch stands, in the driver's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Accepted, not running yet (OpenAI `validating`).
    Queued,
    /// Running (`in_progress`).
    Running,
    /// Winding down (`finalizing`, `cancelling`): results are not final yet.
    Finishing,
    /// Will not change any more; its results are final.
    Ended(End),
}

/// How a batch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Completed,
    /// Refused as a whole (validation); its errors say why.
    Failed,
    /// The completion window passed; rows not run yet get no result.
    Expired,
    Cancelled,
}

/// Requests a batch reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: u64,
    pub completed: u64,
    pub failed: u64,
}

/// A batch as the service showed it, provider-neutral.
#[derive(Debug, Clone)]
pub struct BatchView {
    /// The provider's batch id.
    pub id: String,
    /// The provider's own word for its status (`in_progress`): recorded and shown as it is.
    pub status: String,
    pub state: State,
    pub counts: Counts,
    /// Why the batch (or lines of its input) failed validation.
    pub errors: Vec<BatchError>,
    /// Where its results are fetched from ([`BatchService::download`]): OpenAI's output file
    /// id; an inline service's results location.
    pub output: Option<String>,
    /// Where its failed lines are, when the service keeps them apart (OpenAI's error file).
    pub error_output: Option<String>,
}

impl BatchView {
    pub fn ended(&self) -> Option<End> {
        match self.state {
            State::Ended(end) => Some(end),
            _ => None,
        }
    }

    /// What the checkpoint records of this batch as it was seen.
    pub fn seen(&self) -> BatchSeen<'_> {
        BatchSeen {
            id: &self.id,
            status: &self.status,
            completed: self.counts.completed,
            failed: self.counts.failed,
            total: self.counts.total,
            errors: &self.errors,
            output_file_id: self.output.as_deref(),
            error_file_id: self.error_output.as_deref(),
        }
    }

    /// The result locations to download, in order.
    pub fn results(&self) -> impl Iterator<Item = &str> {
        [&self.output, &self.error_output]
            .into_iter()
            .flatten()
            .map(String::as_str)
    }
}

/// What a part's batch is created from.
#[derive(Debug, Clone)]
pub enum Input {
    /// The id of the part's uploaded file ([`Intake::Upload`]).
    File(String),
    /// The part's encoded requests, one per line ([`Intake::Inline`]).
    Inline(Bytes),
}

/// A create call: one part's batch.
#[derive(Debug, Clone)]
pub struct Create {
    /// The part's number and the job's tag: a service that keeps metadata records them.
    pub part: i64,
    pub tag: String,
    /// The model of the part's rows (a part holds one model): a service that names the model in
    /// the create call rather than in each line (Mistral) sends it.
    pub model: String,
    pub endpoint: Endpoint,
    pub input: Input,
    /// Requests in an inline input (a lost create is matched by it); a file's part gives its
    /// rows, which the file's own id makes unneeded.
    pub requests: u64,
    /// When the part was planned (unix ms): a batch made for it is not older (less an hour for
    /// clocks that disagree).
    pub planned_at: i64,
    /// The batch ids the job's other parts recorded: never this part's (an inline service that
    /// matches a lost create by size and time leaves them out).
    pub known: Vec<String>,
}

/// What a look for an upload found.
#[derive(Debug, Clone, Default)]
pub struct FoundUpload {
    /// A complete upload of the part, reused.
    pub keep: Option<String>,
    /// Incomplete uploads under the part's name, deleted.
    pub deleted: Vec<String>,
}

impl FoundUpload {
    /// Sorts one page of listed files against a part's upload (`filename`, `bytes`) for a
    /// service that uploads through a Files API: the first complete one is kept, every other
    /// under that name (cut short, or a second copy) is deleted through `api`.
    pub async fn sort_page<A: FilesBatchesApi>(
        &mut self,
        api: &A,
        calls: &Calls,
        files: &[FileObject],
        (filename, bytes): (&str, u64),
    ) -> Step<()> {
        for f in files {
            if f.filename.as_deref() != Some(filename) {
                continue;
            }
            if self.keep.is_none() && f.bytes == Some(bytes) {
                self.keep = Some(f.id.clone());
            } else {
                calls.retried(|| api.delete_file(&f.id)).await?;
                self.deleted.push(f.id.clone());
            }
        }
        Ok(())
    }
}

/// What a look for a batch found.
#[derive(Debug, Clone)]
pub enum Found {
    /// It exists: record it.
    Batch(BatchView),
    /// It certainly does not: the create may be sent again.
    Nothing,
    /// The service cannot tell (an inline create matched by size and time, with several
    /// candidates): the run stops, saying how to resolve it.
    Ambiguous(String),
}

/// What a result line says about the request its `custom_id` names.
#[derive(Debug)]
pub enum LineOutcome<'a> {
    /// The request's HTTP answer: the family reads the body.
    Response { status: u16, body: &'a str },
    /// The service reports an error instead of an answer (expired, cancelled, refused).
    Error(String),
}

/// One line of a batch's results.
#[derive(Debug)]
pub struct ResultLine<'a> {
    pub custom_id: std::borrow::Cow<'a, str>,
    pub outcome: LineOutcome<'a>,
}

/// A provider's batch service (see the module's documentation).
pub trait BatchService: Send + Sync {
    /// How a part's requests reach the service.
    fn intake(&self) -> Intake;

    /// Whether a request of one row is sent under `promptmill-rows-SEQ-SEQ` (its place in the
    /// input, see `grouped.rs`) rather than the row's id: for a service whose `custom_id`s are
    /// stricter than row ids (Anthropic: `^[A-Za-z0-9_-]{1,64}$`). The seq is in the
    /// checkpoint, so the name survives a resume; collecting maps it back by seq.
    fn ids_by_seq(&self) -> bool {
        false
    }

    /// One request of a part, as its file or inline list holds it (a line, newline included):
    /// `body` is the request body (one row's, or a joined request of several).
    fn encode(&self, custom_id: &str, body: &str, endpoint: Endpoint) -> Result<Vec<u8>, String>;

    /// Uploads a part's file; returns the file id. Made once: see the module's documentation.
    fn upload(&self, filename: &str, content: Bytes)
        -> impl Future<Output = Result<String, ApiError>> + Send;

    /// After an upload whose answer was lost: the complete upload named `filename` of `bytes`
    /// bytes, if one exists, and incomplete ones deleted.
    fn find_upload(
        &self,
        calls: &Calls,
        filename: &str,
        bytes: u64,
    ) -> impl Future<Output = Step<FoundUpload>> + Send;

    /// Deletes an upload no batch will use.
    fn delete_upload(&self, id: &str) -> impl Future<Output = Result<(), ApiError>> + Send;

    /// Creates a part's batch. Made once: see the module's documentation.
    fn create(&self, request: &Create) -> impl Future<Output = Result<BatchView, ApiError>> + Send;

    /// After a create whose answer was lost: the batch it made, if it made one.
    fn find_created(&self, calls: &Calls, request: &Create) -> impl Future<Output = Step<Found>> + Send;

    /// Reads a batch.
    fn poll(&self, id: &str) -> impl Future<Output = Result<BatchView, ApiError>> + Send;

    /// Asks for a batch to be cancelled.
    fn cancel(&self, id: &str) -> impl Future<Output = Result<BatchView, ApiError>> + Send;

    /// Whether a status as recorded (`BatchView::status`) is a final one.
    fn has_ended(&self, status: &str) -> bool;

    /// Fetches results from `location` (one of [`BatchView::results`]), chunk by chunk.
    fn download<F>(&self, location: &str, each: F) -> impl Future<Output = anyhow::Result<()>> + Send
    where
        F: FnMut(&[u8]) -> anyhow::Result<()> + Send;

    /// Reads one result line; `None` when it is not one.
    fn read_line<'a>(&self, line: &'a str) -> Option<ResultLine<'a>>;
}
