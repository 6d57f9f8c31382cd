//! Numbers from a server or a file: answers that will never parse, absurd usage counts, big
//! JSON numbers, and bodies larger than `--max-response-size`.

use serde_json::Value;

use crate::util::*;

/// The rows of `out.jsonl` by their prompt (`input.prompt`).
fn by_prompt(dir: &Dir) -> std::collections::HashMap<String, Value> {
    dir.jsonl("out.jsonl")
        .into_iter()
        .map(|r| (r["input"]["prompt"].as_str().unwrap_or_default().to_string(), r))
        .collect()
}

#[test]
fn a_paid_answer_that_will_never_parse_is_asked_again_once_then_fails_with_the_reason() {
    let dir = Dir::new();
    let bad = [
        ("[[mock:reply=lone-surrogate]] a", "hex escape"),
        ("[[mock:reply=not-utf8]] b", "not UTF-8"),
        ("[[mock:reply=no-choices]] c", "`choices` is empty"),
        (
            "[[mock:usage=9223372036854775807]] d",
            "`usage.prompt_tokens` is 9223372036854775807, not a token count",
        ),
        (
            "[[mock:usage=-1]] e",
            "`usage.prompt_tokens` is -1, not a token count",
        ),
        (
            "[[mock:usage=1.5]] f",
            "`usage.prompt_tokens` is 1.5, not a token count",
        ),
    ];
    let mut input = String::from("{\"prompt\":\"fine\"}\n");
    for (prompt, _) in bad {
        input.push_str(&format!("{}\n", serde_json::json!({ "prompt": prompt })));
    }
    dir.write("p.jsonl", input);
    let mock = Mock::start(&[]);
    let out = run(run_job(&dir, &mock).args(["--max-attempts", "6"]));
    assert_eq!(out.code(), 3, "some rows failed: {}", out.stderr);
    let seen = requests_per_prompt(&mock.requests());
    let rows = by_prompt(&dir);
    assert_eq!(rows["fine"]["status"], "done");
    for (prompt, reason) in bad {
        assert_eq!(
            seen[prompt], 2,
            "{prompt}: one answer and one more try, each billed"
        );
        let row = &rows[prompt];
        assert_eq!(row["status"], "failed", "{row}");
        let error = row["error"].as_str().unwrap();
        assert!(
            error.starts_with("not asked again after 2 unusable answers (each billed); last: HTTP 200 with an unexpected body: "),
            "{error}"
        );
        assert!(error.contains(reason), "{prompt}: {error}");
    }
}

#[test]
fn one_unusable_answer_then_a_good_one_is_done() {
    let dir = Dir::new();
    dir.write(
        "p.jsonl",
        "{\"prompt\":\"[[mock:fail-times=1:reply=lone-surrogate]] once\"}\n",
    );
    let mock = Mock::start(&[]);
    let out = run(&mut run_job(&dir, &mock));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(mock.requests().len(), 2);
    assert_eq!(dir.jsonl("out.jsonl")[0]["status"], "done");
}

#[test]
fn a_body_cut_short_is_retried_up_to_max_attempts_as_before() {
    let dir = Dir::new();
    dir.write("p.jsonl", "{\"prompt\":\"[[mock:reply=truncated]] cut\"}\n");
    let mock = Mock::start(&[]);
    let out = run(run_job(&dir, &mock).args(["--max-attempts", "4"]));
    assert_eq!(out.code(), 3, "{}", out.stderr);
    assert_eq!(mock.requests().len(), 4, "not valid JSON: worth asking again");
    let row = &dir.jsonl("out.jsonl")[0];
    let error = row["error"].as_str().unwrap();
    assert!(
        error.starts_with(
            "gave up after 4 attempts; last: HTTP 200 with an unexpected body: not JSON (EOF while parsing"
        ),
        "{error}"
    );
}

#[test]
fn a_checkpoint_holding_absurd_usage_still_opens_for_status_export_and_resume() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 4);
    let mock = Mock::start(&[]);
    let out = run(promptmill(&dir).args([
        "run",
        "p.jsonl",
        "-o",
        "out.jsonl",
        "--model",
        "gpt-4o-mini",
        "--base-url",
        &mock.url,
    ]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    // What an older promptmill stored from a hostile server: i64::MAX, and u64::MAX as -1.
    let db = dir.path("out.jsonl.promptmill.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "UPDATE rows SET prompt_tokens = 9223372036854775807, total_tokens = 9223372036854775807 WHERE seq = 1;
         UPDATE rows SET prompt_tokens = 9223372036854775807 WHERE seq = 2;
         UPDATE rows SET completion_tokens = -1, total_tokens = -1 WHERE seq = 3;
         UPDATE rows SET state = 'pending', completion = NULL, response = NULL WHERE seq = 4;",
    )
    .unwrap();
    drop(conn);

    let status = run(promptmill(&dir).args(["status", "out.jsonl.promptmill.db"]));
    assert_eq!(status.code(), 0, "{}", status.stderr);
    assert!(
        !status.stdout.contains("9223372036854775807"),
        "{}",
        status.stdout
    );
    let json = run(promptmill(&dir).args(["status", "out.jsonl.promptmill.db", "--json"]));
    assert_eq!(json.code(), 0, "{}", json.stderr);
    let s: Value = serde_json::from_str(&json.stdout).unwrap();
    let cost = s["cost"].as_f64().expect("priced");
    assert!((0.0..0.01).contains(&cost), "no absurd money: {cost}");

    let resume = run(promptmill(&dir).args(["resume", "out.jsonl.promptmill.db", "--summary", "s.json"]));
    assert_eq!(resume.code(), 0, "{}", resume.stderr);
    assert!(!resume.stderr.contains("$18,446"), "{}", resume.stderr);
    let summary: Value = serde_json::from_str(&dir.read("s.json")).unwrap();
    assert_eq!(summary["rows"]["done"], 4);
    assert!(summary["tokens"]["prompt"].as_u64().unwrap() < 1000, "{summary}");

    let export = run(promptmill(&dir).args(["export", "out.jsonl.promptmill.db", "-o", "again.jsonl"]));
    assert_eq!(export.code(), 0, "{}", export.stderr);
    let rows = dir.jsonl("again.jsonl");
    assert_eq!(rows.len(), 4);
    for row in &rows[..3] {
        assert_eq!(row["usage"], Value::Null, "no absurd count is exported: {row}");
    }
    assert!(rows[3]["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert!(!dir.read("again.jsonl").contains("9223372036854775807"));
}

#[test]
fn big_json_numbers_keep_their_text_in_templates_ids_and_the_output() {
    let dir = Dir::new();
    dir.write(
        "p.jsonl",
        concat!(
            "{\"id\":12345678901234567890123,\"n\":1.000}\n",
            "{\"id\":9007199254740993,\"n\":2}\n",
            "{\"id\":9007199254740992,\"n\":3}\n",
            "{\"id\":12345678901234567890124,\"n\":4.5e1}\n",
        ),
    );
    let mock = Mock::start(&[]);
    let out = run(run_job(&dir, &mock).args(["--template", "n={n} id={id}"]));
    assert_eq!(
        out.code(),
        0,
        "distinct ids that are one float are not duplicates: {}",
        out.stderr
    );
    let prompts: Vec<String> = mock
        .requests()
        .iter()
        .map(|r| r["prompt"].as_str().unwrap().to_string())
        .collect();
    assert!(
        prompts.contains(&"n=1.000 id=12345678901234567890123".to_string()),
        "{prompts:?}"
    );
    // Digits are kept as written; an exponent is written with its sign (serde_json's text).
    assert!(
        prompts.contains(&"n=4.5e+1 id=12345678901234567890124".to_string()),
        "{prompts:?}"
    );
    let text = dir.read("out.jsonl");
    let ids: Vec<&str> = text
        .lines()
        .map(|l| {
            let start = l.find("\"id\":\"").unwrap() + 6;
            &l[start..start + l[start..].find('"').unwrap()]
        })
        .collect();
    assert_eq!(
        ids,
        [
            "12345678901234567890123",
            "9007199254740993",
            "9007199254740992",
            "12345678901234567890124"
        ]
    );
    assert!(
        text.contains("\"input\":{\"id\":12345678901234567890123,\"n\":1.000}"),
        "{text}"
    );
}

#[test]
fn an_answer_larger_than_max_response_size_fails_its_row_and_the_others_are_done() {
    let dir = Dir::new();
    dir.write(
        "p.jsonl",
        "{\"prompt\":\"one\"}\n{\"prompt\":\"[[mock:size=40000000]] huge\"}\n{\"prompt\":\"three\"}\n",
    );
    let mock = Mock::start(&[]);
    let out = run(run_job(&dir, &mock).args(["--max-response-size", "1MiB"]));
    assert_eq!(out.code(), 3, "{}", out.stderr);
    let rows = dir.jsonl("out.jsonl");
    assert_eq!(rows[0]["status"], "done");
    assert_eq!(rows[2]["status"], "done");
    assert_eq!(rows[1]["status"], "failed");
    assert_eq!(
        rows[1]["error"],
        "HTTP 200: the response is larger than --max-response-size 1 MiB"
    );
    assert_eq!(
        requests_per_prompt(&mock.requests())["[[mock:size=40000000]] huge"],
        1
    );
    assert!(
        std::fs::metadata(dir.path("out.jsonl.promptmill.db"))
            .unwrap()
            .len()
            < 1_000_000,
        "the body is not kept"
    );
}

#[test]
fn max_response_size_takes_sizes_as_the_batch_flags_do() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 1);
    let out = run(promptmill(&dir).args([
        "run",
        "p.jsonl",
        "-o",
        "out.jsonl",
        "--model",
        "m",
        "--max-response-size",
        "lots",
    ]));
    assert_eq!(out.code(), 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("`lots` is not a size (examples: 1000000, 100MB, 64MiB)"),
        "{}",
        out.stderr
    );
}

fn batch_job(dir: &Dir, mock: &Mock, extra: &[&str]) -> std::process::Command {
    let mut cmd = run_job(dir, mock);
    cmd.args(["--mode", "batch", "--poll-interval", "20ms"])
        .args(extra);
    cmd
}

#[test]
fn a_batch_result_line_that_will_never_parse_or_is_too_long_fails_its_row_with_the_reason() {
    let dir = Dir::new();
    dir.write(
        "p.jsonl",
        concat!(
            "{\"id\":\"a\",\"prompt\":\"fine\"}\n",
            "{\"id\":\"b\",\"prompt\":\"[[mock:usage=-1]] absurd\"}\n",
            "{\"id\":\"c\",\"prompt\":\"[[mock:reply=not-utf8]] bad byte\"}\n",
            "{\"id\":\"d\",\"prompt\":\"[[mock:size=3000000]] long\"}\n",
        ),
    );
    let mock = Mock::start(&[]);
    let out = run(&mut batch_job(&dir, &mock, &["--max-response-size", "1MiB"]));
    assert_eq!(out.code(), 3, "{}", out.stderr);
    let rows = dir.jsonl("out.jsonl");
    assert_eq!(rows[0]["status"], "done", "{}", rows[0]);
    let error = |i: usize| rows[i]["error"].as_str().unwrap_or_default().to_string();
    assert_eq!(rows[1]["status"], "failed");
    assert!(error(1).contains("`usage.prompt_tokens` is -1"), "{}", error(1));
    assert_eq!(rows[2]["status"], "failed");
    assert_eq!(error(2), "the batch's result line is not UTF-8");
    assert_eq!(rows[3]["status"], "failed");
    let long = error(3);
    assert!(long.starts_with("the batch's result line is 3"), "{long}");
    assert!(
        long.ends_with(" bytes long, more than --max-response-size 1 MiB"),
        "{long}"
    );
    assert!(!out.stderr.contains("could not be read"), "{}", out.stderr);
}

#[test]
fn csv_numbers_are_text_already_and_keep_every_digit() {
    let dir = Dir::new();
    dir.write(
        "p.csv",
        "id,n,prompt\n9007199254740993,1.000,a\n9007199254740992,2,b\n",
    );
    let mock = Mock::start(&[]);
    let out = run(promptmill(&dir).args([
        "run",
        "p.csv",
        "-o",
        "out.jsonl",
        "--model",
        "m",
        "--base-url",
        &mock.url,
        "--template",
        "{prompt} n={n}",
    ]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let rows = dir.jsonl("out.jsonl");
    assert_eq!(rows[0]["id"], "9007199254740993");
    assert_eq!(rows[1]["id"], "9007199254740992");
    assert_eq!(rows[0]["input"]["n"], "1.000");
    let prompts: Vec<Value> = mock.requests().iter().map(|r| r["prompt"].clone()).collect();
    assert!(prompts.contains(&Value::from("a n=1.000")), "{prompts:?}");
}
