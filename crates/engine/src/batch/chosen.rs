//! The registry of batch services: [`JobBatches::for_provider`] picks the protocol a job's
//! provider speaks (OpenAI's Files + Batches for OpenAI, Azure and the OpenAI-format providers of
//! `provider/compatible.rs`, Anthropic's Message Batches for Anthropic, Mistral's batch jobs for
//! Mistral) over one HTTP client, and [`JobBatches`] is a [`BatchService`] that hands
//! each call to it. The trait's `async fn`s make it unusable as a trait object, hence an enum;
//! a new service is one variant here and one arm in each method.

use bytes::Bytes;

use super::anthropic::AnthropicBatches;
use super::api_error::ApiError;
use super::calls::{Calls, Step};
use super::client::HttpBatchApi;
use super::mistral::MistralBatches;
use super::openai::OpenAiBatches;
use super::service::{BatchService, BatchView, Create, Found, FoundUpload, Intake, ResultLine};
use promptmill_core::family::Endpoint;
use promptmill_core::provider::Provider;

/// The batch service of a job.
pub enum JobBatches {
    OpenAi(OpenAiBatches<HttpBatchApi>),
    Anthropic(AnthropicBatches),
    Mistral(MistralBatches),
}

impl JobBatches {
    /// The service `provider` speaks, over `api`.
    pub fn for_provider(api: HttpBatchApi, provider: &Provider) -> JobBatches {
        match provider {
            Provider::Anthropic { .. } => JobBatches::Anthropic(AnthropicBatches::new(api)),
            Provider::Mistral => JobBatches::Mistral(MistralBatches::new(api)),
            Provider::OpenAi
            | Provider::Azure { .. }
            | Provider::Groq
            | Provider::Together
            | Provider::Gemini => JobBatches::OpenAi(OpenAiBatches::new(api, provider.clone())),
        }
    }
}

/// Calls `$call` on whichever service `$self` holds.
macro_rules! each {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            JobBatches::OpenAi($s) => $call,
            JobBatches::Anthropic($s) => $call,
            JobBatches::Mistral($s) => $call,
        }
    };
}

impl BatchService for JobBatches {
    fn intake(&self) -> Intake {
        each!(self, s => s.intake())
    }

    fn ids_by_seq(&self) -> bool {
        each!(self, s => s.ids_by_seq())
    }

    fn encode(&self, custom_id: &str, body: &str, endpoint: Endpoint) -> Result<Vec<u8>, String> {
        each!(self, s => s.encode(custom_id, body, endpoint))
    }

    async fn upload(&self, filename: &str, content: Bytes) -> Result<String, ApiError> {
        each!(self, s => s.upload(filename, content).await)
    }

    async fn find_upload(&self, calls: &Calls, filename: &str, bytes: u64) -> Step<FoundUpload> {
        each!(self, s => s.find_upload(calls, filename, bytes).await)
    }

    async fn delete_upload(&self, id: &str) -> Result<(), ApiError> {
        each!(self, s => s.delete_upload(id).await)
    }

    async fn create(&self, request: &Create) -> Result<BatchView, ApiError> {
        each!(self, s => s.create(request).await)
    }

    async fn find_created(&self, calls: &Calls, request: &Create) -> Step<Found> {
        each!(self, s => s.find_created(calls, request).await)
    }

    async fn poll(&self, id: &str) -> Result<BatchView, ApiError> {
        each!(self, s => s.poll(id).await)
    }

    async fn cancel(&self, id: &str) -> Result<BatchView, ApiError> {
        each!(self, s => s.cancel(id).await)
    }

    fn has_ended(&self, status: &str) -> bool {
        each!(self, s => s.has_ended(status))
    }

    async fn download<F>(&self, location: &str, each: F) -> anyhow::Result<()>
    where
        F: FnMut(&[u8]) -> anyhow::Result<()> + Send,
    {
        each!(self, s => s.download(location, each).await)
    }

    fn read_line<'a>(&self, line: &'a str) -> Option<ResultLine<'a>> {
        each!(self, s => s.read_line(line))
    }
}
