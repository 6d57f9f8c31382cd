//! An input that changed since its job was made: did it only grow, and if not, what differs.
//!
//! The job records the input's BLAKE3 fingerprint and its size. When the file now is longer and
//! its first `size` bytes hash to the fingerprint, and those bytes end with a line break, the old
//! input is a byte prefix of the new one that ends between rows: the rows after it can be added
//! to the job (`load.rs` does, checking that the first new row starts after the old bytes and
//! that the old last row reads the same). Any other change is described for the refusal: the
//! sizes, and the first line whose row differs from the one in the checkpoint.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use super::{stored_fields, Known};
use crate::store::{Ingest, Store};
use promptmill_core::input::{RowReader, RowResult};
use promptmill_core::job::JobRecord;

/// How the input differs from the job's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputChange {
    /// Rows were appended; `lines` line breaks end the bytes the job was read from.
    Grew { old_size: u64, lines: u64 },
    /// Anything else, as a phrase for "changed: …" (it names the file once).
    Differs(String),
}

/// Compares the input at `path` with the job's (whose rows are in `store`).
pub fn compare(path: &Path, job: &JobRecord, store: &Store) -> anyhow::Result<InputChange> {
    let now = std::fs::metadata(path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        .len();
    let file = path.display();
    let sizes = match job.input_size {
        Some(old) => format!("{old} bytes in the checkpoint, {now} now"),
        None => format!("{now} bytes now"),
    };
    if let Some(old) = job.input_size.filter(|&old| old > 0 && now > old) {
        let prefix = read_prefix(path, old)?;
        if prefix.hash == job.spec.fingerprint {
            if prefix.last == Some(b'\n') {
                return Ok(InputChange::Grew {
                    old_size: old,
                    lines: prefix.lines,
                });
            }
            return Ok(InputChange::Differs(format!(
                "the input {file} ({sizes}): rows were appended, but its old last line (line {}) \
                 had no line break, so the appended text changed that row",
                prefix.lines + 1
            )));
        }
    }
    let at = match first_differing_line(path, job, store) {
        Ok(Some(line)) => format!("the rows differ from line {line} on"),
        Ok(None) => {
            "every row reads the same; only the bytes differ (spacing, quoting or line endings)".into()
        }
        Err(e) => format!("it cannot be read as before: {e:#}"),
    };
    let moved = if job.spec.input != path {
        format!("; the checkpoint's input was {}", job.spec.input.display())
    } else {
        String::new()
    };
    Ok(InputChange::Differs(format!(
        "the input {file} ({sizes}; {at}{moved})"
    )))
}

/// What the first `size` bytes of a file hash to, how many line breaks they hold, their last byte.
struct Prefix {
    hash: String,
    lines: u64,
    last: Option<u8>,
}

fn read_prefix(path: &Path, size: u64) -> anyhow::Result<Prefix> {
    let file = File::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut reader = file.take(size);
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    let (mut lines, mut last) = (0u64, None);
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => anyhow::bail!("{}: {e}", path.display()),
        };
        hasher.update(&buf[..n]);
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        last = Some(buf[n - 1]);
    }
    Ok(Prefix {
        hash: hasher.finalize().to_hex().to_string(),
        lines,
        last,
    })
}

/// The first line of the file now whose row's fields differ from the checkpoint's, reading both
/// in order; `None` when every row reads the same.
fn first_differing_line(path: &Path, job: &JobRecord, store: &Store) -> anyhow::Result<Option<u64>> {
    let mut reader = RowReader::open(path, job.spec.format)?;
    let mut found = None;
    store.for_each_input_row(|stored_line, stored| {
        let Some(item) = reader.next_row() else {
            // The file ends before the checkpoint's rows do.
            found = Some(stored_line);
            return Ok(false);
        };
        let (line, same) = match item? {
            Ok(row) => (row.line, fields_text(row)? == stored),
            Err(e) => (e.line, stored == "{}"),
        };
        if !same {
            found = Some(line);
        }
        Ok(same)
    })?;
    if found.is_none() {
        if let Some(item) = reader.next_row() {
            // More rows than the checkpoint has.
            found = Some(match item? {
                Ok(row) => row.line,
                Err(e) => e.line,
            });
        }
    }
    Ok(found)
}

fn fields_text(row: promptmill_core::input::RawRow) -> anyhow::Result<String> {
    Ok(serde_json::to_string(&stored_fields(row))?)
}

/// Refuses an appended input whose first new row starts inside the old bytes (the old last row
/// ran on into the appended lines, e.g. through a quote never closed).
pub(super) fn starts_after(file: &Path, known: Known, item: &RowResult) -> Result<(), String> {
    let line = match item {
        Ok(row) => row.line,
        Err(e) => e.line,
    };
    if line > known.lines {
        return Ok(());
    }
    Err(format!(
        "{}:{line}: the appended lines do not start a new row after the job's {} rows \
         (is a quote in the old last row never closed?); add --restart to read the file afresh",
        file.display(),
        known.rows
    ))
}

/// Refuses an appended input whose last old row no longer reads as the checkpoint has it.
pub(super) fn same_last_row(
    ingest: &Ingest<'_>,
    file: &Path,
    seq: u64,
    item: &RowResult,
) -> Result<(), String> {
    let stored = ingest.fields_of(seq).map_err(|e| format!("{e:#}"))?;
    let (line, now) = match item {
        Ok(row) => (row.line, fields_text(row.clone()).map_err(|e| format!("{e:#}"))?),
        Err(e) => (e.line, "{}".to_string()),
    };
    if stored.as_deref() == Some(now.as_str()) {
        return Ok(());
    }
    Err(format!(
        "{}:{line}: the appended lines changed the job's last row (row {seq}); \
         add --restart to read the file afresh",
        file.display()
    ))
}
