//! What the server does wrong, and what the run does about it.

use serde_json::Value;

use crate::util::*;

fn run_against(dir: &Dir, mock: &Mock, extra: &[&str]) -> Outcome {
    run(run_job(dir, mock).args(extra))
}

#[test]
fn retry_after_is_honoured_before_the_row_is_sent_again() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 2);
    let mock = Mock::start(&["--fail-first", "1", "--fail-status", "429", "--retry-after", "2"]);
    let out = run_against(&dir, &mock, &["--concurrency", "1"]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let requests = mock.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0]["status"], 429);
    // A 429 that does not say a limit is spent delays its own row only: the other row may go
    // out meanwhile, so the retry is found by its prompt.
    let retry = requests[1..]
        .iter()
        .find(|r| r["prompt"] == requests[0]["prompt"])
        .expect("the same row is retried");
    let gap = retry["t_ms"].as_f64().unwrap() - requests[0]["t_ms"].as_f64().unwrap();
    assert!(
        gap >= 2000.0,
        "the retry came {gap} ms after a 429 that said retry-after: 2"
    );
    let summary = dir.jsonl("out.jsonl");
    assert!(summary.iter().all(|r| r["status"] == "done"));
}

#[test]
fn a_burst_of_server_errors_is_retried() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 10);
    let mock = Mock::start(&["--fail-first", "3", "--fail-status", "503"]);
    let out = run_against(&dir, &mock, &["--concurrency", "2", "--summary", "s.json"]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let s: Value = serde_json::from_str(&dir.read("s.json")).unwrap();
    assert_eq!(s["rows"]["done"], 10);
    assert_eq!(s["run"]["retries"], 3);
    assert_eq!(s["run"]["requests"], 13);
}

#[test]
fn a_400_fails_its_row_and_the_run_completes() {
    let dir = Dir::new();
    dir.write(
        "p.jsonl",
        "{\"prompt\":\"one\"}\n{\"prompt\":\"[[mock:status=400]] two\"}\n{\"prompt\":\"three\"}\n",
    );
    let mock = Mock::start(&[]);
    let out = run_against(&dir, &mock, &[]);
    assert_eq!(out.code(), 3, "some rows failed: {}", out.stderr);
    let rows = dir.jsonl("out.jsonl");
    assert_eq!(rows[0]["status"], "done");
    assert_eq!(rows[1]["status"], "failed");
    assert!(
        rows[1]["error"]
            .as_str()
            .unwrap()
            .starts_with("HTTP 400: mock: status 400 requested by the prompt"),
        "{}",
        rows[1]["error"]
    );
    assert_eq!(rows[2]["status"], "done");
    assert_eq!(mock.requests().len(), 3, "a 400 is not retried");
}

#[test]
fn a_401_stops_the_run_with_the_message_and_resume_finishes_it() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 50);
    let mock = Mock::start_with_env(&["--api-key-env", "MOCK_KEY"], &[("MOCK_KEY", "the-right-key")]);
    let out = run(run_job(&dir, &mock).env("OPENAI_API_KEY", "a-wrong-key"));
    assert_eq!(out.code(), 4, "stopped: {}", out.stderr);
    assert!(
        out.stderr
            .contains("refused the credentials (HTTP 401: Incorrect API key provided."),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("promptmill resume"),
        "the resume command is printed: {}",
        out.stderr
    );
    assert!(
        mock.requests().len() <= 50,
        "the run stopped instead of trying every row"
    );
    let rows = dir.jsonl("out.jsonl");
    assert!(
        rows.iter().all(|r| r["status"] == "pending"),
        "no row is marked failed by a 401"
    );

    let out = run(promptmill(&dir)
        .args(["resume", "out.jsonl.promptmill.db"])
        .env("OPENAI_API_KEY", "the-right-key"));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(dir.jsonl("out.jsonl").iter().all(|r| r["status"] == "done"));
}

#[test]
fn malformed_bodies_resets_and_timeouts_are_retried_until_every_row_settles() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 60);
    let mock = Mock::start(&[
        "--rate-malformed",
        "0.1",
        "--rate-reset",
        "0.1",
        "--rate-hang",
        "0.05",
        "--rate-500",
        "0.1",
        "--seed",
        "7",
    ]);
    let out = run_against(
        &dir,
        &mock,
        &[
            "--concurrency",
            "16",
            "--timeout",
            "1s",
            "--max-attempts",
            "10",
            "--summary",
            "s.json",
        ],
    );
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let s: Value = serde_json::from_str(&dir.read("s.json")).unwrap();
    assert_eq!(s["rows"]["done"], 60);
    assert!(s["run"]["retries"].as_u64().unwrap() > 0);
    let rows = dir.jsonl("out.jsonl");
    assert!(rows.iter().all(|r| r["status"] == "done" && r["error"].is_null()));
}

#[test]
fn retries_give_up_after_max_attempts_with_the_last_error() {
    let dir = Dir::new();
    dir.write(
        "p.jsonl",
        "{\"prompt\":\"[[mock:status=503]] never works\"}\n{\"prompt\":\"fine\"}\n",
    );
    let mock = Mock::start(&[]);
    let out = run_against(&dir, &mock, &["--max-attempts", "2"]);
    assert_eq!(out.code(), 3, "{}", out.stderr);
    let rows = dir.jsonl("out.jsonl");
    let error = rows[0]["error"].as_str().unwrap();
    assert!(
        error.starts_with("gave up after 2 attempts; last: HTTP 503:"),
        "{error}"
    );
    assert_eq!(rows[1]["status"], "done");
}

#[test]
fn a_request_larger_than_the_tpm_limit_fails_its_row_instead_of_hanging() {
    let dir = Dir::new();
    let long = "word ".repeat(300);
    dir.write(
        "p.jsonl",
        format!("{{\"prompt\":\"{long}\"}}\n{{\"prompt\":\"short\"}}\n"),
    );
    let mock = Mock::start(&[]);
    let out = run_against(&dir, &mock, &["--tpm", "200", "--max-tokens", "10"]);
    assert_eq!(out.code(), 3, "{}", out.stderr);
    let rows = dir.jsonl("out.jsonl");
    assert!(
        rows[0]["error"]
            .as_str()
            .unwrap()
            .contains("more than --tpm 200 allows"),
        "{}",
        rows[0]["error"]
    );
    assert_eq!(rows[1]["status"], "done");
    assert_eq!(mock.requests().len(), 1);
}

#[test]
fn rpm_limit_spaces_the_requests() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 5);
    let mock = Mock::start(&[]);
    // 120/min: a burst of 2, then one every 500 ms.
    let out = run_against(&dir, &mock, &["--rpm", "120", "--concurrency", "5"]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let t = mock.arrivals_ms();
    let span = t[4] - t[0];
    assert!(span >= 1400.0, "5 requests at 120/min took {span} ms");
}

#[test]
fn a_key_refused_mid_run_stops_within_two_seconds_and_resume_finishes_the_job() {
    let key = "sk-mid-run-key";
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 1000);
    let revoking = Mock::start_with_env(
        &[
            "--api-key-env",
            "MOCK_KEY",
            "--unauthorized-after",
            "200",
            "--latency",
            "20ms",
        ],
        &[("MOCK_KEY", key)],
    );
    let out = run(run_job(&dir, &revoking)
        .args(["--concurrency", "16"])
        .env("OPENAI_API_KEY", key));
    let exited_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0;
    assert_eq!(out.code(), 4, "stopped: {}", out.stderr);
    assert!(
        out.stderr.contains(
            "the API refused the credentials (HTTP 401: Incorrect API key provided. (invalid_api_key))"
        ),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("promptmill resume"), "{}", out.stderr);
    let requests = revoking.requests();
    let first_401 = requests
        .iter()
        .find(|r| r["status"] == 401)
        .expect("the server refused the key")["t_ms"]
        .as_f64()
        .unwrap();
    let stop_ms = exited_ms - first_401;
    assert!(
        stop_ms < 2000.0,
        "the run took {stop_ms:.0} ms after the first 401 to exit"
    );
    eprintln!("stopped {stop_ms:.0} ms after the first 401");
    let refused = requests.iter().filter(|r| r["status"] == 401).count();
    assert!(
        refused <= 16,
        "{refused} requests refused: dispatch went on after the 401"
    );

    let rows = dir.jsonl("out.jsonl");
    let done = rows.iter().filter(|r| r["status"] == "done").count();
    assert!(
        rows.iter()
            .all(|r| r["status"] == "done" || r["status"] == "pending"),
        "no row is marked failed by a 401"
    );
    assert!(
        done > 0 && done <= 200,
        "{done} rows done before the key was refused"
    );

    let accepting = Mock::start_with_env(&["--api-key-env", "MOCK_KEY"], &[("MOCK_KEY", key)]);
    let resumed = run(promptmill(&dir)
        .args(["resume", "out.jsonl.promptmill.db", "--base-url", &accepting.url])
        .env("OPENAI_API_KEY", key));
    assert_eq!(resumed.code(), 0, "{}", resumed.stderr);
    let rows = dir.jsonl("out.jsonl");
    assert_eq!(rows.len(), 1000);
    assert!(rows.iter().all(|r| r["status"] == "done"));
    assert_eq!(
        accepting.requests().len(),
        1000 - done,
        "the resume sent every row not done, once"
    );
}
