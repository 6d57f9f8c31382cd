//! `promptmill run` and `promptmill resume`: read the input into a checkpoint (first run only)
//! or open the job's checkpoint, check the job is the same, then hand it to `execute`, which
//! sends every pending row and writes the output and the totals.

use std::path::Path;

use super::execute::execute;
use crate::cli::{ResumeArgs, RunArgs};
use crate::config::{self, is_secret_header, CacheChoice, RunConfig, SendConfig};
use promptmill_core::error::CheckpointError;
use promptmill_core::input::{fingerprint_file, is_stdin, RowReader};
use promptmill_core::job::JobRecord;
use promptmill_engine::joblock::{lock_run, RunLock};
use promptmill_engine::load::{compare, load, InputChange, Known, LoadError};
use promptmill_engine::output;
use promptmill_engine::prepare::Preparer;
use promptmill_engine::progress;
use promptmill_engine::store::{explain, Store};

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
        if let CacheChoice::On {
            path,
            read_only: false,
        } = &cfg.send.cache
        {
            promptmill_engine::cache::keep::copy_before_discarding(&cfg.db, path);
        }
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
    if args.limit.is_some() || args.no_limit {
        job.limit = args.limit;
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
        &config::side_files(send.report.as_deref(), &send.cache),
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
    let preparer = Preparer::new(cfg.input.clone(), cfg.request.clone())
        .check_context(cfg.send.price_book()?)
        .with_digests();
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
                version: promptmill_core::job::JOB_RECORD_VERSION,
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
                batch: promptmill_core::job::settings::BatchSettings::for_limits(cfg.provider.batch_limits()),
                profile: cfg.profile.clone(),
                limit: cfg.limit,
                input_size: Some(loaded.size),
                withheld_params: vec![],
                column_types: loaded.column_types.clone(),
                column_schemas: loaded.column_schemas.clone(),
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
        let from = if promptmill_core::input::is_stdin(&cfg.input) {
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
    let preparer = Preparer::new(cfg.input.clone(), request)
        .check_context(cfg.send.price_book()?)
        .with_digests();
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
            grown.column_schemas = loaded.column_schemas.clone();
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
