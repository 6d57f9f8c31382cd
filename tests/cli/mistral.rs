//! `--provider mistral` live: the base URL from `MISTRAL_BASE_URL` (or `--base-url`), the key
//! from `MISTRAL_API_KEY` as a Bearer token, and the families Mistral does not serve refused
//! before anything is sent.

use serde_json::json;

use crate::util::*;

const KEY: &str = "mistral-live-key-2b7d19-unique";

fn prompts(dir: &Dir) {
    let text: String = (1..=3)
        .map(|i| json!({"id": format!("r{i}"), "prompt": format!("Say {i}")}).to_string() + "\n")
        .collect();
    dir.write("p.jsonl", text);
}

#[test]
fn a_live_run_goes_to_mistral_base_url_with_the_mistral_key() {
    let dir = Dir::new();
    prompts(&dir);
    let mock = Mock::start_with_env(&["--api-key-env", "MOCK_KEY"], &[("MOCK_KEY", KEY)]);
    let out = run(promptmill(&dir)
        .args(["run", "p.jsonl", "-o", "out.jsonl", "--provider", "mistral"])
        .args([
            "--model",
            "mistral-small-latest",
            "--price-in",
            "0.2",
            "--price-out",
            "0.6",
        ])
        .env("MISTRAL_API_KEY", KEY)
        .env("MISTRAL_BASE_URL", &mock.url));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let requests = mock.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests
        .iter()
        .all(|r| r["path"] == "/v1/chat/completions" && r["credential"] == "bearer"));
    assert!(dir.jsonl("out.jsonl").iter().all(|r| r["status"] == "done"));
}

#[test]
fn families_mistral_does_not_serve_are_refused_before_sending() {
    let dir = Dir::new();
    prompts(&dir);
    let mock = Mock::start(&[]);
    for endpoint in ["responses", "completions"] {
        let out = run(promptmill(&dir)
            .args(["run", "p.jsonl", "-o", "out.jsonl", "--provider", "mistral"])
            .args(["--model", "mistral-small-latest", "--endpoint", endpoint])
            .args(["--base-url", &mock.url])
            .env("MISTRAL_API_KEY", KEY));
        assert_ne!(out.code(), 0, "{endpoint}");
        assert!(out.stderr.contains("Mistral does not serve"), "{}", out.stderr);
    }
    assert!(mock.requests().is_empty());
}
