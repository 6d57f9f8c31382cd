//! The API key: read from the environment, held in a type that cannot print it.
//!
//! Its `Debug` and `Display` show `[redacted]`, so a key cannot reach a log line, an error or a
//! `{:?}` of a config by accident. The only way to the value is [`ApiKey::expose`], used in one
//! place: building the `Authorization` header, which is itself marked sensitive.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_never_formats() {
        let key = ApiKey("sk-very-secret".into());
        assert!(!format!("{key:?} {key}").contains("very-secret"));
    }
}
