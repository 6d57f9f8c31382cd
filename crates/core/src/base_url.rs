//! URLs built from the base URL, and the credentials a base URL may carry in its query.
//!
//! Every request URL (live endpoints, Azure deployment URLs, the Files and Batches calls, a
//! file's content) is the base URL with path segments appended by `url::Url`, so that the base
//! URL's query stays after the path (`https://gw/v1?tenant=a` → `https://gw/v1/chat/completions?tenant=a`)
//! and an id from a server cannot add a path or a query of its own (it is percent-encoded).
//!
//! A query parameter whose name looks like a credential (`key`, `token`, `sig`, …: see
//! [`is_secret_param`]) is treated like a credential `--header`: its value is never stored in the
//! checkpoint (the job keeps the URL without it and the parameter's name, see
//! [`withhold_secrets`]) and never shown ([`redact`]). Which base URLs are accepted at all is
//! decided in `config/target.rs`; which paths each provider uses, in `provider.rs`.

use crate::error::ConfigError;

/// What a withheld or redacted value is shown as.
pub const REDACTED: &str = "[redacted]";

/// Whether a query parameter's name looks like a credential: case-insensitive, also as part of a
/// longer name (`x-api-key`, `access_token`, `sv_sig`).
pub fn is_secret_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "key",
        "token",
        "sig",
        "secret",
        "password",
        "passwd",
        "pwd",
        "auth",
        "code",
        "credential",
        "session",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// `base` with `segments` appended to its path (an empty last segment, a trailing slash, is
/// dropped first) and `query` appended to its query. `base` must be an http(s) URL.
pub fn join(base: &url::Url, segments: &[&str], query: &[(&str, &str)]) -> Result<url::Url, ConfigError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| {
            ConfigError::new(
                "--base-url",
                format!("`{}` cannot have a path", redact(base.as_str())),
            )
        })?
        .pop_if_empty()
        .extend(segments);
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    Ok(url)
}

/// Parses a base URL already checked by `config::check_base_url`.
pub fn parse(base: &str) -> Result<url::Url, ConfigError> {
    url::Url::parse(base).map_err(|e| ConfigError::new("--base-url", format!("`{}`: {e}", redact(base))))
}

/// A URL (absolute or not, e.g. a `Location`) as it may be shown: the value of each
/// credential-like query parameter, and a password, replaced by `[redacted]`.
pub fn redact(text: &str) -> String {
    let text = match url::Url::parse(text) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("redacted"));
            url.to_string()
        }
        _ => text.to_string(),
    };
    let Some((head, rest)) = text.split_once('?') else {
        return text;
    };
    let (query, fragment) = match rest.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (rest, None),
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_param(&decoded(name)) => format!("{name}={REDACTED}"),
            _ => pair.to_string(),
        })
        .collect();
    let mut out = format!("{head}?{}", pairs.join("&"));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

fn decoded(name: &str) -> String {
    url::form_urlencoded::parse(name.as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_else(|| name.to_string())
}

/// The base URL as the checkpoint keeps it: without its credential-like query parameters, and
/// their names (in order, each once), which a later run must supply again.
pub fn withhold_secrets(base: &str) -> (String, Vec<String>) {
    let Ok(mut url) = url::Url::parse(base) else {
        return (base.to_string(), Vec::new());
    };
    if url.query().is_none() {
        return (base.to_string(), Vec::new());
    }
    let mut kept = Vec::new();
    let mut withheld: Vec<String> = Vec::new();
    for (name, value) in url.query_pairs() {
        if is_secret_param(&name) {
            if !withheld.contains(&name.to_string()) {
                withheld.push(name.into_owned());
            }
        } else {
            kept.push((name.into_owned(), value.into_owned()));
        }
    }
    if withheld.is_empty() {
        return (base.to_string(), withheld);
    }
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(&kept);
    }
    (url.as_str().to_string(), withheld)
}

/// The names in `withheld` that `base` has no query parameter for.
pub fn missing_params(base: &str, withheld: &[String]) -> Vec<String> {
    let present: Vec<String> = url::Url::parse(base)
        .map(|u| u.query_pairs().map(|(k, _)| k.into_owned()).collect())
        .unwrap_or_default();
    withheld
        .iter()
        .filter(|name| !present.contains(name))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_go_before_the_query_and_ids_cannot_escape_their_segment() {
        let base = url::Url::parse("http://h/v1?tenant=abc").unwrap();
        let url = join(&base, &["chat", "completions"], &[]).unwrap();
        assert_eq!(url.as_str(), "http://h/v1/chat/completions?tenant=abc");
        let slash = url::Url::parse("http://h/v1/").unwrap();
        let url = join(&slash, &["files", "../x?y=1", "content"], &[("api-version", "v")]).unwrap();
        assert_eq!(
            url.as_str(),
            "http://h/v1/files/..%2Fx%3Fy=1/content?api-version=v"
        );
    }

    #[test]
    fn credential_like_names_are_secret_in_any_case_and_inside_longer_names() {
        for name in [
            "key",
            "API_KEY",
            "apikey",
            "x-api-key",
            "token",
            "access_token",
            "sig",
            "Signature",
            "secret",
            "password",
            "auth",
            "code",
        ] {
            assert!(is_secret_param(name), "{name}");
        }
        for name in ["tenant", "api-version", "region", "deployment"] {
            assert!(!is_secret_param(name), "{name}");
        }
    }

    #[test]
    fn shown_urls_hide_credential_values_and_keep_the_rest() {
        assert_eq!(
            redact("https://h/v1?tenant=a&api_key=sk-1&sig=zz#f"),
            "https://h/v1?tenant=a&api_key=[redacted]&sig=[redacted]#f"
        );
        assert_eq!(redact("/v2/chat?token=t"), "/v2/chat?token=[redacted]");
        assert_eq!(redact("https://u:pw@h/x"), "https://u:redacted@h/x");
        assert_eq!(redact("https://h/v1"), "https://h/v1");
    }

    #[test]
    fn the_stored_base_url_keeps_ordinary_parameters_and_names_the_withheld_ones() {
        let (stored, names) = withhold_secrets("https://h/v1?tenant=a&key=sk-1&KEY=2&sig=s");
        assert_eq!(stored, "https://h/v1?tenant=a");
        assert_eq!(names, ["key", "KEY", "sig"]);
        let (stored, names) = withhold_secrets("https://h/v1?token=t");
        assert_eq!((stored.as_str(), names.len()), ("https://h/v1", 1));
        assert_eq!(withhold_secrets("https://h/v1").0, "https://h/v1");
        assert_eq!(missing_params("https://h/v1?tenant=a", &names), ["token"]);
        assert!(missing_params("https://h/v1?token=x", &names).is_empty());
    }
}
