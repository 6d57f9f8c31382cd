//! What a cached answer is keyed by: the SHA-256 of the family, where requests go, and the
//! request body's [`Digest`]: the SHA-256 of the body in a canonical form without the fields
//! that do not change the answer's meaning.
//!
//! The digest is taken once, when the row is read ([`digest`], from the body the preparer
//! built, before it is written out), and kept in the checkpoint (`rows.digest`): the sending
//! side never parses a body again to key it. The key adds the scope to it ([`Scope::key_of`]),
//! so a job whose base URL changes keys the same rows anew.
//!
//! The canonical body is the request parsed to a JSON value and written again with every
//! object's keys sorted (the workspace turns on serde_json's `preserve_order`, so a `Map` keeps
//! insertion order: sorting is done here, not left to the map). Numbers keep their source text
//! (`arbitrary_precision`), so `1` and `1.0` are different requests, as they are on the wire.
//! `stream`, `user`, `metadata` and `store` are removed from the top level, and `"n": 1` is no `n`. The key never sees
//! the API key or any header: only the family, the URL (without credential-like query
//! parameters) and the body.

use rustc_hash::{FxHashMap, FxHashSet};

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use promptmill_core::base_url::is_secret_param;
use promptmill_core::job::Endpoint;

/// Top-level request fields that do not change what the answer means.
pub const IGNORED_FIELDS: &[&str] = &["stream", "user", "metadata", "store"];

/// A cache key: SHA-256 of the scope and the body's digest.
pub type Key = [u8; 32];

/// A request body's digest: SHA-256 of its canonical form (see the module's documentation).
pub type Digest = [u8; 32];

/// Tags the key's derivation: a change of it makes every older entry a miss.
const KEY_TAG: &[u8] = b"promptmill-cache-2\0";

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

    /// The family's name, as answers are stored under it.
    pub fn family(&self) -> &'static str {
        self.family
    }

    /// The key of a request body whose digest is `digest`.
    pub fn key_of(&self, digest: &Digest) -> Key {
        let mut hash = Sha256::new();
        hash.update(KEY_TAG);
        hash.update(self.family.as_bytes());
        hash.update(b"\0");
        hash.update(self.target.as_bytes());
        hash.update(b"\0");
        hash.update(digest);
        hash.finalize().into()
    }

    /// A row's key: from the digest taken when it was read, else (a row read by an older
    /// promptmill) from its `body`.
    pub fn key_for(&self, digest: Option<&Digest>, body: &[u8]) -> Option<Key> {
        match digest {
            Some(d) => Some(self.key_of(d)),
            None => self.key(body),
        }
    }

    /// The key of a request `body` (parsed here: for rows read before digests were kept);
    /// `None` when the body is not one object.
    pub fn key(&self, body: &[u8]) -> Option<Key> {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Some(self.key_of(&digest(&map))),
            _ => None,
        }
    }
}

/// The digest of a request body: its canonical form without [`IGNORED_FIELDS`] (and `n` when
/// it is 1), hashed.
pub fn digest(body: &Map<String, Value>) -> Digest {
    let mut keys: Vec<&String> = body
        .iter()
        .filter(|(k, v)| !ignored(k, v))
        .map(|(k, _)| k)
        .collect();
    keys.sort_unstable();
    let mut out = Vec::with_capacity(512);
    write_object(body, keys, &mut out);
    Sha256::digest(&out).into()
}

/// Whether a top-level member leaves the key: one of [`IGNORED_FIELDS`], or `"n": 1` (the
/// default, as if not given).
fn ignored(name: &str, value: &Value) -> bool {
    IGNORED_FIELDS.contains(&name) || (name == "n" && value.as_u64() == Some(1))
}

/// Numbers the repeats of a request in one input: the first row with a body keeps its digest,
/// the k-th repeat of it (k ≥ 1) gets the digest of (digest, k). So rows that repeat a prompt
/// to get several samples each have an answer of their own, and a later run of the same input
/// finds each one's. Remembers 8 bytes of each digest (a collision only makes a row a repeat:
/// a miss, never a wrong answer): a set of every digest seen, about 9 bytes a row, and a count
/// only for the ones seen again, so a million distinct prompts hold about 20 MB here, not the
/// 35 MB (and 53 MB while it grew) of a count for each.
#[derive(Default)]
pub struct Repeats {
    seen: FxHashSet<u64>,
    again: FxHashMap<u64, u32>,
}

impl Repeats {
    pub fn number(&mut self, digest: Digest) -> Digest {
        let mut short = [0u8; 8];
        short.copy_from_slice(&digest[..8]);
        let short = u64::from_le_bytes(short);
        if self.seen.insert(short) {
            return digest;
        }
        let again = self.again.entry(short).or_insert(0);
        *again = again.saturating_add(1);
        let k = *again;
        let mut hash = Sha256::new();
        hash.update(b"sample\0");
        hash.update(digest);
        hash.update(k.to_le_bytes());
        hash.finalize().into()
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

/// The members `keys` of `map`, in that order, as a JSON object.
fn write_object(map: &Map<String, Value>, keys: Vec<&String>, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, k) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_scalar(k, out);
        out.push(b':');
        if let Some(v) = map.get(k) {
            write_canonical(v, out);
        }
    }
    out.push(b'}');
}

/// `value` as JSON with every object's keys in sorted order.
fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            write_object(map, keys, out);
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

/// A string or scalar as serde_json writes it (writing to a `Vec` cannot fail).
fn write_scalar<T: serde::Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    let _ = serde_json::to_writer(&mut *out, value);
}
