//! Mistral's batch jobs (`--provider mistral --mode batch`) end to end: the real binary against
//! the mock's `/v1/files` and `/v1/batch/jobs`. Output equal to a live `--provider mistral` run
//! at half the price, split into parts; a run killed mid-create resumed by adopting its job; lost
//! create answers (after and before the server acted) found by metadata or made once; failed
//! lines sent again with `--retry-failed`; `promptmill cancel`; the key sent only as a Bearer
//! token to the mock and written nowhere.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::util::*;

const KEY: &str = "mistral-batch-key-7c1e44-unique";
const MODEL: &str = "mistral-small-latest";

fn mistral_mock(extra: &[&str]) -> Mock {
    let mut args = vec!["--api-key-env", "MOCK_KEY"];
    args.extend_from_slice(extra);
    Mock::start_with_env(&args, &[("MOCK_KEY", KEY)])
}

/// `promptmill run p.jsonl -o OUT --provider mistral …`, the key and base URL in the
/// environment (Mistral's model is not in the price table: the prices are given).
fn job(dir: &Dir, mock: &Mock, out: &str) -> std::process::Command {
    let mut cmd = promptmill(dir);
    cmd.args([
        "run",
        "p.jsonl",
        "-o",
        out,
        "--provider",
        "mistral",
        "--model",
        MODEL,
    ])
    .args(["--price-in", "0.2", "--price-out", "0.6"])
    .env("MISTRAL_API_KEY", KEY)
    .env("MISTRAL_BASE_URL", &mock.url);
    cmd
}

fn batch_job(dir: &Dir, mock: &Mock, extra: &[&str]) -> std::process::Command {
    let mut cmd = job(dir, mock, "out.jsonl");
    cmd.args(["--mode", "batch", "--poll-interval", "20ms"])
        .args(extra);
    cmd
}

fn resume(dir: &Dir, extra: &[&str]) -> Outcome {
    run(promptmill(dir)
        .args(["resume", "out.jsonl.promptmill.db"])
        .args(extra)
        .env("MISTRAL_API_KEY", KEY))
}

fn prompts(dir: &Dir, n: usize) {
    let text: String = (1..=n)
        .map(|i| json!({"id": format!("r{i}"), "prompt": format!("Say {i} words")}).to_string() + "\n")
        .collect();
    dir.write("p.jsonl", text);
}

/// `GET /v1/batch/jobs` as the API lists them, with the key.
fn jobs(mock: &Mock) -> Vec<Value> {
    let body = mock.get(
        "/v1/batch/jobs?page_size=100",
        Some(&format!("authorization: Bearer {KEY}")),
    );
    let v: Value = serde_json::from_str(&body).expect("list");
    v["data"].as_array().expect("data").clone()
}

/// The custom_ids of every batch the mock made, in creation order.
fn sent(mock: &Mock) -> Vec<Vec<String>> {
    let v = mock.get_json("/mock/batches");
    v["batches"]
        .as_array()
        .expect("batches")
        .iter()
        .map(|b| {
            let ids = b["custom_ids"].as_array().expect("ids").iter();
            ids.map(|i| i.as_str().expect("id").to_string()).collect()
        })
        .collect()
}

fn done(dir: &Dir) -> usize {
    dir.jsonl("out.jsonl")
        .iter()
        .filter(|r| r["status"] == "done")
        .count()
}

#[test]
fn a_batch_of_two_parts_equals_a_live_run_at_half_the_price() {
    let dir = Dir::new();
    prompts(&dir, 10);
    let mock = mistral_mock(&["--batch-polls", "2"]);
    let live = run(job(&dir, &mock, "live.jsonl").args(["--summary", "live.json"]));
    assert_eq!(live.code(), 0, "{}", live.stderr);
    let batch = run(&mut batch_job(
        &dir,
        &mock,
        &["--batch-max-rows", "5", "--summary", "batch.json"],
    ));
    assert_eq!(batch.code(), 0, "{}", batch.stderr);

    let listed = jobs(&mock);
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed
        .iter()
        .all(|j| j["status"] == "SUCCESS" && j["model"] == MODEL));
    assert!(sent(&mock).iter().all(|ids| ids.len() == 5));
    let rows = assert_batch_equals_live_at_half_price(
        &dir,
        ["live.jsonl", "live.json"],
        ["out.jsonl", "batch.json"],
    );
    assert_eq!(rows, 10);
}

#[test]
fn the_key_goes_only_to_the_base_url_as_a_bearer_token_and_is_written_nowhere() {
    let dir = Dir::new();
    prompts(&dir, 3);
    let mock = mistral_mock(&[]);
    let out = run(&mut batch_job(&dir, &mock, &["--summary", "s.json"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let requests = mock.requests();
    assert!(requests.iter().any(|r| r["path"] == "/v1/batch/jobs"));
    assert!(
        requests.iter().all(|r| r["credential"] == "bearer"),
        "{requests:?}"
    );
    for file in ["out.jsonl", "s.json", "out.jsonl.promptmill.db"] {
        let bytes = std::fs::read(dir.path(file)).expect(file);
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(KEY), "the key is in {file}");
    }
    assert!(!out.stderr.contains(KEY));
}

#[test]
fn a_create_lost_after_the_server_acted_is_found_by_its_metadata_not_made_again() {
    let dir = Dir::new();
    prompts(&dir, 10);
    let mock = mistral_mock(&["--drop-batch-create", "2:after"]);
    let out = run(&mut batch_job(&dir, &mock, &["--batch-max-rows", "5"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("created by an earlier attempt"),
        "{}",
        out.stderr
    );
    assert_eq!(jobs(&mock).len(), 2, "one job a part, none paid twice");
    let ids: HashSet<String> = sent(&mock).into_iter().flatten().collect();
    assert_eq!(ids.len(), 10);
    assert_eq!(done(&dir), 10);
}

#[test]
fn a_create_lost_before_the_server_acted_is_made_once() {
    let dir = Dir::new();
    prompts(&dir, 4);
    let mock = mistral_mock(&["--drop-batch-create", "1:before"]);
    let out = run(&mut batch_job(&dir, &mock, &[]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(jobs(&mock).len(), 1);
    assert_eq!(mock.stats()["batches_created"], 1);
    assert_eq!(done(&dir), 4);
}

#[test]
fn a_run_killed_after_the_server_made_its_job_is_resumed_by_adopting_that_job() {
    let dir = Dir::new();
    prompts(&dir, 6);
    // Every answer waits 3 s after the server acted: the binary is killed while its create
    // waits for the answer, the job made.
    let mock = mistral_mock(&["--latency", "3s", "--batch-polls", "1"]);
    let mut child = batch_job(&dir, &mock, &[])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    wait_until(Duration::from_secs(60), "the job to be made", || {
        !sent(&mock).is_empty()
    });
    child.kill().expect("kill");
    let _ = child.wait();
    let out = resume(&dir, &[]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(jobs(&mock).len(), 1, "exactly one job, paid once");
    assert_eq!(mock.stats()["batches_created"], 1);
    assert_eq!(done(&dir), 6);
}

#[test]
fn failed_lines_in_the_error_file_fail_their_rows_and_retry_failed_sends_them() {
    let dir = Dir::new();
    let text: String = (1..=4)
        .map(|i| {
            let prompt = if i % 2 == 0 {
                format!("Say {i} [[mock:status=400]]")
            } else {
                format!("Say {i}")
            };
            json!({"id": format!("r{i}"), "prompt": prompt}).to_string() + "\n"
        })
        .collect();
    dir.write("p.jsonl", text);
    let mock = mistral_mock(&[]);
    let out = run(&mut batch_job(&dir, &mock, &[]));
    assert_eq!(out.code(), 3, "{}", out.stderr);
    let rows = dir.jsonl("out.jsonl");
    let failed: Vec<&Value> = rows.iter().filter(|r| r["status"] == "failed").collect();
    assert_eq!(failed.len(), 2, "{rows:?}");
    assert!(jobs(&mock)[0]["error_file"].is_string());

    let again = resume(&dir, &["--retry-failed"]);
    // The directive still answers 400: the rows are sent again and fail again.
    assert_eq!(again.code(), 3, "{}", again.stderr);
    let batches = sent(&mock);
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[1].len(), 2, "only the failed rows: {batches:?}");
}

#[test]
fn cancel_sends_the_cancel_and_retry_failed_sends_the_cancelled_rows() {
    let dir = Dir::new();
    prompts(&dir, 10);
    let mock = mistral_mock(&["--batch-polls", "10"]);
    let out = run(&mut batch_job(&dir, &mock, &["--no-wait"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let id = jobs(&mock)[0]["id"].as_str().unwrap().to_string();
    let header = format!("authorization: Bearer {KEY}");
    for _ in 0..3 {
        mock.get(&format!("/v1/batch/jobs/{id}"), Some(&header));
    }
    let cancel = run(promptmill(&dir)
        .args(["cancel", "out.jsonl.promptmill.db"])
        .env("MISTRAL_API_KEY", KEY));
    assert_eq!(cancel.code(), 3, "{}", cancel.stderr);
    assert_eq!(mock.stats()["batches_cancelled"], 1);
    assert!(mock
        .requests()
        .iter()
        .any(|r| r["path"] == format!("/v1/batch/jobs/{id}/cancel")));
    let finished = done(&dir);
    assert!((3..10).contains(&finished), "{finished} done");

    let again = resume(&dir, &["--retry-failed"]);
    assert_eq!(again.code(), 0, "{}", again.stderr);
    assert_eq!(sent(&mock)[1].len(), 10 - finished);
    assert_eq!(done(&dir), 10);
}
