//! Input details that must not change what the user wrote: numbers beyond `f64` keep their
//! text, a row's own messages and the `--system` flag combine by one rule. (The bad-input corpus,
//! `corpus.rs`, holds the rest: repeated keys, untrimmed ids, column names, a CSV cut at EOF.)

use serde_json::Value;

use crate::util::*;

#[test]
fn a_number_beyond_f64_keeps_its_text_in_the_output_and_in_a_template() {
    let dir = Dir::new();
    dir.write(
        "p.jsonl",
        "{\"id\":\"a\",\"prompt\":\"hi\",\"score\":1e400}\n{\"id\":\"b\",\"prompt\":\"there\",\"score\":2}\n",
    );
    let mock = Mock::start(&[]);
    let out = run(&mut run_job(&dir, &mock));
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    let text = dir.read("out.jsonl");
    // As a string; or, with serde_json's `arbitrary_precision`, as the number itself (which
    // serde_json writes with its exponent's sign).
    assert!(
        text.contains("\"score\":\"1e400\"") || text.contains("\"score\":1e+400"),
        "the field keeps its text: {text}"
    );

    let mock = Mock::start(&[]);
    let out = run(promptmill(&dir).args([
        "run",
        "p.jsonl",
        "-o",
        "scored.jsonl",
        "--model",
        "m",
        "--base-url",
        &mock.url,
        "--template",
        "Score {score}",
    ]));
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    let prompts: Vec<String> = mock
        .requests()
        .iter()
        .filter_map(|r| r["prompt"].as_str().map(str::to_string))
        .collect();
    assert!(
        prompts.iter().any(|p| p == "Score 1e400" || p == "Score 1e+400"),
        "{prompts:?}"
    );
}

#[test]
fn system_is_prepended_to_a_messages_row_that_has_none() {
    let dir = Dir::new();
    dir.write(
        "p.jsonl",
        "{\"id\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}\n",
    );
    let prompt_tokens = |out: &str, system: Option<&str>| {
        let mock = Mock::start(&[]);
        let mut cmd = promptmill(&dir);
        cmd.args([
            "run",
            "p.jsonl",
            "-o",
            out,
            "--model",
            "m",
            "--base-url",
            &mock.url,
        ]);
        if let Some(s) = system {
            cmd.args(["--system", s]);
        }
        let outcome = run(&mut cmd);
        assert_eq!(outcome.code(), 0, "stderr: {}", outcome.stderr);
        let rows: Vec<Value> = dir.jsonl(out);
        rows[0]["usage"]["prompt_tokens"].as_i64().expect("usage")
    };
    let plain = prompt_tokens("plain.jsonl", None);
    let with_system = prompt_tokens("system.jsonl", Some("Be brief and polite, always."));
    assert!(
        with_system > plain,
        "the system message was sent: {with_system} prompt tokens with it, {plain} without"
    );
}
