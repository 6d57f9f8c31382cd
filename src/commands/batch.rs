//! `run --mode batch` (and `resume` of such a job) and `promptmill cancel`: the Batch API side of
//! a run. Sets up the client, drives the parts (`batch::driver`), then writes the output and the
//! totals exactly as a live run does. With `--finish-live`, hands what remains to the live path.

use std::time::Instant;

use crate::cli::CancelArgs;
use crate::config::{self, SendConfig};
use promptmill_core::error::{exit_code, CheckpointError, ConfigError};
use promptmill_core::family::AzureSupport;
use promptmill_core::job::JobRecord;
use promptmill_core::provider::Provider;
use promptmill_core::secret::ApiKey;
use promptmill_engine::api::http::HttpSettings;
use promptmill_engine::batch::{BatchService, Driver, DriverSettings, Ending, HttpBatchApi, JobBatches};
use promptmill_engine::budget::Costing;
use promptmill_engine::joblock::lock_run;
use promptmill_engine::output;
use promptmill_engine::pipeline::Control;
use promptmill_engine::stats::Snapshot;
use promptmill_engine::store::{explain, Counts, PartRecord, Store};
use promptmill_engine::summary::{CostTotals, Summary};

use super::shell_quote;

mod cached;
mod finish;

/// A batch job's response cache as the command opened it (`None`: not used), and how many
/// pending rows the caller settled from it since it counted them (`None`: not looked up yet;
/// they are looked up before parts are planned).
pub struct JobCache {
    pub cache: Option<promptmill_engine::pipeline::CacheUse>,
    pub answered: Option<u64>,
}

/// How the Batch API side of a run ended.
pub enum BatchEnd {
    /// Exit with this code (output and totals written).
    Exit(i32),
    /// Every batch is collected; send what remains live (`--finish-live`).
    FinishLive,
}

/// A name for the job that is the same on every run of it: the upload file names and the batch
/// metadata carry it, so that a later run can recognise its own uploads.
pub fn job_tag(store: &Store, job: &JobRecord) -> anyhow::Result<String> {
    let created = store.job_created_at()?;
    let mut h = blake3::Hasher::new();
    h.update(job.spec.fingerprint.as_bytes());
    h.update(serde_json::to_string(&job.spec)?.as_bytes());
    h.update(&created.to_le_bytes());
    Ok(h.finalize().to_hex()[..12].to_string())
}

/// The job's batch service, as its provider speaks it (`JobBatches::for_provider`): OpenAI's
/// Files + Batches protocol at the base URL's `/files` and `/batches` (Azure: the resource's
/// `/openai/files` and `/openai/batches`), Anthropic's Message Batches at
/// `/v1/messages/batches`, or Mistral's batch jobs at `/files` and `/batch/jobs`, with the job's
/// key and headers.
pub fn client(
    job: &JobRecord,
    headers: Vec<(String, String)>,
    timeout: std::time::Duration,
    max_response: u64,
) -> anyhow::Result<JobBatches> {
    let on_azure = job.endpoint.family().on_azure();
    if matches!(job.provider, Provider::Azure { .. }) && on_azure != AzureSupport::LiveAndBatch {
        return Err(ConfigError::new(
            "--endpoint",
            "Azure's Batch API runs chat completions only; use --endpoint chat with --provider azure --mode batch",
        )
        .into());
    }
    job.provider.check_batch_endpoint(job.endpoint)?;
    let url = promptmill_core::base_url::parse(&job.base_url)?;
    let api = HttpBatchApi::new(
        &HttpSettings {
            url,
            key: ApiKey::from_env(&job.api_key_env),
            key_header: job.provider.key_header(),
            headers: job.provider.headers_with(headers),
            timeout,
            max_response,
        },
        job.provider.clone(),
    )?;
    Ok(JobBatches::for_provider(api, &job.provider))
}

/// Submits (with `submit`), waits for and collects the job's batches; writes the output and
/// totals, unless `then_live` and rows remain: those go live (`--finish-live`, or a job switched
/// to `--mode live` with batches still open). `before`: the rows' states as the caller counted
/// them just now over the whole table (counted here when `None`). `cache`: the job's response
/// cache, and whether the caller has looked the pending rows up in it since it counted.
#[allow(clippy::too_many_arguments)]
pub fn execute(
    store: &mut Store,
    job: &JobRecord,
    send: &SendConfig,
    headers: Vec<(String, String)>,
    submit: bool,
    then_live: bool,
    costing: Option<&Costing>,
    before: Option<Counts>,
    cache: JobCache,
) -> anyhow::Result<BatchEnd> {
    let db_path = store.path().to_path_buf();
    let resume_cmd = format!(
        "promptmill resume {}",
        shell_quote(&db_path.display().to_string())
    );
    output::check_writable(&job.output)?;
    output::check_replaceable(store, &job.output, send.overwrite)?;
    let before = match before {
        Some(counts) => counts,
        None => store.counts().map_err(|e| explain(&db_path, e))?,
    };
    // Only done rows cost anything: with none, nothing is spent (and no row is read to say so).
    let cost_before = match before.done {
        0 => Some(0.0),
        _ => promptmill_engine::budget::job_cost(store, job)?,
    };
    let api = client(job, headers, job.send.timeout, send.max_response_size)?;
    let run_id = store.start_run().map_err(|e| explain(&db_path, e))?;
    let started = Instant::now();
    let JobCache { cache, answered } = cache;
    let (counted, hits) = match (answered, &cache, submit) {
        (Some(hits), _, _) => (cached::counted_with(&before, hits), hits),
        (None, Some(c), true) => {
            cached::settle(store, c, job, send, &before).map_err(|e| explain(&db_path, e))?
        }
        _ => (before.clone(), 0),
    };
    let settings = driver_settings(store, job, send, submit)?;
    let (ending, (calls, retries)) = drive(&api, store, job, settings, costing, &counted, &resume_cmd)?;
    let ending = ending.map_err(|e| explain(&db_path, e))?;
    let copy = cached::start_copy(store, cache);
    let drove = finish::after_drive(store, run_id, job, send, &ending, then_live);
    if let Some(copy) = copy {
        copy.finish(store);
    }
    let (after, split, exported) = match drove? {
        finish::AfterDrive::FinishLive => return Ok(BatchEnd::FinishLive),
        finish::AfterDrive::Totals {
            after,
            split,
            exported,
        } => (after, split, exported),
    };
    let (outcome, code) = finish::outcome(&ending, &after);
    // In batch mode a "request" is a call to the Files or Batches API.
    let snapshot = Snapshot {
        requests: calls,
        retries,
        done: after.done.saturating_sub(before.done),
        failed: after.failed.saturating_sub(before.failed),
        ..Snapshot::default()
    };
    let cost = split.map(|split| CostTotals {
        job: split.total(),
        run: (split.total() - cost_before.unwrap_or(0.0)).max(0.0),
        budget: job.max_cost,
        split: Some(split),
    });
    let mut summary = Summary::new(
        outcome,
        &after,
        &snapshot,
        started.elapsed(),
        cost,
        Some(job.output.path.clone()),
        db_path.clone(),
    );
    summary.schema = super::execute::schema_totals(store, job, 0)?;
    summary.cache = super::execute::cache_totals(store, job, &after, hits)?;
    let written = match exported {
        Some(exported) => super::ending::record_results(store, run_id, send, &summary, exported),
        None => super::ending::write_results(store, run_id, job, send, &summary, true),
    };
    if let Err(e) = written {
        let export = super::ending::export_cmd(&db_path, &job.output);
        return super::ending::disk_full_stop(e, &db_path, "write the output with", &export)
            .map(BatchEnd::Exit);
    }
    finish::tell_ending(ending, &after, job, &db_path, &resume_cmd);
    Ok(BatchEnd::Exit(code))
}

/// What the driver is told: the job's batch settings, the flags of this run, and where the
/// downloads are spooled (beside the checkpoint).
fn driver_settings(
    store: &Store,
    job: &JobRecord,
    send: &SendConfig,
    submit: bool,
) -> anyhow::Result<DriverSettings> {
    Ok(DriverSettings {
        batch: job.batch.clone(),
        no_wait: send.no_wait,
        submit,
        tag: job_tag(store, job)?,
        spool: store.path().to_path_buf(),
        quiet: send.quiet,
        max_line: send.max_response_size,
        bar: promptmill_engine::progress::Display::choose(send.quiet, send.verbose, None)
            == promptmill_engine::progress::Display::Bar,
        structured: super::execute::structured(job, &send.limits(Some(&job.send))),
    })
}

/// Runs the driver on a runtime of its own, with the signals turned into a stop; returns how it
/// ended and its counters (API calls, and the calls that were retries).
fn drive(
    api: &impl BatchService,
    store: &mut Store,
    job: &JobRecord,
    settings: DriverSettings,
    costing: Option<&Costing>,
    before: &Counts,
    resume_cmd: &str,
) -> anyhow::Result<(anyhow::Result<Ending>, (u64, u64))> {
    let control = Control::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let driven = runtime.block_on(async {
        let signals = promptmill_engine::shutdown::spawn(
            std::sync::Arc::clone(&control),
            promptmill_engine::shutdown::DETACHING,
            resume_cmd.to_string(),
        );
        let mut driver = Driver::new(api, store, job, settings, control.stop.clone()).with_counts(before);
        if let Some(costing) = costing {
            driver = driver.with_budget(costing);
        }
        let ending = driver.run().await;
        signals.abort();
        (ending, driver.counters())
    });
    drop(runtime);
    Ok(driven)
}

/// `promptmill cancel DB`: cancels every open batch of the job, then (unless `--no-wait`, or
/// another process is attached to the job and will do it) waits for them to stop and collects
/// what they finished.
pub fn cancel(args: CancelArgs) -> anyhow::Result<i32> {
    super::logging::init_logging(args.verbose);
    let (mut store, job) = cancel_target(&args)?;
    let open: Vec<_> = store.parts()?.into_iter().filter(|p| p.is_open()).collect();
    if open.is_empty() {
        eprintln!("promptmill: {}: the job has no open batches", args.db.display());
        return Ok(exit_code::SUCCESS);
    }
    // Parts without a batch yet (a crash cut their submission short) are settled by the
    // collection below: kept if their batch turns out to exist, released otherwise.
    let open: Vec<_> = open.into_iter().filter(|p| p.batch_id.is_some()).collect();
    let api = client(
        &job,
        job.headers.clone(),
        job.send.timeout,
        crate::config::DEFAULT_MAX_RESPONSE_SIZE,
    )?;
    let failed = cancel_batches(&api, &mut store, &open)?;
    let resume_cmd = format!(
        "promptmill resume {}",
        shell_quote(&args.db.display().to_string())
    );
    if args.no_wait {
        eprintln!("promptmill: collect what the batches finished with:\n  {resume_cmd}");
        return Ok(exit_code::SUCCESS);
    }
    let code = collect_cancelled(store, &job, args.allow_http)?;
    Ok(if failed > 0 && code == exit_code::SUCCESS {
        exit_code::ERROR
    } else {
        code
    })
}

/// The job `cancel` names, with `--base-url` applied and its target and paths checked.
fn cancel_target(args: &CancelArgs) -> anyhow::Result<(Store, JobRecord)> {
    if !args.db.exists() {
        anyhow::bail!("{}: no such checkpoint database", args.db.display());
    }
    let store = Store::open(&args.db, false)?;
    let mut job = store
        .job()
        .map_err(|e| explain(&args.db, e))?
        .ok_or_else(|| CheckpointError::NoJob { db: args.db.clone() })?;
    if let Some(url) = &args.base_url {
        let base_url = config::resume_base_url(url, &mut job.provider)?;
        job.set_base_url(base_url);
    }
    super::target::check(&job, args.allow_http, &args.db)?;
    config::check_paths(
        &job.spec.input,
        &args.db,
        &job.output.path,
        None,
        &[],
        "the job's output",
        "the checkpoint",
    )?;
    Ok((store, job))
}

/// Asks the provider to cancel each open batch, recording the state it answers with; returns
/// how many it refused.
fn cancel_batches(api: &impl BatchService, store: &mut Store, open: &[PartRecord]) -> anyhow::Result<u32> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut failed = 0;
    runtime.block_on(async {
        for part in open {
            let id = part.batch_id.as_deref().unwrap_or_default();
            match api.cancel(id).await {
                Ok(batch) => {
                    store.record_batch(part.part, &batch.seen())?;
                    eprintln!("promptmill: batch {} ({id}): {}", part.part, batch.status);
                }
                // A batch that ended meanwhile cannot be cancelled (409); it is collected as
                // it is.
                Err(e) if e.status() == Some(409) => {
                    eprintln!("promptmill: batch {} ({id}): it had already ended", part.part);
                }
                Err(e) => {
                    failed += 1;
                    eprintln!("promptmill: batch {} ({id}): {e}", part.part);
                }
            }
        }
        anyhow::Ok(())
    })?;
    drop(runtime);
    Ok(failed)
}

/// Waits for the cancelled batches to stop and collects what they finished, under the job's
/// lock; another process attached to the job does it instead. Returns the exit code.
fn collect_cancelled(mut store: Store, job: &JobRecord, allow_http: bool) -> anyhow::Result<i32> {
    let db = store.path().to_path_buf();
    let send = SendConfig::from_args(&crate::cli::SendArgs {
        allow_http,
        ..Default::default()
    })?;
    // Collecting writes the rows: only the process holding the job's lock may do it.
    let locked = lock_run(&db).and_then(|mut lock| {
        lock.lock_output(&job.output.path)?;
        Ok(lock)
    });
    let lock = match locked {
        Ok(lock) => lock,
        Err(e) if e.downcast_ref::<promptmill_engine::joblock::Busy>().is_none() => return Err(e),
        Err(_) => {
            eprintln!("promptmill: another promptmill is attached to this job; it will collect the cancelled batches");
            return Ok(exit_code::SUCCESS);
        }
    };
    let headers = job.headers.clone();
    let cache = JobCache {
        cache: super::execute::job_cache(job, &send)?,
        answered: None,
    };
    let ended = execute(&mut store, job, &send, headers, false, false, None, None, cache);
    // The store first, on every path: closing the lock's descriptor of the database while the
    // store is open would drop SQLite's locks on it (see `joblock`).
    drop(store);
    drop(lock);
    Ok(match ended? {
        BatchEnd::Exit(code) => code,
        BatchEnd::FinishLive => exit_code::SUCCESS,
    })
}
