//! The reading half of a load, on a thread of its own: each row read, validated and prepared,
//! its fields turned into the text the checkpoint keeps, its cache digest numbered among its
//! repeats and, for a family that joins rows, its prompt tokens counted, then handed to the
//! thread that inserts rows into the checkpoint, in input order, a chunk at a time.
//!
//! Reading and preparing a row costs about what inserting it does, so with the two on
//! different threads a load takes the longer of the two rather than their sum. The channel is
//! bounded (a few chunks), so memory stays flat whatever the file's size; when the inserting
//! side stops (an error), the channel closes and this side stops at its next chunk.

use std::path::Path;
use std::sync::mpsc::SyncSender;

use super::{changed, stored_fields, Known, LoadError};
use crate::cache::key::{Digest, Repeats};
use crate::prepare::{Prepared, Preparer};
use promptmill_core::error::InputError;
use promptmill_core::input::{RowReader, RowResult};

/// Rows handed over at a time.
const CHUNK: usize = 256;
/// Chunks that may wait to be inserted.
pub(super) const CHUNKS: usize = 8;

/// What the inserting side is handed.
pub(super) enum Ahead {
    Row(Box<ReadRow>),
    /// The job's last row, read again from an input that grew: it must read as the checkpoint
    /// has it (which only the inserting side can look up).
    LastKnown {
        seq: u64,
        item: RowResult,
    },
}

pub(super) type Chunk = Result<Vec<Ahead>, LoadError>;

/// One row as read and prepared, before it is recorded.
pub(super) struct ReadRow {
    pub number: u64,
    pub line: u64,
    pub id: String,
    /// The field the id came from, to name in a duplicate's error.
    pub id_field: Option<String>,
    pub prepared: Result<Prepared, InputError>,
    /// The fields kept for output, as JSON text (`{}` when the row could not be read).
    pub fields: String,
    /// The request's cache digest, numbered among the input's repeats of it.
    pub digest: Option<Digest>,
    /// The request's prompt tokens, for a family that joins rows into one request.
    pub input_tokens: Option<u64>,
}

/// Reads every row of `reader` and sends them, prepared, on `tx`; returns how many rows the
/// input has (the job's known rows among them). A read error, or a row that refuses the whole
/// input, is sent as the last chunk.
pub(super) fn read_all(
    reader: &mut RowReader,
    preparer: &mut Preparer,
    file: &Path,
    known: Option<Known>,
    tx: SyncSender<Chunk>,
) -> u64 {
    let mut rows = 0u64;
    let mut repeats = Repeats::default();
    let mut chunk = Vec::with_capacity(CHUNK);
    while let Some(item) = reader.next_row() {
        rows += 1;
        match read_one(preparer, (file, known), rows, item, &mut repeats) {
            Ok(Some(ahead)) => chunk.push(ahead),
            Ok(None) => {}
            Err(e) => {
                let _ = tx.send(Ok(chunk));
                let _ = tx.send(Err(e));
                return rows;
            }
        }
        if chunk.len() == CHUNK
            && tx
                .send(Ok(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK))))
                .is_err()
        {
            // The inserting side stopped; what it says is the load's outcome.
            return rows;
        }
    }
    if !chunk.is_empty() {
        let _ = tx.send(Ok(chunk));
    }
    rows
}

/// Row `rows` of the input: prepared, or (a row the job holds already) checked and passed over.
fn read_one(
    preparer: &mut Preparer,
    (file, known): (&Path, Option<Known>),
    rows: u64,
    item: Result<RowResult, promptmill_core::input::ReadError>,
    repeats: &mut Repeats,
) -> Result<Option<Ahead>, LoadError> {
    let item = item.map_err(LoadError::Read)?;
    if let Some(known) = known {
        if rows <= known.rows {
            count_repeat(preparer, &item, repeats);
            return Ok((rows == known.rows).then_some(Ahead::LastKnown { seq: rows, item }));
        }
        if rows == known.rows + 1 {
            changed::starts_after(file, known, &item).map_err(LoadError::Refused)?;
        }
    }
    let mut row = read_row(preparer, rows, item)?;
    if let Ok(Prepared { body, digest, .. }) = &row.prepared {
        row.digest = digest.map(|d| repeats.number(d));
        let family = preparer.endpoint().family();
        row.input_tokens = (family.max_rows_per_request() > 1).then(|| family.prompt_tokens(body));
    }
    Ok(Some(Ahead::Row(Box::new(row))))
}

/// Numbers a row the job holds already as a repeat of its request (see [`Repeats`]), so a
/// row appended later that repeats it keys as the next sample, as it would had the input been
/// read whole.
fn count_repeat(preparer: &mut Preparer, item: &RowResult, repeats: &mut Repeats) {
    if !preparer.takes_digests() {
        return;
    }
    if let Ok(row) = item {
        if let Ok(Prepared { digest: Some(d), .. }) = preparer.prepare(row) {
            repeats.number(d);
        }
    }
}

/// Prepares a row read (or takes the reason it could not be read); a flag that cannot apply to
/// the row refuses the whole input.
fn read_row(preparer: &mut Preparer, rows: u64, item: RowResult) -> Result<ReadRow, LoadError> {
    let row = match item {
        Ok(row) => row,
        Err(e) => {
            return Ok(ReadRow {
                number: rows,
                line: e.line,
                id: rows.to_string(),
                id_field: None,
                prepared: Err(e),
                fields: "{}".to_string(),
                digest: None,
                input_tokens: None,
            })
        }
    };
    preparer.check_flags_fit(&row).map_err(LoadError::Refused)?;
    let prepared = preparer.prepare(&row);
    let id = match &prepared {
        Ok(p) => p.id.clone(),
        Err(_) => preparer.fallback_id(&row),
    };
    let id_field = preparer.id_field(&row).map(str::to_string);
    let (number, line) = (row.number, row.line);
    let fields = serde_json::to_string(&stored_fields(row)).map_err(anyhow::Error::from)?;
    Ok(ReadRow {
        number,
        line,
        id,
        id_field,
        prepared,
        fields,
        digest: None,
        input_tokens: None,
    })
}
