//! Sending a job live: what is pending (in a scope) goes through the worker loop, then the
//! output and the totals are written. Shared by `run`, `resume` and the calibration sample.
//! [`execute`] reads like the plot: prepare (limits, the target, prices, the cost line, a
//! Batch API job handed to `batch`), send (the runtime, the writer thread, the pipeline), end
//! (the outcome and its exit code from `ending`, the results, the message).

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::batch::BatchEnd;
use super::ending::{self, disk_full_stop, export_cmd, write_results, Ending};
use super::logging::init_logging;
use super::run::Scope;
use super::shell_quote;
use crate::api::http::{HttpSettings, HttpTransport};
use crate::budget::Costing;
use crate::cli::Mode;
use crate::config::{SendConfig, SendLimits};
use crate::error::{exit_code, ConfigError};
use crate::job::JobRecord;
use crate::joblock::RunLock;
use crate::limits::Limits;
use crate::output;
use crate::pipeline::first_answers;
use crate::pipeline::{Control, Pipeline, PipelineSettings};
use crate::progress::{self, Baseline, Display};
use crate::retry::Backoff;
use crate::secret::ApiKey;
use crate::stats::Stats;
use crate::store::{explain, writer, Counts, Store};
use crate::summary::{CostTotals, Summary};

/// What a run is about to send with, once everything before the first request is settled.
struct Ready {
    limits: SendLimits,
    key: Option<ApiKey>,
    headers: Vec<(String, String)>,
    /// The rows' states before this run (what the progress display counts from).
    before: Counts,
    costing: Costing,
}

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
    let shown_url = crate::base_url::redact(url.as_str());
    let run_id = store.start_run().map_err(|e| explain(&db_path, e))?;
    let started = Instant::now();
    let stats = Arc::new(Stats::default());
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
            before: &before,
            costing: &costing,
            stats: &stats,
            control: &control,
            resume_cmd: &resume_cmd,
        },
    )?;
    let store = match sent {
        ControlFlow::Break(code) => return Ok(code),
        ControlFlow::Continue(store) => store,
    };
    let after = store.counts()?;
    // With --limit, the rows past it are not this run's to settle.
    let claimable = store.counts_claimable()?;
    let (outcome, code) = ending::live_outcome(control.reason(), scope == Scope::Sample, &claimable);
    // The ledger, now that every request has settled: the summary and the stop message print
    // the same amounts.
    let spend = costing.spend();
    let split = match costing.active() {
        true => crate::budget::job_cost_split(&store, &job)?,
        false => None,
    };
    let cost = costing.active().then(|| CostTotals {
        job: spend.total(),
        run: spend.run,
        budget: job.max_cost,
        split,
    });
    let summary = Summary::new(
        outcome,
        &after,
        &stats.snapshot(),
        started.elapsed(),
        cost,
        (scope == Scope::All).then(|| job.output.path.clone()),
        db_path.clone(),
    );
    if let Err(e) = write_results(&store, run_id, &job, &send, &summary, scope == Scope::All) {
        return disk_full_stop(
            e,
            &db_path,
            "write the output with",
            &export_cmd(&db_path, &job.output),
        );
    }
    Ending {
        job: &job,
        db: &db_path,
        resume_cmd: &resume_cmd,
        shown_url: &shown_url,
        spend: &spend,
        after: &after,
        beyond_limit: after.pending.saturating_sub(claimable.pending),
        whole_job: scope == Scope::All,
        quiet: send.quiet,
    }
    .explain(control.reason(), code);
    Ok(code)
}

/// Everything before the first request: the limits in force, the target checked, the rows
/// left by a dead run put back, the prices and budget, the cost line (and `--confirm`), and a
/// Batch API job handed to `batch`. `Break(code)`: the run ends here.
fn prepare(
    store: &mut Store,
    job: &mut JobRecord,
    send: &SendConfig,
    scope: Scope,
    db_path: &Path,
) -> anyhow::Result<ControlFlow<i32, Ready>> {
    store.claim_through(job.limit);
    let limits = send.limits(Some(&job.send));
    if limits != job.send {
        job.send = limits.clone();
        store.update_job(job).map_err(|e| explain(db_path, e))?;
    }
    super::target::check(job, send.allow_http, db_path)?;
    let key = ApiKey::from_env(&job.api_key_env);
    let headers = merged_headers(job, send)?;
    // Reading every row's state here (`counts` scans the whole table) is also where a damaged
    // checkpoint shows, before anything is sent.
    let before = (|| {
        store.reset_in_flight()?;
        if send.retry_failed {
            store.requeue_failed()?;
        }
        store.counts_claimable()
    })()
    .map_err(|e| explain(db_path, e))?;
    let mut ready = Ready {
        costing: price_job(store, job, send).map_err(|e| explain(db_path, e))?,
        limits,
        key,
        headers,
        before,
    };
    if scope == Scope::All {
        if let ControlFlow::Break(code) = cost_line(store, job, send, &ready.before, db_path)? {
            return Ok(ControlFlow::Break(code));
        }
    }
    store.update_job(job).map_err(|e| explain(db_path, e))?;
    if let Some(n) = job.limit.filter(|_| scope == Scope::All) {
        if job.batch.mode == Mode::Batch {
            return Err(ConfigError::new(
                "--limit",
                "applies to live runs; a --mode batch job submits every row (try the prompt on a few rows with a live run first)",
            )
            .into());
        }
        if ready.before.pending + ready.before.in_flight == 0 && !send.quiet {
            eprintln!("promptmill: --limit {n}: the first {n} rows are settled already; nothing to send");
        }
    }
    // A job in batch mode, or one with batches still open, goes through the Batch API; what
    // remains after `--finish-live` (or in a job switched to live mode) comes back here, priced
    // and counted afresh.
    if scope == Scope::All && (job.batch.mode == Mode::Batch || store.has_open_parts()?) {
        let submit = job.batch.mode == Mode::Batch && !send.finish_live;
        let end = super::batch::execute(
            store,
            job,
            send,
            ready.headers.clone(),
            submit,
            !submit,
            Some(&ready.costing),
        )?;
        match end {
            BatchEnd::Exit(code) => return Ok(ControlFlow::Break(code)),
            BatchEnd::FinishLive => {
                ready.before = store.counts_claimable().map_err(|e| explain(db_path, e))?;
                ready.costing = price_job(store, job, send).map_err(|e| explain(db_path, e))?;
            }
        }
    }
    Ok(ControlFlow::Continue(ready))
}

/// The job's Batch API settings, and — before a new job's first paid request — the cost line
/// and the `--confirm` question. `Break`: the user said no.
fn cost_line(
    store: &Store,
    job: &mut JobRecord,
    send: &SendConfig,
    before: &Counts,
    db_path: &Path,
) -> anyhow::Result<ControlFlow<i32>> {
    job.batch = send.batch(Some(&job.batch));
    if !send.quiet {
        warn_unknown_models(job);
    }
    let started = before.done + before.failed + before.batched > 0 || store.has_open_parts()?;
    if (send.confirm || !send.quiet) && before.pending > 0 && !started {
        let batch = job.batch.mode == Mode::Batch;
        let ceiling = crate::ceiling::of_pending(
            store,
            job.endpoint.family(),
            &job.models,
            job.spec.model.as_deref(),
            batch,
        )
        .map_err(|e| explain(db_path, e))?;
        eprintln!("{ceiling}");
        if send.confirm && !crate::ceiling::ask()? {
            eprintln!(
                "promptmill: nothing sent. The job is in {}; run the same command again to send it.",
                db_path.display()
            );
            return Ok(ControlFlow::Break(exit_code::STOPPED));
        }
    }
    Ok(ControlFlow::Continue(()))
}

/// What the live run shares with the tasks it starts.
struct Live<'a> {
    url: url::Url,
    limits: SendLimits,
    key: Option<ApiKey>,
    headers: Vec<(String, String)>,
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
) -> anyhow::Result<ControlFlow<i32, Store>> {
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
    runtime.block_on(async {
        let settings = HttpSettings {
            url: live.url,
            key: live.key,
            key_header: job.provider.key_header(),
            headers: live.headers,
            timeout: limits.timeout,
            max_response: send.max_response_size,
        };
        let transport = HttpTransport::new(&settings, job.endpoint.family())?;
        let signals = crate::shutdown::spawn(
            Arc::clone(control),
            crate::shutdown::DRAINING,
            live.resume_cmd.to_string(),
        );
        let display_done = tokio_util::sync::CancellationToken::new();
        let display = progress::spawn(
            Display::choose(send.quiet, send.verbose, send.progress_interval),
            Arc::clone(stats),
            Baseline {
                total: live.before.total,
                settled: live.before.done + live.before.failed + live.before.invalid,
                prompt_tokens: live.before.prompt_tokens,
                completion_tokens: live.before.completion_tokens,
                money: costing.active().then(|| Arc::clone(costing)),
            },
            control.stop.clone(),
            display_done.clone(),
        );
        // A limit not given is learned from the server's headers (see limits.rs).
        let pipeline = Arc::new(Pipeline::new(
            transport,
            Limits::new(limits.rpm, limits.tpm),
            PipelineSettings {
                endpoint: job.endpoint,
                concurrency: limits.concurrency,
                max_attempts: limits.max_attempts,
                backoff: Backoff::default(),
                drain_timeout: limits.drain_timeout,
                hold_until_committed: true,
                first_answers: first_answers::DEFAULT,
                stalls: crate::stall::Stalls::watch(),
            },
            Arc::clone(stats),
            Arc::clone(control),
            Arc::clone(costing),
        ));
        pipeline.run(handle).await;
        display_done.cancel();
        let _ = display.await;
        signals.abort();
        anyhow::Ok(())
    })?;
    drop(runtime);
    match writer.join() {
        Ok(Ok(store)) => Ok(ControlFlow::Continue(store)),
        Ok(Err(e)) => {
            let e = e.context(format!("{}: could not write the checkpoint", db_path.display()));
            disk_full_stop(e, &db_path, "resume with", live.resume_cmd).map(ControlFlow::Break)
        }
        Err(_) => anyhow::bail!("{}: the checkpoint writer panicked", db_path.display()),
    }
}

/// Prices the job's models (flags, else what the job recorded, else the built-in table) and sets
/// its budget (the flag, else the recorded one; `--max-cost 0` removes it), records both in the
/// job, and opens the run's ledger with what the job has spent so far.
fn price_job(store: &Store, job: &mut JobRecord, send: &SendConfig) -> anyhow::Result<Costing> {
    let p = &send.prices;
    let flags = p.prices.is_some() || p.price_in.is_some() || p.price_out.is_some();
    let fixed = job.spec.model.clone();
    if flags || job.models.is_empty() {
        let book = send.price_book()?;
        job.models = store
            .request_models(fixed.as_deref())?
            .into_iter()
            .map(|m| Ok((m.clone(), book.lookup(&m)?)))
            .collect::<anyhow::Result<_>>()?;
    }
    if let Some(c) = send.max_cost {
        job.max_cost = (c > 0.0).then_some(c);
    }
    let spent = crate::budget::job_cost(store, job)?.unwrap_or(0.0);
    let costing = Costing::new(&job.models, job.max_cost, spent)?;
    if job.spec.max_tokens.is_none() {
        for model in job.models.keys() {
            costing.check_bounded(model)?;
        }
    }
    Ok(costing)
}

/// Says, before anything is sent, which of the job's models are unknown (tokens approximated,
/// no price, so no cost in the totals), and which known model a misspelt one probably means.
fn warn_unknown_models(job: &JobRecord) {
    for (model, info) in &job.models {
        if model.is_empty() {
            continue;
        }
        let t = crate::tokens::Tokenizer::for_model(model);
        if let Some(note) =
            crate::models::unknown_model_note(model, t.encoding(), t.exact(), info.prices.is_some())
        {
            eprintln!("promptmill: {note}");
        }
    }
}

/// The stored headers, overridden by the ones given now; fails if a withheld header is missing.
fn merged_headers(job: &JobRecord, send: &SendConfig) -> anyhow::Result<Vec<(String, String)>> {
    for name in &job.withheld_headers {
        if !send.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Err(ConfigError::new(
                "--header",
                format!("the job sends a `{name}` header, which is not stored because it looks like a credential; pass --header '{name}: …' again"),
            )
            .into());
        }
    }
    let mut headers: Vec<(String, String)> = job
        .headers
        .iter()
        .filter(|(n, _)| !send.headers.iter().any(|(m, _)| m.eq_ignore_ascii_case(n)))
        .cloned()
        .collect();
    headers.extend(send.headers.iter().cloned());
    Ok(headers)
}
