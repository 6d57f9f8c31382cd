//! Small print the user reads: the estimate's time, the mock's finish reasons.

use serde_json::Value;

use crate::util::*;

#[test]
fn the_estimate_takes_at_least_one_latency() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 12);
    let out = run(promptmill(&dir).args([
        "estimate",
        "p.jsonl",
        "--model",
        "gpt-4o-mini",
        "--expect-latency",
        "2s",
        "--json",
    ]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    // 12 requests fit in one wave of the default 50: one latency, not 12 × 2 s / 50.
    assert_eq!(v["timing"]["seconds"], 2.0, "{v}");
}

#[test]
fn the_mocks_reply_that_used_all_of_max_tokens_says_length() {
    let dir = Dir::new();
    // "Mock reply: a b c" is 5 words, the mock's tokens: exactly --max-tokens 5.
    dir.write("p.jsonl", "{\"id\":\"x\",\"prompt\":\"a b c\"}\n");
    let mock = Mock::start(&[]);
    let out = run(run_job(&dir, &mock).args(["--max-tokens", "5"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let row = &dir.jsonl("out.jsonl")[0];
    assert_eq!(row["usage"]["completion_tokens"], 5);
    assert_eq!(row["finish_reason"], "length", "{row}");
}
