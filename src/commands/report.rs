//! `promptmill report DB -o report.html`: the job's run report, from its checkpoint alone.
//! Safe while the job runs (a reader of the WAL checkpoint never blocks the writer).

use crate::cli::ReportArgs;
use crate::config::check_paths;
use promptmill_core::error::{exit_code, CheckpointError};
use promptmill_engine::store::Store;

pub fn report(args: ReportArgs) -> anyhow::Result<i32> {
    let store = Store::open(&args.db, false)?;
    let job = store
        .job()?
        .ok_or_else(|| CheckpointError::NoJob { db: args.db.clone() })?;
    // The report is neither the input, the checkpoint nor the job's results file.
    check_paths(
        &job.spec.input,
        &args.db,
        &job.output.path,
        None,
        &[("--output", &args.output)],
        "the job's output",
        "the checkpoint",
    )?;
    promptmill_engine::report::write(&store, &args.db, &args.output)?;
    eprintln!("promptmill: wrote the report to {}", args.output.display());
    Ok(exit_code::SUCCESS)
}
