//! Azure OpenAI: `--provider azure` sends to `{endpoint}/openai/deployments/{deployment}/…` with
//! `?api-version=` and the key in `api-key` (never `Authorization`), against the mock server,
//! which serves Azure's paths.

use serde_json::Value;

use crate::util::*;

const KEY: &str = "azure-key-7d41e0-unique";

/// The mock's root (Azure endpoints have no `/v1`).
fn endpoint(mock: &Mock) -> String {
    mock.url.trim_end_matches("/v1").to_string()
}

fn azure_mock() -> Mock {
    Mock::start_with_env(&["--api-key-env", "MOCK_KEY"], &[("MOCK_KEY", KEY)])
}

/// `promptmill run p.jsonl -o out.jsonl --model gpt-4o --provider azure` plus `extra`.
fn azure_job(dir: &Dir, extra: &[&str]) -> std::process::Command {
    let mut cmd = promptmill(dir);
    cmd.args([
        "run",
        "p.jsonl",
        "-o",
        "out.jsonl",
        "--model",
        "gpt-4o",
        "--provider",
        "azure",
    ])
    .args(extra);
    cmd
}

fn assert_all_azure(requests: &[Value], deployment: &str, api_version: &str) {
    assert!(!requests.is_empty());
    for r in requests {
        assert_eq!(
            r["path"],
            format!("/openai/deployments/{deployment}/chat/completions"),
            "{r}"
        );
        assert_eq!(r["query"], format!("api-version={api_version}"), "{r}");
        assert_eq!(
            r["credential"], "api-key",
            "the key goes in api-key, and no Authorization header is sent: {r}"
        );
    }
}

#[test]
fn requests_go_to_the_deployment_with_the_key_in_api_key() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 12);
    let mock = azure_mock();
    let base = endpoint(&mock);
    let out = run(azure_job(
        &dir,
        &[
            "--base-url",
            &base,
            "--deployment",
            "prod-4o",
            "--api-version",
            "2024-10-21",
            "-vv",
        ],
    )
    .env("AZURE_OPENAI_API_KEY", KEY));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let requests = mock.requests();
    assert_eq!(requests.len(), 12);
    assert_all_azure(&requests, "prod-4o", "2024-10-21");
    assert!(dir.jsonl("out.jsonl").iter().all(|r| r["status"] == "done"));

    let status = run(promptmill(&dir).args(["status", "out.jsonl.promptmill.db", "--json"]));
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(
        status["url"],
        format!("{base}/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21")
    );
    assert_nowhere(dir.root(), &[&out.stdout, &out.stderr], KEY);
}

#[test]
fn the_endpoint_and_the_key_come_from_azure_variables_and_the_deployment_from_the_model() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    let mock = azure_mock();
    let out = run(azure_job(&dir, &[])
        .env("AZURE_OPENAI_ENDPOINT", endpoint(&mock))
        .env("AZURE_OPENAI_API_KEY", KEY)
        .env("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
        .env("OPENAI_API_KEY", "not-this-one"));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_all_azure(&mock.requests(), "gpt-4o", "2024-10-21");
}

#[test]
fn a_deployment_url_from_the_portal_is_enough() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    let mock = azure_mock();
    let url = format!(
        "{}/openai/deployments/eu-4o/chat/completions?api-version=2025-01-01-preview",
        endpoint(&mock)
    );
    let mut cmd = promptmill(&dir);
    cmd.args([
        "run",
        "p.jsonl",
        "-o",
        "out.jsonl",
        "--model",
        "gpt-4o",
        "--base-url",
        &url,
    ])
    .env("AZURE_OPENAI_API_KEY", KEY);
    let out = run(&mut cmd);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_all_azure(&mock.requests(), "eu-4o", "2025-01-01-preview");
}

#[test]
fn a_wrong_key_stops_with_the_401_and_resume_keeps_sending_to_azure() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 20);
    let mock = azure_mock();
    let base = endpoint(&mock);
    let stopped = run(azure_job(&dir, &["--base-url", &base]).env("AZURE_OPENAI_API_KEY", "wrong"));
    assert_eq!(stopped.code(), 4, "{}", stopped.stderr);
    assert!(
        stopped
            .stderr
            .contains("the API refused the credentials (HTTP 401: Incorrect API key provided."),
        "{}",
        stopped.stderr
    );
    assert!(
        stopped.stderr.contains("Check the key in AZURE_OPENAI_API_KEY"),
        "{}",
        stopped.stderr
    );
    let refused = mock.requests().len();
    assert!(mock.requests().iter().all(|r| r["status"] == 401));

    let resumed = run(promptmill(&dir)
        .args(["resume", "out.jsonl.promptmill.db"])
        .env("AZURE_OPENAI_API_KEY", KEY));
    assert_eq!(resumed.code(), 0, "{}", resumed.stderr);
    let requests = mock.requests();
    assert_eq!(requests.len() - refused, 20, "every row sent once after the fix");
    assert_all_azure(&requests, "gpt-4o", "2024-10-21");
}

#[test]
fn a_different_deployment_is_refused_on_rerun() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 2);
    let mock = azure_mock();
    let base = endpoint(&mock);
    let first =
        run(azure_job(&dir, &["--base-url", &base, "--deployment", "a"]).env("AZURE_OPENAI_API_KEY", KEY));
    assert_eq!(first.code(), 0, "{}", first.stderr);
    let again =
        run(azure_job(&dir, &["--base-url", &base, "--deployment", "b"]).env("AZURE_OPENAI_API_KEY", KEY));
    assert_eq!(again.code(), 1);
    assert!(
        again.stderr.contains(r#"--deployment (was "a", now "b")"#),
        "{}",
        again.stderr
    );
}

#[test]
fn azure_without_an_endpoint_names_the_flag() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 1);
    let out = run(azure_job(&dir, &[]).env("AZURE_OPENAI_API_KEY", KEY));
    assert_eq!(out.code(), 1);
    assert!(
        out.stderr
            .contains("--base-url: --provider azure needs the resource endpoint"),
        "{}",
        out.stderr
    );
}
