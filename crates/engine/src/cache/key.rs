//! What a cached answer is keyed by: the SHA-256 of the family, where requests go, and the
//! request body in a canonical form without the fields that do not change the answer's meaning.
//!
//! The canonical body is the request parsed to a JSON value and written again with every
//! object's keys sorted (the workspace turns on serde_json's `preserve_order`, so a `Map` keeps
//! insertion order: sorting is done here, not left to the map). Numbers keep their source text
//! (`arbitrary_precision`), so `1` and `1.0` are different requests, as they are on the wire.
//! `stream`, `user`, `metadata` and `store` are removed from the top level. A body asking for
//! several samples (`n` other than 1) has no key: such rows bypass the cache. The key never sees
//! the API key or any header: only the family, the URL (without credential-like query
//! parameters) and the body.

use serde_json::Value;
use sha2::{Digest, Sha256};

use promptmill_core::base_url::is_secret_param;
use promptmill_core::job::Endpoint;

/// Top-level request fields that do not change what the answer means.
pub const IGNORED_FIELDS: &[&str] = &["stream", "user", "metadata", "store"];

/// A cache key: SHA-256 of the scope and the canonical body.
pub type Key = [u8; 32];

/// Where a job's requests go, as the key sees it: the family and the normalised request URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    family: &'static str,
    target: String,
}

impl Scope {
    /// The scope of requests of `endpoint` sent to `url` (the family's request URL, or the
    /// Azure deployment's).
    pub fn new(endpoint: Endpoint, url: &url::Url) -> Scope {
        Scope {
            family: endpoint.family().name(),
            target: normalise(url),
        }
    }

    /// The key of a request `body`; `None` when the body is not one object, or asks for several
    /// samples (`n` other than 1): those are never cached.
    pub fn key(&self, body: &[u8]) -> Option<Key> {
        let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(body) else {
            return None;
        };
        if let Some(n) = map.get("n") {
            if n.as_u64() != Some(1) {
                return None;
            }
            // `n: 1` asks for what no `n` asks for.
            map.remove("n");
        }
        for field in IGNORED_FIELDS {
            map.remove(*field);
        }
        let mut canonical = String::with_capacity(body.len());
        write_canonical(&Value::Object(map), &mut canonical);
        let mut hash = Sha256::new();
        hash.update(b"promptmill-cache-1\0");
        hash.update(self.family.as_bytes());
        hash.update(b"\0");
        hash.update(self.target.as_bytes());
        hash.update(b"\0");
        hash.update(canonical.as_bytes());
        Some(hash.finalize().into())
    }
}

/// A request URL as the key sees it: scheme, host (lower case, as `url` keeps it) and port
/// only when not the scheme's default, the path without a trailing slash, and the query's
/// parameters sorted, without those whose names look like credentials.
pub fn normalise(url: &url::Url) -> String {
    let mut out = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        out.push_str(&format!(":{port}"));
    }
    out.push_str(url.path().trim_end_matches('/'));
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| !is_secret_param(name))
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    pairs.sort();
    for (i, (name, value)) in pairs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// `value` as JSON with every object's keys in sorted order.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(k) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}
