//! Money as the user reads it during and after a run: the `--max-cost` stop message and the
//! summary print one ledger, and a run stops only when the next request cannot fit.

use serde_json::Value;

use crate::pty::on_a_terminal;
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
    let end = rest.find([' ', ',']).unwrap_or(rest.len());
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
        let summary = amount_after(err, "  cost       ");
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

fn cost_line_args(mock: &Mock) -> Vec<String> {
    [
        "run",
        "p.jsonl",
        "-o",
        "out.jsonl",
        "--model",
        "gpt-4o-mini",
        "--max-tokens",
        "120",
        "--base-url",
        &mock.url,
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn a_new_job_prints_its_rows_and_cost_ceiling_before_the_first_request_and_a_resume_does_not() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    let mock = Mock::start(&[]);
    let args = cost_line_args(&mock);
    // Room for the first request's worst case ($0.000074), not for a second beside its cost.
    let out = run(promptmill(&dir).args(&args).args(["--max-cost", "0.00008"]));
    assert_eq!(out.code(), 5, "{}", out.stderr);
    // Each prompt is 14 tokens (o200k_base, with the chat framing): 42 × $0.15/1M = $0.0000063,
    // plus 3 × 120 completion tokens × $0.60/1M = $0.000216: $0.0002223, rounded up.
    assert!(
        out.stderr.contains(
            "promptmill: sending 3 rows to gpt-4o-mini; at most $0.000223 (prompts $0.000006 + up to 120 completion tokens per row)"
        ),
        "{}",
        out.stderr
    );
    let out = run(promptmill(&dir).args(["resume", "out.jsonl.promptmill.db", "--max-cost", "1"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(!out.stderr.contains("promptmill: sending"), "{}", out.stderr);

    // Without a price the line says why there is no ceiling.
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 2);
    let out = run(&mut run_job(&dir, &mock));
    assert!(
        out.stderr.contains(
            "promptmill: sending 2 rows to m; cost unbounded: no price is known for `m` (pass --price-in/--price-out)"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn confirm_is_refused_without_a_terminal_and_nothing_is_read_or_sent() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    let mock = Mock::start(&[]);
    let out = run(promptmill(&dir).args(cost_line_args(&mock)).arg("--confirm"));
    assert_eq!(out.code(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("--confirm: a confirmation needs a terminal on standard input"),
        "{}",
        out.stderr
    );
    assert!(mock.requests().is_empty());
    assert!(!dir.exists("out.jsonl.promptmill.db"));
}

#[test]
fn confirm_on_a_terminal_sends_only_after_yes() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    let mock = Mock::start(&[]);
    let mut args = cost_line_args(&mock);
    args.push("--confirm".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = on_a_terminal(&dir, &args, &[], "n\n");
    assert_eq!(out.code(), 4, "{}", out.stdout);
    assert!(out.stdout.contains("Send? [y/N]"), "{}", out.stdout);
    assert!(out.stdout.contains("promptmill: nothing sent."), "{}", out.stdout);
    assert!(mock.requests().is_empty());
    let out = on_a_terminal(&dir, &args, &[], "y\n");
    assert_eq!(out.code(), 0, "{}", out.stdout);
    assert_eq!(mock.requests().len(), 3);
}

#[test]
fn confirm_asks_only_for_the_rows_the_cache_does_not_answer() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    let mock = Mock::start(&[]);
    let cache = dir.path("shared.cache.db");
    let cache = cache.to_str().expect("utf-8 path");
    let mut args = cost_line_args(&mock);
    args.extend(["--cache".into(), cache.into()]);
    let first: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(promptmill(&dir).args(&first));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(mock.requests().len(), 3);

    // A new job (another output) of the same three prompts and one more: the question prices
    // the one row the cache does not answer, and only it is sent.
    prompts_jsonl(&dir, "p.jsonl", 4);
    let mut args: Vec<&str> = first.clone();
    let out_at = args.iter().position(|a| *a == "out.jsonl").expect("-o");
    args[out_at] = "second.jsonl";
    args.push("--confirm");
    let out = on_a_terminal(&dir, &args, &[], "y\n");
    assert_eq!(out.code(), 0, "{}", out.stdout);
    assert!(
        out.stdout.contains("3 rows answered from the response cache"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("sending 1 row to gpt-4o-mini"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("Send? [y/N]"), "{}", out.stdout);
    assert_eq!(mock.requests().len(), 4);

    // Every row answered: nothing to send, nothing asked.
    args[out_at] = "third.jsonl";
    let out = on_a_terminal(&dir, &args, &[], "");
    assert_eq!(out.code(), 0, "{}", out.stdout);
    assert!(!out.stdout.contains("Send?"), "{}", out.stdout);
    assert_eq!(mock.requests().len(), 4);
    assert_eq!(dir.jsonl("third.jsonl").len(), 4);
}
