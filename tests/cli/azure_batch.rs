//! `--mode batch --provider azure`: the real binary against the mock's Azure Files and Batches
//! routes (`/openai/files…`, `/openai/batches…` with `?api-version=`, key in `api-key`). The
//! uploaded lines name `/chat/completions` and the deployment as `model`, uploads are waited for
//! until Azure (the mock) has processed them, and the output equals an OpenAI batch run's.

use std::collections::HashSet;

use serde_json::Value;

use crate::util::*;

const KEY: &str = "azure-batch-key-51c9e2-unique";
const DEPLOYMENT: &str = "batch-4o";

/// `GET path` on the mock's root with the key in `api-key`; the body as text.
fn get_with_key(mock: &Mock, path: &str) -> String {
    mock.get(path, Some(&format!("api-key: {KEY}")))
}

/// [`batch_job`] to the mock's Azure paths, deployment [`DEPLOYMENT`], with the key.
fn azure_job(dir: &Dir, mock: &Mock, out: &str, summary: &str) -> std::process::Command {
    let endpoint = mock.url.trim_end_matches("/v1").to_string();
    let mut cmd = batch_job(
        dir,
        out,
        summary,
        &[
            "--provider",
            "azure",
            "--base-url",
            &endpoint,
            "--deployment",
            DEPLOYMENT,
        ],
    );
    cmd.env("AZURE_OPENAI_API_KEY", KEY);
    cmd
}

/// `promptmill run p.jsonl -o OUT --model gpt-4o --mode batch …` plus `extra`.
fn batch_job(dir: &Dir, out: &str, summary: &str, extra: &[&str]) -> std::process::Command {
    let mut cmd = promptmill(dir);
    cmd.args([
        "run",
        "p.jsonl",
        "-o",
        out,
        "--summary",
        summary,
        "--model",
        "gpt-4o",
    ])
    .args([
        "--mode",
        "batch",
        "--poll-interval",
        "20ms",
        "--batch-max-rows",
        "12",
    ])
    .args(extra);
    cmd
}

#[test]
fn an_azure_batch_job_runs_on_the_deployment_and_equals_the_openai_batch_run() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 30);
    let mock = Mock::start_with_env(
        &["--api-key-env", "MOCK_KEY", "--batch-polls", "2"],
        &[("MOCK_KEY", KEY)],
    );
    let azure = run(&mut azure_job(&dir, &mock, "azure.jsonl", "azure.json"));
    assert_eq!(azure.code(), 0, "{}", azure.stderr);
    let rows = dir.jsonl("azure.jsonl");
    assert_eq!(rows.len(), 30);
    assert!(rows.iter().all(|r| r["status"] == "done"), "{rows:?}");

    // Every call went to Azure's resource-level Files and Batches paths, with the API version
    // and the key in `api-key` (never `Authorization`).
    let requests = mock.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        let path = r["path"].as_str().unwrap();
        assert!(
            path.starts_with("/openai/files") || path.starts_with("/openai/batches"),
            "{r}"
        );
        assert!(
            r["query"].as_str().unwrap().starts_with("api-version=2024-10-21"),
            "{r}"
        );
        assert_eq!(r["credential"], "api-key", "{r}");
        assert_ne!(
            r["status"], 400,
            "no call was refused (a batch of a pending file is): {r}"
        );
    }
    // Each create waited for its upload to be processed: the file was read before it.
    let reads = requests
        .iter()
        .filter(|r| {
            let path = r["path"].as_str().unwrap();
            path.starts_with("/openai/files/file-") && !path.ends_with("/content")
        })
        .count();
    assert!(reads >= 6, "two reads per upload (pending, processed): {reads}");

    // Every uploaded line names the deployment as its model and Azure's endpoint path.
    let overview = mock.get_json("/mock/batches");
    let uploads = overview["uploads"].as_array().unwrap();
    assert_eq!(uploads.len(), 3, "30 rows at 12 per batch");
    let mut ids = HashSet::new();
    for upload in uploads {
        let id = upload["id"].as_str().unwrap();
        let content = get_with_key(
            &mock,
            &format!("/openai/files/{id}/content?api-version=2024-10-21"),
        );
        for line in content.lines() {
            let line: Value = serde_json::from_str(line).unwrap();
            assert_eq!(line["url"], "/chat/completions", "{line}");
            assert_eq!(line["body"]["model"], DEPLOYMENT, "{line}");
            assert!(ids.insert(line["custom_id"].as_str().unwrap().to_string()));
        }
    }
    assert_eq!(ids.len(), 30);
    for batch in overview["batches"].as_array().unwrap() {
        assert_eq!(batch["status"], "completed", "{batch}");
    }

    // The same job through OpenAI's Batch API gives the same completions, usage and cost (the
    // job's model prices both; only the model the server names differs).
    let openai_mock = Mock::start(&["--batch-polls", "2"]);
    let openai = run(&mut batch_job(
        &dir,
        "openai.jsonl",
        "openai.json",
        &["--base-url", &openai_mock.url],
    ));
    assert_eq!(openai.code(), 0, "{}", openai.stderr);
    let openai_rows = dir.jsonl("openai.jsonl");
    assert_eq!(openai_rows.len(), rows.len());
    for (a, o) in rows.iter().zip(&openai_rows) {
        for field in ["id", "status", "completion", "finish_reason", "usage"] {
            assert_eq!(a[field], o[field], "{field} of {a} vs {o}");
        }
    }
    let (a, o): (Value, Value) = (
        serde_json::from_str(&dir.read("azure.json")).unwrap(),
        serde_json::from_str(&dir.read("openai.json")).unwrap(),
    );
    assert_eq!(a["tokens"], o["tokens"]);
    assert!(a["cost"]["job"].as_f64().unwrap() > 0.0, "{a}");
    assert_eq!(a["cost"]["job"], o["cost"]["job"]);
    assert_nowhere(dir.root(), &[&azure.stdout, &azure.stderr], KEY);
}

#[test]
fn an_azure_batch_of_legacy_completions_is_refused_before_anything_is_sent() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 2);
    let mock = Mock::start(&[]);
    let endpoint = mock.url.trim_end_matches("/v1").to_string();
    let out = run(batch_job(
        &dir,
        "out.jsonl",
        "s.json",
        &[
            "--provider",
            "azure",
            "--base-url",
            &endpoint,
            "--endpoint",
            "completions",
        ],
    )
    .env("AZURE_OPENAI_API_KEY", KEY));
    assert_eq!(out.code(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("--endpoint: Azure's Batch API runs chat completions only"),
        "{}",
        out.stderr
    );
    assert!(mock.requests().is_empty());
}

#[test]
fn a_lost_upload_answer_on_azure_is_found_in_the_resource_file_list_not_uploaded_again() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 30);
    let mock = Mock::start_with_env(
        &["--api-key-env", "MOCK_KEY", "--drop-upload", "2"],
        &[("MOCK_KEY", KEY)],
    );
    let out = run(&mut azure_job(&dir, &mock, "out.jsonl", "s.json"));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(dir.jsonl("out.jsonl").iter().all(|r| r["status"] == "done"));
    assert!(
        out.stderr.contains("reusing the upload file-mock-2"),
        "{}",
        out.stderr
    );
    let listed = mock
        .requests()
        .iter()
        .any(|r| r["path"] == "/openai/files" && r["query"].as_str().unwrap().contains("purpose=batch"));
    assert!(listed, "the file list was read under /openai/files");
    let overview = mock.get_json("/mock/batches");
    assert_eq!(overview["uploads"].as_array().unwrap().len(), 3, "{overview}");
    assert_eq!(overview["batches"].as_array().unwrap().len(), 3, "{overview}");
}
