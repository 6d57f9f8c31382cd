//! A job's first run looks its pending rows up in the response cache before the cost line: the
//! rows answered before (by any job, live or batch) are settled done from the cache first, so
//! that the line and `--confirm` price only the rows that will be sent. Without it, a
//! `--restart` after a template edit printed the price of every row and then sent only the
//! changed ones. Rows answered in the cache while a live run goes (by another job sharing it)
//! are still found by the pipeline's own lookups, page by page; a Batch API job told that its
//! rows were looked up here does not look them up again before it plans parts.

use crate::config::SendConfig;
use promptmill_core::job::JobRecord;
use promptmill_engine::cache::pending::settle_pending;
use promptmill_engine::output;
use promptmill_engine::pipeline::CacheUse;
use promptmill_engine::stats::Stats;
use promptmill_engine::store::Store;

/// What the rows settled from the cache before the first request came to.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Answered {
    pub(super) rows: u64,
    /// The price of the requests they did not send, in dollars (`None`: not priced).
    pub(super) saved: Option<f64>,
}

impl Answered {
    /// Counts them in the run's statistics, as the pipeline counts a hit: done in this run, from
    /// the cache. (The run's `before` counts them pending, as they were when it started.)
    pub(super) fn count_in(&self, stats: &Stats) {
        Stats::add(&stats.done, self.rows);
        Stats::add(&stats.cached, self.rows);
        if let Some(saved) = self.saved {
            Stats::add(&stats.saved_nanos, (saved * 1e9).round() as u64);
        }
    }
}

/// Settles the pending rows the job's cache answers (of the `pending` ones the run claims from)
/// and says what they were, and where the others `go` ("to send"). Nothing is looked up with
/// `--no-cache` or for a family that joins rows.
pub(super) fn settle(
    store: &mut Store,
    cache: Option<&CacheUse>,
    job: &JobRecord,
    send: &SendConfig,
    pending: u64,
    go: &str,
) -> anyhow::Result<Answered> {
    let Some(cache) = cache else {
        return Ok(Answered::default());
    };
    // An output the run would refuse is refused before any row changes in the checkpoint.
    output::check_writable(&job.output)?;
    output::check_replaceable(store, &job.output, send.overwrite)?;
    let rows = settle_in(store, cache, job, send, pending, go)?;
    if rows == 0 {
        return Ok(Answered::default());
    }
    // A first run: every done row of the job is one of these.
    let saved = promptmill_engine::budget::job_saved(store, job)?;
    Ok(Answered { rows, saved })
}

/// Settles the pending rows `cache` answers (read by the job's family, judged by its schema)
/// done from it, says so unless `--quiet` (and where the rest of `pending` `go`), and returns
/// how many. Batch mode's lookup before it plans parts is this one too.
pub(in crate::commands) fn settle_in(
    store: &mut Store,
    cache: &CacheUse,
    job: &JobRecord,
    send: &SendConfig,
    pending: u64,
    go: &str,
) -> anyhow::Result<u64> {
    let structured = super::structured(job, &send.limits(Some(&job.send)));
    let rows = settle_pending(
        store,
        &cache.cache,
        &cache.scope,
        job.endpoint,
        structured.as_ref(),
    )?;
    if rows > 0 && !send.quiet {
        eprintln!(
            "promptmill: {rows} rows answered from the response cache {}; {} {go}",
            cache.cache.path().display(),
            pending.saturating_sub(rows)
        );
    }
    Ok(rows)
}
