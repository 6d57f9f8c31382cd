//! Time and the process: retry hints a server gets wrong (a wait above the cap, a rate limit
//! smaller than one request), and a run whose own process stood still (SIGSTOP, then SIGCONT)
//! while answers waited in its sockets.

use std::io::Read;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::util::*;

/// Reads a child's stderr into a shared string while it runs, so a test can wait for a line.
fn collect_stderr(child: &mut Child) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let mut pipe = child.stderr.take().expect("stderr is piped");
    let sink = Arc::clone(&text);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    text
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
}

#[test]
fn a_server_tpm_smaller_than_one_request_fails_no_row() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 20);
    let mock = Mock::start(&["--claim-tpm", "1"]);
    let out = run(run_job(&dir, &mock).args(["-v"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let rows = dir.jsonl("out.jsonl");
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().all(|r| r["status"] == "done"), "{rows:?}");
    assert_eq!(mock.requests().len(), 20, "each row sent once");
    let warning = "the server reported a token limit of 1 per minute (x-ratelimit-limit-tokens), \
                   less than one request needs (";
    assert_eq!(
        out.stderr.matches(warning).count(),
        1,
        "said once: {}",
        out.stderr
    );
}

#[test]
fn a_retry_after_above_the_cap_is_capped_and_said_on_the_progress_line_and_with_v() {
    let dir = Dir::new();
    dir.write(
        "p.jsonl",
        "{\"id\":\"r17\",\"prompt\":\"[[mock:fail-times=1:status=429:retry-after=36000]]\"}\n",
    );
    let mock = Mock::start(&[]);
    let mut child = run_job(&dir, &mock)
        .args(["-v"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = collect_stderr(&mut child);
    let said = "row r17: the server asked to wait 10h (Retry-After); waiting the 1h cap";
    let progress = "1 row waiting the 1h Retry-After cap (the server asked 10h)";
    wait_until(Duration::from_secs(30), "the cap to be said", || {
        let text = stderr.lock().unwrap();
        text.contains(said) && text.contains(progress)
    });
    signal(&child, libc::SIGTERM);
    let status = wait_for(&mut child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(4), "{}", stderr.lock().unwrap());
    assert!(
        stderr.lock().unwrap().contains("retrying in 3600.0s"),
        "{}",
        stderr.lock().unwrap()
    );
}

#[test]
fn a_stopped_and_continued_process_reads_the_answers_that_waited_and_resends_nothing() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 40);
    // Answers take 0.5 s: a 2 s timeout leaves room for a busy machine, and a 5 s stop outlasts it.
    let mock = Mock::start(&["--latency", "500ms"]);
    let mut child = run_job(&dir, &mock)
        .args(["--concurrency", "8", "--timeout", "2s", "-v"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = collect_stderr(&mut child);
    // The stats count a request when it arrives, before its latency.
    wait_until(Duration::from_secs(30), "8 requests on the wire", || {
        mock.stats()["requests"].as_u64() >= Some(8)
    });
    signal(&child, libc::SIGSTOP);
    // Every answer on the wire arrives (0.5 s) and waits in its socket; every 2 s timeout passes.
    std::thread::sleep(Duration::from_secs(5));
    signal(&child, libc::SIGCONT);
    let status = wait_for(&mut child, Duration::from_secs(60));
    let log = stderr.lock().unwrap().clone();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        log.contains("the process stood still for"),
        "the stall was seen: {log}"
    );
    assert!(
        !log.contains("timed out"),
        "no request counted as timed out: {log}"
    );
    assert!(!log.contains("window halved"), "the window was not halved: {log}");

    assert!(dir.jsonl("out.jsonl").iter().all(|r| r["status"] == "done"));
    let per_prompt = requests_per_prompt(&mock.requests());
    assert_eq!(per_prompt.len(), 40);
    assert!(
        per_prompt.values().all(|&n| n == 1),
        "no row was sent twice: {per_prompt:?}"
    );
    let out = run(promptmill(&dir).args(["status", "out.jsonl.promptmill.db", "--json"]));
    let status: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(status["retries"], 0, "{status}");
    assert_eq!(status["rows"]["done"], 40, "{status}");
}

#[test]
fn a_retry_after_date_in_the_past_gets_the_normal_backoff_not_an_instant_retry() {
    let dir = Dir::new();
    let prompt = "[[mock:fail-times=1:status=429:retry-after-date-ago=30]]";
    dir.write("p.jsonl", format!("{{\"id\":\"a\",\"prompt\":\"{prompt}\"}}\n"));
    let mock = Mock::start(&[]);
    let out = run(&mut run_job(&dir, &mock));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let t: Vec<f64> = mock
        .requests()
        .iter()
        .filter(|r| r["prompt"] == prompt)
        .map(|r| r["t_ms"].as_f64().unwrap())
        .collect();
    assert_eq!(t.len(), 2, "one 429, one retry");
    // The normal backoff of a rate-limited answer waits at least a second.
    assert!(t[1] - t[0] >= 1000.0, "retried {} ms after the 429", t[1] - t[0]);
}
