//! Anthropic's Message Batches (`--provider anthropic --mode batch`) end to end: the real binary
//! against the mock's `/v1/messages/batches`. Parts created with their requests inline and equal
//! to a live run at half the price, lost create answers (after and before the server acted)
//! adopted or made once, expired and cancelled requests sent again with `--retry-failed`,
//! `promptmill cancel`, and row ids no `custom_id` could carry mapped back to their rows.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::util::*;

const KEY: &str = "sk-ant-batch-5d2f0a-unique-key";

fn anthropic_mock(extra: &[&str]) -> Mock {
    let mut args = vec!["--api-key-env", "MOCK_KEY"];
    args.extend_from_slice(extra);
    Mock::start_with_env(&args, &[("MOCK_KEY", KEY)])
}

/// The mock's root: Anthropic's base URL has no `/v1`.
fn root(mock: &Mock) -> String {
    mock.url.trim_end_matches("/v1").to_string()
}

/// `promptmill run p.jsonl -o OUT --provider anthropic …`, the key and base URL in the
/// environment.
fn job(dir: &Dir, mock: &Mock, out: &str) -> std::process::Command {
    let mut cmd = promptmill(dir);
    cmd.args([
        "run",
        "p.jsonl",
        "-o",
        out,
        "--provider",
        "anthropic",
        "--model",
        "claude-haiku-4-5",
        "--max-tokens",
        "64",
    ])
    .env("ANTHROPIC_API_KEY", KEY)
    .env("ANTHROPIC_BASE_URL", root(mock));
    cmd
}

fn batch_job(dir: &Dir, mock: &Mock, extra: &[&str]) -> std::process::Command {
    let mut cmd = job(dir, mock, "out.jsonl");
    cmd.args(["--mode", "batch", "--poll-interval", "20ms"])
        .args(extra);
    cmd
}

fn prompts(dir: &Dir, n: usize) {
    let text: String = (1..=n)
        .map(|i| json!({"id": format!("r{i}"), "prompt": format!("Say {i} words")}).to_string() + "\n")
        .collect();
    dir.write("p.jsonl", text);
}

/// Every message batch the mock made: its id, status and custom_ids, in creation order.
fn message_batches(mock: &Mock) -> Vec<(String, String, Vec<String>)> {
    let v = mock.get_json("/mock/batches");
    v["message_batches"]
        .as_array()
        .expect("message_batches")
        .iter()
        .map(|b| {
            let ids = b["custom_ids"].as_array().expect("ids").iter();
            (
                b["id"].as_str().expect("id").to_string(),
                b["status"].as_str().expect("status").to_string(),
                ids.map(|i| i.as_str().expect("id").to_string()).collect(),
            )
        })
        .collect()
}

/// `GET /v1/messages/batches` as the API lists them, with the key.
fn listed(mock: &Mock) -> Vec<Value> {
    let header = format!("x-api-key: {KEY}");
    let body = mock.get("/v1/messages/batches?limit=100", Some(&header));
    let v: Value = serde_json::from_str(&body).expect("list");
    v["data"].as_array().expect("data").clone()
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
    let mock = anthropic_mock(&["--batch-polls", "2"]);
    let live = run(job(&dir, &mock, "live.jsonl").args(["--summary", "live.json"]));
    assert_eq!(live.code(), 0, "{}", live.stderr);
    let batch = run(&mut batch_job(
        &dir,
        &mock,
        &["--batch-max-rows", "5", "--summary", "batch.json"],
    ));
    assert_eq!(batch.code(), 0, "{}", batch.stderr);

    let batches = message_batches(&mock);
    assert_eq!(batches.len(), 2, "{batches:?}");
    assert!(
        batches.iter().all(|b| b.2.len() == 5 && b.1 == "ended"),
        "{batches:?}"
    );
    let requests = mock.requests();
    let batch_calls: Vec<&Value> = requests
        .iter()
        .filter(|r| r["path"].as_str().unwrap().starts_with("/v1/messages/batches"))
        .collect();
    assert!(!batch_calls.is_empty());
    assert!(
        batch_calls.iter().all(|r| r["credential"] == "x-api-key"),
        "{batch_calls:?}"
    );
    assert!(requests
        .iter()
        .all(|r| !r["path"].as_str().unwrap().contains("/files")));

    let rows = assert_batch_equals_live_at_half_price(
        &dir,
        ["live.jsonl", "live.json"],
        ["out.jsonl", "batch.json"],
    );
    assert_eq!(rows, 10);
}

#[test]
fn a_create_lost_after_the_server_acted_is_adopted_not_made_again() {
    let dir = Dir::new();
    prompts(&dir, 10);
    // The second create (part 2, as many requests as part 1) is made, its answer lost.
    let mock = anthropic_mock(&["--drop-batch-create", "2:after"]);
    let out = run(&mut batch_job(&dir, &mock, &["--batch-max-rows", "5"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("created by an earlier attempt"),
        "{}",
        out.stderr
    );
    assert_eq!(listed(&mock).len(), 2, "one batch a part, none paid twice");
    let batches = message_batches(&mock);
    let ids: HashSet<&String> = batches.iter().flat_map(|b| &b.2).collect();
    assert_eq!(ids.len(), 10, "no request in two batches: {batches:?}");
    assert_eq!(done(&dir), 10);
}

#[test]
fn a_run_killed_after_the_server_made_its_batch_is_resumed_by_adopting_that_batch() {
    let dir = Dir::new();
    prompts(&dir, 6);
    // Every answer waits 3 s after the server acted: the binary is killed while its create
    // waits for the answer, the batch made.
    let mock = anthropic_mock(&["--latency", "3s", "--batch-polls", "1"]);
    let mut child = batch_job(&dir, &mock, &[])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    wait_until(Duration::from_secs(30), "the batch to be made", || {
        !message_batches(&mock).is_empty()
    });
    child.kill().expect("kill"); // SIGKILL: the part stays `creating`
    let _ = child.wait();

    let out = run(promptmill(&dir)
        .args(["resume", "out.jsonl.promptmill.db"])
        .env("ANTHROPIC_API_KEY", KEY));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("created by an earlier attempt"),
        "{}",
        out.stderr
    );
    assert_eq!(listed(&mock).len(), 1, "exactly one batch, paid once");
    assert_eq!(mock.stats()["batches_created"], 1);
    assert_eq!(done(&dir), 6);
}

#[test]
fn a_create_lost_before_the_server_acted_is_made_once() {
    let dir = Dir::new();
    prompts(&dir, 4);
    let mock = anthropic_mock(&["--drop-batch-create", "1:before"]);
    let out = run(&mut batch_job(&dir, &mock, &[]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(listed(&mock).len(), 1);
    assert_eq!(mock.stats()["batches_created"], 1);
    assert_eq!(done(&dir), 4);
}

#[test]
fn expired_requests_fail_and_go_again_with_retry_failed() {
    let dir = Dir::new();
    prompts(&dir, 10);
    let mock = anthropic_mock(&["--batch-outcome", "2=expired:0.4"]);
    let out = run(&mut batch_job(&dir, &mock, &["--batch-max-rows", "5"]));
    assert_eq!(out.code(), 3, "{}", out.stderr);
    let rows = dir.jsonl("out.jsonl");
    let failed: Vec<&Value> = rows.iter().filter(|r| r["status"] == "failed").collect();
    assert_eq!(failed.len(), 3, "3 of the second part's 5 expired");
    assert!(
        failed
            .iter()
            .all(|r| r["error"].as_str().unwrap().contains("expired")),
        "{failed:?}"
    );

    let again = run(promptmill(&dir)
        .args(["resume", "out.jsonl.promptmill.db", "--retry-failed"])
        .env("ANTHROPIC_API_KEY", KEY));
    assert_eq!(again.code(), 0, "{}", again.stderr);
    let batches = message_batches(&mock);
    assert_eq!(batches.len(), 3);
    assert_eq!(batches[2].2.len(), 3, "only the expired rows: {batches:?}");
    assert_eq!(done(&dir), 10);
}

#[test]
fn cancel_sends_the_cancel_and_retry_failed_sends_the_cancelled_rows() {
    let dir = Dir::new();
    prompts(&dir, 10);
    // A batch takes 10 polls: it is still running when cancelled.
    let mock = anthropic_mock(&["--batch-polls", "10"]);
    let out = run(&mut batch_job(&dir, &mock, &["--no-wait"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let header = format!("x-api-key: {KEY}");
    let id = message_batches(&mock)[0].0.clone();
    for _ in 0..3 {
        mock.get(&format!("/v1/messages/batches/{id}"), Some(&header));
    }
    let cancel = run(promptmill(&dir)
        .args(["cancel", "out.jsonl.promptmill.db"])
        .env("ANTHROPIC_API_KEY", KEY));
    assert_eq!(cancel.code(), 3, "{}", cancel.stderr);
    assert_eq!(mock.stats()["batches_cancelled"], 1);
    assert!(mock
        .requests()
        .iter()
        .any(|r| r["path"] == format!("/v1/messages/batches/{id}/cancel")));
    let rows = dir.jsonl("out.jsonl");
    let cancelled = rows
        .iter()
        .filter(|r| r["status"] == "failed" && r["error"].as_str().unwrap().contains("cancel"))
        .count();
    let finished = done(&dir);
    assert!(
        finished >= 3 && cancelled > 0,
        "{finished} done, {cancelled} cancelled"
    );
    assert_eq!(finished + cancelled, 10);

    let again = run(promptmill(&dir)
        .args(["resume", "out.jsonl.promptmill.db", "--retry-failed"])
        .env("ANTHROPIC_API_KEY", KEY));
    assert_eq!(again.code(), 0, "{}", again.stderr);
    assert_eq!(message_batches(&mock)[1].2.len(), cancelled);
    assert_eq!(done(&dir), 10);
}

#[test]
fn row_ids_no_custom_id_could_carry_come_back_to_their_rows() {
    let dir = Dir::new();
    let long = "x".repeat(100);
    let ids = [
        "row id/with spaces",
        long.as_str(),
        "promptmill-rows-1-1",
        "ok_id",
    ];
    let text: String = ids
        .iter()
        .enumerate()
        .map(|(i, id)| json!({"id": id, "prompt": format!("Prompt number {i}")}).to_string() + "\n")
        .collect();
    dir.write("p.jsonl", text);
    let mock = anthropic_mock(&[]);
    let out = run(&mut batch_job(&dir, &mock, &[]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let sent = &message_batches(&mock)[0].2;
    assert!(
        sent.iter().all(|c| c.len() <= 64
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')),
        "{sent:?}"
    );
    let rows = dir.jsonl("out.jsonl");
    assert_eq!(rows.len(), 4);
    for (i, (row, id)) in rows.iter().zip(ids).enumerate() {
        assert_eq!(row["id"], id);
        assert_eq!(
            row["completion"],
            format!("Mock reply: Prompt number {i}"),
            "{row}"
        );
    }
}
