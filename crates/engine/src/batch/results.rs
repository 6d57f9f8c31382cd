//! Reading a finished batch's results, spooled to disk by the driver: each line, read by the
//! batch service into a [`ResultLine`], settles the rows its `custom_id` names — one row, or the
//! run of rows a joined line carries (`grouped.rs`), each settled by its vector's `index` as the
//! live path does — done or failed with the reason. A line is read as bytes and bounded by
//! `--max-response-size`, so that one line that is too long, not UTF-8 or not JSON costs its own
//! rows (or, when it names none, is counted as unreadable) and never the collection or the memory
//! of the process. The lines are parsed on a thread of their own while this one records them
//! (see [`Reader::read`]). Which rows got no line is the driver's business.

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use serde::Deserialize;

use bytes::Bytes;

use super::grouped::parse_group_id;
use super::service::{BatchService, LineOutcome, ResultLine};
use crate::api::{classify, http::describe_cap, RateHeaders, Reply, Verdict};
use crate::store::{Collection, Rejection};
use promptmill_core::family::{ApiFamily, Completion};
use promptmill_core::input::{read_line, Line};
use promptmill_core::schema::{Judged, Structured};

/// How much of a line that is too long is read again to find its `custom_id`.
const HEAD: u64 = 4096;

/// Reads a part's result files with the job's service and family.
pub(super) struct Reader<'s, S> {
    pub service: &'s S,
    pub family: &'static dyn ApiFamily,
    /// `--max-response-size`.
    pub max_line: u64,
    /// `--schema`: each done answer is judged before its row is.
    pub structured: Option<&'s Structured>,
}

/// What a line settles its rows with. Made once a line and moved once: boxing the completion
/// would cost an allocation a line for nothing.
#[allow(clippy::large_enum_variant)]
enum Settle {
    Done(Completion),
    Failed(String, Option<u16>),
}

/// A line as the parsing thread hands it to the recording one: the `custom_id` it names and
/// what it settles, or `None` for a line that names no row that could be read.
type Parsed = Option<(String, Settle)>;

/// Lines handed over at a time (one channel message), and messages the channel holds: the
/// parser runs at most this far ahead of the transaction, so memory stays bounded.
const CHUNK: usize = 512;
const CHUNKS_AHEAD: usize = 8;

enum LineProblem {
    Unreadable,
    Store(anyhow::Error),
}

impl<S: BatchService> Reader<'_, S> {
    /// Settles the rows named by the lines of `path`; returns how many lines named no row that
    /// could be read.
    ///
    /// Two threads: a scoped one reads and parses the lines (the service's line, the family's
    /// answer), in order, and hands them over in chunks through a bounded channel; this one
    /// records them into the collection's transaction as they come, in the same order. The
    /// channel's sender belongs to the parser and is dropped when it has read the file (or failed
    /// to, or the receiver is gone); the receiver is dropped here when recording fails, which
    /// stops the parser at its next send. Nothing is committed by either: the collection is one
    /// transaction, committed by [`Collection::finish`], so a kill mid-read records nothing.
    pub fn read(&self, path: &Path, c: &mut Collection<'_>) -> anyhow::Result<u64> {
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Parsed>>(CHUNKS_AHEAD);
            let parser = scope.spawn(move || self.parse_file(path, tx));
            let mut unreadable = 0;
            // How long recording waited for the parser (`-vv`): which side bounds the collection.
            let mut waited = std::time::Duration::ZERO;
            let recorded = (|| {
                loop {
                    let asked = std::time::Instant::now();
                    let Ok(chunk) = rx.recv() else { break };
                    waited += asked.elapsed();
                    for parsed in chunk {
                        let outcome = match parsed {
                            Some((id, settle)) => self.settle(c, &id, settle),
                            None => Err(LineProblem::Unreadable),
                        };
                        match outcome {
                            Ok(()) => {}
                            Err(LineProblem::Unreadable) => unreadable += 1,
                            Err(LineProblem::Store(e)) => return Err(e),
                        }
                    }
                }
                Ok(())
            })();
            tracing::debug!("{}: recording waited {waited:?} for the parser", path.display());
            // Without the receiver, a parser still reading stops at its next send.
            drop(rx);
            let parsed = parser.join().unwrap_or_else(|_| {
                Err(anyhow::anyhow!(
                    "{}: reading the download panicked",
                    path.display()
                ))
            });
            recorded?;
            parsed?;
            Ok(unreadable)
        })
    }

    /// The parsing side of [`Reader::read`]: every line of `path`, in order, parsed and sent in
    /// chunks. Stops early, without an error, when the recording side has hung up.
    fn parse_file(&self, path: &Path, tx: std::sync::mpsc::SyncSender<Vec<Parsed>>) -> anyhow::Result<()> {
        let cannot = |e: std::io::Error| anyhow::anyhow!("{}: cannot read the download: {e}", path.display());
        let mut reader = BufReader::new(std::fs::File::open(path).map_err(cannot)?);
        let mut line = Vec::new();
        let mut offset = 0u64;
        let mut chunk = Vec::with_capacity(CHUNK);
        loop {
            line.clear();
            let start = offset;
            let parsed = match read_line(&mut reader, &mut line, self.max_line).map_err(cannot)? {
                Line::End => break,
                Line::TooLong(length) => {
                    offset += length;
                    let reason = format!(
                        "the batch's result line is {length} bytes long, more than --max-response-size {}",
                        describe_cap(self.max_line)
                    );
                    custom_id(&head_of(path, start).map_err(cannot)?)
                        .map(|id| (id, Settle::Failed(reason, None)))
                }
                Line::Read => {
                    offset += line.len() as u64;
                    if line.trim_ascii().is_empty() {
                        continue;
                    }
                    match std::str::from_utf8(&line) {
                        Ok(text) => self.parse_line(text),
                        Err(_) => self.fail_line(&line, "the batch's result line is not UTF-8"),
                    }
                }
            };
            chunk.push(parsed);
            if chunk.len() == CHUNK
                && tx
                    .send(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)))
                    .is_err()
            {
                return Ok(());
            }
        }
        if !chunk.is_empty() {
            // A receiver that hung up has its own error to tell.
            let _ = tx.send(chunk);
        }
        Ok(())
    }

    /// A line read with its bad bytes replaced: its rows fail with `reason`.
    fn fail_line(&self, line: &[u8], reason: &str) -> Parsed {
        let text = String::from_utf8_lossy(line);
        let parsed = self.service.read_line(&text)?;
        Some((
            parsed.custom_id.into_owned(),
            Settle::Failed(reason.to_string(), None),
        ))
    }

    /// Parses one result line. A line's response goes through the verdict table live replies
    /// go through (`api::classify`); a batch cannot ask again, so every verdict but done fails
    /// the rows, with the reason a live run would give.
    fn parse_line(&self, line: &str) -> Parsed {
        let ResultLine { custom_id, outcome } = self.service.read_line(line)?;
        let settle = match outcome {
            LineOutcome::Response { status, body } => {
                let reply = Reply {
                    status,
                    retry_after: None,
                    rate: RateHeaders::default(),
                    location: None,
                    body: Bytes::copy_from_slice(body.as_bytes()),
                };
                match classify(self.family, Ok(reply)) {
                    Verdict::Done(completion) => Settle::Done(completion),
                    Verdict::Retry { reason, status, .. } => Settle::Failed(reason, status),
                    Verdict::RowFailed { status, message } | Verdict::Stop { status, message, .. } => {
                        Settle::Failed(format!("HTTP {status}: {message}"), Some(status))
                    }
                }
            }
            LineOutcome::Error(text) => Settle::Failed(text, None),
        };
        Some((custom_id.into_owned(), settle))
    }

    /// Settles the row `custom_id` names, or the rows of a joined line: a done answer split over
    /// them by `index` (a row it has no vector for fails with the reason), a failure every row's.
    fn settle(&self, c: &mut Collection<'_>, custom_id: &str, settle: Settle) -> Result<(), LineProblem> {
        let store = LineProblem::Store;
        // A service that names rows by seq never sends a row id, so a row whose id happens to
        // look like a line's is not taken for it.
        let by_id = !self.service.ids_by_seq() && c.is_waiting(custom_id);
        let range = match (by_id, parse_group_id(custom_id)) {
            (false, Some(range)) => range,
            _ => {
                return match settle {
                    Settle::Done(completion) => self.done(c, custom_id, completion),
                    Settle::Failed(error, status) => c.failed(custom_id, error, status),
                }
                .map(drop)
                .map_err(store)
            }
        };
        let members = c.waiting_between(range.0, range.1).map_err(store)?;
        if members.is_empty() {
            // Names no row of this part that waits for a result: a stray, counted as such.
            c.stray();
            return Ok(());
        }
        match settle {
            Settle::Done(answer) => {
                let tokens: Vec<u64> = members
                    .iter()
                    .map(|m| m.tokens.unwrap_or_else(|| self.family.prompt_tokens(&m.body)))
                    .collect();
                for (m, one) in members.iter().zip(self.family.split(answer, &tokens)) {
                    match one {
                        Ok(completion) => c.done(&m.id, completion),
                        Err(error) => c.failed(&m.id, error, None),
                    }
                    .map_err(store)?;
                }
            }
            Settle::Failed(error, status) => {
                for m in &members {
                    c.failed(&m.id, error.clone(), status).map_err(store)?;
                }
            }
        }
        Ok(())
    }
}

impl<S> Reader<'_, S> {
    /// Records a done answer: done, or — when it breaks the job's `--schema` — sent back for
    /// a follow-up batch or failed with its outcome (`Collection::rejected`).
    fn done(&self, c: &mut Collection<'_>, custom_id: &str, answer: Completion) -> anyhow::Result<bool> {
        let Some(s) = self.structured else {
            return c.done(custom_id, answer);
        };
        let judged = answer.judged_by(&s.schema);
        if let Judged::Valid(_) = judged {
            return c.done(custom_id, answer);
        }
        let error = judged.errors();
        let rejection = Rejection {
            outcome: judged.name(),
            error: &error,
            retryable: judged.retryable(),
            retries: s.retries,
        };
        c.rejected(custom_id, answer, rejection)
    }
}

/// The first [`HEAD`] bytes of the line that starts at `offset`.
fn head_of(path: &Path, offset: u64) -> std::io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut head = Vec::new();
    file.take(HEAD).read_to_end(&mut head)?;
    Ok(head)
}

/// The `custom_id` near the start of a line too long to parse: output lines name it before the
/// response (`{"id":…,"custom_id":"…","response":…}`).
fn custom_id(head: &[u8]) -> Option<String> {
    let at = memchr::memmem::find(head, b"\"custom_id\"")? + b"\"custom_id\"".len();
    let rest = head[at..].trim_ascii_start().strip_prefix(b":")?;
    let mut de = serde_json::Deserializer::from_slice(rest.trim_ascii_start());
    String::deserialize(&mut de).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_custom_id_of_a_long_line_is_found_in_its_head() {
        let head = br#"{"id":"batch_req_1", "custom_id" : "row \"7\"", "response":{"status_code":200,"body":{"x":"xxxx"#;
        assert_eq!(super::custom_id(head).as_deref(), Some("row \"7\""));
        assert_eq!(
            super::custom_id(br#"{"id":"batch_req_1","custom_id":"cut sho"#),
            None
        );
        assert_eq!(super::custom_id(br#"{"id":"batch_req_1","response":"#), None);
    }
}
