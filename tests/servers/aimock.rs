//! `@copilotkit/aimock` (npm), a mock of many LLM APIs written by others, with its chaos
//! settings on: injected 429s (with `Retry-After`), injected 500s and added latency. The run
//! must settle every row, and its own counts must agree with aimock's request journal.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::{available, here, run_within, Server};
use crate::util::*;

const KEY: &str = "aimock-test-key-51c2";
const ROWS: usize = 30;
/// The fixture's answer to every "Say something about item N." prompt.
const ANSWER: &str = "Every item deserves a sentence.";

fn cli() -> PathBuf {
    here().join("node_modules/@copilotkit/aimock/dist/cli.js")
}

fn missing() -> Option<String> {
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
fn start(chaos: &[&str]) -> Server {
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
fn journal(server: &Server) -> Vec<Value> {
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
