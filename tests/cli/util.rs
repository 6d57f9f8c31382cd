//! Test helpers: a temp directory with fixture files, the real binary with a bounded wait, and
//! the mock server as a child process on 127.0.0.1 (port 0).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Every command a test runs must finish within this, or the test fails (no hanging CI).
pub const DEADLINE: Duration = Duration::from_secs(120);

pub struct Dir {
    dir: tempfile::TempDir,
    /// Where each command's `$XDG_CACHE_HOME` is made (see [`Dir::fresh_cache_home`]): beside
    /// the test's directory, not in it, so that tests listing their files see none of it.
    caches: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Dir {
        Dir {
            dir: tempfile::tempdir().expect("temp dir"),
            caches: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A new, empty `$XDG_CACHE_HOME` for one command: the response cache of a test's command
    /// is never the user's, and never another command's, so a test that runs a job twice sees
    /// it sent twice. A test of the cache shares one with `--cache PATH`.
    pub fn fresh_cache_home(&self) -> PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        self.caches
            .path()
            .join(format!("xdg-cache-{}", NEXT.fetch_add(1, Ordering::Relaxed)))
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, content).expect("write fixture");
        p
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
    }

    pub fn jsonl(&self, name: &str) -> Vec<Value> {
        self.read(name)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: bad JSON line {l}: {e}")))
            .collect()
    }

    pub fn exists(&self, name: &str) -> bool {
        self.path(name).exists()
    }
}

/// The binary, with a clean environment: no inherited key, base URL, Azure or Anthropic
/// settings, and a response cache of its own ([`Dir::fresh_cache_home`]).
pub fn promptmill(dir: &Dir) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_promptmill"));
    cmd.current_dir(dir.dir.path())
        .env("XDG_CACHE_HOME", dir.fresh_cache_home())
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("AZURE_OPENAI_API_KEY")
        .env_remove("AZURE_OPENAI_ENDPOINT")
        .env_remove("OPENAI_API_VERSION")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("ANTHROPIC_BASE_URL")
        .env_remove("MISTRAL_API_KEY")
        .env_remove("MISTRAL_BASE_URL")
        .env_remove("GROQ_API_KEY")
        .env_remove("GROQ_BASE_URL")
        .env_remove("TOGETHER_API_KEY")
        .env_remove("TOGETHER_BASE_URL")
        .env_remove("GEMINI_API_KEY")
        .env_remove("GEMINI_BASE_URL")
        .env_remove("RUST_LOG");
    cmd
}

/// `promptmill run p.jsonl -o out.jsonl --model m --base-url MOCK`: the job most tests run.
pub fn run_job(dir: &Dir, mock: &Mock) -> Command {
    let mut cmd = promptmill(dir);
    cmd.args([
        "run",
        "p.jsonl",
        "-o",
        "out.jsonl",
        "--model",
        "m",
        "--base-url",
        &mock.url,
    ]);
    cmd
}

#[derive(Debug)]
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }
}

/// Runs to completion within [`DEADLINE`], capturing output.
pub fn run(cmd: &mut Command) -> Outcome {
    run_within(cmd, DEADLINE)
}

/// Runs to completion within `limit`, capturing output. The pipes are drained while the child
/// runs: a chatty child (`-vv`) would otherwise fill one and block forever.
pub fn run_within(cmd: &mut Command, limit: Duration) -> Outcome {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promptmill");
    fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = wait_for(&mut child, limit);
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    Outcome {
        status,
        stdout,
        stderr,
    }
}

/// Waits for a child, killing it and failing the test after `limit`.
pub fn wait_for(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("command did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `check` every 20 ms until it holds, failing after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The bundled mock server, killed when dropped.
pub struct Mock {
    child: Child,
    pub url: String,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Mock {
    /// Starts `promptmill mock-server` with `args`, logging every request.
    pub fn start(args: &[&str]) -> Mock {
        Mock::start_with_env(args, &[])
    }

    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Mock {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("requests.jsonl");
        let mut child = Command::new(env!("CARGO_BIN_EXE_promptmill"))
            .arg("mock-server")
            .args(["--host", "127.0.0.1", "--port", "0", "--log"])
            .arg(&log)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn mock server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("mock address");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from the mock: {line:?}"))
            .to_string();
        Mock {
            child,
            url,
            log,
            _dir: dir,
        }
    }

    /// The requests the server has answered (or dropped), in the order it answered them; each
    /// line carries its arrival time. A request still waiting out `--latency` is not here yet
    /// (see `stats()["requests"]` for arrivals).
    pub fn requests(&self) -> Vec<Value> {
        match std::fs::read_to_string(&self.log) {
            Ok(text) => text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).expect("log line"))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// When each answered request arrived (ms since the server started), in answer order.
    pub fn arrivals_ms(&self) -> Vec<f64> {
        self.requests()
            .iter()
            .map(|r| r["t_ms"].as_f64().expect("t_ms"))
            .collect()
    }

    /// `GET /mock/stats`.
    pub fn stats(&self) -> Value {
        self.get_json("/mock/stats")
    }

    /// `GET path` on the mock's root (no key), parsed as JSON.
    pub fn get_json(&self, path: &str) -> Value {
        let body = self.get(path, None);
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path} body {body:?}: {e}"))
    }

    /// `GET path` on the mock's root, with `header` (e.g. `api-key: …`) when given; the body.
    /// Panics unless the answer is a 200.
    pub fn get(&self, path: &str, header: Option<&str>) -> String {
        let addr = self
            .url
            .trim_start_matches("http://")
            .trim_end_matches("/v1")
            .to_string();
        let mut stream = TcpStream::connect(&addr).expect("connect to mock");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let header = header.map(|h| format!("{h}\r\n")).unwrap_or_default();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{header}Connection: close\r\n\r\n"
        )
        .expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
        assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
        body.to_string()
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many times the server received each prompt text.
pub fn requests_per_prompt(requests: &[Value]) -> std::collections::HashMap<String, usize> {
    let mut counts = std::collections::HashMap::new();
    for r in requests {
        if let Some(p) = r["prompt"].as_str() {
            *counts.entry(p.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

/// A JSONL file of `n` ready prompts with ids `r1..rn` and distinct prompt texts.
pub fn prompts_jsonl(dir: &Dir, name: &str, n: usize) -> PathBuf {
    let mut text = String::new();
    for i in 1..=n {
        text.push_str(&format!(
            "{{\"id\":\"r{i}\",\"prompt\":\"Say something about item {i}.\"}}\n"
        ));
    }
    dir.write(name, text)
}

/// Every byte of every file in `dir` plus the given texts, searched for `needle`.
pub fn assert_nowhere(dir: &Path, texts: &[&str], needle: &str) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            let bytes = std::fs::read(&path).expect("read file");
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "the key was found in {}",
                path.display()
            );
        }
    }
    for t in texts {
        assert!(!t.contains(needle), "the key was found in the program's output");
    }
}

impl Dir {
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}

/// `promptmill status out.jsonl.promptmill.db --json`, parsed (the checkpoint `run_job` makes).
pub fn status_json(dir: &Dir) -> Value {
    status_json_of(dir, "out.jsonl.promptmill.db")
}

/// `promptmill status DB --json`, parsed; the command must succeed.
pub fn status_json_of(dir: &Dir, db: &str) -> Value {
    let out = run(promptmill(dir).args(["status", db, "--json"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    serde_json::from_str(&out.stdout).expect("status --json")
}

/// A Batch API run of an input against a live run of the same input, each given as its output
/// and its `--summary` file: every row's id, status, completion, finish reason, usage and model
/// equal, in the same order; the same tokens; and the job's cost half the live one's (the Batch
/// price). Returns how many rows there were.
pub fn assert_batch_equals_live_at_half_price(dir: &Dir, live: [&str; 2], batch: [&str; 2]) -> usize {
    let (live_rows, batch_rows) = (dir.jsonl(live[0]), dir.jsonl(batch[0]));
    assert_eq!(live_rows.len(), batch_rows.len());
    for (l, b) in live_rows.iter().zip(&batch_rows) {
        for field in ["id", "status", "completion", "finish_reason", "usage", "model"] {
            assert_eq!(l[field], b[field], "{field} of {l} vs {b}");
        }
    }
    let (l, b): (Value, Value) = (
        serde_json::from_str(&dir.read(live[1])).expect("live summary"),
        serde_json::from_str(&dir.read(batch[1])).expect("batch summary"),
    );
    assert_eq!(l["tokens"], b["tokens"]);
    let cost = |s: &Value| s["cost"]["job"].as_f64().expect("cost.job");
    let (lc, bc) = (cost(&l), cost(&b));
    assert!(lc > 0.0 && (bc - lc / 2.0).abs() < 1e-9, "live {lc}, batch {bc}");
    live_rows.len()
}
