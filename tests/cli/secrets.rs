//! The API key: read from the environment only, sent as a bearer token, written nowhere.

use crate::util::*;

#[test]
fn the_key_from_api_key_env_is_used_and_written_nowhere() {
    let key = "sk-test-5f0d3c9a-unique-key-material";
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 30);
    let mock = Mock::start_with_env(
        &["--api-key-env", "MOCK_EXPECTED_KEY"],
        &[("MOCK_EXPECTED_KEY", key)],
    );
    let out = run(run_job(&dir, &mock)
        .args(["--api-key-env", "MY_PROVIDER_KEY", "--summary", "s.json", "-vv"])
        .env("MY_PROVIDER_KEY", key));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(
        mock.stats()["by_status"]["200"],
        30,
        "every request carried the key"
    );
    let export = run(promptmill(&dir).args(["export", "out.jsonl.promptmill.db", "-o", "x.csv"]));
    let status = run(promptmill(&dir).args(["status", "out.jsonl.promptmill.db", "--json"]));
    assert_nowhere(
        dir.root(),
        &[&out.stdout, &out.stderr, &export.stderr, &status.stdout],
        key,
    );
}

#[test]
fn a_refused_key_is_not_echoed_in_the_error() {
    let key = "sk-wrong-1b2c3d-should-not-appear";
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    let mock = Mock::start_with_env(
        &["--api-key-env", "MOCK_EXPECTED_KEY"],
        &[("MOCK_EXPECTED_KEY", "right")],
    );
    let out = run(run_job(&dir, &mock).arg("-vv").env("OPENAI_API_KEY", key));
    assert_eq!(out.code(), 4, "{}", out.stderr);
    assert_nowhere(dir.root(), &[&out.stdout, &out.stderr], key);
}

#[test]
fn a_missing_key_for_a_remote_api_is_an_error_before_anything_starts() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    let out = run(promptmill(&dir).args([
        "run",
        "p.jsonl",
        "-o",
        "out.jsonl",
        "--model",
        "m",
        "--base-url",
        "https://api.example.invalid/v1",
    ]));
    assert_eq!(out.code(), 1);
    assert!(
        out.stderr
            .contains("the environment variable OPENAI_API_KEY is not set"),
        "{}",
        out.stderr
    );
    assert!(!dir.exists("out.jsonl.promptmill.db"));
}

#[cfg(unix)]
#[test]
fn the_checkpoint_and_the_outputs_are_private_files() {
    use std::os::unix::fs::PermissionsExt;
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 2);
    let mock = Mock::start(&[]);
    let out = run(run_job(&dir, &mock).args(["--summary", "s.json"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    for name in ["out.jsonl", "out.jsonl.promptmill.db", "s.json"] {
        let mode = std::fs::metadata(dir.path(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name} has mode {mode:o}");
    }
}
