//! The response cache in a Batch API run: before parts are planned, the pending rows whose
//! requests were answered before are settled done from the cache (never put into a batch, never
//! paid for); when the run ends, the answers its batches brought back are copied into the
//! cache, as a live run's are. The cache's file and key are `promptmill_engine::cache`'s.

use crate::config::SendConfig;
use promptmill_core::job::JobRecord;
use promptmill_engine::cache::keep::Copy;
use promptmill_engine::pipeline::CacheUse;
use promptmill_engine::store::{Counts, Store};

/// Settles the pending rows answered in `cache`; returns `before` as the driver should count
/// from (those rows done) and how many they were.
pub(super) fn settle(
    store: &mut Store,
    cache: &CacheUse,
    job: &JobRecord,
    send: &SendConfig,
    before: &Counts,
) -> anyhow::Result<(Counts, u64)> {
    let go = "go to the Batch API";
    let hits =
        crate::commands::execute::cached_first::settle_in(store, cache, job, send, before.pending, go)?;
    Ok((counted_with(before, hits), hits))
}

/// `before` with `hits` of its pending rows settled done from the cache.
pub(super) fn counted_with(before: &Counts, hits: u64) -> Counts {
    let mut counted = before.clone();
    counted.done += hits;
    counted.cached += hits;
    counted.pending = counted.pending.saturating_sub(hits);
    counted
}

/// Starts copying the run's answers into `cache` (while the output is written).
pub(super) fn start_copy(store: &Store, cache: Option<CacheUse>) -> Option<Copy> {
    cache.and_then(|c| Copy::start(store, c.cache, c.scope))
}
