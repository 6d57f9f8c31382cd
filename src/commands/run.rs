//! `promptmill run` and `promptmill resume`: read the input into a checkpoint (first run only),
//! send every pending row, write the output and the totals.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::batch::BatchEnd;
use crate::api::http::{HttpSettings, HttpTransport};
use crate::budget::Costing;
use crate::cli::{Mode, ResumeArgs, RunArgs};
use crate::config::{self, is_secret_header, RunConfig, SendConfig};
use crate::error::{exit_code, CheckpointError, ConfigError};
use crate::estimate::report::dollars;
use crate::input::{fingerprint_file, is_stdin, RowReader};
use crate::job::JobRecord;
use crate::joblock::{lock_run, RunLock};
use crate::limits::Limits;
use crate::load::{compare, load, InputChange, Known, LoadError};
use crate::output;
use crate::pipeline::first_answers;
use crate::pipeline::{Control, Pipeline, PipelineSettings, StopReason};
use crate::prepare::Preparer;
use crate::progress::{self, Baseline, Display};
use crate::retry::Backoff;
use crate::secret::ApiKey;
use crate::stats::Stats;
use crate::store::{explain, writer, Store};
use crate::summary::{CostTotals, Summary};

use super::shell_quote;

pub fn run(args: RunArgs) -> anyhow::Result<i32> {
    let cfg = RunConfig::from_args(args)?;
    let (store, job, lock) = open_job(&cfg, Scope::All)?;
    execute(store, job, cfg.send, lock, Scope::All)
}

/// Which pending rows a run sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    All,
    /// Only the calibration sample (`estimate --sample`); no output is written.
    Sample,
}

/// Opens the job's checkpoint for `cfg`, creating it from the input on the first run; checks
/// that an existing one is this job, and (`Scope::All`) that the output may be replaced. Holds
/// the run lock from here on.
pub fn open_job(cfg: &RunConfig, scope: Scope) -> anyhow::Result<(Store, JobRecord, RunLock)> {
    let say = |msg: String| {
        if !cfg.send.quiet {
            eprintln!("promptmill: {msg}");
        }
    };
    let created = cfg.restart || !cfg.db.exists();
    let mut lock = lock_run(&cfg.db)?;
    if cfg.restart {
        remove_checkpoint(&cfg.db)?;
        // Failing here, the checkpoint at the path (if any) is another process's: left alone.
        lock.renew()?;
    }
    let opened = (|| {
        let store = Store::open(&cfg.db, true)?;
        lock.lock_output(&cfg.output.path)?;
        if scope == Scope::All {
            output::check_replaceable(&store, &cfg.output, cfg.send.overwrite)?;
        }
        let job = job_of(store, cfg, &say)?;
        anyhow::Ok(job)
    })();
    match opened {
        Ok((store, job)) => Ok((store, job, lock)),
        Err(e) => {
            // A checkpoint this command made holds nothing worth keeping (the store is closed
            // by now; the lock goes last).
            if created {
                let _ = remove_checkpoint(&cfg.db);
            }
            Err(e)
        }
    }
}

/// The job in the checkpoint, checked against the command; or, in a new checkpoint, the job
/// read from the input.
fn job_of(mut store: Store, cfg: &RunConfig, say: &dyn Fn(String)) -> anyhow::Result<(Store, JobRecord)> {
    let job = match store.job().map_err(|e| explain(&cfg.db, e))? {
        Some(mut job) => {
            // The settings first, as if the contents were the same; then the contents.
            let mut spec = cfg.spec.clone();
            spec.fingerprint = job.spec.fingerprint.clone();
            let mut changes = spec.changes_from(&job.spec);
            changes.extend(cfg.provider.changes_from(&job.provider));
            if fingerprint_file(&cfg.input)? != job.spec.fingerprint {
                // Standard input cannot be read twice, so it cannot be compared row by row.
                let change = if is_stdin(&cfg.input) {
                    InputChange::Differs("the rows on standard input (they differ from the job's)".into())
                } else {
                    compare(&cfg.input, &job, &store)?
                };
                match change {
                    InputChange::Grew { old_size, lines } if changes.is_empty() => {
                        job = read_appended(&mut store, cfg, job, old_size, lines)?;
                    }
                    InputChange::Grew { old_size, .. } => changes.insert(
                        0,
                        format!(
                            "the input {} (rows were appended after its first {old_size} bytes)",
                            cfg.input.display()
                        ),
                    ),
                    InputChange::Differs(what) => changes.insert(0, what),
                }
            }
            if !changes.is_empty() {
                return Err(CheckpointError::Mismatch {
                    db: cfg.db.clone(),
                    changes: changes.join("; "),
                }
                .into());
            }
            // Where and how to send may change between runs; what to send may not.
            let (headers, withheld) = split_headers(&cfg.send.headers);
            job.set_base_url(cfg.base_url.clone());
            job.provider = cfg.provider.clone();
            job.headers = headers;
            job.withheld_headers = withheld;
            job.api_key_env = cfg.api_key_env.clone();
            job.output = cfg.output.clone();
            if cfg.profile.is_some() {
                job.profile = cfg.profile.clone();
            }
            job.limit = cfg.limit;
            store.update_job(&job).map_err(|e| explain(&cfg.db, e))?;
            say(format!("resuming the job in {}", cfg.db.display()));
            job
        }
        None => {
            // As stored, without credential-like query parameters; this run has them.
            let mut job = read_input(&mut store, cfg)?;
            job.set_base_url(cfg.base_url.clone());
            job
        }
    };
    Ok((store, job))
}

pub fn resume(args: ResumeArgs) -> anyhow::Result<i32> {
    let send = SendConfig::from_args(&args.send)?;
    if !args.db.exists() {
        anyhow::bail!("{}: no such checkpoint database", args.db.display());
    }
    let mut lock = lock_run(&args.db)?;
    let store = Store::open(&args.db, false)?;
    let mut job = store
        .job()
        .map_err(|e| explain(&args.db, e))?
        .ok_or_else(|| CheckpointError::NoJob { db: args.db.clone() })?;
    let mut changed = false;
    if let Some(url) = &args.base_url {
        let base_url = config::resume_base_url(url, &mut job.provider)?;
        job.set_base_url(base_url);
        changed = true;
    }
    if let Some(var) = &args.api_key_env {
        // Before it can be stored: a key given here by mistake must not reach the checkpoint.
        config::check_key_env(var)?;
        job.api_key_env = var.clone();
        changed = true;
    }
    if let Some(path) = &args.output {
        job.output = config::output_spec(path, args.output_format, "--output")?;
        changed = true;
    } else if let Some(format) = args.output_format {
        job.output.format = format;
        changed = true;
    }
    config::check_paths(
        &job.spec.input,
        &args.db,
        &job.output.path,
        send.summary.as_deref(),
        send.report.as_deref().map(|p| ("--report", p)),
        "--output",
        "the checkpoint",
    )?;
    lock.lock_output(&job.output.path)?;
    // Before the job records a new output: a refused one is not kept.
    output::check_replaceable(&store, &job.output, send.overwrite)?;
    if changed {
        store.update_job(&job).map_err(|e| explain(&args.db, e))?;
    }
    execute(store, job, send, lock, Scope::All)
}

/// Reads the input into a new checkpoint and records the job.
fn read_input(store: &mut Store, cfg: &RunConfig) -> anyhow::Result<JobRecord> {
    let reader = RowReader::open(&cfg.input, cfg.format)?;
    let preparer =
        Preparer::new(cfg.input.clone(), cfg.request.clone()).check_context(cfg.send.price_book()?);
    let (headers, withheld) = split_headers(&cfg.send.headers);
    let show = !cfg.send.quiet && progress::can_redraw();
    let progress = |rows: u64| {
        if show {
            eprint!("\rpromptmill: reading the input… {rows} rows");
        }
    };
    let loaded = load(
        store,
        &cfg.input,
        reader,
        preparer,
        cfg.skip_invalid,
        None,
        &progress,
        |loaded| {
            let mut spec = cfg.spec.clone();
            spec.fingerprint = loaded.fingerprint.clone();
            JobRecord {
                spec,
                endpoint: loaded.endpoint,
                base_url: cfg.base_url.clone(),
                provider: cfg.provider.clone(),
                headers: headers.clone(),
                withheld_headers: withheld.clone(),
                api_key_env: cfg.api_key_env.clone(),
                send: cfg.send.limits(None),
                output: cfg.output.clone(),
                columns: loaded.columns.clone(),
                tool_version: env!("CARGO_PKG_VERSION").to_string(),
                models: Default::default(),
                max_cost: None,
                batch: Default::default(),
                profile: cfg.profile.clone(),
                limit: cfg.limit,
                input_size: Some(loaded.size),
                withheld_params: vec![],
                column_types: loaded.column_types.clone(),
            }
        },
    );
    if show {
        eprint!("\r\x1b[2K");
    }
    let loaded = loaded.map_err(|e| match e {
        LoadError::Other(e) if e.chain().any(|c| c.is::<rusqlite::Error>()) => store
            .mark_disk_full(e)
            .context(format!("{}: could not write the checkpoint", cfg.db.display())),
        LoadError::Other(e) => e,
        other => anyhow::Error::msg(other.to_string()),
    })?;
    if !cfg.send.quiet {
        let invalid = if loaded.invalid > 0 {
            format!(" ({} invalid, recorded as failed)", loaded.invalid)
        } else {
            String::new()
        };
        let from = if crate::input::is_stdin(&cfg.input) {
            "standard input".to_string()
        } else {
            cfg.input.display().to_string()
        };
        eprintln!("promptmill: read {} rows from {from}{invalid}", loaded.rows);
    }
    store
        .job()?
        .ok_or_else(|| anyhow::anyhow!("the job record was not saved"))
}

/// Adds the rows appended to an input that grew (its first `old_size` bytes, `lines` line
/// breaks, are the job's) to the job, and records the job's new fingerprint and size.
fn read_appended(
    store: &mut Store,
    cfg: &RunConfig,
    job: JobRecord,
    old_size: u64,
    lines: u64,
) -> anyhow::Result<JobRecord> {
    let known = Known {
        rows: store.counts()?.total,
        lines,
    };
    let reader = RowReader::open(&cfg.input, cfg.format)?;
    let mut request = cfg.request.clone();
    request.endpoint = Some(job.endpoint);
    let preparer = Preparer::new(cfg.input.clone(), request).check_context(cfg.send.price_book()?);
    let loaded = load(
        store,
        &cfg.input,
        reader,
        preparer,
        cfg.skip_invalid,
        Some(known),
        &|_| {},
        |loaded| {
            let mut grown = job.clone();
            grown.spec.fingerprint = loaded.fingerprint.clone();
            grown.input_size = Some(loaded.size);
            grown.columns = loaded.columns.clone();
            grown.column_types = loaded.column_types.clone();
            grown
        },
    )
    .map_err(|e| match e {
        LoadError::Other(e) => e,
        other => anyhow::Error::msg(other.to_string()),
    })?;
    if !cfg.send.quiet {
        let added = loaded.rows.saturating_sub(known.rows);
        let invalid = if loaded.invalid > 0 {
            format!(" ({} invalid, recorded as failed)", loaded.invalid)
        } else {
            String::new()
        };
        eprintln!(
            "promptmill: input grew: {added} new rows added to the job{invalid} ({} had {old_size} bytes, now {})",
            cfg.input.display(),
            loaded.size
        );
    }
    store
        .job()?
        .ok_or_else(|| anyhow::anyhow!("the job record was not saved"))
}

/// Sends what is pending (in `scope`), then writes the output and the totals. Shared by `run`,
/// `resume` and the calibration sample. `_lock` is held until the run has written everything
/// (a parameter is dropped after every local, the store among them: see `joblock`).
pub fn execute(
    mut store: Store,
    mut job: JobRecord,
    send: SendConfig,
    _lock: RunLock,
    scope: Scope,
) -> anyhow::Result<i32> {
    init_logging(send.verbose);
    let db_path = store.path().to_path_buf();
    store.claim_through(job.limit);
    let limits = send.limits(Some(&job.send));
    if limits != job.send {
        job.send = limits.clone();
        store.update_job(&job).map_err(|e| explain(&db_path, e))?;
    }
    super::target::check(&job, send.allow_http, &db_path)?;
    let key = ApiKey::from_env(&job.api_key_env);
    let headers = merged_headers(&job, &send)?;
    // Reading every row's state here (`counts` scans the whole table) is also where a damaged
    // checkpoint shows, before anything is sent.
    let before = (|| {
        store.reset_in_flight()?;
        if send.retry_failed {
            store.requeue_failed()?;
        }
        store.counts_claimable()
    })()
    .map_err(|e| explain(&db_path, e))?;
    let mut before = before;
    let mut costing = price_job(&store, &mut job, &send).map_err(|e| explain(&db_path, e))?;
    if scope == Scope::All {
        job.batch = send.batch(Some(&job.batch));
        if !send.quiet {
            warn_unknown_models(&job);
        }
        let started = before.done + before.failed + before.batched > 0 || store.has_open_parts()?;
        if (send.confirm || !send.quiet) && before.pending > 0 && !started {
            let batch = job.batch.mode == Mode::Batch;
            let ceiling = crate::ceiling::of_pending(&store, &job.models, job.spec.model.as_deref(), batch)
                .map_err(|e| explain(&db_path, e))?;
            eprintln!("{ceiling}");
            if send.confirm && !crate::ceiling::ask()? {
                eprintln!(
                    "promptmill: nothing sent. The job is in {}; run the same command again to send it.",
                    db_path.display()
                );
                return Ok(exit_code::STOPPED);
            }
        }
    }
    store.update_job(&job).map_err(|e| explain(&db_path, e))?;
    if let Some(n) = job.limit.filter(|_| scope == Scope::All) {
        if job.batch.mode == Mode::Batch {
            return Err(ConfigError::new(
                "--limit",
                "applies to live runs; a --mode batch job submits every row (try the prompt on a few rows with a live run first)",
            )
            .into());
        }
        if before.pending + before.in_flight == 0 && !send.quiet {
            eprintln!("promptmill: --limit {n}: the first {n} rows are settled already; nothing to send");
        }
    }
    // A job in batch mode, or one with batches still open, goes through the Batch API; what
    // remains after `--finish-live` (or in a job switched to live mode) comes back here, priced
    // and counted afresh.
    if scope == Scope::All && (job.batch.mode == Mode::Batch || store.has_open_parts()?) {
        let submit = job.batch.mode == Mode::Batch && !send.finish_live;
        match super::batch::execute(
            &mut store,
            &job,
            &send,
            headers.clone(),
            submit,
            !submit,
            Some(&costing),
        )? {
            BatchEnd::Exit(code) => return Ok(code),
            BatchEnd::FinishLive => {
                before = store.counts_claimable().map_err(|e| explain(&db_path, e))?;
                costing = price_job(&store, &mut job, &send).map_err(|e| explain(&db_path, e))?;
            }
        }
    }
    let costing = Arc::new(costing);
    let priced = costing.active();
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
    // One thread does all the network work. A run's client work is a few tens of microseconds
    // per request, so one core serves tens of thousands of requests a second — more than any
    // provider's rate limit — while a multi-threaded runtime measured ~15% more CPU per row in
    // thread wake-ups (see the README's benchmark). The checkpoint writer has its own thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    crate::raise_fd_limit();
    let (handle, writer) = writer::spawn(store, run_id, Arc::clone(&stats), control.abort.clone())?;

    runtime.block_on(async {
        let transport = HttpTransport::new(&HttpSettings {
            url,
            key,
            key_header: job.provider.key_header(),
            headers,
            timeout: limits.timeout,
            max_response: send.max_response_size,
        })?;
        let signals = crate::shutdown::spawn(
            Arc::clone(&control),
            crate::shutdown::DRAINING,
            resume_cmd.clone(),
        );
        let display_done = tokio_util::sync::CancellationToken::new();
        let display = progress::spawn(
            Display::choose(send.quiet, send.verbose, send.progress_interval),
            Arc::clone(&stats),
            Baseline {
                total: before.total,
                settled: before.done + before.failed + before.invalid,
                prompt_tokens: before.prompt_tokens,
                completion_tokens: before.completion_tokens,
                money: priced.then(|| Arc::clone(&costing)),
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
            Arc::clone(&stats),
            Arc::clone(&control),
            Arc::clone(&costing),
        ));
        pipeline.run(handle).await;
        display_done.cancel();
        let _ = display.await;
        signals.abort();
        anyhow::Ok(())
    })?;
    drop(runtime);

    let store = match writer.join() {
        Ok(Ok(store)) => store,
        Ok(Err(e)) => {
            let e = e.context(format!("{}: could not write the checkpoint", db_path.display()));
            return disk_full_stop(e, &db_path, "resume with", &resume_cmd);
        }
        Err(_) => anyhow::bail!("{}: the checkpoint writer panicked", db_path.display()),
    };
    let after = store.counts()?;
    // With --limit, the rows past it are not this run's to settle.
    let claimable = store.counts_claimable()?;
    let (outcome, code) = match control.reason() {
        Some(StopReason::Interrupted) => ("interrupted", exit_code::STOPPED),
        Some(StopReason::Auth { .. }) => ("stopped_auth", exit_code::STOPPED),
        Some(StopReason::Quota { .. }) => ("stopped_quota", exit_code::STOPPED),
        Some(StopReason::Checkpoint(_)) => ("checkpoint_error", exit_code::ERROR),
        Some(StopReason::Budget { .. }) => ("budget", exit_code::BUDGET),
        Some(StopReason::Misdirected(_)) => ("stopped_misdirected", exit_code::STOPPED),
        // The calibration sample settles its rows (failed ones included) and leaves the rest.
        None if scope == Scope::Sample => ("sample_sent", exit_code::SUCCESS),
        None if claimable.failed + claimable.invalid > 0 => ("finished", exit_code::ROWS_FAILED),
        None if claimable.pending + claimable.in_flight > 0 => ("incomplete", exit_code::STOPPED),
        None => ("finished", exit_code::SUCCESS),
    };
    let snapshot = stats.snapshot();
    // The ledger, now that every request has settled: the summary and the stop message print
    // the same amounts.
    let spend = costing.spend();
    let cost = priced.then(|| CostTotals {
        job: spend.total(),
        run: spend.run,
        budget: job.max_cost,
    });
    let summary = Summary::new(
        outcome,
        &after,
        &snapshot,
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
    match control.reason() {
        Some(StopReason::Auth { status, message }) => eprintln!(
            "{}",
            refused_credentials(
                &format!("HTTP {status}: {message}"),
                &job.api_key_env,
                &resume_cmd
            )
        ),
        Some(StopReason::Quota { message }) => eprintln!("{}", out_of_quota(message, &resume_cmd)),
        Some(StopReason::Checkpoint(e)) => eprintln!("promptmill: {}: {e}", db_path.display()),
        Some(StopReason::Interrupted) => eprintln!("promptmill: interrupted; resume with:\n  {resume_cmd}"),
        Some(StopReason::Misdirected(trip)) => {
            eprintln!(
                "{}",
                super::target::misdirected(trip, &shown_url, job.endpoint.path(), &resume_cmd)
            )
        }
        Some(StopReason::Budget { limit, needed }) => eprintln!(
            "promptmill: stopped at the --max-cost budget: {} spent of {} (the job so far); the next \
             request may cost up to {}, more than the {} left; {} remain.\n\
             Resume with a larger budget:\n  {resume_cmd} --max-cost AMOUNT",
            dollars(spend.total()),
            dollars(*limit),
            dollars(*needed),
            dollars(spend.remaining().unwrap_or(0.0)),
            crate::summary::count(after.pending + after.in_flight, "row", "rows")
        ),
        None if code == exit_code::ROWS_FAILED => {
            let db = shell_quote(&db_path.display().to_string());
            if after.failed > 0 {
                eprintln!(
                    "promptmill: {} failed; see `promptmill status {db}`, or send them again with:\n  {resume_cmd} --retry-failed",
                    crate::summary::count(after.failed, "row", "rows")
                );
            }
            // --retry-failed cannot help these: they never became requests.
            if after.invalid > 0 {
                let (rows, were) = if after.invalid == 1 {
                    ("row", "was")
                } else {
                    ("rows", "were")
                };
                eprintln!(
                    "promptmill: {} {rows} {were} invalid input and {were} not sent; the reasons are in the \
                     output's `error` field and in `promptmill status {db}`",
                    after.invalid
                );
            }
        }
        None => {}
    }
    let beyond = after.pending.saturating_sub(claimable.pending);
    if let Some(n) = job
        .limit
        .filter(|_| beyond > 0 && scope == Scope::All && !send.quiet)
    {
        eprintln!(
            "promptmill: --limit {n}: the {beyond} pending rows past the first {n} were not sent.\n\
             Run the same command without --limit (or with a larger one) to send them."
        );
    }
    Ok(code)
}

/// What to tell the user when the API refuses the key (`detail`: what it answered).
pub(crate) fn refused_credentials(detail: &str, key_env: &str, resume_cmd: &str) -> String {
    format!(
        "promptmill: the API refused the credentials ({detail}).\n\
         Check the key in {key_env} (and --header values), then resume with:\n  {resume_cmd}"
    )
}

/// What to tell the user when the account is out of credit.
pub(crate) fn out_of_quota(message: &str, resume_cmd: &str) -> String {
    format!(
        "promptmill: the API says the account is out of quota (HTTP 429: {message}).\n\
         This is a billing matter, not a rate limit: waiting will not help. Add credit or raise the\n\
         spending limit of the account (OpenAI: https://platform.openai.com/settings/organization/billing),\n\
         then resume with:\n  {resume_cmd}"
    )
}

/// A full disk stops the run (exit 4), it does not fail it: every row committed is safe in the
/// checkpoint at `db`, and `cmd` finishes the job once there is room. Any other error is returned.
pub(crate) fn disk_full_stop(e: anyhow::Error, db: &Path, finish: &str, cmd: &str) -> anyhow::Result<i32> {
    if !crate::error::is_disk_full(&e) {
        return Err(e);
    }
    eprintln!(
        "promptmill: {e:#}\n\
         The rows completed so far are safe in the checkpoint {}. Free some space, then {finish}:\n  {cmd}",
        db.display()
    );
    Ok(exit_code::STOPPED)
}

/// The command that writes a job's output from its checkpoint.
pub(crate) fn export_cmd(db: &Path, out: &output::OutputSpec) -> String {
    let path = out.path.display().to_string();
    let mut cmd = format!(
        "promptmill export {} -o {}",
        shell_quote(&db.display().to_string()),
        shell_quote(&path)
    );
    if output::OutputFormat::from_path(&out.path) != Some(out.format) {
        use clap::ValueEnum;
        if let Some(name) = out.format.to_possible_value() {
            cmd.push_str(&format!(" --format {}", name.get_name()));
        }
    }
    cmd
}

/// Ends a run: writes the output (with `export`) and the `--summary` file, records the summary
/// in the checkpoint, and prints the totals. Shared by live and batch runs. A run whose output
/// could not be written is recorded as `output_failed`, never as finished.
pub(crate) fn write_results(
    store: &Store,
    run_id: i64,
    job: &JobRecord,
    send: &SendConfig,
    summary: &Summary,
    export: bool,
) -> anyhow::Result<()> {
    let summary_json = serde_json::to_string_pretty(summary)?;
    if export {
        if let Err(e) = output::export(store, &job.output_columns(), &job.output, send.overwrite) {
            let mut failed = summary.clone();
            failed.outcome = "output_failed".into();
            // Best effort: on a full disk this small write may fail too, and the run then
            // simply has no recorded end, which is not "finished" either.
            let _ = serde_json::to_string_pretty(&failed)
                .map_err(anyhow::Error::from)
                .and_then(|json| store.end_run(run_id, &failed.outcome, &json));
            return Err(e);
        }
    }
    store.end_run(run_id, &summary.outcome, &summary_json)?;
    if let Some(path) = &send.summary {
        crate::files::write(path, format!("{summary_json}\n").as_bytes())?;
    }
    if let Some(path) = &send.report {
        crate::report::write(store, store.path(), path)?;
    }
    if !send.quiet {
        eprintln!("{summary}");
    }
    Ok(())
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

/// Splits `--header`s into those safe to store and the names of those withheld as credentials.
fn split_headers(headers: &[(String, String)]) -> (Vec<(String, String)>, Vec<String>) {
    let mut keep = Vec::new();
    let mut withheld = Vec::new();
    for (name, value) in headers {
        if is_secret_header(name) {
            withheld.push(name.clone());
        } else {
            keep.push((name.clone(), value.clone()));
        }
    }
    (keep, withheld)
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

/// Deletes a checkpoint, its WAL files and any rollback journal an interrupted load left (which,
/// left beside a new checkpoint, SQLite would apply to it).
fn remove_checkpoint(db: &Path) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => anyhow::bail!("could not remove {}: {e}", Path::new(&p).display()),
        }
    }
    Ok(())
}

/// Logs go to stderr; `-v` shows retries and failures, `-vv` every response. Only promptmill's
/// own events are shown: the HTTP stack's are noise here, and nothing can leak through them.
pub(crate) fn init_logging(verbose: u8) {
    use tracing_subscriber::prelude::*;
    let level = match verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    let filter = tracing_subscriber::filter::Targets::new()
        .with_target("promptmill", level)
        .with_default(tracing::Level::WARN);
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(progress::can_redraw())
                .with_target(false),
        )
        .with(filter)
        .try_init();
}
