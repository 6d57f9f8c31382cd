//! Writing results: every row of the checkpoint, in input order, to a file.
//!
//! The checkpoint is the source; an output is a view of it that can be rewritten at any time
//! (`promptmill export`). Files are written to a temporary file beside the target, flushed to
//! disk, then renamed over it, so a reader never sees half a file and a crash never leaves one
//! (see `files`: created exclusively, mode 0600, under a name nobody can plant a link at). One file per format behind the [`RowWriter`] trait: JSON Lines, CSV, OpenAI Batch
//! output lines, Parquet.

mod batch;
mod cost;
mod csv;
mod jsonl;
mod parquet;

use std::fs::File;
use std::io::{BufWriter, Write};

use anyhow::Context;
pub use promptmill_core::job::settings::{OutputFormat, OutputSpec};

use crate::store::{ExportRow, FileStamp, Store};
use promptmill_core::files;
use promptmill_core::paths;

/// Writes rows of one format to the stream it was made with.
trait RowWriter {
    fn row(&mut self, row: &ExportRow) -> anyhow::Result<()>;
    /// Flushes what the format buffers and hands the stream back.
    fn finish(self: Box<Self>) -> anyhow::Result<Out>;
}

type Out = BufWriter<File>;

/// Rows by status in what was written.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub rows: u64,
}

/// Checks, before a run sends anything, that its output can be written where it goes (the
/// results are safe in the checkpoint either way, but a run should not find out at its end).
/// Creates and removes a file of its own beside the output; the output itself is not opened.
pub fn check_writable(spec: &OutputSpec) -> anyhow::Result<()> {
    if spec.is_stdout() {
        return Ok(());
    }
    files::check_creatable(&spec.path).map_err(|e| {
        anyhow::anyhow!(
            "{}: cannot write the output there ({e}); nothing was sent. Make its directory writable, or give --output another path",
            spec.path.display(),
        )
    })
}

/// Refuses to replace a file at `spec.path` that no run or export of this job wrote, or that
/// changed since (the checkpoint records each file it wrote: see `store::FileStamp`), unless
/// `overwrite`.
pub fn check_replaceable(store: &Store, spec: &OutputSpec, overwrite: bool) -> anyhow::Result<()> {
    if spec.is_stdout() {
        return Ok(());
    }
    let Ok(meta) = std::fs::symlink_metadata(&spec.path) else {
        return Ok(()); // nothing there
    };
    if meta.is_dir() {
        anyhow::bail!(
            "{}: is a directory; give --output a file's path",
            spec.path.display()
        );
    }
    if overwrite {
        return Ok(());
    }
    let ours = match FileStamp::of(&meta) {
        Some(stamp) if meta.file_type().is_file() => store.wrote(&paths::canonical(&spec.path), stamp)?,
        _ => false,
    };
    if ours {
        return Ok(());
    }
    anyhow::bail!(
        "{} exists and was not written by this job; pass --overwrite to replace it (or choose another -o)",
        spec.path.display()
    )
}

/// Exports every row of `store` to `spec.path`, atomically: into a new file beside it, flushed
/// to disk, then renamed over it; records the new file in the checkpoint as the job's. An
/// existing file there that the job did not write is refused unless `overwrite`.
pub fn export(
    store: &Store,
    columns: &[String],
    spec: &OutputSpec,
    overwrite: bool,
) -> anyhow::Result<Written> {
    if spec.is_stdout() {
        return export_to_stdout(store, columns, spec.format);
    }
    check_replaceable(store, spec, overwrite)?;
    files::remove_stale(&spec.path, files::TEMP_SUFFIX);
    let tmp = files::temp_for(&spec.path)?;
    let result = (|| -> anyhow::Result<Written> {
        let out = BufWriter::with_capacity(1 << 20, tmp.as_file().try_clone()?);
        let (written, mut out) = write_rows(store, columns, spec.format, out)?;
        out.flush()?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(written)
    })();
    match result {
        Ok(written) => {
            let file = files::persist(tmp, &spec.path)?;
            let recorded = file
                .metadata()
                .map_err(anyhow::Error::from)
                .and_then(|meta| match FileStamp::of(&meta) {
                    Some(stamp) => store.record_output(&paths::canonical(&spec.path), stamp),
                    None => Ok(()),
                });
            if let Err(e) = recorded {
                eprintln!(
                    "promptmill: warning: {}: could not record this file in the checkpoint ({e:#}); \
                     replacing it later will need --overwrite",
                    spec.path.display()
                );
            }
            Ok(written)
        }
        // Dropping the temporary file removes it.
        Err(e) => Err(e.context(format!("could not write {}", spec.path.display()))),
    }
}

/// Writes every row to standard output, through the same writers as a file. Nothing is
/// renamed or synced: a pipe has no place to rename into. A closed pipe surfaces as the
/// `BrokenPipe` error that `main` treats as success.
#[cfg(unix)]
fn export_to_stdout(store: &Store, columns: &[String], format: OutputFormat) -> anyhow::Result<Written> {
    use std::os::fd::AsFd;
    let stdout = std::io::stdout();
    let _lock = stdout.lock();
    let fd = stdout
        .as_fd()
        .try_clone_to_owned()
        .context("could not write to standard output")?;
    let out = BufWriter::with_capacity(1 << 20, File::from(fd));
    let (written, mut out) = write_rows(store, columns, format, out)?;
    out.flush()?;
    Ok(written)
}

/// Writes every row of `store` to `out` in `format`, through that format's writer; gives the
/// stream back for the caller to flush (and, for a file, sync).
fn write_rows(
    store: &Store,
    columns: &[String],
    format: OutputFormat,
    out: BufWriter<File>,
) -> anyhow::Result<(Written, BufWriter<File>)> {
    let job = store.job()?;
    // A family whose answers are vectors, not text, gets a column for them.
    let vectors = job
        .as_ref()
        .is_some_and(|j| !j.endpoint.family().generates_text());
    // A `--schema` job's rows carry their outcome and parsed answer; CSV and Parquet a column a
    // property.
    let properties = job
        .as_ref()
        .and_then(|j| j.spec.schema.as_ref())
        .map(promptmill_core::schema::properties);
    let mut writer: Box<dyn RowWriter> = match format {
        OutputFormat::Jsonl => Box::new(jsonl::Jsonl::new(out, properties.is_some())),
        OutputFormat::Csv => Box::new(csv::Csv::new(out, columns, vectors, properties.as_deref())?),
        OutputFormat::OpenaiBatch => Box::new(batch::Batch::new(
            out,
            job.as_ref().and_then(|j| j.spec.model.clone()),
        )),
        OutputFormat::Parquet => Box::new(parquet::Parquet::new(
            out,
            columns,
            job_facts(store, vectors, properties.clone())?,
        )?),
    };
    let mut written = Written::default();
    // Each row's cost, priced at the job's prices by the one formula (see `cost.rs`).
    let pricer = job
        .as_ref()
        .map(|j| cost::RowPricer::new(&j.models, j.spec.model.as_deref()));
    store.for_each_row(|mut row| {
        row.cost = pricer.as_ref().and_then(|p| p.cost(&row));
        if properties.is_some() && row.state == crate::store::state::DONE {
            row.outcome = Some(promptmill_core::schema::outcome::VALID.into());
            row.data = row
                .completion
                .as_deref()
                .and_then(promptmill_core::schema::parse_answer);
        }
        writer.row(&row)?;
        written.rows += 1;
        Ok(())
    })?;
    Ok((written, writer.finish()?))
}

/// The text of a valid row's answer's `property` in its `data.<property>` column (CSV and
/// Parquet alike): a string as it is, any other value as JSON text; `None` without one.
fn data_text(row: &ExportRow, property: &str) -> Option<String> {
    match row.data.as_ref()?.get(property)? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// What the Parquet writer needs of the job: its input's column types and nested schemas,
/// whether its answers are vectors, and a `--schema` job's top-level properties.
fn job_facts(
    store: &Store,
    vectors: bool,
    properties: Option<Vec<String>>,
) -> anyhow::Result<parquet::JobFacts> {
    let Some(job) = store.job()? else {
        return Ok(parquet::JobFacts::default());
    };
    Ok(parquet::JobFacts {
        types: job
            .columns
            .iter()
            .cloned()
            .zip(job.column_types.iter().copied())
            .collect(),
        schemas: job.column_schemas.clone(),
        vectors,
        properties,
    })
}

#[cfg(not(unix))]
fn export_to_stdout(_: &Store, _: &[String], _: OutputFormat) -> anyhow::Result<Written> {
    anyhow::bail!("writing the results to standard output (`-o -`) needs a Unix system")
}

/// The status a row is exported with: `done`, `failed`, `invalid` (never sent), `pending`, or
/// `batched` (in a Batch API batch not collected yet).
fn status(row: &ExportRow) -> &str {
    if row.invalid {
        "invalid"
    } else if row.state == crate::store::state::IN_FLIGHT {
        crate::store::state::PENDING
    } else {
        &row.state
    }
}

/// A pending row `r1` with `fields` and nothing else, for the writers' tests.
#[cfg(test)]
fn blank_row(fields: &str) -> ExportRow {
    ExportRow {
        seq: 1,
        id: "r1".into(),
        state: "pending".into(),
        invalid: false,
        fields: fields.into(),
        request: None,
        response: None,
        completion: None,
        finish_reason: None,
        prompt_tokens: None,
        completion_tokens: None,
        total_tokens: None,
        model: None,
        response_id: None,
        http_status: None,
        error: None,
        cached_tokens: None,
        cache_creation_tokens: None,
        reasoning_tokens: None,
        via_batch: false,
        cached: false,
        outcome: None,
        data: None,
        cost: None,
        embedding: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_that_cannot_be_created_is_reported_before_anything_else() {
        let dir = tempfile::tempdir().unwrap();
        let spec = OutputSpec {
            path: dir.path().join("no-such-dir").join("out.jsonl"),
            format: OutputFormat::Jsonl,
        };
        let err = check_writable(&spec).unwrap_err().to_string();
        assert!(
            err.contains("out.jsonl: cannot write the output there ("),
            "{err}"
        );
        assert!(err.contains("nothing was sent"), "{err}");
        let ok = OutputSpec {
            path: dir.path().join("out.jsonl"),
            format: OutputFormat::Jsonl,
        };
        check_writable(&ok).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "the probe file is gone"
        );
    }
}
