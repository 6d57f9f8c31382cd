//! The response cache in the worker loop: each page of claimed rows is looked up as it is fed
//! ([`CacheUse::look_up`], on a blocking thread, keyed by the digests taken when the rows were
//! read), and a row whose request was answered before is settled done from the cache before it
//! meets the window, the limiter or the budget (no request, no tokens against TPM, no money).
//! Nothing is stored while the run sends: the answers the run was sent are copied from the
//! checkpoint into the cache when it ends (`crate::cache::keep`), which keeps the cache's
//! writes off the hot path. The cache itself (its file, its key) is `crate::cache`; a joined
//! request (several rows, embeddings) bypasses it.

use std::sync::Arc;

use crate::api::Transport;
use crate::cache::{Cache, Key, Scope};
use crate::stats::Stats;
use crate::store::writer::{Claimed, Outcome, OutcomeKind, StoreHandle};
use promptmill_core::family::Completion;

use super::{Pipeline, StopReason};

/// A run's cache and the scope its keys are made in (the job's family and request URL).
#[derive(Clone)]
pub struct CacheUse {
    pub cache: Arc<Cache>,
    pub scope: Scope,
}

impl CacheUse {
    /// The row's key: from the digest taken when it was read, else (a row read by an older
    /// promptmill) from its body.
    pub fn key(&self, row: &Claimed) -> Option<Key> {
        self.scope.key_for(row.digest.as_ref(), row.body.as_bytes())
    }

    /// The stored answer of each row of `page`, looked up on a blocking thread.
    pub(super) async fn look_up(&self, page: &[Claimed]) -> Vec<Option<String>> {
        let keys: Vec<Option<Key>> = page.iter().map(|r| self.key(r)).collect();
        let cache = Arc::clone(&self.cache);
        let n = keys.len();
        tokio::task::spawn_blocking(move || cache.lookup_many(&keys))
            .await
            .unwrap_or_else(|_| vec![None; n])
    }
}

impl<T: Transport> Pipeline<T> {
    /// Uses `cache` for this run's one-row requests.
    pub fn with_cache(mut self, cache: Option<CacheUse>) -> Pipeline<T> {
        self.cache = cache;
        self
    }

    /// A stored answer `raw`, read by the job's family as a fresh one is; an entry that no
    /// longer reads, would not be stored today, or breaks the job's `--schema`, is a miss.
    pub(super) fn cached_answer(&self, raw: &str) -> Option<Completion> {
        crate::cache::answer_of(
            self.settings.endpoint.family(),
            raw,
            self.settings.structured.as_ref(),
        )
    }

    /// Settles a row done from the cache: counted, with what it would have cost, and recorded
    /// (no attempt: nothing was sent).
    pub(super) async fn settle_cached(&self, row: &Claimed, answer: Completion, store: &StoreHandle) {
        if self.costing.active() {
            let model = match self.costing.sole_model() {
                Some(m) => m.to_string(),
                None => promptmill_core::tokens::body_model(&row.body).unwrap_or_default(),
            };
            let saved = self.costing.value_of(&model, answer.usage.billed());
            Stats::add(&self.stats.saved_nanos, (saved * 1e9).round() as u64);
        }
        let kind = OutcomeKind::Cached(answer);
        self.count(&row.id, &kind);
        let outcome = Outcome {
            seq: row.seq,
            attempts: 0,
            kind,
            tries: Vec::new(),
        };
        if store.finish(outcome).await.is_err() {
            self.control
                .abort(StopReason::Checkpoint("the checkpoint writer stopped".into()));
        }
    }
}
