//! Every row shape and format, end to end: what is sent, what is written, in what order.

use serde_json::{json, Value};

use crate::util::*;

fn run_ok(dir: &Dir, mock: &Mock, args: &[&str]) -> Outcome {
    let out = run(promptmill(dir)
        .arg("run")
        .args(args)
        .args(["--base-url", &mock.url]));
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    out
}

#[test]
fn template_rows_from_csv_are_sent_and_written_in_input_order() {
    let dir = Dir::new();
    let rows: String = (1..=40).map(|i| format!("p{i},item {i},red\n")).collect();
    dir.write("products.csv", format!("sku,name,color\n{rows}"));
    let mock = Mock::start(&["--latency", "5ms", "--latency-jitter", "20ms"]);
    run_ok(
        &dir,
        &mock,
        &[
            "products.csv",
            "-o",
            "out.jsonl",
            "--model",
            "gpt-4o-mini",
            "--id-column",
            "sku",
            "--template",
            "Describe {name} in {color}.",
            "--concurrency",
            "8",
        ],
    );
    let out = dir.jsonl("out.jsonl");
    assert_eq!(out.len(), 40);
    for (i, row) in out.iter().enumerate() {
        let n = i + 1;
        assert_eq!(row["id"], json!(format!("p{n}")), "rows are in input order");
        assert_eq!(row["row"], json!(n));
        assert_eq!(row["status"], "done");
        assert_eq!(
            row["input"],
            json!({"sku": format!("p{n}"), "name": format!("item {n}"), "color": "red"})
        );
        assert_eq!(
            row["completion"],
            json!(format!("Mock reply: Describe item {n} in red."))
        );
        assert_eq!(row["finish_reason"], "stop");
        assert_eq!(row["model"], "gpt-4o-mini");
        assert_eq!(row["error"], Value::Null);
        assert!(row["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    }
}

#[test]
fn ready_prompts_from_jsonl_use_the_system_message() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 5);
    let mock = Mock::start(&[]);
    run_ok(
        &dir,
        &mock,
        &[
            "p.jsonl",
            "-o",
            "out.jsonl",
            "--model",
            "m",
            "--system",
            "You are terse.",
        ],
    );
    let out = dir.jsonl("out.jsonl");
    let ids: Vec<&str> = out.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["r1", "r2", "r3", "r4", "r5"]);
    // Two messages (system + user) of 3 and 5 words: (3+4) + (5+4) + 3 in the mock's arithmetic.
    assert_eq!(out[0]["usage"]["prompt_tokens"], 19);
    assert_eq!(out[0]["completion"], "Mock reply: Say something about item 1.");
}

#[test]
fn messages_rows_keep_their_conversation() {
    let dir = Dir::new();
    dir.write(
        "chat.jsonl",
        concat!(
            r#"{"id":"c1","messages":[{"role":"system","content":"Be kind."},{"role":"user","content":"Hi there"},{"role":"assistant","content":"Hello!"},{"role":"user","content":"Tell me a joke"}]}"#,
            "\n",
            r#"{"id":"c2","messages":[{"role":"user","content":[{"type":"text","text":"Parts work too"}]}]}"#,
            "\n"
        ),
    );
    let mock = Mock::start(&[]);
    run_ok(&dir, &mock, &["chat.jsonl", "-o", "out.jsonl", "--model", "m"]);
    let out = dir.jsonl("out.jsonl");
    assert_eq!(out[0]["completion"], "Mock reply: Tell me a joke");
    assert_eq!(out[1]["completion"], "Mock reply: Parts work too");
}

#[test]
fn batch_input_lines_are_sent_as_they_are_unless_a_flag_overrides() {
    let dir = Dir::new();
    let line = |id: &str, model: &str| {
        json!({"custom_id": id, "method": "POST", "url": "/v1/chat/completions",
               "body": {"model": model, "messages": [{"role": "user", "content": format!("batch {id}")}], "max_tokens": 2}})
        .to_string()
    };
    dir.write(
        "batch.jsonl",
        format!("{}\n{}\n", line("b1", "model-a"), line("b2", "model-b")),
    );
    let mock = Mock::start(&[]);
    run_ok(&dir, &mock, &["batch.jsonl", "-o", "out.jsonl"]);
    let out = dir.jsonl("out.jsonl");
    assert_eq!(out[0]["id"], "b1");
    assert_eq!(out[0]["model"], "model-a", "the body's model is used");
    assert_eq!(out[1]["model"], "model-b");
    assert_eq!(out[0]["finish_reason"], "length", "the body's max_tokens is sent");
    assert_eq!(
        out[0]["input"],
        json!({"custom_id": "b1", "method": "POST", "url": "/v1/chat/completions"})
    );

    run_ok(
        &dir,
        &mock,
        &[
            "batch.jsonl",
            "-o",
            "out2.jsonl",
            "--model",
            "override",
            "--max-tokens",
            "50",
        ],
    );
    let out = dir.jsonl("out2.jsonl");
    assert_eq!(out[0]["model"], "override");
    assert_eq!(out[0]["finish_reason"], "stop");
}

#[test]
fn legacy_completions_endpoint_reads_choice_text() {
    let dir = Dir::new();
    dir.write("p.csv", "prompt\nOnce upon a time\n");
    let mock = Mock::start(&[]);
    run_ok(
        &dir,
        &mock,
        &[
            "p.csv",
            "-o",
            "out.jsonl",
            "--model",
            "text-davinci-003",
            "--endpoint",
            "completions",
        ],
    );
    let out = dir.jsonl("out.jsonl");
    assert_eq!(out[0]["completion"], "Mock reply: Once upon a time");
    let requests = mock.requests();
    assert_eq!(requests[0]["path"], "/v1/completions");
}

#[test]
fn csv_output_has_the_input_columns_then_the_results() {
    let dir = Dir::new();
    dir.write("p.csv", "id,prompt,status\nx1,\"Hello, world\",new\n");
    let mock = Mock::start(&[]);
    run_ok(&dir, &mock, &["p.csv", "-o", "out.csv", "--model", "m"]);
    let mut reader = csv::Reader::from_path(dir.path("out.csv")).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            // The id column is the row id: not repeated as `input.id` (issue 10, item 18).
            "id",
            "prompt",
            "input.status",
            "status",
            "completion",
            "finish_reason",
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "cached_tokens",
            "cache_creation_tokens",
            "reasoning_tokens",
            "cost",
            "model",
            "response_id",
            "error",
            "cached"
        ]
    );
    let row: Vec<String> = reader
        .records()
        .next()
        .unwrap()
        .unwrap()
        .iter()
        .map(String::from)
        .collect();
    assert_eq!(
        &row[..5],
        ["x1", "Hello, world", "new", "done", "Mock reply: Hello, world"]
    );
    assert_eq!(row[15], "", "error is the last column, empty when done");
    assert_eq!(row[12], "", "model `m` has no price: no cost");
}

#[test]
fn usage_totals_equal_the_servers_sums() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 300);
    let mock = Mock::start(&[]);
    run_ok(
        &dir,
        &mock,
        &[
            "p.jsonl",
            "-o",
            "out.jsonl",
            "--model",
            "m",
            "--max-tokens",
            "4",
            "--summary",
            "summary.json",
        ],
    );
    let summary: Value = serde_json::from_str(&dir.read("summary.json")).unwrap();
    let stats = mock.stats();
    assert_eq!(summary["tokens"]["prompt"], stats["usage"]["prompt_tokens"]);
    assert_eq!(
        summary["tokens"]["completion"],
        stats["usage"]["completion_tokens"]
    );
    assert_eq!(summary["tokens"]["total"], stats["usage"]["total_tokens"]);
    assert_eq!(summary["rows"]["done"], 300);
    assert_eq!(summary["run"]["requests"], 300);
    let rows: u64 = dir
        .jsonl("out.jsonl")
        .iter()
        .map(|r| r["usage"]["total_tokens"].as_u64().unwrap())
        .sum();
    assert_eq!(json!(rows), stats["usage"]["total_tokens"]);
}

#[test]
fn export_writes_openai_batch_output_lines_with_the_full_response() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    let mock = Mock::start(&[]);
    run_ok(&dir, &mock, &["p.jsonl", "-o", "out.jsonl", "--model", "m"]);
    let out = run(promptmill(&dir).args([
        "export",
        "out.jsonl.promptmill.db",
        "-o",
        "batch-out.jsonl",
        "--format",
        "openai-batch",
    ]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let lines = dir.jsonl("batch-out.jsonl");
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["custom_id"], "r2");
    assert_eq!(lines[1]["response"]["status_code"], 200);
    assert_eq!(lines[1]["response"]["body"]["object"], "chat.completion");
    assert_eq!(
        lines[1]["response"]["body"]["choices"][0]["message"]["content"],
        "Mock reply: Say something about item 2."
    );
    assert_eq!(lines[1]["error"], Value::Null);
}

#[test]
fn params_and_headers_reach_the_server() {
    let dir = Dir::new();
    dir.write("p.jsonl", "{\"prompt\":\"Count one two three four five\"}\n");
    let mock = Mock::start_with_env(
        &["--api-key-env", "MOCK_KEY"],
        &[("MOCK_KEY", "secret-via-header")],
    );
    // The mock also accepts the key in an `api-key` header, which proves --header is sent.
    run_ok(
        &dir,
        &mock,
        &[
            "p.jsonl",
            "-o",
            "out.jsonl",
            "--model",
            "m",
            "--param",
            "n=2",
            "--header",
            "api-key: secret-via-header",
        ],
    );
    let out = dir.jsonl("out.jsonl");
    assert_eq!(out[0]["status"], "done");
    // n=2 doubles the completion tokens in the mock's usage.
    let completion_words = "Mock reply: Count one two three four five"
        .split_whitespace()
        .count() as u64;
    assert_eq!(out[0]["usage"]["completion_tokens"], json!(2 * completion_words));
}

#[test]
fn status_reports_rows_by_state() {
    let dir = Dir::new();
    dir.write(
        "p.jsonl",
        "{\"prompt\":\"fine\"}\n{\"prompt\":\"[[mock:status=400]] bad\"}\n{\"prompt\":\"fine too\"}\n",
    );
    let mock = Mock::start(&[]);
    let out = run(&mut run_job(&dir, &mock));
    assert_eq!(out.code(), 3, "{}", out.stderr);
    let status = run(promptmill(&dir).args(["status", "out.jsonl.promptmill.db", "--json"]));
    assert_eq!(status.code(), 0, "{}", status.stderr);
    let s: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(s["rows"]["total"], 3);
    assert_eq!(s["rows"]["done"], 2);
    assert_eq!(s["rows"]["failed"], 1);
    assert_eq!(s["top_errors"][0]["rows"], 1);
    assert!(s["top_errors"][0]["error"]
        .as_str()
        .unwrap()
        .starts_with("HTTP 400: mock: status 400"));
    let table = run(promptmill(&dir).args(["status", "out.jsonl.promptmill.db"]));
    assert!(table.stdout.contains("done      2"), "{}", table.stdout);
}

#[test]
fn openai_base_url_from_the_environment_is_honoured() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 2);
    let mock = Mock::start(&[]);
    let out = run(promptmill(&dir)
        .args(["run", "p.jsonl", "-o", "out.jsonl", "--model", "m"])
        .env("OPENAI_BASE_URL", &mock.url));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(mock.requests().len(), 2);
}
