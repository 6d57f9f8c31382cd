//! The dry run and the response cache: rows a run would answer from the cache are neither
//! counted nor priced, in the scope a run would use; `--no-cache` counts them all; a dry run
//! creates no cache.

use serde_json::Value;

use crate::util::*;

/// Rows `r1..rn`, each with its own `name`, and `repeats` more rows repeating the first's.
fn rows(dir: &Dir, n: usize, repeats: usize) {
    let mut text = String::new();
    for i in 1..=n {
        text.push_str(&format!("{{\"id\":\"r{i}\",\"name\":\"item {i}\"}}\n"));
    }
    for i in 1..=repeats {
        text.push_str(&format!("{{\"id\":\"again{i}\",\"name\":\"item 1\"}}\n"));
    }
    dir.write("p.jsonl", text);
}

const JOB: [&str; 6] = [
    "--model",
    "gpt-4o-mini",
    "--template",
    "Describe {name}.",
    "--max-tokens",
    "20",
];

/// `promptmill estimate p.jsonl --json` with the job's flags, `--base-url URL` and `extra`;
/// the report.
fn estimate(dir: &Dir, url: &str, extra: &[&str]) -> Value {
    let outcome = run(promptmill(dir)
        .args(["estimate", "p.jsonl", "--json", "--base-url", url])
        .args(JOB)
        .args(extra));
    assert_eq!(outcome.code(), 0, "stderr: {}", outcome.stderr);
    serde_json::from_str(&outcome.stdout).expect("the report is JSON")
}

/// Runs the first `limit` rows of the job against `mock`, storing answers in `cache.db`.
fn run_first(dir: &Dir, mock: &Mock, limit: u64) {
    let outcome = run(promptmill(dir)
        .args(["run", "p.jsonl", "-o", "out.jsonl", "--base-url", &mock.url])
        .args(JOB)
        .args(["--cache", "cache.db", "--limit", &limit.to_string()]));
    assert_eq!(outcome.code(), 0, "stderr: {}", outcome.stderr);
}

#[test]
fn rows_the_cache_answers_are_left_out_of_the_tokens_and_the_cost() {
    let dir = Dir::new();
    rows(&dir, 10, 0);
    let mock = Mock::start(&[]);
    let before = estimate(&dir, &mock.url, &["--cache", "cache.db"]);
    assert!(before["cache"].is_null(), "no cache file yet: {before}");
    assert!(!dir.path("cache.db").exists(), "a dry run creates no cache");
    assert_eq!(before["rows_to_send"], 10);

    run_first(&dir, &mock, 4);
    let after = estimate(&dir, &mock.url, &["--cache", "cache.db"]);
    assert_eq!(after["rows_to_send"], 6, "{after}");
    assert_eq!(after["rows_cached"], 4);
    assert!(after["cache"].as_str().unwrap_or("").ends_with("cache.db"));
    // The six rows left cost what they cost alone: each row's prompt has the same length.
    let tokens = |r: &Value| r["prompt_tokens"].as_u64().expect("prompt tokens");
    assert_eq!(tokens(&before) * 6, tokens(&after) * 10, "{before}\n{after}");
    let at_most = |r: &Value| r["cost_live"]["max"].as_f64().expect("a live cost");
    assert!(at_most(&after) < at_most(&before));

    let text = run(promptmill(&dir)
        .args(["estimate", "p.jsonl", "--base-url", &mock.url])
        .args(JOB)
        .args(["--cache", "cache.db"]));
    assert!(
        text.stderr
            .contains("6 to send, 4 answered from the response cache"),
        "{}",
        text.stderr
    );

    let all = estimate(&dir, &mock.url, &["--no-cache"]);
    assert_eq!(
        (all["rows_to_send"].as_u64(), all["rows_cached"].as_u64()),
        (Some(10), Some(0))
    );
    assert_eq!(tokens(&all), tokens(&before));
}

#[test]
fn answers_for_another_server_or_for_an_earlier_repeat_do_not_count() {
    let dir = Dir::new();
    // Row 1 and two repeats of its request: a run keeps an answer for each repeat of its own.
    rows(&dir, 3, 2);
    let mock = Mock::start(&[]);
    run_first(&dir, &mock, 2);
    let here = estimate(&dir, &mock.url, &["--cache", "cache.db"]);
    // Rows 1 and 2 were answered; the repeats of row 1 were not sent, so they are not cached.
    assert_eq!(here["rows_cached"], 2, "{here}");
    assert_eq!(here["rows_to_send"], 3);

    // The same requests to another server are not the same cache entries.
    let elsewhere = estimate(&dir, "http://127.0.0.1:9/v1", &["--cache", "cache.db"]);
    assert_eq!(elsewhere["rows_cached"], 0, "{elsewhere}");
    assert_eq!(elsewhere["rows_to_send"], 5);
}

#[test]
fn the_estimate_agrees_with_what_the_run_then_sends() {
    let dir = Dir::new();
    rows(&dir, 8, 2);
    let mock = Mock::start(&[]);
    run_first(&dir, &mock, 5);
    let report = estimate(&dir, &mock.url, &["--cache", "cache.db"]);
    let before = mock.requests().len();
    let outcome = run(promptmill(&dir)
        .args(["run", "p.jsonl", "-o", "all.jsonl", "--base-url", &mock.url])
        .args(JOB)
        .args(["--cache", "cache.db"]));
    assert_eq!(outcome.code(), 0, "stderr: {}", outcome.stderr);
    let sent = (mock.requests().len() - before) as u64;
    assert_eq!(Some(sent), report["rows_to_send"].as_u64(), "{report}");
    assert_eq!(report["rows_cached"], 5);
}
