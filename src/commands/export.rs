//! `promptmill export DB -o PATH`: write a job's results from its checkpoint.

use crate::cli::ExportArgs;
use crate::config::{check_paths, output_spec};
use promptmill_core::error::{exit_code, CheckpointError};
use promptmill_engine::output;
use promptmill_engine::store::Store;

pub fn export(args: ExportArgs) -> anyhow::Result<i32> {
    let store = Store::open(&args.db, false)?;
    let job = store
        .job()?
        .ok_or_else(|| CheckpointError::NoJob { db: args.db.clone() })?;
    let spec = output_spec(&args.output, args.output_format, "--output")?;
    if !spec.is_stdout() {
        check_paths(
            &job.spec.input,
            &args.db,
            &spec.path,
            None,
            &[],
            "--output",
            "the checkpoint",
        )?;
    }
    let written = output::export(&store, &job.output_columns(), &spec, args.overwrite)?;
    let to = if spec.is_stdout() {
        "standard output".to_string()
    } else {
        spec.path.display().to_string()
    };
    eprintln!("promptmill: wrote {} rows to {to}", written.rows);
    Ok(exit_code::SUCCESS)
}
