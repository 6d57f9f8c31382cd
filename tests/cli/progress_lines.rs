//! The progress display as a user sees it: a plain line every interval off a terminal that can
//! redraw (a pipe, `TERM=dumb`).

use crate::pty::on_a_terminal;
use crate::util::*;

/// 8 rows, one at a time, 100 ms each: the run lasts ≥ 0.8 s, four times the 200 ms interval.
fn slow_run_args(mock: &Mock) -> Vec<String> {
    [
        "run",
        "p.jsonl",
        "-o",
        "out.jsonl",
        "--model",
        "m",
        "--concurrency",
        "1",
        "--progress-interval",
        "200ms",
        "--base-url",
        &mock.url,
    ]
    .map(String::from)
    .to_vec()
}

fn progress_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.contains("promptmill: ") && l.contains("/8 rows ("))
        .collect()
}

#[test]
fn term_dumb_on_a_terminal_gets_plain_progress_lines_without_escapes() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 8);
    let mock = Mock::start(&["--latency", "100ms"]);
    let args = slow_run_args(&mock);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = on_a_terminal(&dir, &args, &[("TERM", "dumb")], "");
    assert_eq!(out.code(), 0, "{}", out.stdout);
    assert!(!progress_lines(&out.stdout).is_empty(), "{}", out.stdout);
    assert!(
        !out.stdout.contains('\x1b'),
        "no escape sequences: {:?}",
        out.stdout
    );
}

#[test]
fn term_dumb_with_stderr_a_pipe_gets_plain_progress_lines() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 8);
    let mock = Mock::start(&["--latency", "100ms"]);
    let out = run(promptmill(&dir).args(slow_run_args(&mock)).env("TERM", "dumb"));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(!progress_lines(&out.stderr).is_empty(), "{}", out.stderr);
}
