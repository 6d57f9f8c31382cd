//! Cost that matches the bill: the mock reports cached, cache-writing and reasoning tokens
//! (`[[mock:cached=N:reasoning=N:prompt-tokens=N]]`), and the job's cost, worked out here by
//! hand from the price table, is the same to a thousandth of a cent in the summary, in
//! `status --json`, and in the output's `cost` (JSONL and CSV) — live, through the Batch API,
//! and above a long-context tier of a `--prices` map.

use serde_json::Value;

use crate::util::*;

/// A thousandth of a cent.
const TOLERANCE: f64 = 1e-5;

/// Three rows whose usage the mock reports as written; `--max-tokens 5` makes every visible
/// completion 5 tokens (the mock's reply has more words than that), to which the reasoning
/// tokens are added.
const ROWS: &str = r#"{"id":"a","prompt":"[[mock:prompt-tokens=2000:cached=1500:reasoning=300]] one two three"}
{"id":"b","prompt":"[[mock:prompt-tokens=1000:cached=0]] one two three"}
{"id":"c","prompt":"[[mock:prompt-tokens=400]] one two three"}
"#;

/// The bill for [`ROWS`] at gpt-4o-mini's list prices per 1M tokens: $0.15 input, $0.075
/// cached input, $0.60 output; the Batch API's are half of each.
struct Bill {
    input: f64,
    cached_input: f64,
    output: f64,
    reasoning: f64,
    rows: [f64; 3],
}

fn bill(discount: f64) -> Bill {
    let (input, cached, output) = (
        0.15 * discount / 1e6,
        0.075 * discount / 1e6,
        0.6 * discount / 1e6,
    );
    // a: 500 uncached + 1,500 cached prompt tokens, 5 + 300 completion tokens (300 reasoning).
    // b: 1,000 uncached, 5 out. c: 400 uncached, 5 out.
    let rows = [
        500.0 * input + 1500.0 * cached + 305.0 * output,
        1000.0 * input + 5.0 * output,
        400.0 * input + 5.0 * output,
    ];
    Bill {
        input: 1900.0 * input,
        cached_input: 1500.0 * cached,
        output: 315.0 * output,
        reasoning: 300.0 * output,
        rows,
    }
}

fn near(what: &str, got: &Value, want: f64) {
    let got = got
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: {got} is not a number"));
    assert!((got - want).abs() < TOLERANCE, "{what}: {got} vs {want} by hand");
}

/// The same bill in the summary, `status --json` and the outputs of the job in `dir`.
fn assert_billed(dir: &Dir, want: &Bill) {
    let total: f64 = want.rows.iter().sum();
    let s: Value = serde_json::from_str(&dir.read("summary.json")).unwrap();
    near("summary job", &s["cost"]["job"], total);
    near("summary input", &s["cost"]["split"]["input"], want.input);
    near(
        "summary cached",
        &s["cost"]["split"]["cached_input"],
        want.cached_input,
    );
    near("summary output", &s["cost"]["split"]["output"], want.output);
    near(
        "summary reasoning",
        &s["cost"]["split"]["reasoning"],
        want.reasoning,
    );
    let out = run(promptmill(dir).args(["status", "out.jsonl.promptmill.db", "--json"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let st: Value = serde_json::from_str(&out.stdout).unwrap();
    near("status cost", &st["cost"], total);
    near("status input", &st["cost_split"]["input"], want.input);
    near(
        "status cached",
        &st["cost_split"]["cached_input"],
        want.cached_input,
    );
    near("status output", &st["cost_split"]["output"], want.output);
    near("status reasoning", &st["cost_split"]["reasoning"], want.reasoning);
    let lines = dir.jsonl("out.jsonl");
    for (line, cost) in lines.iter().zip(want.rows) {
        near(&format!("row {}", line["id"]), &line["cost"], cost);
    }
    assert_eq!(lines[0]["usage"]["cached_tokens"], 1500);
    assert_eq!(lines[0]["usage"]["reasoning_tokens"], 300);
    assert_eq!(lines[0]["usage"]["completion_tokens"], 305);
    assert_eq!(lines[1]["usage"]["cached_tokens"], 0);
    assert!(
        lines[2]["usage"].get("cached_tokens").is_none(),
        "not reported: absent"
    );
    let export = run(promptmill(dir).args(["export", "out.jsonl.promptmill.db", "-o", "out.csv"]));
    assert_eq!(export.code(), 0, "{}", export.stderr);
    let mut csv = csv::Reader::from_path(dir.path("out.csv")).unwrap();
    let header = csv.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let records: Vec<csv::StringRecord> = csv.records().map(|r| r.unwrap()).collect();
    for (r, cost) in records.iter().zip(want.rows) {
        let got: f64 = r[col("cost")].parse().unwrap();
        assert!((got - cost).abs() < TOLERANCE, "csv cost {got} vs {cost}");
    }
    assert_eq!(&records[0][col("cached_tokens")], "1500");
    assert_eq!(&records[0][col("reasoning_tokens")], "300");
    assert_eq!(&records[2][col("cached_tokens")], "", "not reported: empty");
}

fn cost_job(dir: &Dir, mock: &Mock) -> std::process::Command {
    let mut cmd = promptmill(dir);
    cmd.args([
        "run",
        "p.jsonl",
        "-o",
        "out.jsonl",
        "--model",
        "gpt-4o-mini",
        "--max-tokens",
        "5",
        "--summary",
        "summary.json",
        "--base-url",
        &mock.url,
    ]);
    cmd
}

#[test]
fn cached_and_reasoning_tokens_are_billed_as_the_price_table_says() {
    let dir = Dir::new();
    dir.write("p.jsonl", ROWS);
    let mock = Mock::start(&[]);
    let out = run(&mut cost_job(&dir, &mock));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_billed(&dir, &bill(1.0));
    // The table says where the money went.
    assert!(
        out.stderr.contains("input $0.000285, cached input $0.000112"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("(reasoning $0.000180)"), "{}", out.stderr);
    let status = run(promptmill(&dir).args(["status", "out.jsonl.promptmill.db"]));
    assert!(
        status.stdout.contains("input $0.000285, cached input $0.000112"),
        "{}",
        status.stdout
    );
}

#[test]
fn batch_rows_are_billed_at_the_batch_prices() {
    let dir = Dir::new();
    dir.write("p.jsonl", ROWS);
    let mock = Mock::start(&[]);
    let out = run(cost_job(&dir, &mock).args(["--mode", "batch", "--poll-interval", "20ms"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_billed(&dir, &bill(0.5));
}

#[test]
fn a_prompt_above_a_long_context_tier_pays_the_tiers_prices() {
    let dir = Dir::new();
    // Dollars per token, as LiteLLM writes them: $1 / $0.50 cached / $2 per 1M, and twice
    // that for prompts over 200,000 tokens.
    dir.write(
        "prices.json",
        r#"{"long-model": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6,
            "cache_read_input_token_cost": 5e-7,
            "input_cost_per_token_above_200k_tokens": 2e-6,
            "output_cost_per_token_above_200k_tokens": 4e-6,
            "cache_read_input_token_cost_above_200k_tokens": 1e-6}}"#,
    );
    dir.write(
        "p.jsonl",
        r#"{"id":"long","prompt":"[[mock:prompt-tokens=250000:cached=50000]] one two three"}
{"id":"short","prompt":"[[mock:prompt-tokens=150000]] one two three"}
"#,
    );
    let mock = Mock::start(&[]);
    let out = run(promptmill(&dir).args([
        "run",
        "p.jsonl",
        "-o",
        "out.jsonl",
        "--model",
        "long-model",
        "--prices",
        "prices.json",
        "--max-tokens",
        "5",
        "--summary",
        "summary.json",
        "--base-url",
        &mock.url,
    ]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    // long: 200,000 uncached × $2 + 50,000 cached × $1 + 5 out × $4 (per 1M): the tier's.
    // short: 150,000 × $1 + 5 × $2: the base prices.
    let long = (200_000.0 * 2.0 + 50_000.0 * 1.0 + 5.0 * 4.0) / 1e6;
    let short = (150_000.0 * 1.0 + 5.0 * 2.0) / 1e6;
    let lines = dir.jsonl("out.jsonl");
    near("long row", &lines[0]["cost"], long);
    near("short row", &lines[1]["cost"], short);
    let s: Value = serde_json::from_str(&dir.read("summary.json")).unwrap();
    near("summary job", &s["cost"]["job"], long + short);
    near("summary cached", &s["cost"]["split"]["cached_input"], 0.05);
    let st = run(promptmill(&dir).args(["status", "out.jsonl.promptmill.db", "--json"]));
    let st: Value = serde_json::from_str(&st.stdout).unwrap();
    near("status cost", &st["cost"], long + short);
    near("status input", &st["cost_split"]["input"], 0.4 + 0.15);
}
