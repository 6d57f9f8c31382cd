//! `--endpoint embeddings --mode batch` against the mock's Files and Batches APIs: a Batch line
//! carries `--rows-per-request` inputs, its answer settles each of its rows by `index` (vectors
//! equal to a live run grouped differently, usage the same), a failed line fails its rows only,
//! a kill after an upload resumes without a row sent twice, and Batch-format input lines naming
//! `/v1/embeddings` are grouped by their settings.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::embeddings::{embed_job, texts_jsonl, usage_sum, vectors};
use crate::util::*;

/// The lines of every file the mock was given, in upload order.
fn uploaded_lines(mock: &Mock) -> Vec<Value> {
    let overview = mock.get_json("/mock/batches");
    let mut lines = Vec::new();
    for upload in overview["uploads"].as_array().expect("uploads") {
        let id = upload["id"].as_str().expect("id");
        let content = mock.get(&format!("/v1/files/{id}/content"), None);
        lines.extend(
            content
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line")),
        );
    }
    lines
}

/// Every input text of the lines, with how often it was sent.
fn inputs(lines: &[Value]) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for line in lines {
        let input = &line["body"]["input"];
        let texts = match input.as_array() {
            Some(many) => many.clone(),
            None => vec![input.clone()],
        };
        for t in texts {
            *seen.entry(t.as_str().expect("a text").to_string()).or_default() += 1;
        }
    }
    seen
}

fn batch_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--mode", "batch", "--poll-interval", "20ms"];
    args.extend_from_slice(extra);
    args
}

#[test]
fn batch_lines_carry_rows_per_request_inputs_and_each_row_gets_its_own_vector() {
    let dir = Dir::new();
    texts_jsonl(&dir, 30, |_| "");
    let mock = Mock::start(&["--batch-polls", "2"]);
    let out = run(embed_job(&dir, &mock, "batch.jsonl").args(batch_args(&[
        "--rows-per-request",
        "7",
        "--batch-max-rows",
        "20",
    ])));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let lines = uploaded_lines(&mock);
    // Two parts (20 rows, 10 rows), each in lines of at most 7 inputs.
    let sizes: Vec<usize> = lines
        .iter()
        .map(|l| l["body"]["input"].as_array().map_or(1, Vec::len))
        .collect();
    assert_eq!(sizes, [7, 7, 6, 7, 3], "{lines:?}");
    for line in &lines {
        assert_eq!(line["url"], "/v1/embeddings", "{line}");
        assert_eq!(line["body"]["encoding_format"], "base64", "{line}");
        assert_eq!(line["body"]["dimensions"], 8, "{line}");
    }
    assert_eq!(lines[0]["custom_id"], "promptmill-rows-1-7");
    let sent = inputs(&lines);
    assert_eq!(sent.len(), 30);
    assert!(sent.values().all(|&n| n == 1), "{sent:?}");

    // Settled by index: the vectors of a live run grouped otherwise, and the same usage.
    let live = Mock::start(&[]);
    let out = run(embed_job(&dir, &live, "live.jsonl").args(["--rows-per-request", "4"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let (batch, alive) = (dir.jsonl("batch.jsonl"), dir.jsonl("live.jsonl"));
    assert!(batch.iter().all(|r| r["status"] == "done"), "{batch:?}");
    assert_eq!(vectors(&batch), vectors(&alive));
    assert_eq!(usage_sum(&batch), usage_sum(&alive));
    assert!(usage_sum(&batch) > 0);
}

#[test]
fn a_failed_batch_line_fails_its_rows_and_only_those() {
    let dir = Dir::new();
    texts_jsonl(&dir, 20, |i| if i == 12 { "[[mock:status=400]] " } else { "" });
    let mock = Mock::start(&["--batch-polls", "2"]);
    let out = run(embed_job(&dir, &mock, "out.jsonl").args(batch_args(&["--rows-per-request", "5"])));
    assert_eq!(out.code(), 3, "rows failed: {}", out.stderr);
    assert_eq!(uploaded_lines(&mock).len(), 4);
    let rows = dir.jsonl("out.jsonl");
    assert_eq!(rows.len(), 20);
    for row in &rows {
        let n: usize = row["id"].as_str().unwrap()[1..].parse().unwrap();
        if (11..=15).contains(&n) {
            assert_eq!(row["status"], "failed", "{row}");
            assert!(row["error"].as_str().unwrap().contains("400"), "{row}");
        } else {
            assert_eq!(row["status"], "done", "{row}");
            assert_eq!(row["embedding"].as_array().unwrap().len(), 8, "{row}");
        }
    }
}

#[test]
fn a_killed_embeddings_batch_run_resumes_without_sending_a_row_twice() {
    let dir = Dir::new();
    texts_jsonl(&dir, 200, |_| "");
    let mock = Mock::start(&["--batch-polls", "4"]);
    let mut child = embed_job(&dir, &mock, "out.jsonl")
        .args(batch_args(&[
            "--rows-per-request",
            "10",
            "--batch-max-rows",
            "50",
        ]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    wait_until(Duration::from_secs(60), "the second upload", || {
        mock.stats()["files_uploaded"].as_u64().unwrap_or(0) >= 2
    });
    child.kill().expect("kill"); // SIGKILL
    let _ = child.wait();

    let out = run(promptmill(&dir).args(["resume", "out.jsonl.promptmill.db"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let stats = mock.stats();
    assert_eq!(stats["files_uploaded"], 4, "{stats}");
    assert_eq!(stats["batches_created"], 4, "{stats}");
    let sent = inputs(&uploaded_lines(&mock));
    assert_eq!(sent.len(), 200);
    assert!(sent.values().all(|&n| n == 1), "a text sent twice: {sent:?}");
    let rows = dir.jsonl("out.jsonl");
    assert_eq!(rows.len(), 200);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r["id"], format!("e{}", i + 1), "input order");
        assert_eq!(r["status"], "done", "{r}");
        assert_eq!(r["embedding"].as_array().map(Vec::len), Some(8), "{r}");
    }
}

/// Batch-format input lines naming `/v1/embeddings`: rows 1–4 ask for 8 dimensions, 5–8 for 4.
fn batch_format_input(dir: &Dir) {
    let mut text = String::new();
    for i in 1..=8 {
        let dimensions = if i <= 4 { 8 } else { 4 };
        text.push_str(&format!(
            "{{\"custom_id\":\"b{i}\",\"method\":\"POST\",\"url\":\"/v1/embeddings\",\"body\":{{\"model\":\"text-embedding-3-small\",\"input\":\"line {i} text\",\"dimensions\":{dimensions}}}}}\n"
        ));
    }
    dir.write("lines.jsonl", text);
}

#[test]
fn batch_format_input_lines_for_embeddings_are_joined_only_with_lines_of_the_same_settings() {
    let dir = Dir::new();
    batch_format_input(&dir);
    let mock = Mock::start(&["--batch-polls", "2"]);
    let out = run(promptmill(&dir).args([
        "run",
        "lines.jsonl",
        "-o",
        "out.jsonl",
        "--base-url",
        &mock.url,
        "--mode",
        "batch",
        "--poll-interval",
        "20ms",
        "--rows-per-request",
        "10",
    ]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let lines = uploaded_lines(&mock);
    assert_eq!(lines.len(), 2, "one line per set of settings: {lines:?}");
    assert_eq!(lines[0]["body"]["dimensions"], 8);
    assert_eq!(lines[1]["body"]["dimensions"], 4);
    for r in dir.jsonl("out.jsonl") {
        let n: usize = r["id"].as_str().unwrap()[1..].parse().unwrap();
        let want = if n <= 4 { 8 } else { 4 };
        assert_eq!(r["embedding"].as_array().map(Vec::len), Some(want), "{r}");
    }
}

#[test]
fn a_batch_format_line_naming_another_endpoint_is_refused_at_its_file_line_and_url() {
    let dir = Dir::new();
    batch_format_input(&dir);
    let mut text = std::fs::read_to_string(dir.path("lines.jsonl")).unwrap();
    text.push_str(
        "{\"custom_id\":\"c9\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}}\n",
    );
    dir.write("lines.jsonl", text);
    let mock = Mock::start(&[]);
    let out = run(promptmill(&dir).args([
        "run",
        "lines.jsonl",
        "-o",
        "out.jsonl",
        "--base-url",
        &mock.url,
        "--mode",
        "batch",
        "--poll-interval",
        "20ms",
    ]));
    let all = format!(
        "{}{}",
        out.stderr,
        std::fs::read_to_string(dir.path("out.jsonl")).unwrap_or_default()
    );
    assert!(
        all.contains("lines.jsonl:9: field `url`: `/v1/chat/completions` differs from the job's endpoint /v1/embeddings"),
        "{all}"
    );
}
