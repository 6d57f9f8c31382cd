//! `promptmill status DB`: where a job stands, without changing anything. Safe to run while the
//! job runs (the checkpoint is in WAL mode: readers never block the writer).

use std::time::Duration;

use std::fmt::Write as _;
use std::io::Write as _;

use serde::Serialize;

use crate::cli::StatusArgs;
use promptmill_core::error::{exit_code, CheckpointError};
use promptmill_engine::estimate::report::{duration, thousands};
use promptmill_engine::joblock::run_is_live;
use promptmill_engine::limits::InForce;
use promptmill_engine::store::{now_ms, Counts, RunRecord, Store};

#[derive(Serialize)]
struct Status {
    checkpoint: String,
    input: String,
    model: Option<String>,
    endpoint: String,
    base_url: String,
    /// OpenAI-compatible, or Azure with its deployment and API version.
    provider: promptmill_core::provider::Provider,
    /// The `--profile` the job's settings came from, its file, and the flags it gave (the other
    /// settings came from flags, the stored job or the defaults).
    profile: Option<crate::profile::ProfileUse>,
    /// The URL each request is sent to.
    url: String,
    output: String,
    /// The limits the job last ran under (a resume keeps them unless flags say otherwise).
    limits: crate::config::SendLimits,
    /// What the last run actually sent under: RPM and TPM with their source (`flag`, `server`
    /// when learned from its headers, `none`) and the adaptive concurrency window. Live while a
    /// run goes.
    limits_in_force: Option<InForce>,
    rows: Counts,
    /// A `--schema` job's rows by outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    schema: Option<promptmill_engine::store::SchemaCounts>,
    /// The run going now, when there is one: its process, since when, and what it has on the
    /// wire. `None` when no run is going (rows left claimed by a killed run are pending).
    active_run: Option<ActiveRun>,
    /// Requests on the wire now (0 when no run is going). `rows.in_flight` counts the rows a
    /// running process has claimed, which includes those queued behind the concurrency window.
    on_wire: u64,
    /// Rows a run that is gone left claimed, counted in `rows.pending` (the next run sends them).
    left_claimed: u64,
    /// Requests the checkpoint knows were sent, beyond one per row.
    retries: u64,
    /// Dollars spent on the done rows, at the prices the job last ran with; `None` when a model
    /// of the job has no known price.
    cost: Option<f64>,
    /// The same by kind of token: input, cached input, cache writes, output (reasoning within
    /// it).
    cost_split: Option<promptmill_core::models::CostSplit>,
    /// `--max-cost`, when the job has one.
    max_cost: Option<f64>,
    /// Dollars the rows done from the response cache would have cost (they cost nothing), at
    /// the job's prices (the Batch prices in a `--mode batch` job); `None` when none was, or a
    /// model has no known price.
    saved: Option<f64>,
    /// `run --limit`: only rows numbered up to this are sent, when the job has one.
    limit: Option<u64>,
    top_errors: Vec<ErrorCount>,
    /// `live` or `batch`.
    mode: crate::cli::Mode,
    /// The job's Batch API parts: file, batch, the provider's status and request counts as last
    /// seen (`run --mode batch`). Read from the checkpoint; nothing is asked of the provider.
    batches: Vec<promptmill_engine::store::PartRecord>,
    runs: Vec<RunRecord>,
    /// Time spent running, summed over runs (a killed run counts until its last commit's time is
    /// unknown, so it counts as zero).
    elapsed_seconds: f64,
}

#[derive(Serialize)]
struct ActiveRun {
    run: i64,
    pid: u32,
    /// Unix ms.
    started_at: i64,
    /// Requests on the wire at the run's last commit.
    on_wire: u64,
    /// When the run last committed (unix ms).
    updated_at: Option<i64>,
}

/// The last run, when it has not ended and its process is alive.
fn active_run(runs: &[RunRecord]) -> Option<ActiveRun> {
    let last = runs.last()?;
    let pid = last.pid?;
    let going = last.ended_at.is_none()
        && pid != std::process::id()
        && promptmill_engine::joblock::process_alive(pid);
    going.then_some(ActiveRun {
        run: last.run,
        pid,
        started_at: last.started_at,
        on_wire: last.on_wire,
        updated_at: last.updated_at,
    })
}

/// Moves the rows claimed by runs into the counts where they belong; returns how many a run
/// that is gone left claimed. A running process's claimed rows are `pending` in the checkpoint
/// (a claim writes nothing; the run records how many it holds): they count as in flight while
/// it runs. Rows claimed by a run that is gone (killed, or stopped by a full disk) are pending:
/// the next run sends them. Runs of earlier versions marked their claimed rows `in_flight`.
fn claimed_rows(rows: &mut Counts, runs: &[RunRecord], live: bool) -> u64 {
    let last_claimed = runs
        .last()
        .filter(|r| r.ended_at.is_none())
        .map_or(0, |r| r.claimed.min(rows.pending));
    if live {
        rows.pending -= last_claimed;
        rows.in_flight += last_claimed;
        0
    } else {
        let marked = std::mem::take(&mut rows.in_flight);
        rows.pending += marked;
        marked + last_claimed
    }
}

#[derive(Serialize)]
struct ErrorCount {
    error: String,
    rows: u64,
}

pub fn status(args: StatusArgs) -> anyhow::Result<i32> {
    // Asked before SQLite opens the file (see `run_is_live`).
    let live = run_is_live(&args.db);
    let store = Store::open(&args.db, false)?;
    let job = store
        .job()?
        .ok_or_else(|| CheckpointError::NoJob { db: args.db.clone() })?;
    let mut rows = store.counts()?;
    let runs = store.runs()?;
    let left_claimed = claimed_rows(&mut rows, &runs, live);
    let now = now_ms();
    let elapsed_ms: i64 = runs
        .iter()
        .map(|r| match (r.ended_at, r.outcome.as_deref()) {
            (Some(end), _) => end - r.started_at,
            (None, _) if Some(r.run) == runs.last().map(|l| l.run) => now - r.started_at,
            _ => 0,
        })
        .sum();
    // The lock says whether a run is going; the run's record says which process and what it
    // has on the wire.
    let active = if live { active_run(&runs) } else { None };
    let cost_split = promptmill_engine::budget::job_cost_split(&store, &job)?;
    let status = Status {
        checkpoint: args.db.display().to_string(),
        input: job.spec.input.display().to_string(),
        model: job.spec.model.clone(),
        endpoint: job.endpoint.path().to_string(),
        base_url: job.base_url.clone(),
        url: job
            .provider
            .endpoint_url(&job.base_url, job.endpoint)
            .map_or_else(
                |_| format!("{}{}", job.base_url, job.endpoint.path()),
                |u| u.to_string(),
            ),
        provider: job.provider.clone(),
        profile: job.profile.clone(),
        output: job.output.path.display().to_string(),
        limits: job.send.clone(),
        limits_in_force: runs.last().and_then(|r| r.limits),
        retries: runs.iter().map(|r| r.retries.max(0) as u64).sum(),
        cost: cost_split.map(|c| c.total()),
        cost_split,
        max_cost: job.max_cost,
        saved: match rows.cached {
            0 => None,
            _ => promptmill_engine::budget::job_saved(&store, &job)?,
        },
        limit: job.limit,
        top_errors: store
            .top_errors(5)?
            .into_iter()
            .map(|(error, rows)| ErrorCount { error, rows })
            .collect(),
        mode: job.batch.mode,
        schema: match job.spec.schema {
            Some(_) => Some(store.schema_counts()?),
            None => None,
        },
        batches: store.parts()?,
        on_wire: active.as_ref().map_or(0, |a| a.on_wire),
        active_run: active,
        rows,
        left_claimed,
        runs,
        elapsed_seconds: elapsed_ms.max(0) as f64 / 1000.0,
    };
    let text = if args.json {
        format!("{}\n", serde_json::to_string_pretty(&status)?)
    } else {
        table(&status)
    };
    // Written at once, so that a closed pipe (`status DB | head`) is an error `main` takes for
    // success, not a panic of `println!`.
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(exit_code::SUCCESS)
}

/// Appends a line to the table being built (`println!`'s form, into a `String`).
macro_rules! line {
    ($out:ident) => { $out.push('\n') };
    ($out:ident, $($arg:tt)*) => {{
        let _ = writeln!($out, $($arg)*);
    }};
}

fn table(s: &Status) -> String {
    let mut out = String::new();
    job_lines(&mut out, s);
    line!(out);
    row_lines(&mut out, s);
    line!(out);
    usage_lines(&mut out, s);
    if !s.batches.is_empty() {
        batch_lines(&mut out, &s.batches);
    }
    if !s.top_errors.is_empty() {
        line!(out);
        line!(out, "most common errors:");
        for e in &s.top_errors {
            line!(out, "  {:>7} × {}", e.rows, e.error);
        }
    }
    out
}

/// The job: its files, where it sends, whether a process runs it, its profile and limits.
fn job_lines(out: &mut String, s: &Status) {
    line!(out, "checkpoint  {}", s.checkpoint);
    line!(out, "input       {}", s.input);
    line!(
        out,
        "model       {}   endpoint {}",
        s.model.as_deref().unwrap_or("(from the rows)"),
        s.url
    );
    line!(out, "output      {}", s.output);
    match &s.active_run {
        Some(a) => {
            let since = Duration::from_millis(now_ms().saturating_sub(a.started_at).max(0) as u64);
            line!(
                out,
                "running     yes: run {}, pid {}, since {} ({} ago)",
                a.run,
                a.pid,
                humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + Duration::from_millis(a.started_at.max(0) as u64)
                ),
                duration(since)
            );
        }
        None => line!(out, "running     no"),
    }
    if let Some(p) = &s.profile {
        let gave = if p.gave.is_empty() {
            "nothing the command line had not set".to_string()
        } else {
            p.gave.join(" ")
        };
        line!(out, "profile     {} ({}) gave {gave}", p.name, p.file.display());
    }
    let l = &s.limits;
    // A limit not given is learned from the server (see limits.rs).
    let given = |v: Option<std::num::NonZeroU32>| {
        v.map(|n| n.to_string())
            .unwrap_or_else(|| "from the server".into())
    };
    line!(
        out,
        "limits      concurrency {}, rpm {}, tpm {}, {} attempts, timeout {}",
        l.concurrency,
        given(l.rpm),
        given(l.tpm),
        l.max_attempts,
        humantime::format_duration(l.timeout)
    );
    if let (Some(in_force), Some(last)) = (&s.limits_in_force, s.runs.last()) {
        line!(out, "in force    {in_force} (run {}, as last recorded)", last.run);
    }
}

/// The rows by state (the running process's rows on the wire and claimed, when one runs).
fn row_lines(out: &mut String, s: &Status) {
    let r = &s.rows;
    match s.limit {
        Some(n) => line!(
            out,
            "rows        {} total; --limit {n}: only the first {n} are sent",
            r.total
        ),
        None => line!(out, "rows        {} total", r.total),
    }
    let saved = s
        .saved
        .map(|d| format!(", saved {}", promptmill_engine::estimate::report::dollars(d)))
        .unwrap_or_default();
    match r.cached {
        0 => line!(out, "  done      {}", r.done),
        n => line!(
            out,
            "  done      {} ({} from the response cache, not sent{saved})",
            r.done,
            thousands(n)
        ),
    }
    line!(out, "  failed    {}", r.failed);
    if let Some(schema) = &s.schema {
        line!(
            out,
            "  schema    {}",
            promptmill_engine::summary::describe_schema(schema)
        );
    }
    line!(out, "  skipped   {} (invalid input)", r.invalid);
    match &s.active_run {
        Some(a) => {
            line!(out, "  pending   {}", thousands(r.pending));
            line!(out, "  on wire   {}", thousands(a.on_wire));
            line!(
                out,
                "  claimed   {} (by the running process, waiting for a place on the wire)",
                thousands(r.in_flight.saturating_sub(a.on_wire))
            );
        }
        None => {
            // Rows a killed run left claimed were moved to pending above.
            if s.left_claimed > 0 {
                line!(out,
                    "  pending   {} ({} left claimed by a run that did not end cleanly; the next run sends them)",
                    thousands(r.pending),
                    thousands(s.left_claimed)
                );
            } else {
                line!(out, "  pending   {}", thousands(r.pending));
            }
            line!(out, "  in flight {}", thousands(r.in_flight));
        }
    }
    if r.batched > 0 || !s.batches.is_empty() {
        line!(out, "  in batches {}", r.batched);
    }
}

/// Attempts, retries, tokens, cost and time.
fn usage_lines(out: &mut String, s: &Status) {
    let r = &s.rows;
    line!(
        out,
        "attempts    {} ({} rows needed more than one, at most {} for one row)",
        r.attempts,
        r.retried_rows,
        r.max_attempts
    );
    let runs = if s.runs.len() == 1 { "run" } else { "runs" };
    line!(out, "retries     {} (in {} {runs})", s.retries, s.runs.len());
    line!(
        out,
        "tokens      {} prompt + {} completion = {} total",
        thousands(r.prompt_tokens),
        thousands(r.completion_tokens),
        thousands(r.total_tokens)
    );
    // The ledger's own wording, as the progress line prints it.
    if let Some(c) = s.cost {
        let spend = promptmill_engine::budget::Spend {
            before: c,
            limit: s.max_cost,
            ..Default::default()
        };
        line!(out, "cost        {}", spend.describe());
        if let Some(split) = &s.cost_split {
            line!(
                out,
                "            {}",
                promptmill_engine::summary::describe_split(split)
            );
        }
    }
    line!(
        out,
        "elapsed     {}",
        duration(Duration::from_secs_f64(s.elapsed_seconds.max(0.0)))
    );
}

/// One line per Batch API part: where it stands, and the provider's counts as last seen.
fn batch_lines(out: &mut String, parts: &[promptmill_engine::store::PartRecord]) {
    line!(out);
    line!(out, "batches (as last seen; `promptmill resume` polls them):");
    let (mut done, mut failed, mut rows) = (0, 0, 0);
    for p in parts {
        let state = match (&p.status, p.stage.as_str()) {
            (Some(status), "collected") => format!("{status}, collected"),
            (Some(status), _) => status.clone(),
            (None, stage) => format!("not submitted ({stage})"),
        };
        line!(
            out,
            "  {:>3}  {:<28} {:<22} {:>7} rows  {:>7} done {:>6} failed",
            p.part,
            p.batch_id.as_deref().unwrap_or("-"),
            state,
            p.rows,
            p.completed,
            p.failed
        );
        for e in p.errors.iter().take(5) {
            line!(out, "         error: {e}");
        }
        done += p.completed;
        failed += p.failed;
        rows += p.rows;
    }
    line!(
        out,
        "  all  {} batches: {done} of {rows} rows done, {failed} failed",
        parts.len()
    );
}
