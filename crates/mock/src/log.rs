//! The --log file: one JSON line per API request (`/v1/…`, or Azure's `/openai/…`), appended
//! as the answer is sent. Each line is written with a single `write` on a file opened for
//! appending, so it is complete and visible to a reader (a test tailing the file) before the
//! client gets its answer; nothing is buffered, so there is nothing to flush at shutdown. The
//! log is a testing aid: it costs a syscall per request and is off unless --log is given.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::stats::Outcome;

/// One line of the log.
pub(crate) struct Entry<'a> {
    pub arrived: SystemTime,
    pub path: &'a str,
    /// The query string, when there is one (Azure's `api-version=…`).
    pub query: Option<&'a str>,
    /// Which headers carried a key: `bearer`, `api-key`, `both` or `none` (never the key).
    pub credential: &'static str,
    /// `None` when nothing was sent (hang, reset).
    pub status: Option<u16>,
    pub outcome: Outcome,
    /// `None` when the request carried no readable prompt.
    pub prompt: Option<&'a str>,
}

pub(crate) struct RequestLog {
    // A std Mutex: held only for one `write` of an already-serialized line, never across an
    // await; it keeps lines from interleaving even if a write were split.
    file: Mutex<File>,
}

impl RequestLog {
    /// Opens the log for appending (mode 0600 when new); a link planted at `path` is refused,
    /// not followed. An appended log cannot be renamed into place like promptmill's other files.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
        }
        let file = options.open(path)?;
        Ok(RequestLog {
            file: Mutex::new(file),
        })
    }

    pub fn write(&self, entry: &Entry) {
        #[derive(Serialize)]
        struct Line<'a> {
            t_ms: f64,
            path: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            query: Option<&'a str>,
            credential: &'static str,
            status: Option<u16>,
            outcome: &'static str,
            prompt: Option<&'a str>,
        }
        let t_ms = entry
            .arrived
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        let line = Line {
            t_ms,
            path: entry.path,
            query: entry.query,
            credential: entry.credential,
            status: entry.status,
            outcome: entry.outcome.as_str(),
            prompt: entry.prompt,
        };
        let Ok(mut bytes) = serde_json::to_vec(&line) else {
            return;
        };
        bytes.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(err) = file.write_all(&bytes) {
            // Losing a log line must not fail the request it describes.
            tracing::warn!("mock-server: could not write to the --log file: {err}");
        }
    }
}
