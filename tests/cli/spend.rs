//! Money as the user reads it during and after a run: the `--max-cost` stop message and the
//! summary print one ledger, and a run stops only when the next request cannot fit.

use serde_json::Value;

use crate::util::*;

/// 60 rows to gpt-4o-mini ($0.15 / $0.60 per 1M) with 100 completion tokens at most: each
/// request's worst case is about $0.00006 and each costs about $0.00001.
fn budget_run(dir: &Dir, mock: &Mock, concurrency: &str) -> Outcome {
    run(promptmill(dir).args([
        "run",
        "p.jsonl",
        "-o",
        "out.jsonl",
        "--model",
        "gpt-4o-mini",
        "--max-tokens",
        "100",
        "--concurrency",
        concurrency,
        "--max-cost",
        "0.0003",
        "--summary",
        "summary.json",
        "--base-url",
        &mock.url,
    ]))
}

/// The amount after `before` in `text`, e.g. "$0.000243".
fn amount_after<'a>(text: &'a str, before: &str) -> &'a str {
    let at = text
        .find(before)
        .unwrap_or_else(|| panic!("no {before:?} in {text}"))
        + before.len();
    let rest = &text[at..];
    let end = rest.find(|c: char| c == ' ' || c == ',').unwrap_or(rest.len());
    &rest[..end]
}

fn dollars(s: &str) -> f64 {
    s.trim_start_matches('$')
        .parse()
        .unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn a_budget_stop_prints_the_summarys_amount_and_uses_the_budget_to_within_one_request() {
    for concurrency in ["8", "2"] {
        let dir = Dir::new();
        prompts_jsonl(&dir, "p.jsonl", 60);
        let mock = Mock::start(&["--latency", "20ms"]);
        let out = budget_run(&dir, &mock, concurrency);
        assert_eq!(out.code(), 5, "stderr: {}", out.stderr);
        let err = &out.stderr;
        // The summary line and the stop message name the same amount.
        let summary = amount_after(err, "   cost ");
        let stop = amount_after(err, "stopped at the --max-cost budget: ");
        assert_eq!(summary, stop, "{err}");
        let s: Value = serde_json::from_str(&dir.read("summary.json")).unwrap();
        let job = s["cost"]["job"].as_f64().unwrap();
        let this_run = s["cost"]["run"].as_f64().unwrap();
        assert!((job - dollars(stop)).abs() < 1e-6, "{job} vs {stop}");
        assert!(this_run <= job + 1e-12, "this run {this_run} > the job's {job}");
        // Stopped because the next request's worst case did not fit what was left.
        let needed = dollars(amount_after(err, "the next request may cost up to "));
        let left = dollars(amount_after(err, "more than the "));
        assert!(needed > left, "{err}");
        assert!(job <= 0.0003, "over the budget: {job}");
        assert!(
            0.0003 - job < needed + 1e-6,
            "stopped with {job} of 0.0003 spent: {err}"
        );
        assert!(
            s["rows"]["done"].as_u64().unwrap() >= 20,
            "most of the budget is used: {err}"
        );
    }
}
