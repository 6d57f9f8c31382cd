//! A server that fails about one request in five, every way it can, at random: 10 % 429 with
//! Retry-After, 5 % 500/502/503, 2 % hangs longer than --timeout, 1 % connection resets, 1 % a
//! 200 whose body is cut in half. Every row ends done or failed with its reason, none is lost
//! or left in flight, and the checkpoint accounts for every request the server saw.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use serde_json::Value;

use crate::util::*;

const ROWS: usize = 1000;
const MAX_ATTEMPTS: u64 = 3;

/// The kind of the last error a failed row gave up on, for the tally.
fn reason_kind(error: &str) -> &'static str {
    let last = error.split_once("; last: ").map_or("", |(_, last)| last);
    for (prefix, kind) in [
        ("HTTP 429: ", "429"),
        ("HTTP 500: ", "500"),
        ("HTTP 502: ", "502"),
        ("HTTP 503: ", "503"),
        ("HTTP 200 with an unexpected body: ", "malformed 200"),
        ("timed out after 1s", "timeout"),
        ("request failed: ", "reset"),
        ("connection failed: ", "reset"),
    ] {
        if last.starts_with(prefix) {
            return kind;
        }
    }
    panic!("a failed row's reason is not one of the injected faults: {error}")
}

#[test]
fn a_thousand_rows_through_a_fault_mix_all_settle_with_reasons_and_every_retry_on_record() {
    let started = Instant::now();
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", ROWS);
    let mock = Mock::start(&[
        "--seed",
        "11",
        "--latency",
        "5ms",
        "--latency-jitter",
        "20ms",
        "--rate-429",
        "0.10",
        "--retry-after",
        "0.2",
        "--rate-500",
        "0.05",
        "--rate-hang",
        "0.02",
        "--rate-reset",
        "0.01",
        "--rate-malformed",
        "0.01",
    ]);
    let out = run(run_job(&dir, &mock).args([
        "--concurrency",
        "32",
        "--timeout",
        "1s",
        "--max-attempts",
        &MAX_ATTEMPTS.to_string(),
        "--summary",
        "s.json",
    ]));
    let elapsed = started.elapsed();

    // None lost: one output row per input row, each done or failed with its reason.
    let rows = dir.jsonl("out.jsonl");
    assert_eq!(rows.len(), ROWS);
    let ids: HashSet<&str> = rows.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids.len(), ROWS, "no row is missing or written twice");
    let mut reasons: BTreeMap<&str, u64> = BTreeMap::new();
    let mut failed = 0;
    for row in &rows {
        match row["status"].as_str() {
            Some("done") => {
                assert!(row["error"].is_null(), "{row}");
                assert!(
                    row["completion"]
                        .as_str()
                        .is_some_and(|c| c.starts_with("Mock reply: ")),
                    "{row}"
                );
            }
            Some("failed") => {
                failed += 1;
                let error = row["error"].as_str().unwrap_or_default();
                assert!(
                    error.starts_with(&format!("gave up after {MAX_ATTEMPTS} attempts; last: ")),
                    "{row}"
                );
                *reasons.entry(reason_kind(error)).or_default() += 1;
            }
            _ => panic!("a row neither done nor failed: {row}"),
        }
    }
    assert_eq!(out.code(), if failed > 0 { 3 } else { 0 }, "{}", out.stderr);

    // None in flight or pending, and every request the server saw is on record.
    let status = run(promptmill(&dir).args(["status", "out.jsonl.promptmill.db", "--json"]));
    assert_eq!(status.code(), 0, "{}", status.stderr);
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    let counts = &status["rows"];
    assert_eq!(counts["in_flight"], 0);
    assert_eq!(counts["pending"], 0);
    assert_eq!(
        counts["done"].as_u64().unwrap() + counts["failed"].as_u64().unwrap(),
        ROWS as u64
    );
    assert_eq!(counts["failed"], failed);

    let stats = mock.stats();
    let arrived = stats["requests"].as_u64().unwrap();
    let retries = arrived - ROWS as u64;
    assert!(retries > 0, "the faults caused retries");
    assert_eq!(
        counts["attempts"], arrived,
        "every request the server saw is counted"
    );
    assert_eq!(status["retries"], retries, "status shows every retry");
    let summary: Value = serde_json::from_str(&dir.read("s.json")).unwrap();
    assert_eq!(summary["run"]["retries"], retries);
    let by_status = &stats["by_status"];
    assert_eq!(
        summary["run"]["http_429"], by_status["429"],
        "every 429 the server sent was counted"
    );
    for code in ["500", "502", "503"] {
        assert!(
            by_status[code].as_u64() > Some(0),
            "the server sent {code}s: {by_status}"
        );
    }
    let top_errors = status["top_errors"].as_array().unwrap();
    assert_eq!(top_errors.is_empty(), failed == 0, "status lists the failures");
    assert!(top_errors
        .iter()
        .all(|e| e["error"].as_str().unwrap().starts_with("gave up after")));
    let table = run(promptmill(&dir).args(["status", "out.jsonl.promptmill.db"]));
    assert!(
        table
            .stdout
            .contains(&format!("retries     {retries} (in 1 run)")),
        "{}",
        table.stdout
    );

    let outcomes = &stats["by_outcome"];
    eprintln!(
        "fault mix: {ROWS} rows, --concurrency 32, --timeout 1s, --max-attempts {MAX_ATTEMPTS}; \
         server saw {arrived} requests ({} 429, {} 5xx, {} hangs, {} resets, {} malformed, {} ok); \
         {retries} retries; {} done, {failed} failed (last errors: {reasons:?}); {elapsed:.1?}",
        outcomes["429"],
        outcomes["500"],
        outcomes["hang"],
        outcomes["reset"],
        outcomes["malformed"],
        outcomes["ok"],
        counts["done"],
    );
}
