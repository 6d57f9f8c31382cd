//! Anthropic's Messages API, live (`--provider anthropic`), end to end against the mock
//! server's `/v1/messages`: the path and headers, the answer's text, stop reasons and usage,
//! each error class, limits learned from `anthropic-ratelimit-*`, a kill and a resume, the
//! key written nowhere, the refusal of a job without `--max-tokens`, and the estimate.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};

use crate::util::*;

const KEY: &str = "sk-ant-test-93c1e7-unique-key";

fn anthropic_mock(extra: &[&str]) -> Mock {
    let mut args = vec!["--api-key-env", "MOCK_KEY"];
    args.extend_from_slice(extra);
    Mock::start_with_env(&args, &[("MOCK_KEY", KEY)])
}

/// The mock's root: Anthropic's base URL has no `/v1` (the family's path adds it).
fn root(mock: &Mock) -> String {
    mock.url.trim_end_matches("/v1").to_string()
}

/// `promptmill run p.jsonl -o out.jsonl --provider anthropic --model claude-haiku-4-5
/// --max-tokens 64`, the key in `ANTHROPIC_API_KEY` and the base URL in `ANTHROPIC_BASE_URL`.
fn anthropic_job(dir: &Dir, mock: &Mock) -> std::process::Command {
    anthropic_job_max(dir, mock, "64")
}

/// [`anthropic_job`] with `--max-tokens max`.
fn anthropic_job_max(dir: &Dir, mock: &Mock, max: &str) -> std::process::Command {
    let mut cmd = promptmill(dir);
    cmd.args([
        "run",
        "p.jsonl",
        "-o",
        "out.jsonl",
        "--provider",
        "anthropic",
        "--model",
        "claude-haiku-4-5",
        "--max-tokens",
        max,
    ])
    .env("ANTHROPIC_API_KEY", KEY)
    .env("ANTHROPIC_BASE_URL", root(mock));
    cmd
}

fn rows(lines: &[(&str, &str)]) -> String {
    lines
        .iter()
        .map(|(id, prompt)| json!({"id": id, "prompt": prompt}).to_string() + "\n")
        .collect()
}

#[test]
fn a_job_goes_to_v1_messages_with_x_api_key_and_reads_text_usage_and_stop_reasons() {
    let dir = Dir::new();
    let mut text = rows(&[
        ("plain", "Say hello"),
        ("cached", "Use the cache [[mock:cached=40:cache-creation=8]]"),
    ]);
    text.push_str(
        &json!({"id": "chat", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is two plus two?"}
        ]})
        .to_string(),
    );
    text.push('\n');
    dir.write("p.jsonl", text);
    let mock = anthropic_mock(&[]);
    let out = run(anthropic_job(&dir, &mock).args(["--summary", "s.json"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let requests = mock.requests();
    assert_eq!(requests.len(), 3);
    for r in &requests {
        assert_eq!(r["path"], "/v1/messages", "{r}");
        assert_eq!(
            r["credential"], "x-api-key",
            "only x-api-key carries the key: {r}"
        );
    }
    let out_rows = dir.jsonl("out.jsonl");
    let by_id = |id: &str| out_rows.iter().find(|r| r["id"] == id).unwrap().clone();
    let plain = by_id("plain");
    assert_eq!(plain["status"], "done");
    assert_eq!(plain["completion"], "Mock reply: Say hello");
    assert_eq!(plain["finish_reason"], "stop");
    assert!(plain["response_id"].as_str().unwrap().starts_with("msg_"));
    let cached = by_id("cached");
    assert_eq!(cached["usage"]["cached_tokens"], 40);
    assert_eq!(cached["usage"]["cache_creation_tokens"], 8);
    // input_tokens leave the cache out; the prompt tokens put it back in.
    let prompt = cached["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(prompt > 48, "{cached}");
    assert!(
        cached["cost"].as_f64().unwrap() > 0.0,
        "Claude models are priced: {cached}"
    );
    assert_eq!(by_id("chat")["completion"], "Mock reply: What is two plus two?");
    // The job's totals are the server's.
    let s: Value = serde_json::from_str(&dir.read("s.json")).unwrap();
    let stats = mock.stats();
    assert_eq!(
        s["tokens"]["prompt"], stats["usage"]["prompt_tokens"],
        "{s} {stats}"
    );
    assert_eq!(s["tokens"]["completion"], stats["usage"]["completion_tokens"]);
    let status = status_json(&dir);
    assert_eq!(status["provider"]["kind"], "anthropic", "{status}");
    assert_eq!(status["provider"]["version"], "2023-06-01");
    assert_eq!(status["url"], format!("{}/v1/messages", root(&mock)));
}

#[test]
fn a_max_tokens_stop_is_length_and_a_refusal_is_kept() {
    let dir = Dir::new();
    dir.write(
        "p.jsonl",
        rows(&[
            ("long", "one two three four five six seven eight nine ten"),
            ("no", "Refuse [[mock:reply=content-filter]]"),
        ]),
    );
    let mock = anthropic_mock(&[]);
    let out = run(&mut anthropic_job_max(&dir, &mock, "3"));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let out_rows = dir.jsonl("out.jsonl");
    assert_eq!(out_rows[0]["finish_reason"], "length");
    assert_eq!(out_rows[0]["completion"], "Mock reply: one");
    assert_eq!(out_rows[1]["finish_reason"], "refusal", "{}", out_rows[1]);
}

#[test]
fn a_job_without_max_tokens_is_refused_before_anything_is_sent() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    let mock = anthropic_mock(&[]);
    let mut cmd = promptmill(&dir);
    cmd.args([
        "run",
        "p.jsonl",
        "-o",
        "out.jsonl",
        "--provider",
        "anthropic",
        "--model",
        "claude-haiku-4-5",
    ])
    .env("ANTHROPIC_API_KEY", KEY)
    .env("ANTHROPIC_BASE_URL", root(&mock));
    let out = run(&mut cmd);
    assert_eq!(out.code(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("--max-tokens"), "{}", out.stderr);
    assert!(out.stderr.contains("pass --max-tokens N"), "{}", out.stderr);
    assert!(mock.requests().is_empty());
    assert!(!dir.exists("out.jsonl.promptmill.db"));
}

#[test]
fn a_row_with_a_role_anthropic_does_not_take_is_refused_by_line_and_field() {
    let dir = Dir::new();
    let text = [
        json!({"id": "ok", "prompt": "fine"}),
        json!({"id": "tool", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "tool", "content": "42", "tool_call_id": "t1"}
        ]}),
    ]
    .map(|v| v.to_string() + "\n")
    .concat();
    dir.write("p.jsonl", text);
    let mock = anthropic_mock(&[]);
    let out = run(anthropic_job(&dir, &mock).arg("--skip-invalid"));
    assert_eq!(out.code(), 3, "an invalid row: {}", out.stderr);
    let out_rows = dir.jsonl("out.jsonl");
    let error = out_rows[1]["error"].as_str().unwrap();
    assert!(error.contains("line 2: field `messages[1].role`"), "{error}");
    assert!(error.contains("`tool`"), "{error}");
    assert_eq!(out_rows[0]["status"], "done");
    assert_eq!(mock.requests().len(), 1);
}

#[test]
fn rate_limits_overloads_and_server_errors_are_retried_and_bad_requests_fail_their_row() {
    let dir = Dir::new();
    dir.write(
        "p.jsonl",
        rows(&[
            ("r429", "slow [[mock:fail-times=1:status=429:retry-after=1]]"),
            ("r529", "busy [[mock:fail-times=2:status=529]]"),
            ("r500", "oops [[mock:fail-times=1:status=500]]"),
            ("r400", "bad [[mock:status=400]]"),
            ("r413", "big [[mock:status=413]]"),
        ]),
    );
    let mock = anthropic_mock(&[]);
    let out = run(anthropic_job(&dir, &mock).args(["--summary", "s.json"]));
    assert_eq!(out.code(), 3, "a failed row: {}", out.stderr);
    let out_rows = dir.jsonl("out.jsonl");
    let by_id = |id: &str| out_rows.iter().find(|r| r["id"] == id).unwrap().clone();
    for id in ["r429", "r529", "r500"] {
        assert_eq!(by_id(id)["status"], "done", "{id}: {}", by_id(id));
    }
    let bad = by_id("r400");
    assert_eq!(bad["status"], "failed");
    assert!(
        bad["error"].as_str().unwrap().contains("invalid_request_error"),
        "{bad}"
    );
    let big = by_id("r413");
    assert!(
        big["error"].as_str().unwrap().contains("request_too_large"),
        "{big}"
    );
    let per_prompt = requests_per_prompt(&mock.requests());
    assert_eq!(per_prompt["busy [[mock:fail-times=2:status=529]]"], 3);
    assert_eq!(
        per_prompt["bad [[mock:status=400]]"], 1,
        "a 400 is not asked again"
    );
    let s: Value = serde_json::from_str(&dir.read("s.json")).unwrap();
    assert_eq!(s["run"]["http_429"], 1, "{s}");
}

#[test]
fn a_wrong_key_stops_the_run_and_is_written_nowhere() {
    let wrong = "sk-ant-wrong-55aa01-should-not-appear";
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 5);
    let mock = anthropic_mock(&[]);
    let out = run(anthropic_job(&dir, &mock)
        .arg("-vv")
        .env("ANTHROPIC_API_KEY", wrong));
    assert_eq!(out.code(), 4, "{}", out.stderr);
    assert!(out.stderr.contains("authentication_error"), "{}", out.stderr);
    let s = status_json(&dir);
    assert_eq!(s["rows"]["failed"], 0, "a refused key fails no row: {s}");
    assert_nowhere(dir.root(), &[&out.stdout, &out.stderr], wrong);
}

#[test]
fn a_billing_error_stops_the_run_like_an_exhausted_quota() {
    let dir = Dir::new();
    dir.write(
        "p.jsonl",
        rows(&[
            ("a", "first"),
            ("b", "pay [[mock:fail-times=1:code=insufficient_quota]]"),
            ("c", "third"),
        ]),
    );
    let mock = anthropic_mock(&[]);
    let out = run(anthropic_job(&dir, &mock).args(["--concurrency", "1", "--summary", "s.json"]));
    assert_eq!(out.code(), 4, "{}", out.stderr);
    assert!(out.stderr.contains("credit balance is too low"), "{}", out.stderr);
    let s: Value = serde_json::from_str(&dir.read("s.json")).unwrap();
    assert_eq!(s["outcome"], "stopped_quota", "{s}");
    assert_eq!(s["rows"]["failed"], 0);
    let resumed = run(promptmill(&dir)
        .args(["resume", "out.jsonl.promptmill.db"])
        .env("ANTHROPIC_API_KEY", KEY));
    assert_eq!(resumed.code(), 0, "{}", resumed.stderr);
    assert!(dir.jsonl("out.jsonl").iter().all(|r| r["status"] == "done"));
}

#[test]
fn limits_are_learned_from_anthropic_ratelimit_headers() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 6);
    let mock = anthropic_mock(&["--rpm", "120", "--tpm", "100000"]);
    let out = run(&mut anthropic_job(&dir, &mock));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    // At the learned 120/min: the first request, a burst of 2, then one every 500 ms.
    let t = mock.arrivals_ms();
    assert!(
        t[5] - t[0] >= 1400.0,
        "6 requests at a learned 120/min took {} ms",
        t[5] - t[0]
    );
    let s = status_json(&dir);
    assert_eq!(
        s["limits_in_force"]["rpm"],
        json!({"limit": 120, "source": "server"})
    );
    assert_eq!(
        s["limits_in_force"]["tpm"],
        json!({"limit": 100000, "source": "server"})
    );
}

#[test]
fn a_killed_job_resumes_without_sending_a_done_row_twice_and_the_key_is_nowhere() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 400);
    let mock = anthropic_mock(&["--latency", "20ms"]);
    let mut child = anthropic_job(&dir, &mock)
        .args(["--concurrency", "8", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(60), "60 requests at the server", || {
        mock.requests().len() >= 60
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let resumed = run(promptmill(&dir)
        .args(["resume", "out.jsonl.promptmill.db"])
        .env("ANTHROPIC_API_KEY", KEY));
    assert_eq!(resumed.code(), 0, "{}", resumed.stderr);
    let out_rows = dir.jsonl("out.jsonl");
    assert_eq!(out_rows.len(), 400);
    assert!(out_rows.iter().all(|r| r["status"] == "done"));
    let requests = mock.requests();
    assert!(requests.iter().all(|r| r["path"] == "/v1/messages"));
    let extra = requests.len() - 400;
    assert!(extra <= 8 * 2, "{extra} requests beyond one per row");
    let export = run(promptmill(&dir).args(["export", "out.jsonl.promptmill.db", "-o", "x.csv"]));
    let status = run(promptmill(&dir).args(["status", "out.jsonl.promptmill.db", "--json"]));
    assert_nowhere(
        dir.root(),
        &[&resumed.stdout, &resumed.stderr, &export.stderr, &status.stdout],
        KEY,
    );
}

#[test]
fn the_estimate_says_prompt_tokens_are_approximate_and_prices_claude() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 20);
    let out = run(promptmill(&dir).args([
        "estimate",
        "p.jsonl",
        "--provider",
        "anthropic",
        "--model",
        "claude-sonnet-4-5",
        "--max-tokens",
        "100",
        "--json",
    ]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let text = report.to_string();
    assert!(text.contains("approximat"), "{text}");
    assert!(
        text.contains("checked 2026-12-03") || text.contains("2026-12-03"),
        "{text}"
    );
    let dry = run(promptmill(&dir).args([
        "run",
        "p.jsonl",
        "-o",
        "out.jsonl",
        "--dry-run",
        "--provider",
        "anthropic",
        "--model",
        "claude-sonnet-4-5",
        "--max-tokens",
        "100",
    ]));
    assert_eq!(dry.code(), 0, "{}", dry.stderr);
    assert!(dry.stderr.contains("approximat"), "{}", dry.stderr);
    assert!(dry.stderr.contains("$3 in / $15 out"), "{}", dry.stderr);
}

#[test]
fn openai_endpoints_are_refused_with_anthropic() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 2);
    let mock = anthropic_mock(&[]);
    let chat = run(anthropic_job(&dir, &mock).args(["--endpoint", "chat"]));
    assert_eq!(chat.code(), 1, "{}", chat.stderr);
    assert!(chat.stderr.contains("--endpoint"), "{}", chat.stderr);
    let openai = run(run_job(&dir, &mock).args(["--endpoint", "messages", "--max-tokens", "5"]));
    assert_eq!(openai.code(), 1, "{}", openai.stderr);
    assert!(
        openai.stderr.contains("--provider anthropic"),
        "{}",
        openai.stderr
    );
    assert!(mock.requests().is_empty());
}

#[test]
fn a_sample_calibrates_the_approximate_prompt_tokens_against_the_servers_counts() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 40);
    let mock = anthropic_mock(&[]);
    let out = run(promptmill(&dir)
        .args([
            "estimate",
            "p.jsonl",
            "-o",
            "out.jsonl",
            "--provider",
            "anthropic",
            "--model",
            "claude-haiku-4-5",
            "--max-tokens",
            "20",
            "--sample",
            "10",
            "--json",
        ])
        .env("ANTHROPIC_API_KEY", KEY)
        .env("ANTHROPIC_BASE_URL", root(&mock)));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let sample = &v["models"][0]["prompt_tokens"]["sample"];
    assert_eq!(sample["rows"], 10, "{v}");
    assert_eq!(sample["scaled"], true, "approximate counts are scaled: {sample}");
    assert!(sample["ratio"].as_f64().unwrap() > 0.0, "{sample}");
    assert_eq!(mock.requests().len(), 10);
    assert!(mock.requests().iter().all(|r| r["path"] == "/v1/messages"));
}
