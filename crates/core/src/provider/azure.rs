//! Azure OpenAI's part of the URLs: a base URL as Azure users give it taken apart into the
//! resource endpoint, the deployment and the API version ([`AzureUrl`]), and the checks of the
//! names that go into a URL as they are (a deployment in the path, an API version in the query).
//! Building each request's URL from them is `provider.rs`'s.

use super::DEFAULT_AZURE_API_VERSION;
use crate::error::ConfigError;

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
