//! Profiles: named sets of settings in a TOML config file, chosen with `--profile NAME`.
//!
//! This module owns finding the file (`--config FILE`, else
//! `$XDG_CONFIG_HOME/promptmill/config.toml`, else `~/.config/promptmill/config.toml`), reading
//! it strictly (an unknown key is an error naming its line) and refusing anything that looks
//! like a credential: the file never holds a key, only the name of the variable that does. It
//! knows nothing of flags: `config/with_profile.rs` lays a profile under the command line (a
//! flag given wins).
//!
//! ```toml
//! [profiles.groq]
//! base_url = "https://api.groq.com/openai/v1"
//! api_key_env = "GROQ_API_KEY"
//! model = "llama-3.1-8b-instant"
//! rpm = 30
//! headers = ["X-Title: promptmill"]
//! ```

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use promptmill_core::job::settings::ProfileUse;
use toml::Spanned;

use promptmill_core::provider::ProviderKind;

/// A profile's settings, each `None` where the profile does not set it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `openai` or `azure`, as `--provider`.
    pub provider: Option<ProviderKind>,
    pub base_url: Option<Spanned<String>>,
    pub api_key_env: Option<Spanned<String>>,
    pub deployment: Option<Spanned<String>>,
    pub api_version: Option<Spanned<String>>,
    pub model: Option<Spanned<String>>,
    pub concurrency: Option<usize>,
    pub rpm: Option<u32>,
    pub tpm: Option<u32>,
    pub max_attempts: Option<u32>,
    /// `Name: value`, as `--header`; never a credential.
    #[serde(default)]
    pub headers: Vec<Spanned<String>>,
    /// A LiteLLM price map; a relative path is relative to the config file.
    pub prices: Option<PathBuf>,
    pub price_in: Option<f64>,
    pub price_out: Option<f64>,
}

/// The file's shape: `[profiles.NAME]` tables and nothing else.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    profiles: BTreeMap<String, Settings>,
}

/// A profile read from its file.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub file: PathBuf,
    pub settings: Settings,
}

/// Why a profile could not be used; every message names the file (and the line, when there is
/// one).
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{}: cannot read the config file of --profile {profile}", file.display())]
    Read {
        file: PathBuf,
        profile: String,
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", file.display())]
    At {
        file: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}: has no profile `{name}` ({known})", file.display())]
    Missing {
        file: PathBuf,
        name: String,
        known: String,
    },
    #[error("--profile: no config file: set $XDG_CONFIG_HOME or $HOME, or pass --config FILE")]
    NoHome,
}

/// The config file: `explicit` (`--config`), else the XDG location.
pub fn config_path(explicit: Option<&Path>) -> Result<PathBuf, ProfileError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let var = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let base = var("XDG_CONFIG_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".config")))
        .ok_or(ProfileError::NoHome)?;
    Ok(base.join("promptmill").join("config.toml"))
}

/// Reads profile `name` from `file`, refusing unknown keys and anything that looks like a key.
pub fn load(file: &Path, name: &str) -> Result<Profile, ProfileError> {
    let text = std::fs::read_to_string(file).map_err(|source| ProfileError::Read {
        file: file.to_path_buf(),
        profile: name.to_string(),
        source,
    })?;
    let at = |span: Option<Range<usize>>, message: String| ProfileError::At {
        file: file.to_path_buf(),
        line: span.map_or(1, |s| line_of(&text, s.start)),
        message,
    };
    let parsed: ConfigFile = toml::from_str(&text).map_err(|e| {
        let message = match unknown_field(e.message()) {
            Some(field) if field != "api_key_env" && promptmill_core::secret::is_secret_header(field) => {
                format!("`{field}` is not allowed; {NO_KEYS}")
            }
            _ => e.message().trim().to_string(),
        };
        at(e.span(), message)
    })?;
    // Every profile is checked, not only the one used: a key in the file is a leak either way.
    for (profile, settings) in &parsed.profiles {
        if let Some((span, why)) = credential_in(settings) {
            return Err(at(Some(span), format!("profile `{profile}`: {why}; {NO_KEYS}")));
        }
    }
    let known = parsed.profiles.keys().cloned().collect::<Vec<_>>();
    let mut profiles = parsed.profiles;
    let settings = profiles.remove(name).ok_or_else(|| ProfileError::Missing {
        file: file.to_path_buf(),
        name: name.to_string(),
        known: if known.is_empty() {
            "it has none".to_string()
        } else {
            format!("it has: {}", known.join(", "))
        },
    })?;
    let mut settings = settings;
    if let Some(prices) = &settings.prices {
        if prices.is_relative() {
            let dir = file.parent().unwrap_or(Path::new("."));
            settings.prices = Some(dir.join(prices));
        }
    }
    Ok(Profile {
        name: name.to_string(),
        file: std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf()),
        settings,
    })
}

/// How a refused credential's message ends.
const NO_KEYS: &str =
    "the config file never holds a key: name the environment variable that does with `api_key_env = \"NAME\"`";

/// The field named by serde's "unknown field `X`, expected …" message.
fn unknown_field(message: &str) -> Option<&str> {
    message.strip_prefix("unknown field `")?.split('`').next()
}

/// The first value of `s` that looks like a credential, with why.
fn credential_in(s: &Settings) -> Option<(Range<usize>, String)> {
    for header in &s.headers {
        let (name, value) = header.get_ref().split_once(':').unwrap_or((header.get_ref(), ""));
        if promptmill_core::secret::is_secret_header(name.trim()) && !value.trim().is_empty() {
            return Some((
                header.span(),
                format!("the header `{}` looks like a credential", name.trim()),
            ));
        }
    }
    let texts = [
        ("base_url", &s.base_url),
        ("api_key_env", &s.api_key_env),
        ("deployment", &s.deployment),
        ("api_version", &s.api_version),
        ("model", &s.model),
    ];
    let headers = s.headers.iter().map(|h| ("headers", h));
    texts
        .into_iter()
        .filter_map(|(field, v)| v.as_ref().map(|v| (field, v)))
        .chain(headers)
        .find(|(_, v)| looks_like_key(v.get_ref()))
        .map(|(field, v)| (v.span(), format!("`{field}` holds what looks like an API key")))
}

/// Whether a value looks like an API key or a bearer token: a word with a prefix providers
/// give their keys, `Bearer …`, or credentials inside a URL.
fn looks_like_key(value: &str) -> bool {
    const PREFIXES: [&str; 7] = ["sk-", "sk_", "gsk_", "xai-", "pplx-", "AIza", "hf_"];
    let bearer = value.split_whitespace().any(|w| w.eq_ignore_ascii_case("bearer"));
    let in_url =
        url::Url::parse(value.trim()).is_ok_and(|u| !u.username().is_empty() || u.password().is_some());
    let prefixed = value
        .split(|c: char| c.is_whitespace() || c == ':')
        .any(|w| PREFIXES.iter().any(|p| w.starts_with(p)));
    bearer || in_url || prefixed
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, name: &str) -> Result<Profile, ProfileError> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(&file, text).unwrap();
        load(&file, name)
    }

    #[test]
    fn a_profile_is_read_with_its_settings() {
        let p = load_text(
            "[profiles.groq]\nbase_url = \"https://api.groq.com/openai/v1\"\napi_key_env = \"GROQ_API_KEY\"\nrpm = 30\nprices = \"p.json\"\n",
            "groq",
        )
        .unwrap();
        assert_eq!(p.settings.rpm, Some(30));
        assert_eq!(p.settings.api_key_env.unwrap().into_inner(), "GROQ_API_KEY");
        assert!(p.settings.prices.unwrap().ends_with("p.json"));
    }

    #[test]
    fn an_unknown_key_names_its_line() {
        let err = load_text("[profiles.a]\nrpm = 3\nrpn = 4\n", "a")
            .unwrap_err()
            .to_string();
        assert!(err.contains("config.toml:3: unknown field `rpn`"), "{err}");
    }

    #[test]
    fn keys_are_refused_naming_the_line() {
        let err = load_text("[profiles.a]\nrpm = 3\napi_key = \"sk-abc\"\n", "a")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.toml:3: `api_key` is not allowed; the config file never holds a key"),
            "{err}"
        );
        let err = load_text("[profiles.a]\nheaders = [\n  \"X-Api-Key: abc\",\n]\n", "a")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(":3: profile `a`: the header `X-Api-Key` looks like"),
            "{err}"
        );
        let err = load_text("[profiles.a]\n\napi_key_env = \"sk-proj-123\"\n", "a")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(":3: profile `a`: `api_key_env` holds what looks like an API key"),
            "{err}"
        );
        let err = load_text("[profiles.a]\nbase_url = \"https://u:p@h/v1\"\n", "a")
            .unwrap_err()
            .to_string();
        assert!(err.contains(":2:"), "{err}");
    }

    #[test]
    fn a_missing_profile_lists_the_others() {
        let err = load_text("[profiles.a]\n[profiles.b]\n", "c")
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("has no profile `c` (it has: a, b)"), "{err}");
    }

    #[test]
    fn ordinary_values_are_not_keys() {
        for v in [
            "OPENAI_API_KEY",
            "https://api.openai.com/v1",
            "gpt-4o-mini",
            "X-Title: skim",
        ] {
            assert!(!looks_like_key(v), "{v}");
        }
        for v in ["sk-abc", "Bearer abc", "Authorization: Bearer x", "gsk_1"] {
            assert!(looks_like_key(v), "{v}");
        }
    }
}
