//! Reading a finished batch's results, spooled to disk by the driver: each line, read by the
//! batch service into a [`ResultLine`], settles the rows its `custom_id` names — one row, or the
//! run of rows a joined line carries (`grouped.rs`), each settled by its vector's `index` as the
//! live path does — done or failed with the reason. A line is read as bytes and bounded by
//! `--max-response-size`, so that one line that is too long, not UTF-8 or not JSON costs its own
//! rows (or, when it names none, is counted as unreadable) and never the collection or the memory
//! of the process. Which rows got no line is the driver's business.

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use serde::Deserialize;

use bytes::Bytes;

use super::grouped::parse_group_id;
use super::service::{BatchService, LineOutcome, ResultLine};
use crate::api::{classify, http::describe_cap, RateHeaders, Reply, Verdict};
use crate::store::Collection;
use promptmill_core::family::{ApiFamily, Completion};
use promptmill_core::input::{read_line, Line};

/// How much of a line that is too long is read again to find its `custom_id`.
const HEAD: u64 = 4096;

/// Reads a part's result files with the job's service and family.
pub(super) struct Reader<'s, S> {
    pub service: &'s S,
    pub family: &'static dyn ApiFamily,
    /// `--max-response-size`.
    pub max_line: u64,
}

/// What a line settles its rows with.
enum Settle {
    Done(Completion),
    Failed(String, Option<u16>),
}

enum LineProblem {
    Unreadable,
    Store(anyhow::Error),
}

impl<S: BatchService> Reader<'_, S> {
    /// Settles the rows named by the lines of `path`; returns how many lines named no row that
    /// could be read.
    pub fn read(&self, path: &Path, c: &mut Collection<'_>) -> anyhow::Result<u64> {
        let cannot = |e: std::io::Error| anyhow::anyhow!("{}: cannot read the download: {e}", path.display());
        let mut reader = BufReader::new(std::fs::File::open(path).map_err(cannot)?);
        let mut line = Vec::new();
        let mut unreadable = 0;
        let mut offset = 0u64;
        loop {
            line.clear();
            let start = offset;
            let recorded = match read_line(&mut reader, &mut line, self.max_line).map_err(cannot)? {
                Line::End => break,
                Line::TooLong(length) => {
                    offset += length;
                    let reason = format!(
                        "the batch's result line is {length} bytes long, more than --max-response-size {}",
                        describe_cap(self.max_line)
                    );
                    match custom_id(&head_of(path, start).map_err(cannot)?) {
                        Some(id) => self.settle(c, &id, Settle::Failed(reason, None)),
                        None => Err(LineProblem::Unreadable),
                    }
                }
                Line::Read => {
                    offset += line.len() as u64;
                    if line.trim_ascii().is_empty() {
                        continue;
                    }
                    match std::str::from_utf8(&line) {
                        Ok(text) => self.record_line(c, text),
                        Err(_) => self.fail_line(c, &line, "the batch's result line is not UTF-8"),
                    }
                }
            };
            match recorded {
                Ok(()) => {}
                Err(LineProblem::Unreadable) => unreadable += 1,
                Err(LineProblem::Store(e)) => return Err(e),
            }
        }
        Ok(unreadable)
    }

    /// Fails the rows a line names (read with its bad bytes replaced) with `reason`.
    fn fail_line(&self, c: &mut Collection<'_>, line: &[u8], reason: &str) -> Result<(), LineProblem> {
        let text = String::from_utf8_lossy(line);
        let parsed = self.service.read_line(&text).ok_or(LineProblem::Unreadable)?;
        self.settle(c, &parsed.custom_id, Settle::Failed(reason.to_string(), None))
    }

    /// Records one result line. A line's response goes through the verdict table live replies
    /// go through (`api::classify`); a batch cannot ask again, so every verdict but done fails
    /// the rows, with the reason a live run would give.
    fn record_line(&self, c: &mut Collection<'_>, line: &str) -> Result<(), LineProblem> {
        let ResultLine { custom_id, outcome } =
            self.service.read_line(line).ok_or(LineProblem::Unreadable)?;
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
        self.settle(c, &custom_id, settle)
    }

    /// Settles the row `custom_id` names, or the rows of a joined line: a done answer split over
    /// them by `index` (a row it has no vector for fails with the reason), a failure every row's.
    fn settle(&self, c: &mut Collection<'_>, custom_id: &str, settle: Settle) -> Result<(), LineProblem> {
        let store = LineProblem::Store;
        let range = match (c.is_waiting(custom_id), parse_group_id(custom_id)) {
            (false, Some(range)) => range,
            _ => {
                return match settle {
                    Settle::Done(completion) => c.done(custom_id, completion),
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
