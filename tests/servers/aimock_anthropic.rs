//! `--provider anthropic` against aimock's own Anthropic Messages route (`POST /v1/messages`),
//! written by others from Anthropic's API: the bodies promptmill sends are accepted, the answers
//! read (text blocks, `end_turn`), and with aimock's chaos 429s on every row still settles.

use std::time::Duration;

use crate::aimock::{journal, missing, start, ANSWER, KEY};
use crate::support::available;
use crate::util::*;

#[test]
fn anthropic_messages_run_against_aimocks_v1_messages_through_its_chaos_429s() {
    if !available("aimock", missing()) {
        return;
    }
    let server = start(&["--chaos-ratelimit", "0.2"]);
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 12);
    let out = run_within(
        promptmill(&dir)
            .args([
                "run",
                "p.jsonl",
                "-o",
                "out.jsonl",
                "--provider",
                "anthropic",
                "--model",
                "claude-haiku-4-5",
                "--max-tokens",
                "100",
                "--system",
                "Answer in one sentence.",
                "--base-url",
                &server.root,
                "--max-attempts",
                "20",
                "--summary",
                "s.json",
            ])
            .env("ANTHROPIC_API_KEY", KEY),
        Duration::from_secs(300),
    );
    assert_eq!(out.code(), 0, "{}\nserver: {}", out.stderr, server.stderr_tail());
    let rows = dir.jsonl("out.jsonl");
    assert_eq!(rows.len(), 12);
    for r in &rows {
        assert_eq!(r["status"], "done", "{r}");
        assert_eq!(r["completion"], ANSWER, "{r}");
        assert_eq!(r["finish_reason"], "stop", "{r}");
    }
    let journal = journal(&server);
    assert!(!journal.is_empty());
    for entry in &journal {
        assert_eq!(entry["path"], "/v1/messages", "{entry}");
    }
    let ok = journal.iter().filter(|e| e["response"]["status"] == 200).count();
    assert_eq!(ok, 12, "each row answered once");
    let summary: serde_json::Value = serde_json::from_str(&dir.read("s.json")).unwrap();
    assert_eq!(summary["run"]["requests"], journal.len() as u64, "{summary}");
}
