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

#[test]
fn the_eta_is_unknown_once_ctrl_c_stops_the_run() {
    use std::io::BufRead;
    use std::process::Stdio;
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 5);
    // With this seed the first request is answered and the second never is: the run has a
    // row done and a request on the wire for as long as the test needs.
    let mock = Mock::start(&["--rate-hang", "0.5", "--seed", "3"]);
    let mut child = promptmill(&dir)
        .args(slow_run_args(&mock))
        .args(["--drain-timeout", "1s"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the run");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let next = |what: &str| -> String {
        rx.recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("no line while waiting for {what}"))
    };
    // Running, one row done: the ETA is a time.
    loop {
        let line = next("a row done and one on the wire");
        if line.contains("1/5 rows") && line.contains(" 1 on the wire") {
            assert!(!line.contains("ETA ?"), "{line}");
            break;
        }
    }
    // SAFETY: signals a child process this test started.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    // Draining (up to 1 s, a line every 200 ms): the run will not finish, so no ETA.
    let mut drained = Vec::new();
    loop {
        let line = next("the end of the run");
        if line.contains("promptmill: interrupted") {
            break;
        }
        if line.contains("/5 rows (") {
            drained.push(line);
        }
    }
    let _ = wait_for(&mut child, DEADLINE);
    // The first line after the signal may have been on its way already; the rest say `?`.
    assert!(drained.len() >= 2, "{drained:?}");
    for line in &drained[1..] {
        assert!(line.contains("ETA ?, "), "{line}");
    }
}
