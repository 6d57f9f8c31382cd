//! Reading a finished batch's result files (output and error), spooled to disk by the driver:
//! each line settles the row its `custom_id` names, done or failed with the reason. A line is
//! read as bytes and bounded by `--max-response-size`, so that one line that is too long, not
//! UTF-8 or not JSON costs its own row (or, when it names none, is counted as unreadable) and
//! never the collection or the memory of the process. Which rows got no line is the driver's
//! business.

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use serde::Deserialize;

use super::wire;
use bytes::Bytes;

use crate::api::{classify, http::describe_cap, RateHeaders, Reply, Verdict};
use crate::store::Collection;
use promptmill_core::family::ApiFamily;
use promptmill_core::input::{read_line, Line};
use promptmill_core::job::Endpoint;

/// How much of a line that is too long is read again to find its `custom_id`.
const HEAD: u64 = 4096;

/// Settles the rows named by the lines of `path`; returns how many lines named no row that could
/// be read.
pub(super) fn read(
    path: &Path,
    c: &mut Collection<'_>,
    endpoint: Endpoint,
    max_line: u64,
) -> anyhow::Result<u64> {
    let cannot = |e: std::io::Error| anyhow::anyhow!("{}: cannot read the download: {e}", path.display());
    let mut reader = BufReader::new(std::fs::File::open(path).map_err(cannot)?);
    let mut line = Vec::new();
    let mut unreadable = 0;
    let mut offset = 0u64;
    loop {
        line.clear();
        let start = offset;
        let recorded = match read_line(&mut reader, &mut line, max_line).map_err(cannot)? {
            Line::End => break,
            Line::TooLong(length) => {
                offset += length;
                let reason = format!(
                    "the batch's result line is {length} bytes long, more than --max-response-size {}",
                    describe_cap(max_line)
                );
                match custom_id(&head_of(path, start).map_err(cannot)?) {
                    Some(id) => c.failed(&id, reason, None).map_err(LineProblem::Store),
                    None => Err(LineProblem::Unreadable),
                }
            }
            Line::Read => {
                offset += line.len() as u64;
                if line.trim_ascii().is_empty() {
                    continue;
                }
                match std::str::from_utf8(&line) {
                    Ok(text) => record_line(c, endpoint.family(), text),
                    Err(_) => fail_line(c, &line, "the batch's result line is not UTF-8"),
                }
            }
        };
        match recorded {
            Ok(_) => {}
            Err(LineProblem::Unreadable) => unreadable += 1,
            Err(LineProblem::Store(e)) => return Err(e),
        }
    }
    Ok(unreadable)
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

enum LineProblem {
    Unreadable,
    Store(anyhow::Error),
}

/// Fails the row a line names (read with its bad bytes replaced) with `reason`.
fn fail_line(c: &mut Collection<'_>, line: &[u8], reason: &str) -> Result<bool, LineProblem> {
    let text = String::from_utf8_lossy(line);
    let parsed: wire::OutputLine<'_> = serde_json::from_str(&text).map_err(|_| LineProblem::Unreadable)?;
    c.failed(parsed.custom_id.as_ref(), reason.to_string(), None)
        .map_err(LineProblem::Store)
}

/// Records one output or error line in the collection. A line's response goes through the
/// verdict table live replies go through (`api::classify`); a batch cannot ask again, so every
/// verdict but done fails the row, with the reason a live run would give.
fn record_line(c: &mut Collection<'_>, family: &dyn ApiFamily, line: &str) -> Result<bool, LineProblem> {
    let parsed: wire::OutputLine<'_> = serde_json::from_str(line).map_err(|_| LineProblem::Unreadable)?;
    let id = parsed.custom_id.as_ref();
    let store = LineProblem::Store;
    match (&parsed.response, &parsed.error) {
        (Some(r), _) => {
            let body = r.body.map(|b| b.get()).unwrap_or("");
            let reply = Reply {
                status: r.status_code,
                retry_after: None,
                rate: RateHeaders::default(),
                location: None,
                body: Bytes::copy_from_slice(body.as_bytes()),
            };
            match classify(family, Ok(reply)) {
                Verdict::Done(completion) => c.done(id, completion),
                Verdict::Retry { reason, status, .. } => c.failed(id, reason, status),
                Verdict::RowFailed { status, message } | Verdict::Stop { status, message, .. } => {
                    c.failed(id, format!("HTTP {status}: {message}"), Some(status))
                }
            }
            .map_err(store)
        }
        (None, Some(e)) => {
            let text = match (&e.code, &e.message) {
                (Some(code), Some(m)) => format!("{code}: {m}"),
                (Some(code), None) => code.clone(),
                (None, Some(m)) => m.clone(),
                (None, None) => "the batch reported an error without a message".into(),
            };
            c.failed(id, text, None).map_err(store)
        }
        (None, None) => c
            .failed(
                id,
                "the batch's result line has neither a response nor an error".into(),
                None,
            )
            .map_err(store),
    }
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
