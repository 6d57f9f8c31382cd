//! Checkpoints written by earlier versions of promptmill still open and resume. The fixtures in
//! `tests/data/checkpoints/` were made by the released code of their schema version (how: that
//! folder's README.md) and are never regenerated: a redesign that stops reading them fails here.

use std::collections::HashMap;
use std::path::Path;

use crate::util::*;

/// Copies fixture `name` (the database and its `-wal`, as a killed run left them) into `dir`
/// as `job.db`.
fn copy_fixture(dir: &Dir, name: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/checkpoints");
    for suffix in ["", "-wal"] {
        let from = src.join(format!("{name}.db{suffix}"));
        if from.exists() {
            std::fs::copy(&from, dir.path(&format!("job.db{suffix}"))).expect("copy fixture");
        }
    }
}

/// Schema 8, made by main at 2280cd9: 8 rows, SIGKILLed with r1 and r2 done, r3 failed (a 400),
/// r4 on the wire and r5..r8 claimed.
#[test]
fn a_checkpoint_killed_under_schema_8_resumes_and_sends_only_the_unfinished_rows() {
    resumes_sending_only_the_unfinished_rows("v8-killed");
}

/// Schema 10 with a job record of version 1 (no `version` field), made by main at 41168c5 the
/// same way: r1 and r2 done, r3 failed (a 400), r4 on the wire, r5..r8 pending. Its `attempts`
/// table (the run report's data) holds the three answered requests.
#[test]
fn a_checkpoint_killed_under_schema_10_resumes_and_sends_only_the_unfinished_rows() {
    resumes_sending_only_the_unfinished_rows("v10-killed");
}

#[test]
fn a_schema_10_checkpoints_report_shows_the_attempts_it_recorded() {
    let dir = Dir::new();
    copy_fixture(&dir, "v10-killed");
    let out = run(promptmill(&dir).args(["report", "job.db", "-o", "report.html"]));
    assert_eq!(out.code(), 0, "stdout: {}\nstderr: {}", out.stdout, out.stderr);
    let page = std::fs::read_to_string(dir.path("report.html")).expect("report written");
    assert!(
        page.contains("\"attempts_recorded\":3"),
        "three attempts in the numbers"
    );
}

/// Resumes fixture `name` (8 rows: r1, r2 done, r3 failed by a 400, r4..r8 unfinished) against
/// a fresh mock and checks that only r4..r8 are sent, once each, and the output is whole.
fn resumes_sending_only_the_unfinished_rows(name: &str) {
    let dir = Dir::new();
    copy_fixture(&dir, name);
    let before = status_json_of(&dir, "job.db");
    assert_eq!(before["rows"]["total"], 8, "{before}");
    assert_eq!(before["rows"]["done"], 2, "{before}");
    assert_eq!(before["rows"]["failed"], 1, "{before}");

    let mock = Mock::start(&[]);
    let out = run(promptmill(&dir).env("OPENAI_API_KEY", "sk-fixture").args([
        "resume",
        "job.db",
        "-o",
        "resumed.jsonl",
        "--base-url",
        &mock.url,
    ]));
    // r3 stays failed (not retried without --retry-failed): exit 3, "some rows failed".
    assert_eq!(out.code(), 3, "stdout: {}\nstderr: {}", out.stdout, out.stderr);

    let sent = requests_per_prompt(&mock.requests());
    let mut expected = HashMap::new();
    for i in 4..=8 {
        expected.insert(format!("Row {i}: say something about the number {i}"), 1);
    }
    assert_eq!(sent, expected, "only r4..r8 are sent, once each");

    let rows = dir.jsonl("resumed.jsonl");
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap_or("?")).collect();
    assert_eq!(ids, ["r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8"]);
    let status: Vec<&str> = rows.iter().map(|r| r["status"].as_str().unwrap_or("?")).collect();
    assert_eq!(
        status,
        ["done", "done", "failed", "done", "done", "done", "done", "done"]
    );
    // The mock answers with the model it was asked for: the recorded model was sent.
    for r in rows.iter().filter(|r| r["status"] == "done") {
        assert_eq!(r["model"], "gpt-4o-mini", "{r}");
    }
    // The rows finished before the kill keep the answers recorded then.
    for r in &rows[..2] {
        let text = r["completion"].as_str().unwrap_or("");
        assert!(!text.is_empty(), "{r}");
    }

    let after = status_json_of(&dir, "job.db");
    assert_eq!(after["rows"]["done"], 7, "{after}");
    assert_eq!(after["rows"]["failed"], 1, "{after}");
    assert_eq!(after["rows"]["pending"], 0, "{after}");
}
