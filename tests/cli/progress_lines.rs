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

#[test]
fn on_an_80_column_dumb_terminal_progress_lines_break_between_fields() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 8);
    let mock = Mock::start(&["--latency", "100ms"]);
    let mut args = slow_run_args(&mock);
    args.extend(["--price-in", "1", "--price-out", "2"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = on_a_terminal(&dir, &args, &[("TERM", "dumb")], "");
    assert_eq!(out.code(), 0, "{}", out.stdout);
    let lines: Vec<&str> = out.stdout.lines().map(|l| l.trim_end_matches('\r')).collect();
    let first = lines
        .iter()
        .position(|l| l.contains("/8 rows ("))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    // The line is broken between fields, never inside a number.
    assert!(lines[first].ends_with(','), "{}", out.stdout);
    assert!(lines[first + 1].starts_with("  "), "{}", out.stdout);
    for l in &lines[first..] {
        assert!(l.chars().count() <= 80, "over 80 columns: {l:?}");
    }
    let line = lines[first..first + 4].join(" ");
    assert!(
        line.contains(" prompt + ") && line.contains(" completion tokens"),
        "{line}"
    );
}

#[test]
fn the_eta_is_unknown_until_a_row_has_finished() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 8);
    // The first answer takes 600 ms; the first line comes at 200 ms.
    let mock = Mock::start(&["--latency", "600ms"]);
    let out = run(promptmill(&dir)
        .args(slow_run_args(&mock))
        .args(["--timeout", "30s"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let first = progress_lines(&out.stderr)[0];
    assert!(
        first.starts_with("promptmill: 0/8 rows (0.0%), ETA ?, "),
        "{first}"
    );
}

#[test]
fn plain_progress_lines_have_thousands_separators() {
    let dir = Dir::new();
    let mut text = String::new();
    for i in 1..=1200 {
        text.push_str(&format!("{{\"id\":\"r{i}\",\"prompt\":\"p {i}\"}}\n"));
    }
    dir.write("p.jsonl", text);
    let mock = Mock::start(&["--latency", "10ms"]);
    // 1,200 rows, 4 at a time, 10 ms each: at least 3 s, many 100 ms intervals.
    let out = run(run_job(&dir, &mock).args(["--concurrency", "4", "--progress-interval", "100ms"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("/1,200 rows ("))
        .unwrap_or_else(|| panic!("{}", out.stderr));
    assert!(line.contains(" prompt + "), "{line}");
    assert!(
        out.stderr.contains("  rows       1,200 total: 1,200 done"),
        "{}",
        out.stderr
    );
}
