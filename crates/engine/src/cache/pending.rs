//! A Batch API job's pending rows looked up in the response cache before its parts are
//! planned: a row whose request was answered before (by any job, live or batch) is settled
//! done from the cache, so it is never put into a batch and costs nothing, as a live run's hit
//! bypasses the limiter and the budget. The rest are planned into parts as before; the answers
//! the batches bring back are copied into the cache when the command ends (`keep.rs`).

use super::{answer_of, Cache, Scope};
use crate::store::Store;
use promptmill_core::family::Endpoint;
use promptmill_core::schema::Structured;

/// Rows looked up per read transaction, and settled per write transaction.
const PAGE: usize = 10_000;

/// Settles every pending row of `store` whose answer is in `cache` (keyed in `scope`, read by
/// `endpoint`'s family, judged by `structured`'s schema) done from the cache; returns how many.
pub fn settle_pending(
    store: &mut Store,
    cache: &Cache,
    scope: &Scope,
    endpoint: Endpoint,
    structured: Option<&Structured>,
) -> anyhow::Result<u64> {
    let family = endpoint.family();
    let (mut after, mut settled) = (0i64, 0u64);
    loop {
        let page = store.pending_keys(after, PAGE)?;
        let Some(last) = page.last().map(|r| r.seq) else {
            return Ok(settled);
        };
        let keys: Vec<_> = page
            .iter()
            .map(|r| scope.key_for(r.digest.as_ref(), r.request.as_bytes()))
            .collect();
        let hits: Vec<_> = page
            .iter()
            .zip(cache.lookup_many(&keys))
            .filter_map(|(row, raw)| Some((row.seq, answer_of(family, &raw?, structured)?)))
            .collect();
        settled += hits.len() as u64;
        if !hits.is_empty() {
            store.settle_cached(hits)?;
        }
        after = last;
    }
}
