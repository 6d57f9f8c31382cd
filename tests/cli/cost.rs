//! Cost: the dry run (`estimate`, `run --dry-run`), price maps, the `--max-cost` budget, and the
//! `--sample` calibration, through the real binary.

use std::path::Path;

use serde_json::Value;

use crate::util::*;

fn estimate_json(dir: &Dir, args: &[&str]) -> Value {
    let out = run(promptmill(dir).arg("estimate").args(args).arg("--json"));
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

/// 3 × (3 framing + 1 role + content) + 3 priming, content in o200k_base tokens.
#[test]
fn estimate_counts_prompts_exactly_and_prices_them_from_the_table() {
    let dir = Dir::new();
    // "hello world" is 2 tokens in o200k_base; "a b c d" is 4.
    dir.write(
        "p.jsonl",
        "{\"prompt\":\"hello world\"}\n{\"prompt\":\"a b c d\"}\n{\"messages\":[{\"role\":\"system\",\"content\":\"hello world\"},{\"role\":\"user\",\"content\":\"a b c d\"}]}\n",
    );
    let v = estimate_json(
        &dir,
        &[
            "p.jsonl",
            "--model",
            "gpt-4o-mini",
            "--max-tokens",
            "100",
            "--rpm",
            "60",
        ],
    );
    assert_eq!(v["rows"], 3);
    let m = &v["models"][0];
    assert_eq!(m["model"], "gpt-4o-mini");
    assert_eq!(m["exact_tokens"], true);
    assert_eq!(m["encoding"], "o200k_base");
    // Rows: 4+2+3 = 9, 4+4+3 = 11, 4+2 + 4+4 + 3 = 17.
    assert_eq!(m["prompt_tokens"]["total"], 37);
    assert_eq!(m["prompt_tokens"]["p50"], 11);
    assert_eq!(m["prompt_tokens"]["max"], 17);
    assert_eq!(m["completion_tokens"]["max"], 300);
    assert_eq!(m["rows_over_context"], 0);
    // gpt-4o-mini: $0.15 / $0.60 per 1M; the Batch API half.
    let live = v["cost_live"]["max"].as_f64().unwrap();
    assert!((live - (37.0 * 0.15 + 300.0 * 0.6) / 1e6).abs() < 1e-12, "{live}");
    let batch = v["cost_batch"]["max"].as_f64().unwrap();
    assert!((batch - live / 2.0).abs() < 1e-12);
    assert!(m["price_source"]
        .as_str()
        .unwrap()
        .starts_with("built-in table, checked 20"));
    // 3 requests at --rpm 60 take 3 s; at the default concurrency and 2 s each, 2 s.
    assert_eq!(v["timing"]["binding"], "rpm");
    assert_eq!(v["timing"]["seconds"], 3.0);
}

#[test]
fn the_table_shows_what_binds_and_an_unknown_model_has_no_price() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 5);
    let out = run(promptmill(&dir).args(["estimate", "p.jsonl", "--model", "my-local-llama"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("tokenizer unknown: approximated with o200k_base, expect a few % off"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(
            "price       unknown: no price is known for model `my-local-llama`: give --price-in and --price-out"
        ),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("cost        unknown"), "{}", out.stderr);
    // With prices given, the cost is there; run --dry-run is the same estimate.
    let out = run(promptmill(&dir).args([
        "run",
        "p.jsonl",
        "--dry-run",
        "--model",
        "my-local-llama",
        "--max-tokens",
        "10",
        "--price-in",
        "1",
        "--price-out",
        "2",
        "--expect-output-tokens",
        "4",
    ]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("price       $1 in / $2 out per 1M tokens"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("cost live   expected $"), "{}", out.stderr);
    assert!(!dir.exists("out.jsonl.promptmill.db"), "a dry run writes nothing");
}

#[test]
fn invalid_rows_are_listed_and_make_the_dry_run_fail_as_run_would() {
    let dir = Dir::new();
    dir.write(
        "p.jsonl",
        "{\"id\":\"a\",\"prompt\":\"x\"}\n{\"id\":\"a\",\"prompt\":\"y\"}\n",
    );
    let out = run(promptmill(&dir).args(["estimate", "p.jsonl", "--model", "gpt-4o"]));
    assert_eq!(out.code(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("run would refuse the input as it is"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("p.jsonl:2: field `id`: duplicate id `a` (first used on line 1)"),
        "{}",
        out.stderr
    );
    let out = run(promptmill(&dir).args(["estimate", "p.jsonl", "--model", "gpt-4o", "--skip-invalid"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
}

#[test]
fn prompts_over_the_context_window_are_counted() {
    let dir = Dir::new();
    // gpt-4 takes 8,192 tokens; "word " × 9,000 is 9,000 tokens in cl100k_base.
    let long = "word ".repeat(9000);
    dir.write(
        "p.jsonl",
        format!("{{\"prompt\":\"short\"}}\n{{\"prompt\":\"{long}\"}}\n"),
    );
    // run refuses such rows, so the dry run says it would fail (exit 1), with the estimate.
    let out = run(promptmill(&dir).args([
        "estimate",
        "p.jsonl",
        "--model",
        "gpt-4",
        "--max-tokens",
        "5",
        "--json",
    ]));
    assert_eq!(out.code(), 1, "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["models"][0]["rows_over_context"], 1);
    assert_eq!(v["models"][0]["max_input_tokens"], 8192);
    assert_eq!(v["rows_to_send"], 1);
    assert_eq!(v["run_would_refuse"], true);
    let v = estimate_json(
        &dir,
        &[
            "p.jsonl",
            "--model",
            "gpt-4",
            "--max-tokens",
            "5",
            "--skip-invalid",
        ],
    );
    assert_eq!(v["run_would_refuse"], false);
}

/// The real LiteLLM map in `../shared` (absent outside this project's CI and workspace).
#[test]
fn a_litellm_price_map_prices_live_and_batch() {
    let map = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/litellm-prices.json");
    if !map.exists() {
        eprintln!("skipped: {} is absent", map.display());
        return;
    }
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 4);
    let v = estimate_json(
        &dir,
        &[
            "p.jsonl",
            "--model",
            "gpt-4.1-nano",
            "--max-tokens",
            "50",
            "--prices",
            map.to_str().unwrap(),
        ],
    );
    let m = &v["models"][0];
    assert!(m["price_source"]
        .as_str()
        .unwrap()
        .contains("litellm-prices.json"));
    // $1e-7 a token is written 0.09999999999999999 a million (it always was); the test reads
    // numbers exactly now (arbitrary_precision), where it used to round them on the way in.
    let input = m["prices"]["input"].as_f64().unwrap();
    assert!((input - 0.1).abs() < 1e-12, "{input}");
    let live = v["cost_live"]["max"].as_f64().unwrap();
    let batch = v["cost_batch"]["max"].as_f64().unwrap();
    assert!((batch * 2.0 - live).abs() < 1e-12, "{live} {batch}");
    // A model in no table, not even the map, is named.
    let out = run(promptmill(&dir).args([
        "estimate",
        "p.jsonl",
        "--model",
        "no-such-model-anywhere",
        "--prices",
        map.to_str().unwrap(),
    ]));
    assert!(
        out.stderr
            .contains("no price is known for model `no-such-model-anywhere`"),
        "{}",
        out.stderr
    );
}

fn run_budget(dir: &Dir, mock: &Mock, budget: &str) -> Outcome {
    run(promptmill(dir).args([
        "run",
        "p.jsonl",
        "-o",
        "out.jsonl",
        "--model",
        "gpt-4o",
        "--max-tokens",
        "100",
        "--concurrency",
        "1",
        "--max-cost",
        budget,
        "--base-url",
        &mock.url,
    ]))
}

#[test]
fn max_cost_stops_at_the_budget_and_a_larger_budget_finishes_the_job() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 20);
    let mock = Mock::start(&[]);
    // Each request reserves its worst case, ~$0.001 (100 output tokens at $10/1M); each costs
    // ~$0.0001 in fact. $0.002 leaves room for a few rows, never for all 20.
    let out = run_budget(&dir, &mock, "0.002");
    assert_eq!(out.code(), 5, "stderr: {}", out.stderr);
    assert!(
        out.stderr.contains("stopped at the --max-cost budget: $0.00"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--max-cost AMOUNT"), "{}", out.stderr);
    let s = status_json(&dir);
    let done = s["rows"]["done"].as_u64().unwrap();
    assert!(done > 0 && done < 20, "done {done}");
    let spent = s["cost"].as_f64().unwrap();
    assert!(spent > 0.0 && spent <= 0.002, "spent {spent}");
    // Exactly what the usage says, at gpt-4o's $2.50 / $10 per 1M.
    let expected = (s["rows"]["prompt_tokens"].as_f64().unwrap() * 2.5
        + s["rows"]["completion_tokens"].as_f64().unwrap() * 10.0)
        / 1e6;
    assert!((spent - expected).abs() < 1e-12, "{spent} vs {expected}");
    assert_eq!(s["max_cost"], 0.002);
    assert_eq!(
        mock.requests().len() as u64,
        done,
        "nothing was sent beyond the budget"
    );

    // The same budget again sends nothing more: it is the job's budget, not the run's.
    let out = run(promptmill(&dir).args(["resume", "out.jsonl.promptmill.db"]));
    assert_eq!(out.code(), 5, "stderr: {}", out.stderr);
    assert_eq!(mock.requests().len() as u64, done);

    let out = run(promptmill(&dir).args(["resume", "out.jsonl.promptmill.db", "--max-cost", "1"]));
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    assert!(out.stderr.contains("of a $1.00 budget"), "{}", out.stderr);
    assert_eq!(mock.requests().len(), 20, "every row sent once over both runs");
    assert_eq!(dir.jsonl("out.jsonl").len(), 20);
}

#[test]
fn max_cost_without_a_price_is_refused_before_sending() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    let mock = Mock::start(&[]);
    let out = run(run_job(&dir, &mock).args(["--max-cost", "5"]));
    assert_eq!(out.code(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("--max-cost: no price is known for model `m`: give --price-in and --price-out"),
        "{}",
        out.stderr
    );
    assert!(mock.requests().is_empty());
}

#[test]
fn a_calibration_sample_is_not_sent_again_by_the_full_run() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 60);
    let mock = Mock::start(&[]);
    let common = [
        "p.jsonl",
        "-o",
        "out.jsonl",
        "--model",
        "gpt-4o-mini",
        "--max-tokens",
        "50",
        "--base-url",
        &mock.url,
    ];
    let out = run(promptmill(&dir)
        .arg("estimate")
        .args(common)
        .args(["--sample", "20", "--json"]));
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["expectation"]["source"], "a sample of 20 rows");
    let per = v["expectation"]["per_request"].as_f64().unwrap();
    assert!(per > 0.0);
    let (lo, hi) = (
        v["expectation"]["interval"][0].as_f64().unwrap(),
        v["expectation"]["interval"][1].as_f64().unwrap(),
    );
    assert!(lo <= per && per <= hi, "{lo} {per} {hi}");
    assert_eq!(mock.requests().len(), 20, "only the sample was sent");
    assert!(!dir.exists("out.jsonl"), "a sample writes no output");

    // A second calibration of the same size reuses the sample: nothing is sent.
    let out = run(promptmill(&dir)
        .arg("estimate")
        .args(common)
        .args(["--sample", "20"]));
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    assert_eq!(mock.requests().len(), 20);

    let out = run(promptmill(&dir).arg("run").args(common));
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    let counts = requests_per_prompt(&mock.requests());
    assert_eq!(counts.len(), 60);
    assert!(counts.values().all(|&n| n == 1), "no row was sent twice");
    assert_eq!(dir.jsonl("out.jsonl").len(), 60);
}

#[test]
fn run_without_output_says_so_and_a_sample_needs_one() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 2);
    let out = run(promptmill(&dir).args(["run", "p.jsonl", "--model", "m"]));
    assert_eq!(out.code(), 1);
    assert!(out.stderr.contains("--output: is required"), "{}", out.stderr);
    let out = run(promptmill(&dir).args(["estimate", "p.jsonl", "--model", "m", "--sample", "2"]));
    assert_eq!(out.code(), 1);
    assert!(out.stderr.contains("--sample: needs --output"), "{}", out.stderr);
}
