//! The response cache as the dry run sees it: which rows a run would answer from it, and so
//! neither send nor pay for.
//!
//! A run looks each row's request up in the cache (`pipeline/cached.rs`, and the Batch plan)
//! by the digest of its body, numbered among the input's repeats of it, in the scope of the
//! job's family and request URL. The dry run takes the same digests as it reads the rows and
//! asks the cache, read only, for a chunk of them at a time on the counting threads; a row
//! found there leaves the token counts, the cost and the time. An answer is taken as a run takes
//! it (`cache::answer_of`: it reads, and it fits the job's `--schema`). It opens only a cache that
//! exists (a dry run creates none), and a family that joins rows (embeddings) bypasses the
//! cache as a run does.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::cache::key::{Digest, Scope};
use crate::cache::Cache;
use promptmill_core::job::Endpoint;
use promptmill_core::provider::Provider;
use promptmill_core::schema::Structured;

/// The response cache a run of the estimated job would use, and where its requests would go.
pub struct CacheProbe {
    cache: Cache,
    provider: Provider,
    base_url: String,
    /// The scope of the job's endpoint (the same for every chunk): `None` when its answers are
    /// never cached (a family that joins rows) or its URL cannot be made.
    scope: OnceLock<Option<Scope>>,
}

impl CacheProbe {
    /// The cache at `path` for requests to `base_url` through `provider`; `None` when there is
    /// no such file, or (after one warning) when it cannot be read.
    pub fn open(path: &Path, provider: Provider, base_url: String) -> Option<CacheProbe> {
        if !path.is_file() {
            return None;
        }
        Some(CacheProbe {
            cache: Cache::open_or_warn(path, true)?,
            provider,
            base_url,
            scope: OnceLock::new(),
        })
    }

    pub fn path(&self) -> &Path {
        self.cache.path()
    }

    /// For each digest, whether the cache holds an answer a run of `endpoint` would take
    /// (judged by `structured`'s schema, as a run judges it).
    pub(super) fn found(
        &self,
        endpoint: Endpoint,
        digests: &[Option<Digest>],
        structured: Option<&Structured>,
    ) -> Vec<bool> {
        let scope = self.scope.get_or_init(|| {
            let url = self.provider.endpoint_url(&self.base_url, endpoint).ok()?;
            (endpoint.family().max_rows_per_request() == 1).then(|| Scope::new(endpoint, &url))
        });
        let Some(scope) = scope else {
            return vec![false; digests.len()];
        };
        let keys: Vec<_> = digests.iter().map(|d| d.map(|d| scope.key_of(&d))).collect();
        let family = endpoint.family();
        self.cache
            .lookup_many(&keys)
            .into_iter()
            .map(|raw| raw.is_some_and(|raw| crate::cache::answer_of(family, &raw, structured).is_some()))
            .collect()
    }
}

/// The rows of an input found in the response cache.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedRows {
    pub cache: PathBuf,
    pub rows: u64,
}
