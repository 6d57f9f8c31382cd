//! The response cache in Batch API jobs (issue 14): a `--mode batch` job's pending rows are
//! looked up before its parts are planned, so rows answered before (live or in a batch) never go
//! into a batch; a batch's answers are cached for the next job, live or batch; the summary and
//! `status` say what the cache saved, at the Batch price.

use serde_json::Value;

use crate::util::*;

/// Rows `r1..rn` whose prompt names the item, with " Briefly." added to the rows in `changed`.
fn rows(dir: &Dir, n: usize, changed: impl Fn(usize) -> bool) {
    let mut text = String::new();
    for i in 1..=n {
        let extra = if changed(i) { " Briefly." } else { "" };
        text.push_str(&format!(
            "{{\"id\":\"r{i}\",\"prompt\":\"Say something about item {i}.{extra}\"}}\n"
        ));
    }
    dir.write("p.jsonl", text);
}

/// `promptmill run p.jsonl -o OUT --summary OUT.json --model gpt-4o-mini` against `mock`,
/// sharing the test's cache, plus `extra`; asserts it succeeded.
fn job(dir: &Dir, mock: &Mock, out: &str, extra: &[&str]) -> Outcome {
    let summary = format!("{out}.json");
    let outcome = run(promptmill(dir)
        .args(["run", "p.jsonl", "-o", out, "--summary", &summary])
        .args(["--model", "gpt-4o-mini", "--base-url", &mock.url])
        .arg("--cache")
        .arg(dir.path("cache.db"))
        .args(extra));
    assert_eq!(outcome.code(), 0, "{}", outcome.stderr);
    outcome
}

const BATCH: [&str; 4] = ["--mode", "batch", "--poll-interval", "20ms"];

/// The custom_ids of every batch the mock made, batch by batch.
fn batched_ids(mock: &Mock) -> Vec<Vec<String>> {
    let v = mock.get_json("/mock/batches");
    v["batches"]
        .as_array()
        .expect("batches")
        .iter()
        .map(|b| {
            b["custom_ids"]
                .as_array()
                .expect("custom_ids")
                .iter()
                .map(|i| i.as_str().expect("id").to_string())
                .collect()
        })
        .collect()
}

fn summary(dir: &Dir, out: &str) -> Value {
    serde_json::from_str(&dir.read(&format!("{out}.json"))).expect("summary")
}

#[test]
fn a_batch_job_puts_only_the_rows_not_in_the_cache_into_its_batch() {
    let dir = Dir::new();
    rows(&dir, 100, |_| false);
    let mock = Mock::start(&["--batch-polls", "1"]);
    job(&dir, &mock, "live.jsonl", &[]);
    assert_eq!(mock.requests().len(), 100);

    // Ten rows' prompts change: a batch job of the edited input (a new job: another output)
    // sends those ten, and only them, in one batch.
    rows(&dir, 100, |i| i % 10 == 0);
    let out = job(&dir, &mock, "batch.jsonl", &BATCH);
    assert!(
        out.stderr.contains("90 rows answered from the response cache")
            && out.stderr.contains("10 go to the Batch API"),
        "{}",
        out.stderr
    );
    // Looked up before the cost line, which prices only the rows that go into the batch.
    assert!(out.stderr.contains("sending 10 rows"), "{}", out.stderr);
    assert_eq!(out.stderr.matches("answered from the response cache").count(), 1);
    let batches = batched_ids(&mock);
    assert_eq!(batches.len(), 1, "{batches:?}");
    let mut sent = batches[0].clone();
    sent.sort();
    let mut changed: Vec<String> = (1..=10).map(|i| format!("r{}", i * 10)).collect();
    changed.sort();
    assert_eq!(sent, changed);

    // Every row is in the output, in input order; the unchanged ones marked cached and equal to
    // the live run's answers.
    let (live, batch) = (dir.jsonl("live.jsonl"), dir.jsonl("batch.jsonl"));
    assert_eq!(batch.len(), 100);
    for (i, (l, b)) in live.iter().zip(&batch).enumerate() {
        assert_eq!(b["id"], format!("r{}", i + 1));
        assert_eq!(b["status"], "done", "{b}");
        let unchanged = (i + 1) % 10 != 0;
        assert_eq!(b["cached"].as_bool().unwrap_or(false), unchanged, "{b}");
        if unchanged {
            assert_eq!(l["completion"], b["completion"]);
            assert_eq!(l["usage"], b["usage"]);
        }
    }
    let s = summary(&dir, "batch.jsonl");
    assert_eq!(s["cache"]["rows"], 90, "{s}");
    assert_eq!(s["cache"]["run_rows"], 90, "{s}");
    assert!(s["cache"]["saved"].as_f64().unwrap_or(0.0) > 0.0, "{s}");
}

#[test]
fn a_batch_jobs_answers_are_cached_for_the_next_live_or_batch_job_and_status_shows_the_saving() {
    let dir = Dir::new();
    rows(&dir, 60, |_| false);
    let mock = Mock::start(&["--batch-polls", "1"]);
    job(&dir, &mock, "first.jsonl", &BATCH);
    assert_eq!(batched_ids(&mock).len(), 1);
    let paid = summary(&dir, "first.jsonl")["cost"]["job"]
        .as_f64()
        .expect("a priced batch");
    assert!(paid > 0.0);

    // A live job of the same requests sends nothing.
    let before = mock.requests().len();
    job(&dir, &mock, "live.jsonl", &[]);
    assert_eq!(mock.requests().len(), before, "the live job sent requests");

    // Another batch job makes no batch at all, costs nothing, and saved what the first paid
    // (the same usage at the same Batch price).
    let out = job(&dir, &mock, "again.jsonl", &BATCH);
    assert_eq!(
        batched_ids(&mock).len(),
        1,
        "a second batch was made: {}",
        out.stderr
    );
    let s = summary(&dir, "again.jsonl");
    assert_eq!(s["rows"]["done"], 60, "{s}");
    assert_eq!(s["cache"]["rows"], 60, "{s}");
    let saved = s["cache"]["saved"].as_f64().expect("saved");
    assert!(
        (saved - paid).abs() < 1e-9,
        "saved {saved}, the first batch paid {paid}"
    );
    assert_eq!(s["cost"]["job"].as_f64().unwrap_or(0.0), 0.0, "{s}");

    let status = run(promptmill(&dir).args(["status", "again.jsonl.promptmill.db"]));
    assert_eq!(status.code(), 0, "{}", status.stderr);
    assert!(
        status
            .stdout
            .contains("60 from the response cache, not sent, saved $"),
        "{}",
        status.stdout
    );
    let json = run(promptmill(&dir).args(["status", "--json", "again.jsonl.promptmill.db"]));
    let v: Value = serde_json::from_str(&json.stdout).expect("status json");
    assert!((v["saved"].as_f64().unwrap_or(-1.0) - saved).abs() < 1e-9, "{v}");
}

#[test]
fn the_default_cache_serves_batch_jobs_and_no_cache_sends_every_row_into_the_batch() {
    let dir = Dir::new();
    rows(&dir, 20, |_| false);
    let mock = Mock::start(&["--batch-polls", "1"]);
    let home = dir.path("xdg");
    let batch_job = |out: &str, extra: &[&str]| {
        let done = run(promptmill(&dir)
            .env("XDG_CACHE_HOME", &home)
            .args(["run", "p.jsonl", "-o", out, "--model", "gpt-4o-mini"])
            .args(["--base-url", &mock.url])
            .args(BATCH)
            .args(extra));
        assert_eq!(done.code(), 0, "{}", done.stderr);
    };
    batch_job("first.jsonl", &[]);
    batch_job("second.jsonl", &["--no-cache"]);
    let batches = batched_ids(&mock);
    assert_eq!(batches.len(), 2, "--no-cache sent its rows");
    assert_eq!(batches[1].len(), 20);
    // The same job with the cache on finds all twenty in the default cache.
    batch_job("third.jsonl", &[]);
    assert_eq!(batched_ids(&mock).len(), 2, "a third batch was made");
    assert!(dir.jsonl("third.jsonl").iter().all(|r| r["cached"] == true));
}
