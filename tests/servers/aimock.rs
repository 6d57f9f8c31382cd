//! `@copilotkit/aimock` (npm), a mock of many LLM APIs written by others, with its chaos
//! settings on: injected 429s (with `Retry-After`), injected 500s and added latency. The run
//! must settle every row, and its own counts must agree with aimock's request journal.
//!
//! `run --mode batch` goes through aimock's Files and Batches APIs: a batch is `in_progress` at
//! its first retrieve and ends at its second, `completed` unless created with the header
//! `X-AIMock-Batch-Outcome: failed | expired | cancelled`. Its output lines are canned ("Mock
//! batch completion"), not answered from the fixtures.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::{available, here, Server};
use crate::util::*;

pub(crate) const KEY: &str = "aimock-test-key-51c2";
const ROWS: usize = 30;
/// The fixture's answer to every "Say something about item N." prompt.
pub(crate) const ANSWER: &str = "Every item deserves a sentence.";
/// aimock's answer to every line of a completed batch.
const BATCH_ANSWER: &str = "Mock batch completion";
/// Rows of the Batch API tests.
const BATCH_ROWS: usize = 12;

fn cli() -> PathBuf {
    here().join("node_modules/@copilotkit/aimock/dist/cli.js")
}

pub(crate) fn missing() -> Option<String> {
    if !cli().is_file() {
        return Some(format!(
            "{} is not installed (npm ci --prefix tests/servers)",
            cli().display()
        ));
    }
    match Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("node is not installed".into()),
    }
}

/// aimock on 127.0.0.1, a free port, answering from `aimock-fixtures.json`, key [`KEY`].
pub(crate) fn start(chaos: &[&str]) -> Server {
    let mut cmd = Command::new("node");
    cmd.arg(cli())
        .args(["--host", "127.0.0.1", "--port", "0"])
        .arg("--fixtures")
        .arg(here().join("aimock-fixtures.json"))
        .args(chaos)
        .args(["--log-level", "info"]) // the "listening on" line is logged at info
        .env("AIMOCK_API_KEYS", KEY);
    Server::start(cmd, "aimock")
}

/// Every request aimock saw, in order (`GET /__aimock/journal`).
pub(crate) fn journal(server: &Server) -> Vec<Value> {
    let (status, body) = server.get("/__aimock/journal", Some(KEY));
    assert_eq!(status, 200, "GET /__aimock/journal: {body}");
    serde_json::from_str(&body).expect("journal is a JSON array")
}

#[test]
fn chaos_429s_500s_and_latency_still_settle_every_row() {
    if !available("aimock", missing()) {
        return;
    }
    // 30% of requests get a 429 with Retry-After: 1, 10% a 500, all wait 50 ms first.
    let server = start(&[
        "--chaos-ratelimit",
        "0.3",
        "--chaos-drop",
        "0.1",
        "--chaos-latency",
        "50",
    ]);

    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", ROWS);
    let base = format!("{}/v1", server.root);
    // 40% of attempts fail; 20 attempts make a row's failing every one of them (0.4^20, about
    // 1e-8) practically impossible, where the default 6 would fail a row in a few runs of 100.
    let out = run_within(
        promptmill(&dir)
            .args([
                "run",
                "p.jsonl",
                "-o",
                "out.jsonl",
                "--model",
                "gpt-4o-mini",
                "--base-url",
                &base,
            ])
            .args([
                "--concurrency",
                "4",
                "--max-attempts",
                "20",
                "--summary",
                "s.json",
            ])
            .env("OPENAI_API_KEY", KEY),
        Duration::from_secs(300),
    );
    assert_eq!(out.code(), 0, "{}\nserver: {}", out.stderr, server.stderr_tail());
    let rows = dir.jsonl("out.jsonl");
    assert_eq!(rows.len(), ROWS);
    for r in &rows {
        assert_eq!(r["status"], "done", "{r}");
        assert_eq!(r["completion"], ANSWER, "{r}");
    }

    let journal = journal(&server);
    let with_status = |s: u64| journal.iter().filter(|e| e["response"]["status"] == s).count() as u64;
    let (ok, limited) = (with_status(200), with_status(429));
    assert_eq!(ok, ROWS as u64, "each row answered once");
    // P(no 429 among 30+ requests at 30%) is below 2e-5.
    assert!(limited > 0, "the chaos setting injected 429s");
    let summary: Value = serde_json::from_str(&dir.read("s.json")).unwrap();
    assert_eq!(summary["run"]["requests"], journal.len() as u64, "{summary}");
    assert_eq!(summary["run"]["http_429"], limited, "{summary}");
    assert_eq!(summary["rows"]["done"], ROWS as u64);
}

#[test]
fn azure_requests_reach_aimocks_azure_deployment_route_with_an_api_key_header() {
    if !available("aimock", missing()) {
        return;
    }
    let server = start(&[]);
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 5);
    let out = run_within(
        promptmill(&dir)
            .args([
                "run",
                "p.jsonl",
                "-o",
                "out.jsonl",
                "--model",
                "gpt-4o-mini",
                "--provider",
                "azure",
            ])
            .args(["--base-url", &server.root, "--deployment", "team-4o"])
            .env("AZURE_OPENAI_API_KEY", KEY),
        Duration::from_secs(120),
    );
    assert_eq!(out.code(), 0, "{}\nserver: {}", out.stderr, server.stderr_tail());
    assert!(dir.jsonl("out.jsonl").iter().all(|r| r["completion"] == ANSWER));
    let journal = journal(&server);
    assert_eq!(journal.len(), 5);
    for e in &journal {
        assert_eq!(e["response"]["status"], 200, "{e}");
        assert_eq!(
            e["path"], "/openai/deployments/team-4o/chat/completions?api-version=2024-10-21",
            "{e}"
        );
        let headers = e["headers"].as_object().expect("headers");
        assert!(headers.contains_key("api-key"), "{e}");
        assert!(!headers.contains_key("authorization"), "{e}");
    }
}

/// The journal's entries for `method` on `path` (query string ignored) that were answered 200.
fn answered<'a>(journal: &'a [Value], method: &str, path: &str) -> Vec<&'a Value> {
    journal
        .iter()
        .filter(|e| e["method"] == method && e["response"]["status"] == 200)
        .filter(|e| e["path"].as_str().unwrap_or("").split('?').next() == Some(path))
        .collect()
}

/// `promptmill run p.jsonl -o out.jsonl --mode batch` against `server`, with `extra` flags.
fn run_batch(dir: &Dir, server: &Server, extra: &[&str]) -> Outcome {
    let base = format!("{}/v1", server.root);
    run_within(
        promptmill(dir)
            .args(["run", "p.jsonl", "-o", "out.jsonl", "--model", "gpt-4o-mini"])
            .args(["--mode", "batch", "--base-url", &base, "--poll-interval", "100ms"])
            .args(extra)
            .env("OPENAI_API_KEY", KEY),
        Duration::from_secs(120),
    )
}

#[test]
fn batch_mode_completes_a_job_through_aimocks_files_and_batches_with_one_upload_and_one_batch() {
    if !available("aimock", missing()) {
        return;
    }
    let server = start(&[]);
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", BATCH_ROWS);
    let out = run_batch(&dir, &server, &[]);
    assert_eq!(out.code(), 0, "{}\nserver: {}", out.stderr, server.stderr_tail());

    let rows = dir.jsonl("out.jsonl");
    let ids: Vec<String> = (1..=BATCH_ROWS).map(|i| format!("r{i}")).collect();
    assert_eq!(
        rows.iter().map(|r| r["id"].as_str().unwrap()).collect::<Vec<_>>(),
        ids
    );
    for r in &rows {
        assert_eq!(r["status"], "done", "{r}");
        assert_eq!(r["completion"], BATCH_ANSWER, "{r}");
        assert_eq!(r["usage"]["total_tokens"], 2, "{r}");
    }

    let journal = journal(&server);
    let uploads = answered(&journal, "POST", "/v1/files");
    assert_eq!(uploads.len(), 1, "one upload: {journal:?}");
    // aimock journals a description of the upload, not its bytes.
    let upload = &uploads[0]["body"];
    assert_eq!(upload["purpose"], "batch", "{upload}");
    let name = upload["filename"].as_str().unwrap_or("");
    assert!(
        name.starts_with("promptmill-") && name.ends_with(".jsonl"),
        "{upload}"
    );
    assert_eq!(
        answered(&journal, "POST", "/v1/batches").len(),
        1,
        "one batch: {journal:?}"
    );
    assert!(
        journal.iter().all(|e| e["response"]["status"] == 200),
        "{journal:?}"
    );
    // Polled until it ended (in_progress, then completed), and its output read once.
    assert_eq!(
        journal
            .iter()
            .filter(|e| e["method"] == "GET" && e["service"] == "batches")
            .count(),
        2,
        "{journal:?}"
    );
    let content: Vec<_> = journal
        .iter()
        .filter(|e| e["path"].as_str().unwrap_or("").ends_with("/content"))
        .collect();
    assert_eq!(content.len(), 1, "{journal:?}");

    // The batch as aimock holds it: the job's file, the chat endpoint, promptmill's metadata.
    let (status, body) = server.get("/v1/batches", Some(KEY));
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    let batch = &list["data"][0];
    assert_eq!(batch["status"], "completed", "{batch}");
    assert_eq!(batch["endpoint"], "/v1/chat/completions", "{batch}");
    assert_eq!(batch["request_counts"]["completed"], BATCH_ROWS as u64, "{batch}");
    assert_eq!(batch["metadata"]["promptmill_part"], "1", "{batch}");
}

#[test]
fn a_batch_aimock_fails_fails_its_rows_with_its_reason_and_a_retry_as_a_new_batch_finishes_them() {
    if !available("aimock", missing()) {
        return;
    }
    let server = start(&[]);
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", BATCH_ROWS);
    let out = run_batch(&dir, &server, &["--header", "X-AIMock-Batch-Outcome: failed"]);
    assert_eq!(out.code(), 3, "{}\nserver: {}", out.stderr, server.stderr_tail());
    assert!(
        out.stderr.contains("error: mock_failure: Mock batch failure"),
        "the batch's own error is shown: {}",
        out.stderr
    );
    assert!(out.stderr.contains("--retry-failed"), "{}", out.stderr);
    for r in dir.jsonl("out.jsonl") {
        assert_eq!(r["status"], "failed", "{r}");
        assert_eq!(
            r["error"], "mock_failure: Mock batch failure (X-AIMock-Batch-Outcome: failed)",
            "the line of aimock's error file: {r}"
        );
    }

    // The same command with --retry-failed, the header now asking for completion: a new batch.
    let out = run_batch(
        &dir,
        &server,
        &["--header", "X-AIMock-Batch-Outcome: completed", "--retry-failed"],
    );
    assert_eq!(out.code(), 0, "{}\nserver: {}", out.stderr, server.stderr_tail());
    let rows = dir.jsonl("out.jsonl");
    assert_eq!(rows.len(), BATCH_ROWS);
    assert!(rows
        .iter()
        .all(|r| r["status"] == "done" && r["completion"] == BATCH_ANSWER));

    let journal = journal(&server);
    let creates = answered(&journal, "POST", "/v1/batches");
    assert_eq!(creates.len(), 2, "{journal:?}");
    let outcome = |e: &Value| {
        e["headers"]["x-aimock-batch-outcome"]
            .as_str()
            .map(str::to_string)
    };
    assert_eq!(outcome(creates[0]).as_deref(), Some("failed"));
    assert_eq!(outcome(creates[1]).as_deref(), Some("completed"));
    assert_eq!(
        answered(&journal, "POST", "/v1/files").len(),
        2,
        "one upload per batch"
    );
}

#[test]
fn a_batch_aimock_expires_fails_its_rows_as_not_run() {
    if !available("aimock", missing()) {
        return;
    }
    let server = start(&[]);
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", BATCH_ROWS);
    let out = run_batch(&dir, &server, &["--header", "X-AIMock-Batch-Outcome: expired"]);
    assert_eq!(out.code(), 3, "{}\nserver: {}", out.stderr, server.stderr_tail());
    for r in dir.jsonl("out.jsonl") {
        assert_eq!(r["status"], "failed", "{r}");
        let error = r["error"].as_str().unwrap_or("");
        assert!(error.ends_with("expired before this row ran"), "{r}");
    }
}

#[test]
fn batches_submitted_without_waiting_are_cancelled_by_promptmill_cancel() {
    if !available("aimock", missing()) {
        return;
    }
    let server = start(&[]);
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", BATCH_ROWS);
    let out = run_batch(&dir, &server, &["--no-wait", "--batch-max-rows", "5"]);
    assert_eq!(out.code(), 0, "{}\nserver: {}", out.stderr, server.stderr_tail());
    assert!(out.stderr.contains("3 batches submitted"), "{}", out.stderr);

    let out = run_within(
        promptmill(&dir)
            .args(["cancel", "out.jsonl.promptmill.db"])
            .env("OPENAI_API_KEY", KEY),
        Duration::from_secs(120),
    );
    // Every row ends failed (not run), so the exit code is the failed-rows one.
    assert_eq!(out.code(), 3, "{}\nserver: {}", out.stderr, server.stderr_tail());
    for r in dir.jsonl("out.jsonl") {
        assert_eq!(r["status"], "failed", "{r}");
        let error = r["error"].as_str().unwrap_or("");
        assert!(error.ends_with("was cancelled before this row ran"), "{r}");
    }
    let journal = journal(&server);
    assert_eq!(answered(&journal, "POST", "/v1/files").len(), 3);
    let cancels = journal
        .iter()
        .filter(|e| e["path"].as_str().unwrap_or("").ends_with("/cancel") && e["response"]["status"] == 200);
    assert_eq!(cancels.count(), 3, "{journal:?}");
}

/// The Responses family against an implementation of `/v1/responses` we did not write: live
/// (answered from the fixtures, with injected 429s) and through aimock's Batches API.
#[test]
fn the_responses_family_runs_live_and_in_batch_against_aimocks_v1_responses() {
    if !available("aimock", missing()) {
        return;
    }
    let server = start(&["--chaos-ratelimit", "0.2"]);
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 10);
    let base = format!("{}/v1", server.root);
    let live = run_within(
        promptmill(&dir)
            .args(["run", "p.jsonl", "-o", "out.jsonl", "--model", "gpt-4.1-mini"])
            .args([
                "--endpoint",
                "responses",
                "--system",
                "Be brief.",
                "--base-url",
                &base,
            ])
            .args(["--max-attempts", "20"])
            .env("OPENAI_API_KEY", KEY),
        Duration::from_secs(120),
    );
    assert_eq!(
        live.code(),
        0,
        "{}\nserver: {}",
        live.stderr,
        server.stderr_tail()
    );
    for r in &dir.jsonl("out.jsonl") {
        assert_eq!(r["status"], "done", "{r}");
        assert_eq!(r["completion"], ANSWER, "{r}");
        assert_eq!(r["finish_reason"], "stop", "{r}");
    }
    let journal = journal(&server);
    assert_eq!(
        answered(&journal, "POST", "/v1/responses").len(),
        10,
        "{journal:?}"
    );

    // The Batch API without chaos: what is checked here is the lines' `/v1/responses` shape.
    let calm = start(&[]);
    let base = format!("{}/v1", calm.root);
    let batch = run_within(
        promptmill(&dir)
            .args(["run", "p.jsonl", "-o", "batch.jsonl", "--model", "gpt-4.1-mini"])
            .args(["--endpoint", "responses", "--mode", "batch", "--base-url", &base])
            .args(["--poll-interval", "100ms"])
            .env("OPENAI_API_KEY", KEY),
        Duration::from_secs(120),
    );
    assert_eq!(
        batch.code(),
        0,
        "{}\nserver: {}",
        batch.stderr,
        calm.stderr_tail()
    );
    for r in &dir.jsonl("batch.jsonl") {
        assert_eq!(r["status"], "done", "{r}");
        assert_eq!(r["completion"], BATCH_ANSWER, "{r}");
    }
}

/// The embeddings family against aimock's `/v1/embeddings`, which answers JSON floats (it ignores
/// `encoding_format: base64`) from a deterministic function of each input's text, with injected
/// 429s: rows are grouped four to a request and each gets the vector of its own text, the same
/// as when it is sent alone. Then aimock's Batches API, whose embeddings output lines are canned
/// (one vector, at index 0, whatever the line asked): with a row a line every row is done, and
/// with three rows a line only each line's first row is, the others failed for the missing
/// vector, never given another row's.
#[test]
fn the_embeddings_family_runs_live_grouped_and_in_batch_against_aimocks_v1_embeddings() {
    if !available("aimock", missing()) {
        return;
    }
    let server = start(&["--chaos-ratelimit", "0.2"]);
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 10);
    let base = format!("{}/v1", server.root);
    let embed = |out: &str, per_request: &str| {
        run_within(
            promptmill(&dir)
                .args(["run", "p.jsonl", "-o", out, "--model", "text-embedding-3-small"])
                .args(["--endpoint", "embeddings", "--rows-per-request", per_request])
                .args(["--param", "dimensions=8", "--base-url", &base])
                .args(["--max-attempts", "20"])
                .env("OPENAI_API_KEY", KEY),
            Duration::from_secs(120),
        )
    };
    let grouped = embed("grouped.jsonl", "4");
    assert_eq!(
        grouped.code(),
        0,
        "{}\nserver: {}",
        grouped.stderr,
        server.stderr_tail()
    );
    assert_eq!(
        answered(&journal(&server), "POST", "/v1/embeddings").len(),
        3,
        "10 rows, 4 a request"
    );
    let alone = embed("alone.jsonl", "1");
    assert_eq!(
        alone.code(),
        0,
        "{}\nserver: {}",
        alone.stderr,
        server.stderr_tail()
    );
    let (grouped, alone) = (dir.jsonl("grouped.jsonl"), dir.jsonl("alone.jsonl"));
    assert_eq!(grouped.len(), 10);
    for (g, a) in grouped.iter().zip(&alone) {
        assert_eq!(g["status"], "done", "{g}");
        assert_eq!(g["id"], a["id"]);
        let vector = g["embedding"].as_array().expect("a vector");
        assert_eq!(vector.len(), 8, "{g}");
        assert_eq!(
            g["embedding"], a["embedding"],
            "row {} got another row's vector",
            g["id"]
        );
    }
    assert_ne!(
        grouped[0]["embedding"], grouped[1]["embedding"],
        "vectors follow the text"
    );

    let calm = start(&[]);
    let batch = |out: &str, per_line: &str| {
        let base = format!("{}/v1", calm.root);
        run_within(
            promptmill(&dir)
                .args(["run", "p.jsonl", "-o", out, "--model", "text-embedding-3-small"])
                .args(["--endpoint", "embeddings", "--rows-per-request", per_line])
                .args(["--mode", "batch", "--base-url", &base, "--poll-interval", "100ms"])
                .env("OPENAI_API_KEY", KEY),
            Duration::from_secs(120),
        )
    };
    let one = batch("batch1.jsonl", "1");
    assert_eq!(one.code(), 0, "{}\nserver: {}", one.stderr, calm.stderr_tail());
    for r in &dir.jsonl("batch1.jsonl") {
        assert_eq!(r["status"], "done", "{r}");
        assert_eq!(r["embedding"], serde_json::json!([0.0, 0.0, 0.0]), "{r}");
    }
    let three = batch("batch3.jsonl", "3");
    assert_ne!(three.code(), 0, "rows failed, so the run says so");
    let rows = dir.jsonl("batch3.jsonl");
    assert_eq!(rows.len(), 10);
    for (i, r) in rows.iter().enumerate() {
        if i % 3 == 0 {
            assert_eq!(r["status"], "done", "the first row of its line: {r}");
            assert_eq!(r["embedding"], serde_json::json!([0.0, 0.0, 0.0]), "{r}");
        } else {
            assert_eq!(r["status"], "failed", "no vector at its index: {r}");
            assert!(r["embedding"].is_null(), "{r}");
        }
    }
}
