//! `run --mode batch`: a job's rows through the provider's asynchronous Batch API instead of one
//! request each. The rows, checkpoint, output and totals are the live mode's; only the transport
//! differs. [`driver`] plans parts, submits them, waits for them and collects their results into
//! the checkpoint, talking only to a [`BatchService`] ([`service`]: upload-then-create or inline
//! creation, provider-neutral states, result lines). [`openai`] is OpenAI's (and Azure's) Files +
//! Batches protocol, over the calls of [`client`] and the objects of [`wire`]; [`anthropic`] is
//! Anthropic's Message Batches, requests inline, over the same HTTP client; [`mistral`] is
//! Mistral's batch jobs (an upload, then `/batch/jobs`); and `chosen` picks one of them for a job's provider; `results` reads a
//! finished batch's results; `grouped` names the rows of a line that carries several; `calls`
//! counts and retries the calls. The parts' records live in `store/parts.rs`.

pub mod anthropic;
mod api_error;
pub mod calls;
mod chosen;
pub mod client;
pub mod driver;
mod grouped;
pub mod mistral;
pub mod openai;
mod results;
pub mod service;
pub mod wire;

pub use anthropic::AnthropicBatches;
pub use api_error::ApiError;
pub use chosen::JobBatches;
pub use client::{FilesBatchesApi, HttpBatchApi};
pub use driver::{Driver, DriverSettings, Ending};
pub use openai::OpenAiBatches;
pub use service::BatchService;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_grouped;
#[cfg(test)]
mod tests_inline;
