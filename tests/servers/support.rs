//! Starting a third-party server as a child process and talking to it: spawn, wait (bounded)
//! for its "listening on URL" line, kill it when dropped; plain HTTP GETs; and the rule for
//! when a test may skip (its server is not installed, and CI did not demand it).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a server may take to load and announce itself.
pub const STARTUP: Duration = Duration::from_secs(120);

/// This directory: the launcher script, the npm package, the fixtures.
pub fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers")
}

/// Whether a test can run. When its server is missing: with `PROMPTMILL_REQUIRE_SERVERS` set
/// (as `.ci/run` does) that is a failure; otherwise the reason is printed and the test skips.
pub fn available(test: &str, missing: Option<String>) -> bool {
    let Some(why) = missing else {
        return true;
    };
    if std::env::var_os("PROMPTMILL_REQUIRE_SERVERS").is_some() {
        panic!("{test}: {why}, and PROMPTMILL_REQUIRE_SERVERS is set");
    }
    // Straight to stderr: the test harness captures print macros only, and a skip must show.
    let _ = writeln!(std::io::stderr(), "skipped {test}: {why}");
    false
}

/// A server child process, killed when dropped.
pub struct Server {
    child: Child,
    /// What it printed after "listening on ", e.g. `http://127.0.0.1:40123`.
    pub root: String,
    /// Its stderr, for the failure message of a test (see [`Server::stderr_tail`]).
    stderr_log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Spawns `cmd` and waits (at most [`STARTUP`]) for a stdout line containing
    /// `listening on http://…`. Stdout keeps being drained so the child never blocks on it.
    pub fn start(mut cmd: Command, name: &str) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let stderr_log = dir.path().join(format!("{name}.stderr"));
        let stderr = std::fs::File::create(&stderr_log).expect("stderr file");
        let mut child = cmd
            .stdin(Stdio::piped()) // held open: llama_server.py exits when it closes
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.find("listening on ") {
                    let _ = tx.send(line[at + "listening on ".len()..].trim().to_string());
                }
            }
        });
        let root = match rx.recv_timeout(STARTUP) {
            Ok(url) => url.trim_end_matches('/').to_string(),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let tail = tail(&stderr_log);
                panic!("{name} did not announce its address within {STARTUP:?}; stderr ends:\n{tail}");
            }
        };
        Server {
            child,
            root,
            stderr_log,
            _dir: dir,
        }
    }

    /// The last lines the server wrote to stderr, to explain a failed assertion.
    pub fn stderr_tail(&self) -> String {
        tail(&self.stderr_log)
    }

    /// `GET path` with an optional bearer key: (status, body).
    pub fn get(&self, path: &str, key: Option<&str>) -> (u16, String) {
        http_get(&self.root, path, key)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tail(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines: Vec<&str> = log.lines().rev().take(20).collect();
    lines.reverse();
    lines.join("\n")
}

/// A plain HTTP/1.0 GET (so the answer is neither chunked nor kept alive): (status, body).
/// Status 0 when the server cannot be reached.
pub fn http_get(root: &str, path: &str, key: Option<&str>) -> (u16, String) {
    let addr = root.trim_start_matches("http://");
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return (0, String::new());
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    if write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{auth}\r\n").is_err() {
        return (0, String::new());
    }
    let mut response = String::new();
    if stream.read_to_string(&mut response).is_err() {
        return (0, String::new());
    }
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}
