//! Which kind of API a job talks to, and what that decides: the URL of each request and the
//! header that carries the key.
//!
//! - [`Provider::OpenAi`]: anything that speaks the OpenAI API (OpenAI, vLLM, Ollama, LiteLLM,
//!   llama.cpp's server…): `POST {base}/chat/completions`, `Authorization: Bearer KEY`.
//! - [`Provider::Azure`]: Azure OpenAI's deployment API:
//!   `POST {endpoint}/openai/deployments/{deployment}/chat/completions?api-version=V`,
//!   `api-key: KEY`. Its Batch API lives at `{endpoint}/openai/files` and `…/openai/batches`
//!   (with `?api-version=V`); its Batch input lines name `/chat/completions` and, as `model`,
//!   the deployment.
//! - [`Provider::Anthropic`]: Anthropic's API: `POST {base}/v1/messages`, `x-api-key: KEY` and
//!   `anthropic-version: V` on every request. Only the Messages family goes there, and only
//!   there ([`Vendor`]).
//!
//! - [`Provider::Mistral`]: Mistral's API: `POST {base}/chat/completions` and
//!   `{base}/embeddings` under `https://api.mistral.ai/v1`, `Authorization: Bearer KEY`; the
//!   other OpenAI families are refused before anything is sent. Its Batch API is
//!   `{base}/batch/jobs` over the same `{base}/files`.
//! - [`Provider::Groq`], [`Provider::Together`], [`Provider::Gemini`]: OpenAI-format providers at
//!   their own address, `Authorization: Bearer KEY`; every difference between them (base URL,
//!   families served, batch purpose, limits, line shape, status words) is a row of the table in
//!   `provider/compatible.rs`, which [`Provider::dialect`] looks up.
//!
//! The provider is stored in the job (old checkpoints, made before it existed, read as OpenAI),
//! so `resume` sends the same way. The deployment decides which model answers, so a later run
//! may not change it; the API version only decides the wire format's revision and may change.
//! Flags and environment variables are read in `config.rs`; this module only knows URLs. Taking
//! an Azure base URL apart, and checking the names that go into its URLs, is
//! `provider/azure.rs`'s.

mod azure;
pub mod compatible;

use serde::Deserialize;

use crate::base_url;
use crate::error::ConfigError;
use crate::family::{AzureSupport, Vendor};
pub use crate::job::settings::Provider;
use crate::job::settings::{
    ANTHROPIC_BATCH_MAX_BYTES, ANTHROPIC_BATCH_MAX_ROWS, BATCH_MAX_BYTES, BATCH_MAX_ROWS,
};
use crate::job::Endpoint;

pub use self::azure::{check_api_version, check_deployment, AzureUrl};
pub use self::compatible::{Dialect, LineShape, StatusWords};

/// `--provider`: the kind of API, as the command line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// The OpenAI API and every server compatible with it.
    #[default]
    Openai,
    /// Azure OpenAI (deployment URLs, `api-key` header).
    Azure,
    /// Anthropic's Messages API (`x-api-key` and `anthropic-version` headers).
    Anthropic,
    /// Mistral's API (OpenAI's chat and embeddings formats, Bearer key, its own Batch API).
    Mistral,
    /// Groq's OpenAI-compatible API (`compatible::GROQ`).
    Groq,
    /// Together's OpenAI-compatible API (`compatible::TOGETHER`).
    Together,
    /// Gemini's OpenAI-compatible layer (`compatible::GEMINI`).
    Gemini,
}

impl ProviderKind {
    /// The environment variable that holds the key unless `--api-key-env` names another.
    pub fn default_key_env(self) -> &'static str {
        match self {
            ProviderKind::Openai => "OPENAI_API_KEY",
            ProviderKind::Azure => "AZURE_OPENAI_API_KEY",
            ProviderKind::Anthropic => "ANTHROPIC_API_KEY",
            ProviderKind::Mistral => "MISTRAL_API_KEY",
            ProviderKind::Groq | ProviderKind::Together | ProviderKind::Gemini => {
                self.compatible().map_or("OPENAI_API_KEY", |d| d.key_env)
            }
        }
    }

    /// The OpenAI-format provider this kind names, if it is one of the table's
    /// (`provider/compatible.rs`) besides OpenAI itself.
    pub fn compatible(self) -> Option<&'static Dialect> {
        match self {
            ProviderKind::Groq => Some(&compatible::GROQ),
            ProviderKind::Together => Some(&compatible::TOGETHER),
            ProviderKind::Gemini => Some(&compatible::GEMINI),
            ProviderKind::Openai | ProviderKind::Azure | ProviderKind::Anthropic | ProviderKind::Mistral => {
                None
            }
        }
    }

    /// The most requests and bytes one batch may carry at this kind of provider (see
    /// [`Provider::batch_limits`]).
    pub fn batch_limits(self) -> (u64, u64) {
        match (self, self.compatible()) {
            (_, Some(d)) => (d.max_rows, d.max_bytes),
            (ProviderKind::Anthropic, None) => (ANTHROPIC_BATCH_MAX_ROWS, ANTHROPIC_BATCH_MAX_BYTES),
            _ => (BATCH_MAX_ROWS, BATCH_MAX_BYTES),
        }
    }
}

/// The `anthropic-version` sent unless `--api-version` names another.
pub const DEFAULT_ANTHROPIC_VERSION: &str = "2023-06-01";

/// Anthropic's API, when neither `--base-url` nor `ANTHROPIC_BASE_URL` names another.
pub const DEFAULT_ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";

/// Azure's GA data-plane inference API version used when none is given.
/// Mistral's API, when neither `--base-url` nor `MISTRAL_BASE_URL` names another.
pub const DEFAULT_MISTRAL_BASE_URL: &str = "https://api.mistral.ai/v1";

pub const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";

/// The header that carries the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyHeader {
    /// `Authorization: Bearer KEY`
    Bearer,
    /// `api-key: KEY` (Azure)
    ApiKey,
    /// `x-api-key: KEY` (Anthropic)
    XApiKey,
}

impl KeyHeader {
    pub fn name(self) -> &'static str {
        match self {
            KeyHeader::Bearer => "authorization",
            KeyHeader::ApiKey => "api-key",
            KeyHeader::XApiKey => "x-api-key",
        }
    }
}

impl Provider {
    pub fn key_header(&self) -> KeyHeader {
        match self {
            Provider::OpenAi => KeyHeader::Bearer,
            Provider::Mistral | Provider::Groq | Provider::Together | Provider::Gemini => KeyHeader::Bearer,
            Provider::Azure { .. } => KeyHeader::ApiKey,
            Provider::Anthropic { .. } => KeyHeader::XApiKey,
        }
    }

    /// Headers the provider puts on every request besides the key (Anthropic's
    /// `anthropic-version`); a `--header` of the same name replaces one.
    pub fn fixed_headers(&self) -> Vec<(String, String)> {
        match self {
            Provider::Anthropic { version } => vec![("anthropic-version".into(), version.clone())],
            _ => vec![],
        }
    }

    /// The headers of every request: [`Provider::fixed_headers`], then the user's `--header`s
    /// (which replace a fixed one of the same name).
    pub fn headers_with(&self, user: Vec<(String, String)>) -> Vec<(String, String)> {
        let mut all = self.fixed_headers();
        all.retain(|(name, _)| !user.iter().any(|(u, _)| u.eq_ignore_ascii_case(name)));
        all.extend(user);
        all
    }

    /// Whose families this provider sends.
    pub fn vendor(&self) -> Vendor {
        match self {
            Provider::OpenAi | Provider::Azure { .. } => Vendor::OpenAi,
            Provider::Mistral | Provider::Groq | Provider::Together | Provider::Gemini => Vendor::OpenAi,
            Provider::Anthropic { .. } => Vendor::Anthropic,
        }
    }

    /// The row of the OpenAI-format table (`provider/compatible.rs`) this provider's Files and
    /// Batches calls follow: OpenAI's for OpenAI and Azure (whose URLs `provider.rs` builds),
    /// none for Anthropic.
    pub fn dialect(&self) -> Option<&'static Dialect> {
        match self {
            Provider::OpenAi | Provider::Azure { .. } => Some(&compatible::OPENAI),
            Provider::Groq => Some(&compatible::GROQ),
            Provider::Together => Some(&compatible::TOGETHER),
            Provider::Gemini => Some(&compatible::GEMINI),
            // Their batch services are their own (`batch/anthropic.rs`, `batch/mistral.rs`).
            Provider::Anthropic { .. } | Provider::Mistral => None,
        }
    }

    /// The table's row of a provider other than OpenAI and Azure that speaks OpenAI's format.
    fn compatible(&self) -> Option<&'static Dialect> {
        match self {
            Provider::Groq | Provider::Together | Provider::Gemini => self.dialect(),
            _ => None,
        }
    }

    /// Refuses a family this provider does not run through its Batch API, before anything is
    /// sent, saying which it runs.
    pub fn check_batch_endpoint(&self, endpoint: Endpoint) -> Result<(), ConfigError> {
        match self.compatible() {
            Some(d) if !d.batch.contains(&endpoint) => Err(ConfigError::new(
                "--endpoint",
                format!(
                    "{}'s Batch API does not run the {} endpoint; it runs {} (use --mode live for {})",
                    d.title,
                    endpoint.family().name(),
                    d.batch_names(),
                    endpoint.family().name()
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The full URL of `endpoint` under `base_url` (already checked by `config::check_base_url`),
    /// built by path segments: the base URL's query stays after the path.
    pub fn endpoint_url(&self, base_url: &str, endpoint: Endpoint) -> Result<reqwest::Url, ConfigError> {
        let base = base_url::parse(base_url)?;
        let path = endpoint_segments(endpoint);
        let family = endpoint.family();
        if family.vendor() != self.vendor() {
            let fix = match family.vendor() {
                Vendor::Anthropic => "pass --provider anthropic",
                Vendor::OpenAi => "use --endpoint messages (the default) with --provider anthropic",
            };
            return Err(ConfigError::new(
                "--endpoint",
                format!(
                    "the {} endpoint is not served by --provider {}; {fix}",
                    family.name(),
                    self.kind_name()
                ),
            ));
        }
        if let Some(d) = self.compatible() {
            if !d.live.contains(&endpoint) {
                return Err(ConfigError::new(
                    "--endpoint",
                    format!(
                        "{} does not serve the {} endpoint; pass --endpoint with one of: {}",
                        d.title,
                        family.name(),
                        d.live_names()
                    ),
                ));
            }
        }
        match self {
            Provider::Mistral if !matches!(endpoint, Endpoint::Chat | Endpoint::Embeddings) => Err(ConfigError::new(
                "--endpoint",
                format!(
                    "Mistral does not serve the {} endpoint ({}); use --endpoint chat or --endpoint embeddings with --provider mistral",
                    family.name(),
                    endpoint.path()
                ),
            )),
            Provider::OpenAi | Provider::Mistral | Provider::Groq | Provider::Together | Provider::Gemini => {
                base_url::join(&base, &path, &[])
            }
            Provider::Anthropic { .. } => {
                let mut segments = vec!["v1"];
                segments.extend(path);
                base_url::join(&base, &segments, &[])
            }
            Provider::Azure { .. } if endpoint.family().on_azure() == AzureSupport::No => Err(ConfigError::new(
                "--endpoint",
                format!(
                    "Azure OpenAI does not serve {} under a deployment, which is where promptmill sends; use --endpoint chat with --provider azure",
                    endpoint.path()
                ),
            )),
            Provider::Azure {
                deployment,
                api_version,
            } => {
                let mut segments = vec!["openai", "deployments", deployment.as_str()];
                segments.extend(path);
                base_url::join(&base, &segments, &[("api-version", api_version)])
            }
        }
    }

    /// What a command asks for that differs from the stored provider in a way a resume may not
    /// accept (a different kind, or a different deployment). An API version change is allowed.
    pub fn changes_from(&self, stored: &Provider) -> Vec<String> {
        match (stored, self) {
            (Provider::OpenAi, Provider::OpenAi) => vec![],
            (Provider::Mistral, Provider::Mistral) => vec![],
            (Provider::Groq, Provider::Groq)
            | (Provider::Together, Provider::Together)
            | (Provider::Gemini, Provider::Gemini) => vec![],
            // The version only decides the wire format's revision, like Azure's api-version.
            (Provider::Anthropic { .. }, Provider::Anthropic { .. }) => vec![],
            (Provider::Azure { deployment: was, .. }, Provider::Azure { deployment: now, .. }) => {
                if was == now {
                    vec![]
                } else {
                    vec![format!("--deployment (was {was:?}, now {now:?})")]
                }
            }
            _ => vec![format!(
                "--provider (was {}, now {})",
                stored.kind_name(),
                self.kind_name()
            )],
        }
    }

    /// The URL of a Files or Batches API call (`segments` are `["files"]`,
    /// `["batches", id, "cancel"]`…): OpenAI's `{base}/files…`, or Azure's
    /// `{endpoint}/openai/files…?api-version=V` (files and batches belong to the resource, not to
    /// a deployment). An id from the server stays one segment (percent-encoded). Callers may
    /// append query pairs.
    pub fn batch_api_url(&self, base: &reqwest::Url, segments: &[&str]) -> Result<reqwest::Url, ConfigError> {
        match self {
            Provider::OpenAi | Provider::Anthropic { .. } => base_url::join(base, segments, &[]),
            Provider::Mistral | Provider::Groq | Provider::Together | Provider::Gemini => {
                base_url::join(base, segments, &[])
            }
            Provider::Azure { api_version, .. } => {
                let mut all = vec!["openai"];
                all.extend_from_slice(segments);
                base_url::join(base, &all, &[("api-version", api_version)])
            }
        }
    }

    /// The endpoint as a Batch input line's `url` and a batch's `endpoint` name it: OpenAI's
    /// `/v1/chat/completions`, Azure's `/chat/completions` (no `/v1`).
    pub fn batch_endpoint(&self, endpoint: Endpoint) -> &'static str {
        match self {
            Provider::OpenAi | Provider::Anthropic { .. } => endpoint.batch_url(),
            Provider::Mistral | Provider::Groq | Provider::Together | Provider::Gemini => {
                endpoint.batch_url()
            }
            Provider::Azure { .. } => endpoint.path(),
        }
    }

    /// The model every Batch input line's `body.model` must name when the provider decides it
    /// rather than the request: Azure runs a batch on the deployment the lines name. The stored
    /// request keeps its model (pricing and token counting use it).
    pub fn batch_model(&self) -> Option<&str> {
        match self {
            Provider::OpenAi | Provider::Anthropic { .. } => None,
            Provider::Mistral | Provider::Groq | Provider::Together | Provider::Gemini => None,
            Provider::Azure { deployment, .. } => Some(deployment),
        }
    }

    /// The most requests and bytes one batch may carry at this provider: OpenAI's (and Azure's)
    /// 50,000 lines and 200 MB a file, Anthropic's 100,000 requests and 256 MB a Message Batch.
    /// The OpenAI-format providers' are their row of `provider/compatible.rs`.
    /// `--batch-max-rows` and `--batch-max-bytes` only lower them.
    pub fn batch_limits(&self) -> (u64, u64) {
        if let Some(d) = self.compatible() {
            return (d.max_rows, d.max_bytes);
        }
        match self {
            Provider::OpenAi | Provider::Azure { .. } => (BATCH_MAX_ROWS, BATCH_MAX_BYTES),
            Provider::Anthropic { .. } => (ANTHROPIC_BATCH_MAX_ROWS, ANTHROPIC_BATCH_MAX_BYTES),
            // Mistral's own limits could not be confirmed: OpenAI's file limits are kept.
            Provider::Mistral | Provider::Groq | Provider::Together | Provider::Gemini => {
                (BATCH_MAX_ROWS, BATCH_MAX_BYTES)
            }
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Azure { .. } => "azure",
            Provider::Anthropic { .. } => "anthropic",
            Provider::Mistral => "mistral",
            Provider::Groq | Provider::Together | Provider::Gemini => {
                self.compatible().map_or("openai", |d| d.name)
            }
        }
    }
}

/// The path segments of `endpoint` under the base URL (`chat`, `completions`).
fn endpoint_segments(endpoint: Endpoint) -> Vec<&'static str> {
    endpoint.path().split('/').filter(|s| !s.is_empty()).collect()
}

#[cfg(test)]
mod tests;
