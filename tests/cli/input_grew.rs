//! An input that only grew (rows appended) is taken by the same command: the new rows join the
//! job and are sent, the done ones are not sent again. Any other change is refused with what
//! differs: the sizes and the first line whose row differs.

use crate::util::*;

/// The prompts the mock received, sorted.
fn prompts(mock: &Mock) -> Vec<String> {
    let mut p: Vec<String> = mock
        .requests()
        .iter()
        .filter_map(|r| r["prompt"].as_str().map(str::to_string))
        .collect();
    p.sort();
    p
}

fn append(dir: &Dir, name: &str, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path(name))
        .expect("open to append");
    f.write_all(text.as_bytes()).expect("append");
}

#[test]
fn a_jsonl_input_that_only_grew_adds_the_new_rows_and_sends_only_them() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 5);
    let mock = Mock::start(&[]);
    assert_eq!(run(&mut run_job(&dir, &mock)).code(), 0);
    append(
        &dir,
        "p.jsonl",
        "{\"id\":\"r6\",\"prompt\":\"Say something about item 6.\"}\n\n{\"id\":\"r7\",\"prompt\":\"Say something about item 7.\"}\n",
    );
    let out = run(&mut run_job(&dir, &mock));
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    assert!(
        out.stderr
            .contains("promptmill: input grew: 2 new rows added to the job"),
        "{}",
        out.stderr
    );
    let sent = prompts(&mock);
    let expected: Vec<String> = (1..=7)
        .map(|i| format!("Say something about item {i}."))
        .collect();
    assert_eq!(sent, expected, "each row sent once");
    let rows = dir.jsonl("out.jsonl");
    assert_eq!(rows.len(), 7);
    assert!(rows.iter().all(|r| r["status"] == "done"));
    assert_eq!(rows[6]["id"], "r7");

    // The grown input is now the job's: the same command again has nothing to send.
    let again = run(&mut run_job(&dir, &mock));
    assert_eq!(again.code(), 0, "stderr: {}", again.stderr);
    assert!(!again.stderr.contains("input grew"), "{}", again.stderr);
    assert_eq!(prompts(&mock).len(), 7);
}

#[test]
fn a_csv_input_that_grew_adds_its_rows_and_checks_them() {
    let dir = Dir::new();
    dir.write("p.csv", "id,prompt\na,first\nb,second\n");
    let mock = Mock::start(&[]);
    let job = |mock: &Mock| {
        run(promptmill(&dir).args([
            "run",
            "p.csv",
            "-o",
            "out.jsonl",
            "--model",
            "m",
            "--base-url",
            &mock.url,
        ]))
    };
    assert_eq!(job(&mock).code(), 0);
    // A duplicate of an old id is caught like any duplicate; nothing is added or sent.
    append(&dir, "p.csv", "c,third\na,again\n");
    let refused = job(&mock);
    assert_eq!(refused.code(), 1, "stderr: {}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("p.csv:5: field `id`: duplicate id `a` (first used on line 2)"),
        "{}",
        refused.stderr
    );
    assert_eq!(prompts(&mock), ["first", "second"]);

    dir.write("p.csv", "id,prompt\na,first\nb,second\nc,third\n");
    let out = job(&mock);
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    assert!(
        out.stderr
            .contains("promptmill: input grew: 1 new rows added to the job"),
        "{}",
        out.stderr
    );
    assert_eq!(prompts(&mock), ["first", "second", "third"]);
}

#[test]
fn an_input_changed_before_its_end_is_refused_with_the_sizes_and_the_first_differing_line() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 4);
    let mock = Mock::start(&[]);
    assert_eq!(run(&mut run_job(&dir, &mock)).code(), 0);
    let before = std::fs::metadata(dir.path("p.jsonl")).expect("size").len();
    let text = dir.read("p.jsonl").replace("item 3.", "item three.");
    dir.write(
        "p.jsonl",
        format!("{text}{{\"id\":\"r5\",\"prompt\":\"More.\"}}\n"),
    );
    let after = std::fs::metadata(dir.path("p.jsonl")).expect("size").len();
    let out = run(&mut run_job(&dir, &mock));
    assert_eq!(out.code(), 1, "stderr: {}", out.stderr);
    let input = std::fs::canonicalize(dir.path("p.jsonl")).expect("canonical");
    let expected = format!(
        "changed: the input {} ({before} bytes in the checkpoint, {after} now; the rows differ from line 3 on)",
        input.display()
    );
    assert!(
        out.stderr.contains(&expected),
        "expected {expected:?} in:\n{}",
        out.stderr
    );
    assert_eq!(
        out.stderr.matches(&input.display().to_string()).count(),
        1,
        "the input's path is printed once: {}",
        out.stderr
    );
    assert_eq!(prompts(&mock).len(), 4, "nothing more was sent");
}

#[test]
fn an_old_last_line_without_a_line_break_is_not_taken_as_grown() {
    let dir = Dir::new();
    dir.write(
        "p.jsonl",
        "{\"id\":\"a\",\"prompt\":\"one\"}\n{\"id\":\"b\",\"prompt\":\"two\"}",
    );
    let mock = Mock::start(&[]);
    assert_eq!(run(&mut run_job(&dir, &mock)).code(), 0);
    append(&dir, "p.jsonl", "\n{\"id\":\"c\",\"prompt\":\"three\"}\n");
    let out = run(&mut run_job(&dir, &mock));
    assert_eq!(out.code(), 1, "stderr: {}", out.stderr);
    assert!(
        out.stderr.contains(
            "rows were appended, but its old last line (line 2) had no line break, so the appended text changed that row"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(prompts(&mock), ["one", "two"]);
}
