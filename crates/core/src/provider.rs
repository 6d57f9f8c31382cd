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
//!
//! The provider is stored in the job (old checkpoints, made before it existed, read as OpenAI),
//! so `resume` sends the same way. The deployment decides which model answers, so a later run
//! may not change it; the API version only decides the wire format's revision and may change.
//! Flags and environment variables are read in `config.rs`; this module only knows URLs.

use serde::Deserialize;

use crate::base_url;
use crate::error::ConfigError;
use crate::family::AzureSupport;
pub use crate::job::settings::Provider;
use crate::job::Endpoint;

/// `--provider`: the kind of API, as the command line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// The OpenAI API and every server compatible with it.
    #[default]
    Openai,
    /// Azure OpenAI (deployment URLs, `api-key` header).
    Azure,
}

impl ProviderKind {
    /// The environment variable that holds the key unless `--api-key-env` names another.
    pub fn default_key_env(self) -> &'static str {
        match self {
            ProviderKind::Openai => "OPENAI_API_KEY",
            ProviderKind::Azure => "AZURE_OPENAI_API_KEY",
        }
    }
}

/// Azure's GA data-plane inference API version used when none is given.
pub const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";

/// The header that carries the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyHeader {
    /// `Authorization: Bearer KEY`
    Bearer,
    /// `api-key: KEY` (Azure)
    ApiKey,
}

impl KeyHeader {
    pub fn name(self) -> &'static str {
        match self {
            KeyHeader::Bearer => "authorization",
            KeyHeader::ApiKey => "api-key",
        }
    }
}

impl Provider {
    pub fn key_header(&self) -> KeyHeader {
        match self {
            Provider::OpenAi => KeyHeader::Bearer,
            Provider::Azure { .. } => KeyHeader::ApiKey,
        }
    }

    /// The full URL of `endpoint` under `base_url` (already checked by `config::check_base_url`),
    /// built by path segments: the base URL's query stays after the path.
    pub fn endpoint_url(&self, base_url: &str, endpoint: Endpoint) -> Result<reqwest::Url, ConfigError> {
        let base = base_url::parse(base_url)?;
        let path = endpoint_segments(endpoint);
        match self {
            Provider::OpenAi => base_url::join(&base, &path, &[]),
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
            Provider::OpenAi => base_url::join(base, segments, &[]),
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
            Provider::OpenAi => endpoint.batch_url(),
            Provider::Azure { .. } => endpoint.path(),
        }
    }

    /// The model every Batch input line's `body.model` must name when the provider decides it
    /// rather than the request: Azure runs a batch on the deployment the lines name. The stored
    /// request keeps its model (pricing and token counting use it).
    pub fn batch_model(&self) -> Option<&str> {
        match self {
            Provider::OpenAi => None,
            Provider::Azure { deployment, .. } => Some(deployment),
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Azure { .. } => "azure",
        }
    }
}

/// An Azure base URL taken apart. Accepted forms: the resource endpoint
/// (`https://NAME.openai.azure.com`), or a deployment URL as the Azure portal shows it
/// (`…/openai/deployments/DEP`, optionally followed by `/chat/completions` or `/completions`
/// and `?api-version=V`). The endpoint path itself always comes from the job; query parameters
/// other than `api-version` stay in the endpoint and go on every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureUrl {
    /// The resource endpoint, without a trailing slash, query or deployment path.
    pub endpoint: String,
    pub deployment: Option<String>,
    pub api_version: Option<String>,
}

impl AzureUrl {
    pub fn parse(raw: &str) -> Result<AzureUrl, ConfigError> {
        let mut url = reqwest::Url::parse(raw.trim())
            .map_err(|e| ConfigError::new("--base-url", format!("`{raw}` is not a URL ({e})")))?;
        let api_version = url
            .query_pairs()
            .find(|(k, _)| k == "api-version")
            .map(|(_, v)| v.into_owned())
            .filter(|v| !v.is_empty());
        // Other parameters (a gateway's `subscription-key`, say) stay on every request's URL.
        let others: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "api-version")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.set_query(None);
        url.set_fragment(None);
        // With one trailing slash, so that `…/openai/deployments/` is found (and refused).
        let path = format!("{}/", url.path().trim_end_matches('/'));
        let (prefix, deployment) = match path.find("/openai/deployments/") {
            None => {
                let path = path.trim_end_matches('/');
                (path.strip_suffix("/openai").unwrap_or(path).to_string(), None)
            }
            Some(at) => {
                let rest = path[at + "/openai/deployments/".len()..].trim_end_matches('/');
                let rest = rest
                    .strip_suffix("/chat/completions")
                    .or_else(|| rest.strip_suffix("/completions"))
                    .unwrap_or(rest);
                if rest.is_empty() || rest.contains('/') {
                    return Err(ConfigError::new(
                        "--base-url",
                        format!(
                            "`{raw}`: expected https://NAME.openai.azure.com or …/openai/deployments/DEPLOYMENT"
                        ),
                    ));
                }
                (path[..at].to_string(), Some(rest.to_string()))
            }
        };
        url.set_path(&prefix);
        let mut endpoint = url.as_str().trim_end_matches('/').to_string();
        if !others.is_empty() {
            url.query_pairs_mut().extend_pairs(&others);
            endpoint = url.to_string();
        }
        Ok(AzureUrl {
            endpoint,
            deployment,
            api_version,
        })
    }
}

/// The path segments of `endpoint` under the base URL (`chat`, `completions`).
fn endpoint_segments(endpoint: Endpoint) -> Vec<&'static str> {
    endpoint.path().split('/').filter(|s| !s.is_empty()).collect()
}

/// Whether `word` is safe in a URL path or query as it is: letters, digits, `-`, `_` and `.`.
fn url_word(word: &str) -> bool {
    !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// A deployment name goes into a URL path: Azure allows letters, digits, `-`, `_` and `.`.
pub fn check_deployment(name: &str, flag: &'static str) -> Result<(), ConfigError> {
    if url_word(name) {
        Ok(())
    } else {
        Err(ConfigError::new(
            flag,
            format!("`{name}` is not a deployment name (letters, digits, `-`, `_`, `.`)"),
        ))
    }
}

/// An API version goes into the query: a date, optionally `-preview`, or `v1`-like words.
pub fn check_api_version(version: &str) -> Result<(), ConfigError> {
    if url_word(version) {
        Ok(())
    } else {
        Err(ConfigError::new(
            "--api-version",
            format!("`{version}` is not an API version (e.g. {DEFAULT_AZURE_API_VERSION})"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn azure(deployment: &str) -> Provider {
        Provider::Azure {
            deployment: deployment.into(),
            api_version: "2024-10-21".into(),
        }
    }

    #[test]
    fn openai_urls_append_the_endpoint_path() {
        let url = Provider::OpenAi
            .endpoint_url("https://api.openai.com/v1", Endpoint::Chat)
            .unwrap();
        assert_eq!(url.as_str(), "https://api.openai.com/v1/chat/completions");
        assert_eq!(Provider::OpenAi.key_header(), KeyHeader::Bearer);
        let url = Provider::OpenAi
            .endpoint_url("http://h/v1?tenant=abc", Endpoint::Completions)
            .unwrap();
        assert_eq!(url.as_str(), "http://h/v1/completions?tenant=abc");
    }

    #[test]
    fn azure_urls_name_the_deployment_and_the_api_version() {
        let p = azure("gpt4o-prod");
        let url = p
            .endpoint_url("https://res.openai.azure.com", Endpoint::Chat)
            .unwrap();
        assert_eq!(
            url.as_str(),
            "https://res.openai.azure.com/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"
        );
        let url = p
            .endpoint_url("http://127.0.0.1:8/", Endpoint::Completions)
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8/openai/deployments/gpt4o-prod/completions?api-version=2024-10-21"
        );
        assert_eq!(p.key_header(), KeyHeader::ApiKey);
    }

    #[test]
    fn batch_api_urls_are_under_the_base_or_the_azure_resource() {
        let url = |p: &Provider, base: &str, segments: &[&str]| {
            p.batch_api_url(&reqwest::Url::parse(base).unwrap(), segments)
                .unwrap()
                .to_string()
        };
        assert_eq!(
            url(&Provider::OpenAi, "https://api.openai.com/v1/", &["files"]),
            "https://api.openai.com/v1/files"
        );
        assert_eq!(
            url(
                &Provider::OpenAi,
                "https://gw/v1?tenant=t",
                &["files", "f-1", "content"]
            ),
            "https://gw/v1/files/f-1/content?tenant=t"
        );
        let p = azure("batch-4o");
        assert_eq!(
            url(&p, "https://res.openai.azure.com/", &["files"]),
            "https://res.openai.azure.com/openai/files?api-version=2024-10-21"
        );
        assert_eq!(
            url(&p, "http://127.0.0.1:8", &["batches", "batch_1", "cancel"]),
            "http://127.0.0.1:8/openai/batches/batch_1/cancel?api-version=2024-10-21"
        );
        assert_eq!(
            url(
                &p,
                "https://res.openai.azure.com",
                &["files", "file-1", "content"]
            ),
            "https://res.openai.azure.com/openai/files/file-1/content?api-version=2024-10-21"
        );
    }

    #[test]
    fn batch_lines_name_the_endpoint_and_model_as_the_provider_wants() {
        assert_eq!(
            Provider::OpenAi.batch_endpoint(Endpoint::Chat),
            "/v1/chat/completions"
        );
        assert_eq!(
            Provider::OpenAi.batch_endpoint(Endpoint::Completions),
            "/v1/completions"
        );
        assert_eq!(Provider::OpenAi.batch_model(), None);
        let p = azure("batch-4o");
        assert_eq!(p.batch_endpoint(Endpoint::Chat), "/chat/completions");
        assert_eq!(p.batch_model(), Some("batch-4o"));
    }

    #[test]
    fn azure_base_urls_may_be_the_endpoint_or_a_deployment_url() {
        let plain = AzureUrl::parse("https://res.openai.azure.com/").unwrap();
        assert_eq!(plain.endpoint, "https://res.openai.azure.com");
        assert_eq!((plain.deployment, plain.api_version), (None, None));

        let with_openai = AzureUrl::parse("https://res.openai.azure.com/openai").unwrap();
        assert_eq!(with_openai.endpoint, "https://res.openai.azure.com");

        let portal = AzureUrl::parse(
            "https://res.openai.azure.com/openai/deployments/dep-1/chat/completions?api-version=2025-01-01-preview",
        )
        .unwrap();
        assert_eq!(portal.endpoint, "https://res.openai.azure.com");
        assert_eq!(portal.deployment.as_deref(), Some("dep-1"));
        assert_eq!(portal.api_version.as_deref(), Some("2025-01-01-preview"));

        let gateway = AzureUrl::parse("https://gw.example/azure/openai/deployments/d").unwrap();
        assert_eq!(gateway.endpoint, "https://gw.example/azure");
        assert_eq!(gateway.deployment.as_deref(), Some("d"));

        assert!(AzureUrl::parse("https://res/openai/deployments/").is_err());
        assert!(AzureUrl::parse("https://res/openai/deployments/a/b/c").is_err());
        let gateway = AzureUrl::parse(
            "https://gw.example/openai/deployments/d/chat/completions?api-version=v&subscription-key=k",
        )
        .unwrap();
        assert_eq!(gateway.endpoint, "https://gw.example/?subscription-key=k");
        assert_eq!(gateway.api_version.as_deref(), Some("v"));
        let url = azure("d")
            .endpoint_url(&gateway.endpoint, Endpoint::Chat)
            .unwrap();
        assert_eq!(
            url.as_str(),
            "https://gw.example/openai/deployments/d/chat/completions?subscription-key=k&api-version=2024-10-21"
        );
    }

    #[test]
    fn a_resume_may_change_the_api_version_but_not_the_deployment_or_the_kind() {
        let stored = azure("a");
        let newer = Provider::Azure {
            deployment: "a".into(),
            api_version: "2025-01-01-preview".into(),
        };
        assert!(newer.changes_from(&stored).is_empty());
        assert_eq!(
            azure("b").changes_from(&stored),
            vec![r#"--deployment (was "a", now "b")"#]
        );
        assert_eq!(
            Provider::OpenAi.changes_from(&stored),
            vec!["--provider (was azure, now openai)"]
        );
    }

    #[test]
    fn names_that_go_into_the_url_are_checked() {
        assert!(check_deployment("gpt-4o_mini.1", "--deployment").is_ok());
        assert!(check_deployment("a/b", "--deployment").is_err());
        assert!(check_deployment("", "--deployment").is_err());
        assert!(check_api_version("2024-10-21").is_ok());
        assert!(check_api_version("2024&x=1").is_err());
    }

    #[test]
    fn old_job_records_without_a_provider_read_as_openai() {
        #[derive(Deserialize)]
        struct Old {
            #[serde(default)]
            provider: Provider,
        }
        let old: Old = serde_json::from_str("{}").unwrap();
        assert_eq!(old.provider, Provider::OpenAi);
        let json = serde_json::to_string(&azure("d")).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"azure","deployment":"d","api_version":"2024-10-21"}"#
        );
        assert_eq!(serde_json::from_str::<Provider>(&json).unwrap(), azure("d"));
    }
}
