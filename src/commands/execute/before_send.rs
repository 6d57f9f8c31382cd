//! Everything before a live run's first request: the limits in force, the target checked, the
//! rows a dead run left put back, the prices and budget, the cost line (and `--confirm`), and a
//! Batch API job handed to `batch`. Sending is `execute.rs`'s.

use std::ops::ControlFlow;
use std::path::Path;

use crate::cli::Mode;
use crate::commands::batch::BatchEnd;
use crate::commands::run::Scope;
use crate::config::{SendConfig, SendLimits};
use promptmill_core::error::{exit_code, ConfigError};
use promptmill_core::job::JobRecord;
use promptmill_core::secret::ApiKey;
use promptmill_engine::budget::Costing;
use promptmill_engine::store::{explain, Counts, Store};

use super::cached_first::{self, Answered};
use crate::commands::batch::JobCache;
use promptmill_engine::pipeline::CacheUse;

/// What a run is about to send with, once everything before the first request is settled.
pub(super) struct Ready {
    pub(super) limits: SendLimits,
    pub(super) key: Option<ApiKey>,
    pub(super) headers: Vec<(String, String)>,
    /// The rows' states before this run (what the progress display counts from).
    pub(super) before: Counts,
    pub(super) costing: Costing,
    /// The job's response cache, opened once for the command.
    pub(super) cache: Option<CacheUse>,
    /// The rows answered from the response cache before the cost line (a first run; `None`:
    /// not looked up there).
    pub(super) answered: Option<Answered>,
}

/// Everything before the first request: the limits in force, the target checked, the rows
/// left by a dead run put back, the prices and budget, the cost line (and `--confirm`), and a
/// Batch API job handed to `batch`. `Break(code)`: the run ends here.
pub(super) fn prepare(
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
    crate::commands::target::check(job, send.allow_http, db_path)?;
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
        costing: price_job(store, job, send, before.done == 0 && job.limit.is_none())
            .map_err(|e| explain(db_path, e))?,
        limits,
        key,
        headers,
        before,
        cache: super::job_cache(job, send)?,
        answered: None,
    };
    if scope == Scope::All {
        if let ControlFlow::Break(code) = cost_line(store, job, send, &mut ready, db_path)? {
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
        let end = crate::commands::batch::execute(
            store,
            job,
            send,
            ready.headers.clone(),
            submit,
            !submit,
            Some(&ready.costing),
            // Counted over every row (no `--limit`), and no row has changed since but those
            // answered from the cache.
            job.limit.is_none().then(|| ready.before.clone()),
            JobCache {
                cache: ready.cache.clone(),
                answered: ready.answered.map(|a| a.rows),
            },
        )?;
        match end {
            BatchEnd::Exit(code) => return Ok(ControlFlow::Break(code)),
            BatchEnd::FinishLive => {
                // Counted afresh: the rows answered from the cache are done in it.
                ready.answered = None;
                ready.before = store.counts_claimable().map_err(|e| explain(db_path, e))?;
                ready.costing = price_job(store, job, send, ready.before.done == 0 && job.limit.is_none())
                    .map_err(|e| explain(db_path, e))?;
            }
        }
    }
    Ok(ControlFlow::Continue(ready))
}

/// The job's Batch API settings, and — before a new job's first paid request — the cost line
/// and the `--confirm` question. `Break`: the user said no.
fn cost_line(
    store: &mut Store,
    job: &mut JobRecord,
    send: &SendConfig,
    ready: &mut Ready,
    db_path: &Path,
) -> anyhow::Result<ControlFlow<i32>> {
    job.batch = send.batch(Some(&job.batch));
    if !send.quiet {
        warn_unknown_models(job);
    }
    let before = &ready.before;
    let started = before.done + before.failed + before.batched > 0 || store.has_open_parts()?;
    if (send.confirm || !send.quiet) && before.pending > 0 && !started {
        let batch = job.batch.mode == Mode::Batch;
        let (pending, go) = (
            before.pending,
            if batch { "go to the Batch API" } else { "to send" },
        );
        let answered = cached_first::settle(store, ready.cache.as_ref(), job, send, pending, go)
            .map_err(|e| explain(db_path, e))?;
        ready.answered = Some(answered);
        if answered.rows >= pending {
            return Ok(ControlFlow::Continue(()));
        }
        let ceiling = promptmill_engine::ceiling::of_pending(
            store,
            job.endpoint.family(),
            &job.models,
            job.spec.model.as_deref(),
            batch,
        )
        .map_err(|e| explain(db_path, e))?;
        eprintln!("{ceiling}");
        if send.confirm && !promptmill_core::confirm::ask()? {
            eprintln!(
                "promptmill: nothing sent. The job is in {}; run the same command again to send it.",
                db_path.display()
            );
            return Ok(ControlFlow::Break(exit_code::STOPPED));
        }
    }
    Ok(ControlFlow::Continue(()))
}

/// Prices the job's models (flags, else what the job recorded, else the built-in table) and sets
/// its budget (the flag, else the recorded one; `--max-cost 0` removes it), records both in the
/// job, and opens the run's ledger with what the job has spent so far (nothing when `none_done`:
/// the caller just counted no done row in the whole table, so none is read to say so).
fn price_job(
    store: &Store,
    job: &mut JobRecord,
    send: &SendConfig,
    none_done: bool,
) -> anyhow::Result<Costing> {
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
    let spent = match none_done {
        true => 0.0,
        false => promptmill_engine::budget::job_cost(store, job)?.unwrap_or(0.0),
    };
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
        let t = promptmill_core::tokens::Tokenizer::for_model(model);
        if let Some(note) =
            promptmill_core::models::unknown_model_note(model, t.encoding(), t.exact(), info.prices.is_some())
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
