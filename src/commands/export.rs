//! `promptmill export DB -o PATH`: write a job's results from its checkpoint.

use crate::cli::ExportArgs;
use crate::config::{check_paths, output_spec};
use crate::error::{exit_code, CheckpointError};
use crate::output;
use crate::store::Store;

pub fn export(args: ExportArgs) -> anyhow::Result<i32> {
    let store = Store::open(&args.db, false)?;
    let job = store
        .job()?
        .ok_or_else(|| CheckpointError::NoJob { db: args.db.clone() })?;
    let spec = output_spec(&args.output, args.format, "--output")?;
    check_paths(
        &job.spec.input,
        &args.db,
        &spec.path,
        None,
        "--output",
        "the checkpoint",
    )?;
    let written = output::export(&store, &job.columns, &spec, args.overwrite)?;
    eprintln!(
        "promptmill: wrote {} rows to {}",
        written.rows,
        spec.path.display()
    );
    Ok(exit_code::SUCCESS)
}
