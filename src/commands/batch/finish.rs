//! The end of a Batch API run: the rows' counts and the job's cost once the drive is over (summed
//! beside the output's writing, both reading the whole table), the outcome and exit code they
//! mean, and what to tell the user next. Driving and writing are `batch.rs`'s.

use std::path::Path;

use super::super::shell_quote;
use crate::config::SendConfig;
use promptmill_core::error::exit_code;
use promptmill_core::job::JobRecord;
use promptmill_core::models::CostSplit;
use promptmill_engine::batch::Ending;
use promptmill_engine::estimate::report::dollars;
use promptmill_engine::output;
use promptmill_engine::store::{Counts, Store};

/// What the drive left, for the summary.
pub(super) enum AfterDrive {
    /// Every batch is collected and rows remain for the live path; nothing was written.
    FinishLive,
    /// The rows by state, the job's cost split, and, when it was written meanwhile, how writing
    /// the output went (`None`: not written yet).
    Totals {
        after: Counts,
        split: Option<CostSplit>,
        exported: Option<anyhow::Result<()>>,
    },
}

/// A job that may go on live is counted before anything is written (and handed back when rows
/// remain); any other writes its output while its totals are summed beside it.
pub(super) fn after_drive(
    store: &mut Store,
    run_id: i64,
    job: &JobRecord,
    send: &SendConfig,
    ending: &Ending,
    then_live: bool,
) -> anyhow::Result<AfterDrive> {
    if *ending == Ending::Finished && then_live {
        let (after, split) = totals(store, job)?;
        if after.pending > 0 {
            store.end_run(run_id, "batches_collected", "{}")?;
            if !send.quiet {
                eprintln!(
                    "promptmill: every batch is collected; sending the {} remaining rows live",
                    after.pending
                );
            }
            return Ok(AfterDrive::FinishLive);
        }
        return Ok(AfterDrive::Totals {
            after,
            split,
            exported: None,
        });
    }
    let (summed, exported) = totals_beside(store, job, || {
        output::export(store, &job.output_columns(), &job.output, send.overwrite).map(drop)
    });
    let (after, split) = summed?;
    Ok(AfterDrive::Totals {
        after,
        split,
        exported: Some(exported),
    })
}

/// The rows by state and the job's cost, split (`None`: a model with usage has no price).
fn totals(store: &Store, job: &JobRecord) -> anyhow::Result<(Counts, Option<CostSplit>)> {
    Ok((
        store.counts()?,
        promptmill_engine::budget::job_cost_split(store, job)?,
    ))
}

/// [`totals`], summed on a connection of its own to the checkpoint (every write of the drive is
/// committed, so it reads what this one would) on a scoped thread, while `meanwhile` runs here.
fn totals_beside<T>(
    store: &Store,
    job: &JobRecord,
    meanwhile: impl FnOnce() -> T,
) -> (anyhow::Result<(Counts, Option<CostSplit>)>, T) {
    let path = store.path().to_path_buf();
    std::thread::scope(|scope| {
        let summing = scope.spawn(|| totals(&Store::open(&path, false)?, job));
        let done = meanwhile();
        let summed = summing
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("summing the job's totals panicked")));
        (summed, done)
    })
}

/// The run's recorded outcome and the exit code, from how the driver ended and the rows' states.
pub(super) fn outcome(ending: &Ending, after: &Counts) -> (&'static str, i32) {
    match ending {
        Ending::Interrupted => ("interrupted", exit_code::STOPPED),
        Ending::Auth { .. } => ("stopped_auth", exit_code::STOPPED),
        Ending::Quota { .. } => ("stopped_quota", exit_code::STOPPED),
        Ending::Redirected { .. } => ("stopped_misdirected", exit_code::STOPPED),
        Ending::Submitted { .. } => ("submitted", exit_code::SUCCESS),
        Ending::Budget { .. } => ("budget", exit_code::BUDGET),
        Ending::Finished if after.failed + after.invalid > 0 => ("finished", exit_code::ROWS_FAILED),
        Ending::Finished if after.pending + after.batched > 0 => ("incomplete", exit_code::STOPPED),
        Ending::Finished => ("finished", exit_code::SUCCESS),
    }
}

/// What to do next, on stderr: why the run stopped, and the command that goes on.
pub(super) fn tell_ending(ending: Ending, after: &Counts, job: &JobRecord, db_path: &Path, resume_cmd: &str) {
    let db = shell_quote(&db_path.display().to_string());
    match ending {
        Ending::Auth { message, .. } => eprintln!(
            "{}",
            crate::commands::ending::refused_credentials(&message, &job.api_key_env, resume_cmd)
        ),
        Ending::Quota { message } => eprintln!("{}", crate::commands::ending::out_of_quota(&message, resume_cmd)),
        Ending::Redirected { message, location } => eprintln!(
            "{}",
            crate::commands::target::redirects(&message, location.as_deref(), None, resume_cmd)
        ),
        Ending::Interrupted => eprintln!(
            "promptmill: stopped waiting; the submitted batches go on at the provider. Collect them with:\n  {resume_cmd}"
        ),
        Ending::Budget { limit, spent } => eprintln!(
            "promptmill: stopped at the --max-cost budget: {} spent of {}; the next batch's worst case does not fit \
             ({} remain).\nResume with a larger budget:\n  {resume_cmd} --max-cost AMOUNT",
            dollars(spent),
            dollars(limit),
            promptmill_engine::summary::count(after.pending, "row", "rows")
        ),
        Ending::Submitted { open } => eprintln!(
            "promptmill: {} submitted; see `promptmill status {db}`, and collect them with:\n  {resume_cmd}",
            promptmill_engine::summary::count(open as u64, "batch", "batches")
        ),
        Ending::Finished if after.failed > 0 => eprintln!(
            "promptmill: {} failed; see `promptmill status {db}`. Send them again as a new batch with:\n  \
             {resume_cmd} --retry-failed\nor one request each with:\n  {resume_cmd} --retry-failed --finish-live",
            promptmill_engine::summary::count(after.failed, "row", "rows")
        ),
        Ending::Finished => {}
    }
}
