//! Sending a job live: what is pending (in a scope) goes through the worker loop, then the
//! output and the totals are written. Shared by `run`, `resume` and the calibration sample.
//! [`execute`] reads like the plot: prepare (limits, the target, prices, the cost line, a
//! Batch API job handed to `batch`), send (the runtime, the writer thread, the pipeline), end
//! (the outcome and its exit code from `ending`, the results, the message). What comes before
//! the first request is `execute/before_send.rs`'s.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::ending::{self, disk_full_stop, export_cmd, write_results, Ending};
use super::logging::init_logging;
use super::run::Scope;
use super::shell_quote;
use crate::config::{CacheChoice, SendConfig, SendLimits};
use promptmill_core::job::JobRecord;
use promptmill_core::retry::Backoff;
use promptmill_core::schema::Schema;
use promptmill_core::secret::ApiKey;
use promptmill_engine::api::http::{HttpSettings, HttpTransport};
use promptmill_engine::budget::Costing;
use promptmill_engine::cache::keep::Copy;
use promptmill_engine::cache::{Cache, Scope as CacheScope};
use promptmill_engine::joblock::RunLock;
use promptmill_engine::limits::Limits;
use promptmill_engine::output;
use promptmill_engine::pipeline::first_answers;
use promptmill_engine::pipeline::CacheUse;
use promptmill_engine::pipeline::{Control, Pipeline, PipelineSettings, Structured};
use promptmill_engine::progress::{self, Baseline, Display};
use promptmill_engine::stats::Stats;
use promptmill_engine::store::{explain, writer, Counts, Store};
use promptmill_engine::summary::{CacheTotals, CostTotals, SchemaTotals, Summary};

mod before_send;
pub(super) mod cached_first;

use before_send::prepare;

/// Sends what is pending (in `scope`), then writes the output and the totals. `_lock` is held
/// until the run has written everything (a parameter is dropped after every local, the store
/// among them: see `joblock`).
pub fn execute(
    mut store: Store,
    mut job: JobRecord,
    send: SendConfig,
    _lock: RunLock,
    scope: Scope,
) -> anyhow::Result<i32> {
    init_logging(send.verbose);
    let db_path = store.path().to_path_buf();
    let ready = match prepare(&mut store, &mut job, &send, scope, &db_path)? {
        ControlFlow::Break(code) => return Ok(code),
        ControlFlow::Continue(ready) => ready,
    };
    if scope == Scope::Sample {
        store.claim_sample_only();
    }
    let resume_cmd = format!(
        "promptmill resume {}",
        shell_quote(&db_path.display().to_string())
    );
    if scope == Scope::All {
        output::check_writable(&job.output)?;
        output::check_replaceable(&store, &job.output, send.overwrite)?;
    }
    let url = job.provider.endpoint_url(&job.base_url, job.endpoint)?;
    // The endpoint as messages show it (credential-like query values redacted).
    let shown_url = promptmill_core::base_url::redact(url.as_str());
    let run_id = store.start_run().map_err(|e| explain(&db_path, e))?;
    let started = Instant::now();
    let stats = Arc::new(Stats::default());
    if let Some(answered) = &ready.answered {
        answered.count_in(&stats);
    }
    let control = Control::new();
    let costing = Arc::new(ready.costing);
    let before = ready.before;
    let sent = send_live(
        store,
        run_id,
        &job,
        &send,
        Live {
            url,
            limits: ready.limits,
            key: ready.key,
            headers: ready.headers,
            cache: ready.cache,
            before: &before,
            costing: &costing,
            stats: &stats,
            control: &control,
            resume_cmd: &resume_cmd,
        },
    )?;
    let (store, cache) = match sent {
        ControlFlow::Break(code) => return Ok(code),
        ControlFlow::Continue(sent) => sent,
    };
    // The answers of this run (and of a killed one before it) go into the cache while the
    // output is written.
    let copy = cache.and_then(|c| Copy::start(&store, c.cache, c.scope));
    let settled = settle(
        &store,
        &job,
        &send,
        Settle {
            run_id,
            scope,
            started,
            db_path: &db_path,
            resume_cmd: &resume_cmd,
            shown_url: &shown_url,
            costing: &costing,
            stats: &stats,
            control: &control,
        },
    );
    if let Some(copy) = copy {
        copy.finish(&store);
    }
    settled
}

/// What [`settle`] needs of the run that sent.
struct Settle<'a> {
    run_id: i64,
    scope: Scope,
    started: Instant,
    db_path: &'a Path,
    resume_cmd: &'a str,
    shown_url: &'a str,
    costing: &'a Costing,
    stats: &'a Stats,
    control: &'a Control,
}

/// After the last request: the outcome and its exit code, the totals (the ledger's, now that
/// every request has settled), the output and the summary written, and the message.
fn settle(store: &Store, job: &JobRecord, send: &SendConfig, run: Settle<'_>) -> anyhow::Result<i32> {
    let (scope, db_path, costing) = (run.scope, run.db_path, run.costing);
    // With --limit, the rows past it are not this run's to settle.
    let (after, claimable) = store.counts_and_claimable()?;
    let (outcome, code) = ending::live_outcome(run.control.reason(), scope == Scope::Sample, &claimable);
    // The ledger, now that every request has settled: the summary and the stop message print
    // the same amounts.
    let spend = costing.spend();
    let split = match costing.active() {
        true => promptmill_engine::budget::job_cost_split(store, job)?,
        false => None,
    };
    let cost = costing.active().then(|| CostTotals {
        job: spend.total(),
        run: spend.run,
        budget: job.max_cost,
        split,
    });
    let mut summary = Summary::new(
        outcome,
        &after,
        &run.stats.snapshot(),
        run.started.elapsed(),
        cost,
        (scope == Scope::All).then(|| job.output.path.clone()),
        db_path.to_path_buf(),
    );
    summary.cache = cache_totals(
        store,
        job,
        &after,
        run.stats.cached.load(std::sync::atomic::Ordering::Relaxed),
    )?;
    summary.schema = schema_totals(
        store,
        job,
        run.stats.reasked.load(std::sync::atomic::Ordering::Relaxed),
    )?;
    if let Err(e) = write_results(store, run.run_id, job, send, &summary, scope == Scope::All) {
        return disk_full_stop(
            e,
            db_path,
            "write the output with",
            &export_cmd(db_path, &job.output),
        );
    }
    Ending {
        job,
        db: db_path,
        resume_cmd: run.resume_cmd,
        shown_url: run.shown_url,
        spend: &spend,
        after: &after,
        beyond_limit: after.pending.saturating_sub(claimable.pending),
        whole_job: scope == Scope::All,
        quiet: send.quiet,
    }
    .explain(run.control.reason(), code);
    Ok(code)
}

/// The rows done from the response cache and what they saved, when there are some.
pub(super) fn cache_totals(
    store: &Store,
    job: &JobRecord,
    after: &Counts,
    run_rows: u64,
) -> anyhow::Result<Option<CacheTotals>> {
    if after.cached == 0 {
        return Ok(None);
    }
    Ok(Some(CacheTotals {
        rows: after.cached,
        run_rows,
        saved: promptmill_engine::budget::job_saved(store, job)?,
    }))
}

/// A `--schema` job's rows by outcome, and the answers this run asked again (`reasked`).
pub(super) fn schema_totals(
    store: &Store,
    job: &JobRecord,
    reasked: u64,
) -> anyhow::Result<Option<SchemaTotals>> {
    if job.spec.schema.is_none() {
        return Ok(None);
    }
    Ok(Some(SchemaTotals {
        rows: store.schema_counts()?,
        run_reasked: reasked,
    }))
}

/// What the live run shares with the tasks it starts.
struct Live<'a> {
    url: url::Url,
    limits: SendLimits,
    key: Option<ApiKey>,
    headers: Vec<(String, String)>,
    /// The job's response cache (see [`job_cache`]).
    cache: Option<CacheUse>,
    before: &'a Counts,
    costing: &'a Arc<Costing>,
    stats: &'a Arc<Stats>,
    control: &'a Arc<Control>,
    resume_cmd: &'a str,
}

/// The run itself: one thread for the network (the pipeline, the progress display, the
/// signals), one for the checkpoint writer. Returns the store once every outcome is written;
/// `Break(code)`: the checkpoint could not be written (a full disk stops the run).
fn send_live(
    store: Store,
    run_id: i64,
    job: &JobRecord,
    send: &SendConfig,
    live: Live<'_>,
) -> anyhow::Result<ControlFlow<i32, (Store, Option<CacheUse>)>> {
    let db_path = store.path().to_path_buf();
    let (stats, control, costing) = (live.stats, live.control, live.costing);
    // One thread does all the network work. A run's client work is a few tens of microseconds
    // per request, so one core serves tens of thousands of requests a second — more than any
    // provider's rate limit — while a multi-threaded runtime measured ~15% more CPU per row in
    // thread wake-ups (see the README's benchmark). The checkpoint writer has its own thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    crate::raise_fd_limit();
    let (handle, writer) = writer::spawn(store, run_id, Arc::clone(stats), control.abort.clone())?;
    let limits = &live.limits;
    let cache = live.cache;
    runtime.block_on(async {
        let settings = HttpSettings {
            url: live.url,
            key: live.key,
            key_header: job.provider.key_header(),
            headers: job.provider.headers_with(live.headers),
            timeout: limits.timeout,
            max_response: send.max_response_size,
        };
        let transport = HttpTransport::new(&settings, job.endpoint.family())?;
        let signals = promptmill_engine::shutdown::spawn(
            Arc::clone(control),
            promptmill_engine::shutdown::DRAINING,
            live.resume_cmd.to_string(),
        );
        let display_done = tokio_util::sync::CancellationToken::new();
        let display = progress::spawn(
            Display::choose(send.quiet, send.verbose, send.progress_interval),
            Arc::clone(stats),
            baseline(live.before, costing),
            control.stop.clone(),
            display_done.clone(),
        );
        // A limit not given is learned from the server's headers (see limits.rs).
        let pipeline = Arc::new(
            Pipeline::new(
                transport,
                Limits::new(limits.rpm, limits.tpm),
                pipeline_settings(job, limits),
                Arc::clone(stats),
                Arc::clone(control),
                Arc::clone(costing),
            )
            .with_cache(cache.clone()),
        );
        pipeline.run(handle).await;
        display_done.cancel();
        let _ = display.await;
        signals.abort();
        anyhow::Ok(())
    })?;
    drop(runtime);
    match writer.join() {
        Ok(Ok(store)) => Ok(ControlFlow::Continue((store, cache))),
        Ok(Err(e)) => {
            let e = e.context(format!("{}: could not write the checkpoint", db_path.display()));
            disk_full_stop(e, &db_path, "resume with", live.resume_cmd).map(ControlFlow::Break)
        }
        Err(_) => anyhow::bail!("{}: the checkpoint writer panicked", db_path.display()),
    }
}

/// Where the progress display starts from: the rows settled before this run, and the money.
fn baseline(before: &Counts, costing: &Arc<Costing>) -> Baseline {
    Baseline {
        total: before.total,
        settled: before.done + before.failed + before.invalid,
        prompt_tokens: before.prompt_tokens,
        completion_tokens: before.completion_tokens,
        money: costing.active().then(|| Arc::clone(costing)),
    }
}

/// The job's response cache, as a command opens it once for its lookups, its run and its copy
/// (`None`: `--no-cache`, a family that joins rows, or a cache that cannot be opened, warned).
pub(super) fn job_cache(job: &JobRecord, send: &SendConfig) -> anyhow::Result<Option<CacheUse>> {
    let url = job.provider.endpoint_url(&job.base_url, job.endpoint)?;
    Ok(open_cache(&send.cache, job, &url))
}

/// The response cache this run uses, keyed in the scope of the job's family and request URL;
/// `None` with `--no-cache`, for a family that joins rows, or after one warning when it cannot
/// be opened.
fn open_cache(choice: &CacheChoice, job: &JobRecord, url: &url::Url) -> Option<CacheUse> {
    let CacheChoice::On { path, read_only } = choice else {
        return None;
    };
    // A joined request's answer is several rows', never one row's: such jobs bypass the cache.
    if job.endpoint.family().max_rows_per_request() > 1 {
        return None;
    }
    let cache = Cache::open_or_warn(path, *read_only)?;
    Some(CacheUse {
        cache: Arc::new(cache),
        scope: CacheScope::new(job.endpoint, url),
    })
}

/// How the pipeline sends the job's rows under `limits`.
fn pipeline_settings(job: &JobRecord, limits: &SendLimits) -> PipelineSettings {
    PipelineSettings {
        endpoint: job.endpoint,
        concurrency: limits.concurrency,
        rows_per_request: limits
            .rows_per_request
            .clamp(1, job.endpoint.family().max_rows_per_request()),
        max_attempts: limits.max_attempts,
        backoff: Backoff::default(),
        drain_timeout: limits.drain_timeout,
        hold_until_committed: true,
        first_answers: first_answers::DEFAULT,
        stalls: promptmill_core::stall::Stalls::watch(),
        structured: structured(job, limits),
    }
}

/// The job's `--schema`, compiled from the record (it compiled when the job was made), with
/// the re-ask settings in force.
pub(super) fn structured(job: &JobRecord, limits: &SendLimits) -> Option<Structured> {
    let json = job.spec.schema.clone()?;
    match Schema::new(json) {
        Ok(schema) => Some(Structured {
            schema,
            retries: limits.schema_retries,
            repair: limits.schema_repair,
        }),
        Err(e) => {
            tracing::warn!("the job's schema no longer compiles ({e}); answers are not validated");
            None
        }
    }
}
