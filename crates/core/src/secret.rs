//! The API key: read from the environment, held in a type that cannot print it.
//!
//! Its `Debug` and `Display` show `[redacted]`, so a key cannot reach a log line, an error or a
//! `{:?}` of a config by accident. The only way to the value is [`ApiKey::expose`], used in one
//! place: building the `Authorization` header, which is itself marked sensitive. Which other
//! headers hold credentials ([`is_secret_header`]) is decided here too.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Reads the key from the environment variable `var`; `None` when unset or blank.
    pub fn from_env(var: &str) -> Option<ApiKey> {
        let value = std::env::var(var).ok()?;
        let value = value.trim();
        (!value.is_empty()).then(|| ApiKey(value.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// `--header`s as `{:?}` shows them: the value of a header whose name looks like a credential
/// (see [`is_secret_header`]) is `[redacted]`. For the hand-written `Debug` of
/// every struct that holds headers.
pub struct RedactedHeaders<'a>(pub &'a [(String, String)]);

impl fmt::Debug for RedactedHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.0.iter().map(|(name, value)| {
            let value = if is_secret_header(name) {
                "[redacted]"
            } else {
                value.as_str()
            };
            (name, value)
        });
        f.debug_list().entries(shown).finish()
    }
}

/// Headers whose values look like credentials: never stored, never logged.
pub fn is_secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "key",
        "token",
        "secret",
        "auth",
        "password",
        "cookie",
        "credential",
        "signature",
    ]
    .iter()
    .any(|w| n.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_headers_are_redacted_and_others_shown() {
        let headers = vec![
            ("X-Api-Key".to_string(), "hdr-secret".to_string()),
            ("OpenAI-Organization".to_string(), "org-1".to_string()),
        ];
        let shown = format!("{:?}", RedactedHeaders(&headers));
        assert_eq!(
            shown,
            r#"[("X-Api-Key", "[redacted]"), ("OpenAI-Organization", "org-1")]"#
        );
    }

    #[test]
    fn the_key_never_formats() {
        let key = ApiKey("sk-very-secret".into());
        assert!(!format!("{key:?} {key}").contains("very-secret"));
    }
}
