//! A misspelt or unknown model is said to be one, in the estimate and before a run sends.

use serde_json::Value;

use crate::util::*;

const NOTE: &str = "unknown model `gpt-4o-mnii` (did you mean gpt-4o-mini?): tokens approximated \
                    with o200k_base, no price — pass --price-in/--price-out";

#[test]
fn a_misspelt_model_is_named_with_the_nearest_known_one_in_the_estimate_and_the_run() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    let out = run(promptmill(&dir).args(["estimate", "p.jsonl", "--model", "gpt-4o-mnii"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.stderr.contains(NOTE), "{}", out.stderr);
    assert!(!out.stderr.contains("o200k_base, exact"), "{}", out.stderr);
    let out = run(promptmill(&dir).args(["estimate", "p.jsonl", "--model", "gpt-4o-mnii", "--json"]));
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["models"][0]["exact_tokens"], false);
    assert_eq!(v["models"][0]["did_you_mean"], "gpt-4o-mini");
    assert_eq!(v["models"][0]["unknown_model"], NOTE);

    let mock = Mock::start(&[]);
    let out = run(promptmill(&dir).args([
        "run",
        "p.jsonl",
        "-o",
        "out.jsonl",
        "--model",
        "gpt-4o-mnii",
        "--base-url",
        &mock.url,
    ]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("promptmill: {NOTE}")),
        "{}",
        out.stderr
    );
}

#[test]
fn a_dated_name_of_a_known_model_stays_known() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    let out = run(promptmill(&dir).args(["estimate", "p.jsonl", "--model", "gpt-4o-mini-2024-07-18"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.stderr.contains("o200k_base, exact"), "{}", out.stderr);
    assert!(!out.stderr.contains("unknown model"), "{}", out.stderr);
}
