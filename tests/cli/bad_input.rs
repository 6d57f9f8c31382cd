//! Invalid input: each error names the file, the line and the field; nothing is sent unless
//! `--skip-invalid` is given, and then the invalid rows are recorded as failed with the reason.

use serde_json::Value;

use crate::util::*;

/// Runs `promptmill run FILE` with `args` against a mock; returns the output and the mock.
fn try_run(dir: &Dir, file: &str, args: &[&str]) -> (Outcome, Mock) {
    let mock = Mock::start(&[]);
    let out = run(promptmill(dir)
        .args(["run", file, "-o", "out.jsonl", "--base-url", &mock.url])
        .args(args));
    (out, mock)
}

/// Asserts the run was refused with `expected` in its error and sent nothing.
fn assert_refused(dir: &Dir, file: &str, content: &[u8], args: &[&str], expected: &str) {
    dir.write(file, content);
    let (out, mock) = try_run(dir, file, args);
    assert_eq!(out.code(), 1, "stderr: {}", out.stderr);
    assert!(
        out.stderr.contains(expected),
        "expected {expected:?} in:\n{}",
        out.stderr
    );
    assert_eq!(
        mock.requests().len(),
        0,
        "nothing is sent when the input is invalid"
    );
    assert!(
        !dir.exists("out.jsonl.promptmill.db"),
        "no checkpoint is left behind"
    );
}

#[test]
fn a_csv_row_with_the_wrong_number_of_fields() {
    let dir = Dir::new();
    let p = dir.path("p.csv");
    assert_refused(
        &dir,
        "p.csv",
        b"name,color\nmug,red\nlamp\nchair,green\n",
        &["--model", "m", "--template", "{name} {color}"],
        &format!("{}:3: row has 1 field, but the header has 2", p.display()),
    );
}

#[test]
fn a_template_field_missing_from_a_jsonl_row() {
    let dir = Dir::new();
    let p = dir.path("p.jsonl");
    assert_refused(
        &dir,
        "p.jsonl",
        b"{\"name\":\"mug\",\"color\":\"red\"}\n{\"name\":\"lamp\"}\n",
        &["--model", "m", "--template", "{name} {color}"],
        &format!(
            "{}:2: field `color`: missing (the template uses {{color}})",
            p.display()
        ),
    );
}

#[test]
fn a_template_field_that_is_not_a_csv_column_is_caught_at_the_header() {
    let dir = Dir::new();
    assert_refused(
        &dir,
        "p.csv",
        b"name\nmug\n",
        &["--model", "m", "--template", "{name} {colour}"],
        "p.csv:1: field `colour`: the header has no such column, but the template uses it (columns: name)",
    );
}

#[test]
fn a_line_that_is_not_valid_json() {
    let dir = Dir::new();
    assert_refused(
        &dir,
        "p.jsonl",
        b"{\"prompt\":\"ok\"}\n{\"prompt\": oops}\n",
        &["--model", "m"],
        "p.jsonl:2: not valid JSON (expected value at line 1 column 12)",
    );
}

#[test]
fn invalid_utf8_names_the_field() {
    let dir = Dir::new();
    assert_refused(
        &dir,
        "p.csv",
        b"id,prompt\n1,caf\xe9\n",
        &["--model", "m"],
        "p.csv:2: field `prompt`: invalid UTF-8 (byte 4 of the field)",
    );
}

#[test]
fn an_empty_prompt() {
    let dir = Dir::new();
    assert_refused(
        &dir,
        "p.jsonl",
        b"{\"prompt\":\"fine\"}\n{\"prompt\":\"   \"}\n",
        &["--model", "m"],
        "p.jsonl:2: field `prompt`: the prompt is empty",
    );
}

#[test]
fn duplicate_ids() {
    let dir = Dir::new();
    assert_refused(
        &dir,
        "p.csv",
        b"id,prompt\na,one\nb,two\na,three\n",
        &["--model", "m"],
        "p.csv:4: field `id`: duplicate id `a` (first used on line 2)",
    );
}

#[test]
fn every_invalid_row_is_listed_up_to_ten() {
    let dir = Dir::new();
    let mut text = String::from("{\"prompt\":\"ok\"}\n");
    for _ in 0..12 {
        text.push_str("[1,2]\n");
    }
    dir.write("p.jsonl", text);
    let (out, _mock) = try_run(&dir, "p.jsonl", &["--model", "m"]);
    assert_eq!(out.code(), 1);
    assert!(
        out.stderr.contains("12 invalid rows; nothing was sent"),
        "{}",
        out.stderr
    );
    assert!(out
        .stderr
        .contains("p.jsonl:2: each line must be a JSON object, found an array"));
    assert!(out.stderr.contains("p.jsonl:11:"));
    assert!(!out.stderr.contains("p.jsonl:12:"));
    assert!(out.stderr.contains("… and 2 more"));
    assert!(out.stderr.contains("--skip-invalid"));
}

#[test]
fn skip_invalid_records_bad_rows_as_failed_and_sends_the_rest() {
    let dir = Dir::new();
    dir.write(
        "p.jsonl",
        "{\"id\":\"a\",\"prompt\":\"good one\"}\n{\"id\":\"b\",\"prompt\":null}\nnot json\n{\"id\":\"a\",\"prompt\":\"dup\"}\n{\"id\":\"c\",\"prompt\":\"good two\"}\n",
    );
    let (out, mock) = try_run(
        &dir,
        "p.jsonl",
        &["--model", "m", "--skip-invalid", "--summary", "s.json"],
    );
    assert_eq!(out.code(), 3, "{}", out.stderr);
    assert_eq!(mock.requests().len(), 2);
    let rows = dir.jsonl("out.jsonl");
    let status: Vec<&str> = rows.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["done", "invalid", "invalid", "invalid", "done"]);
    assert_eq!(
        rows[1]["error"],
        "invalid input at line 2: field `prompt`: must be a string, found null"
    );
    assert!(rows[2]["error"]
        .as_str()
        .unwrap()
        .starts_with("invalid input at line 3: not valid JSON"));
    assert_eq!(
        rows[3]["error"],
        "invalid input at line 4: field `id`: duplicate id `a` (first used on line 1)"
    );
    let s: Value = serde_json::from_str(&dir.read("s.json")).unwrap();
    assert_eq!(s["rows"]["skipped"], 3);
    assert_eq!(s["rows"]["done"], 2);
}

#[test]
fn a_bom_and_crlf_line_endings_are_accepted() {
    let dir = Dir::new();
    dir.write("p.csv", b"\xEF\xBB\xBFid,prompt\r\nx,hello\r\ny,world\r\n");
    let (out, _mock) = try_run(&dir, "p.csv", &["--model", "m"]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let rows = dir.jsonl("out.jsonl");
    assert_eq!(rows[0]["id"], "x");
    assert_eq!(rows[1]["completion"], "Mock reply: world");
}

#[test]
fn an_empty_file_is_an_error() {
    let dir = Dir::new();
    assert_refused(
        &dir,
        "p.jsonl",
        b"",
        &["--model", "m"],
        "p.jsonl: the input has no rows",
    );
}

#[test]
fn an_unknown_extension_asks_for_format() {
    let dir = Dir::new();
    dir.write("p.txt", "hello\n");
    let (out, _mock) = try_run(&dir, "p.txt", &["--model", "m"]);
    assert_eq!(out.code(), 1);
    assert!(
        out.stderr.contains("--format: cannot tell the format"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_template_without_a_model_is_a_flag_error() {
    let dir = Dir::new();
    dir.write("p.csv", "name\nmug\n");
    let (out, _mock) = try_run(&dir, "p.csv", &["--template", "{name}"]);
    assert_eq!(out.code(), 1);
    assert!(
        out.stderr.contains("--model: is required with --template"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_output_that_is_the_input_is_refused() {
    let dir = Dir::new();
    let input = prompts_jsonl(&dir, "p.jsonl", 1);
    let before = std::fs::read(&input).unwrap();
    let out = run(promptmill(&dir).args([
        "run",
        "p.jsonl",
        "-o",
        "./p.jsonl",
        "--model",
        "m",
        "--base-url",
        "http://127.0.0.1:9/v1",
    ]));
    assert_eq!(out.code(), 1);
    assert!(
        out.stderr.contains("--output: is the input file"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read(&input).unwrap(), before);
}

#[test]
fn duplicate_ids_in_the_id_column_name_that_column() {
    let dir = Dir::new();
    assert_refused(
        &dir,
        "p.csv",
        b"sku,prompt\nx,one\nx,two\n",
        &["--model", "m", "--id-column", "sku"],
        "p.csv:3: field `sku`: duplicate id `x` (first used on line 2)",
    );
}
