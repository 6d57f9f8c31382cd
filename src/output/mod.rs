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
    /// The file, or `-` for standard output ([`OutputSpec::is_stdout`]).
    pub path: PathBuf,
    pub format: OutputFormat,
}

impl OutputSpec {
    /// The path that means standard output (`-o -`).
    pub const STDOUT: &'static str = "-";

    /// Whether the results go to standard output (written whole at the end of a run).
    pub fn is_stdout(&self) -> bool {
        self.path == Path::new(Self::STDOUT)
    }
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

/// Checks, before a run sends anything, that its output can be written where it goes (the
/// results are safe in the checkpoint either way, but a run should not find out at its end).
pub fn check_writable(spec: &OutputSpec) -> anyhow::Result<()> {
    if spec.is_stdout() {
        return Ok(());
    }
    let tmp = temp_path(&spec.path);
    create_private(&tmp).map_err(|e| {
        anyhow::anyhow!(
            "{}: cannot write the output there ({:#}); nothing was sent. Make its directory writable, or give --output another path",
            spec.path.display(),
            e.root_cause()
        )
    })?;
    let _ = std::fs::remove_file(&tmp);
    Ok(())
}

/// Removes temporary files that an export of `path` killed midway left behind: those whose
/// process is gone (an export running now, in another process, keeps its own).
fn remove_stale_temps(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!(".{}.promptmill-tmp-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(pid) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !process_alive(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 checks that the process exists and sends nothing.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(not(unix))]
fn process_alive(_pid: u32) -> bool {
    true // cannot tell: keep the file
}

/// Exports every row of `store` to `spec.path`, atomically (or to standard output).
pub fn export(store: &Store, columns: &[String], spec: &OutputSpec) -> anyhow::Result<Written> {
    if spec.is_stdout() {
        return export_to_stdout(store, columns, spec.format);
    }
    remove_stale_temps(&spec.path);
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
    let mut writer: Box<dyn RowWriter> = match format {
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
    writer.finish()?.flush()?;
    Ok(written)
}

#[cfg(not(unix))]
fn export_to_stdout(_: &Store, _: &[String], _: OutputFormat) -> anyhow::Result<Written> {
    anyhow::bail!("writing the results to standard output (`-o -`) needs a Unix system")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_files_of_dead_exports_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.jsonl");
        // No process has pid i32::MAX (above any pid_max); this process is alive.
        let dead = dir.path().join(format!(".out.jsonl.promptmill-tmp-{}", i32::MAX));
        let mine = temp_path(&out);
        let other_output = dir
            .path()
            .join(format!(".other.jsonl.promptmill-tmp-{}", i32::MAX));
        for f in [&dead, &mine, &other_output] {
            std::fs::write(f, "partial").unwrap();
        }
        remove_stale_temps(&out);
        assert!(!dead.exists(), "a killed export's file is removed");
        assert!(mine.exists(), "a live process's file is kept");
        assert!(other_output.exists(), "another output's files are not touched");
    }

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
