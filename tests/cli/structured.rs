//! Structured output (issue 14) end to end: `--schema` / `--fields` sent the way each family
//! asks, every answer validated here, the outcomes (valid, invalid, truncated, refused) in the
//! output, the summary and `status`; invalid and cut answers asked again and paid for, live and
//! as a follow-up batch of only those rows; `--schema-repair`; the flags' errors.

use serde_json::{json, Value};

use crate::util::*;

const FIELDS: &str = "title, bullets: list[str], price: number";

/// 100 rows `r1..r100`: every 10th answers schema-breaking JSON once, every 20th (offset 5)
/// a cut answer once, r7 invalid JSON always, r13 a refusal.
fn mixed_rows(dir: &Dir) {
    let mut text = String::new();
    for i in 1..=100 {
        let directive = match i {
            7 => "[[mock:reply=invalid-json]] ",
            13 => "[[mock:reply=refusal]] ",
            _ if i % 10 == 0 => "[[mock:fail-times=1:reply=schema-break]] ",
            _ if i % 20 == 5 => "[[mock:fail-times=1:reply=cut]] ",
            _ => "",
        };
        text.push_str(&json!({"id": format!("r{i}"), "product": format!("{directive}item {i}")}).to_string());
        text.push('\n');
    }
    dir.write("p.jsonl", text);
}

/// `promptmill run p.jsonl -o OUT --model gpt-4o-mini --fields … --base-url MOCK` and `extra`.
fn schema_job(dir: &Dir, mock: &Mock, out: &str, extra: &[&str]) -> std::process::Command {
    let mut cmd = promptmill(dir);
    cmd.args([
        "run",
        "p.jsonl",
        "-o",
        out,
        "--model",
        "gpt-4o-mini",
        "--base-url",
        &mock.url,
    ])
    .args(["--template", "Describe {product}", "--fields", FIELDS])
    .args(extra);
    cmd
}

fn ok(outcome: &Outcome) {
    assert!(
        matches!(outcome.code(), 0 | 3),
        "code {}\nstdout: {}\nstderr: {}",
        outcome.code(),
        outcome.stdout,
        outcome.stderr
    );
}

/// The rows of `out.jsonl` by id.
fn by_id(dir: &Dir, name: &str) -> std::collections::HashMap<String, Value> {
    dir.jsonl(name)
        .into_iter()
        .map(|r| (r["id"].as_str().expect("id").to_string(), r))
        .collect()
}

#[test]
fn every_row_ends_valid_or_failed_with_its_errors_and_re_asks_are_paid_and_counted() {
    let dir = Dir::new();
    mixed_rows(&dir);
    let mock = Mock::start(&[]);
    let out = run(&mut schema_job(
        &dir,
        &mock,
        "out.jsonl",
        &["--summary", "s.json"],
    ));
    ok(&out);
    let rows = by_id(&dir, "out.jsonl");
    assert_eq!(rows.len(), 100);
    for (id, r) in &rows {
        match r["schema"].as_str() {
            Some("valid") => {
                assert_eq!(r["status"], "done", "{id}");
                let data = &r["data"];
                assert!(
                    data["title"].is_string() && data["price"].is_number(),
                    "{id}: {data}"
                );
                assert!(data["bullets"].is_array(), "{id}: {data}");
            }
            Some(_) => {
                assert_eq!(r["status"], "failed", "{id}");
                assert!(r["error"].as_str().is_some_and(|e| !e.is_empty()), "{id}");
                assert!(r["data"].is_null(), "{id}");
            }
            None => panic!("{id} has no outcome: {r}"),
        }
    }
    // Asked again and then valid: the schema-breaking and the cut rows.
    for id in ["r10", "r20", "r5", "r25"] {
        assert_eq!(rows[id]["schema"], "valid", "{id}: {}", rows[id]);
        // Two answers paid for: the row's usage is both answers'.
        let usage = rows[id]["usage"]["completion_tokens"].as_i64().unwrap();
        let single = rows["r1"]["usage"]["completion_tokens"].as_i64().unwrap();
        assert!(usage > single, "{id}: {usage} vs {single}");
    }
    // Invalid JSON every time: asked 1 + 2 times, then failed with the parser's error.
    let r7 = &rows["r7"];
    assert_eq!(r7["schema"], "invalid");
    let error = r7["error"].as_str().unwrap();
    assert!(
        error.starts_with("invalid: not JSON") && error.contains("after 2 re-asks"),
        "{error}"
    );
    assert!(
        r7["cost"].as_f64().unwrap() > 0.0,
        "a rejected row's answers were paid for"
    );
    // A refusal is distinct and not asked again.
    assert_eq!(rows["r13"]["schema"], "refused");
    assert!(rows["r13"]["error"].as_str().unwrap().starts_with("refused: "));
    let sent = requests_per_prompt(&mock.requests());
    let asked = |id: &str| {
        let product = dir
            .read("p.jsonl")
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|r| r["id"] == id)
            .unwrap()["product"]
            .as_str()
            .unwrap()
            .to_string();
        sent[&format!("Describe {product}")]
    };
    assert_eq!(
        (asked("r7"), asked("r13"), asked("r10"), asked("r5"), asked("r1")),
        (3, 1, 2, 2, 1)
    );

    // 10 schema-breaking + 5 cut once, 2 more for r7: 117 requests; all in the totals.
    let s: Value = serde_json::from_str(&dir.read("s.json")).unwrap();
    assert_eq!(s["run"]["requests"], 117, "{s}");
    assert_eq!(s["schema"]["valid"], 98);
    assert_eq!(s["schema"]["invalid"], 1);
    assert_eq!(s["schema"]["refused"], 1);
    assert_eq!(s["schema"]["run_reasked"], 17);
    let tokens: i64 = rows
        .values()
        .map(|r| r["usage"]["total_tokens"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(
        s["tokens"]["total"].as_i64().unwrap(),
        tokens,
        "the totals hold every paid answer"
    );
    let cost: f64 = rows.values().map(|r| r["cost"].as_f64().unwrap_or(0.0)).sum();
    let job = s["cost"]["job"].as_f64().unwrap();
    assert!(
        (job - cost).abs() < 1e-9,
        "the bill ({job}) is the rows' costs ({cost})"
    );
    assert!(
        out.stderr
            .contains("schema     98 valid, 1 invalid, 0 truncated, 1 refused"),
        "{}",
        out.stderr
    );

    let status = run(promptmill(&dir).args(["status", "out.jsonl.promptmill.db"]));
    assert!(
        status
            .stdout
            .contains("schema    98 valid, 1 invalid, 0 truncated, 1 refused"),
        "{}",
        status.stdout
    );
}

#[test]
fn csv_has_the_outcome_and_a_column_per_property_in_schema_order() {
    let dir = Dir::new();
    mixed_rows(&dir);
    let mock = Mock::start(&[]);
    ok(&run(&mut schema_job(&dir, &mock, "out.csv", &[])));
    let mut reader = csv::Reader::from_path(dir.path("out.csv")).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert!(
        header.ends_with(&["schema", "data.title", "data.bullets", "data.price"].map(String::from)),
        "{header:?}"
    );
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    for record in reader.records() {
        let record = record.unwrap();
        match &record[col("schema")] {
            "valid" => {
                assert!(!record[col("data.title")].is_empty());
                let bullets: Value = serde_json::from_str(&record[col("data.bullets")]).unwrap();
                assert!(bullets.is_array(), "arrays are JSON text");
                record[col("data.price")].parse::<f64>().expect("a number");
            }
            other => {
                assert!(["invalid", "refused"].contains(&other), "{other}");
                assert_eq!(&record[col("data.title")], "");
            }
        }
    }
}

#[test]
fn batch_mode_validates_when_collecting_and_sends_only_the_bad_rows_again() {
    let dir = Dir::new();
    mixed_rows(&dir);
    let mock = Mock::start(&[]);
    let out = run(&mut schema_job(
        &dir,
        &mock,
        "out.jsonl",
        &["--mode", "batch", "--poll-interval", "20ms"],
    ));
    ok(&out);
    let v = mock.get_json("/mock/batches");
    let batches = v["batches"].as_array().unwrap();
    let ids = |b: &Value| -> Vec<String> {
        b["custom_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(batches.len(), 3, "the batch, a follow-up, and r7's last re-ask");
    assert_eq!(ids(&batches[0]).len(), 100);
    let mut second = ids(&batches[1]);
    second.sort();
    let mut want: Vec<String> = (1..=100)
        .filter(|i| *i == 7 || i % 10 == 0 || i % 20 == 5)
        .map(|i| format!("r{i}"))
        .collect();
    want.sort();
    assert_eq!(
        second, want,
        "only the invalid and cut rows go again; never the refusal"
    );
    assert_eq!(ids(&batches[2]), ["r7"]);
    let rows = by_id(&dir, "out.jsonl");
    assert_eq!(rows["r10"]["schema"], "valid");
    assert_eq!(rows["r7"]["schema"], "invalid");
    assert!(rows["r7"]["error"]
        .as_str()
        .unwrap()
        .contains("after 2 follow-up batches"));
    assert_eq!(rows["r13"]["schema"], "refused");
    assert!(
        out.stderr.contains("their rows go into a follow-up batch"),
        "{}",
        out.stderr
    );
}

#[test]
fn repair_sends_the_bad_answer_and_its_errors_back() {
    let dir = Dir::new();
    dir.write(
        "p.jsonl",
        "{\"id\":\"a\",\"product\":\"[[mock:reply=schema-break]] lamp\"}\n",
    );
    let mock = Mock::start(&[]);
    ok(&run(&mut schema_job(
        &dir,
        &mock,
        "out.jsonl",
        &["--schema-repair"],
    )));
    let prompts: Vec<String> = mock
        .requests()
        .iter()
        .filter_map(|r| r["prompt"].as_str().map(String::from))
        .collect();
    assert_eq!(prompts.len(), 2, "{prompts:?}");
    assert!(
        prompts[1].starts_with("Your answer did not fit the required JSON Schema"),
        "{prompts:?}"
    );
    assert!(
        prompts[1].contains("/price: "),
        "the validator's path is in it: {prompts:?}"
    );
    // The repair ended the directive's effect (it is no longer the last user message): valid.
    assert_eq!(dir.jsonl("out.jsonl")[0]["schema"], "valid");
}

#[test]
fn the_responses_api_and_anthropic_get_their_own_structured_output_fields() {
    let dir = Dir::new();
    dir.write("p.jsonl", "{\"id\":\"a\",\"product\":\"mug\"}\n");
    dir.write("s.json", r#"{"type":"object","properties":{"name":{"type":"string"},"n":{"type":"integer"}},"required":["name","n"],"additionalProperties":false}"#);
    let mock = Mock::start(&[]);
    let responses = run(promptmill(&dir)
        .args([
            "run",
            "p.jsonl",
            "-o",
            "r.jsonl",
            "--model",
            "gpt-4o-mini",
            "--base-url",
            &mock.url,
        ])
        .args([
            "--template",
            "Describe {product}",
            "--endpoint",
            "responses",
            "--schema",
            "s.json",
        ]));
    ok(&responses);
    let r = &dir.jsonl("r.jsonl")[0];
    assert_eq!(r["schema"], "valid", "{r}");
    assert!(r["data"]["n"].is_i64(), "{r}");

    let anthropic = run(promptmill(&dir)
        .args([
            "run",
            "p.jsonl",
            "-o",
            "a.jsonl",
            "--provider",
            "anthropic",
            "--model",
            "claude-haiku-4-5",
        ])
        .args([
            "--max-tokens",
            "256",
            "--template",
            "Describe {product}",
            "--schema",
            "s.json",
        ])
        .env("ANTHROPIC_API_KEY", "k")
        .env("ANTHROPIC_BASE_URL", mock.url.trim_end_matches("/v1")));
    ok(&anthropic);
    let a = &dir.jsonl("a.jsonl")[0];
    assert_eq!(a["schema"], "valid", "{a}");
    assert!(a["data"]["name"].is_string(), "{a}");
}

#[test]
fn schema_flags_are_checked_before_anything_is_sent() {
    let dir = Dir::new();
    dir.write("p.jsonl", "{\"id\":\"a\",\"prompt\":\"x\"}\n");
    dir.write("bad.json", "{\n  \"type\": \"object\",\n  nope\n}\n");
    let mock = Mock::start(&[]);
    let cases: [(&[&str], &str); 5] = [
        (&["--schema", "bad.json"], "bad.json:3:"),
        (&["--schema", "{\"type\":\"string\"}"], "root"),
        (&["--fields", "a: money"], "`money` is no type"),
        (
            &["--fields", "a", "--endpoint", "embeddings"],
            "no structured output",
        ),
        (
            &[
                "--fields",
                "a",
                "--param",
                "response_format={\"type\":\"json_object\"}",
            ],
            "`response_format` is set by --fields",
        ),
    ];
    for (args, wants) in cases {
        let out = run(run_job(&dir, &mock).args(args));
        assert_eq!(out.code(), 1, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(wants), "{args:?}: {}", out.stderr);
    }
    assert!(mock.requests().is_empty());
}

#[test]
fn a_changed_schema_is_a_changed_job() {
    let dir = Dir::new();
    dir.write("p.jsonl", "{\"id\":\"a\",\"product\":\"mug\"}\n");
    let mock = Mock::start(&[]);
    ok(&run(&mut schema_job(&dir, &mock, "out.jsonl", &[])));
    let mut changed = promptmill(&dir);
    changed
        .args([
            "run",
            "p.jsonl",
            "-o",
            "out.jsonl",
            "--model",
            "gpt-4o-mini",
            "--base-url",
            &mock.url,
        ])
        .args(["--template", "Describe {product}", "--fields", "title"]);
    let out = run(&mut changed);
    assert_ne!(out.code(), 0);
    assert!(
        out.stderr.contains("--schema (the schema changed)"),
        "{}",
        out.stderr
    );
}
