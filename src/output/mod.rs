//! Writing results: every row of the checkpoint, in input order, to a file.
//!
//! The checkpoint is the source; an output is a view of it that can be rewritten at any time
//! (`promptmill export`). Files are written to a temporary file beside the target, flushed to
//! disk, then renamed over it, so a reader never sees half a file and a crash never leaves one.
//! New files are created with mode 0600. One file per format behind the [`RowWriter`] trait.

mod batch;
mod csv;
mod jsonl;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::store::{ExportRow, Store};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum OutputFormat {
    /// One JSON object per row: id, input fields, completion, finish reason, usage, model, error.
    Jsonl,
    /// The same as CSV columns (usage split into three columns).
    Csv,
    /// OpenAI Batch output lines (`BatchRequestOutput`), with the full response bodies.
    OpenaiBatch,
}

impl OutputFormat {
    pub fn from_path(path: &Path) -> Option<OutputFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" => Some(OutputFormat::Jsonl),
            "csv" => Some(OutputFormat::Csv),
            _ => None,
        }
    }
}

/// Where the results of a job go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputSpec {
    pub path: PathBuf,
    pub format: OutputFormat,
}

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

/// Exports every row of `store` to `spec.path`, atomically.
pub fn export(store: &Store, columns: &[String], spec: &OutputSpec) -> anyhow::Result<Written> {
    let tmp = temp_path(&spec.path);
    let result = (|| -> anyhow::Result<Written> {
        let out = BufWriter::with_capacity(1 << 20, create_private(&tmp)?);
        let mut writer: Box<dyn RowWriter> = match spec.format {
            OutputFormat::Jsonl => Box::new(jsonl::Jsonl::new(out)),
            OutputFormat::Csv => Box::new(csv::Csv::new(out, columns)?),
            OutputFormat::OpenaiBatch => Box::new(batch::Batch::new(out)),
        };
        let mut written = Written::default();
        store.for_each_row(|row| {
            writer.row(&row)?;
            written.rows += 1;
            Ok(())
        })?;
        let mut out = writer.finish()?;
        out.flush()?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(written)
    })();
    match result {
        Ok(written) => {
            std::fs::rename(&tmp, &spec.path).with_context(|| {
                format!("could not move the output into place at {}", spec.path.display())
            })?;
            Ok(written)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e.context(format!("could not write {}", spec.path.display())))
        }
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.promptmill-tmp-{}", std::process::id()))
}

/// Creates (truncating) a file readable by its owner only.
pub fn create_private(path: &Path) -> anyhow::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .with_context(|| format!("could not create {}", path.display()))
}

/// The status a row is exported with: `done`, `failed`, `invalid` (never sent), `pending`.
fn status(row: &ExportRow) -> &str {
    if row.invalid {
        "invalid"
    } else if row.state == crate::store::state::IN_FLIGHT {
        crate::store::state::PENDING
    } else {
        &row.state
    }
}
