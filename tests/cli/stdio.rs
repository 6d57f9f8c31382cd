//! Standard input and output: `promptmill run -` reads the rows from stdin (the checkpoint then
//! holds every request, so the job resumes without them), `-o -` writes the results to stdout
//! at the end of the run, in input order, while progress and the summary stay on stderr.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use crate::util::*;

/// Runs `cmd` with `input` piped to its standard input, capturing its output.
fn run_piped(cmd: &mut Command, input: &str) -> Outcome {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promptmill");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_string();
    let feeder = std::thread::spawn(move || {
        // The child may refuse before it reads (a broken pipe then is expected).
        let _ = stdin.write_all(input.as_bytes());
    });
    fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    }
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let status = wait_for(&mut child, DEADLINE);
    feeder.join().expect("stdin feeder");
    Outcome {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

fn rows(n: usize) -> String {
    (1..=n)
        .map(|i| format!("{{\"id\":\"r{i}\",\"prompt\":\"Say something about item {i}.\"}}\n"))
        .collect()
}

fn stdin_job(dir: &Dir, mock: &Mock, extra: &[&str]) -> Command {
    let mut cmd = promptmill(dir);
    cmd.args([
        "run",
        "-",
        "--format",
        "jsonl",
        "--model",
        "m",
        "--base-url",
        &mock.url,
    ])
    .args(extra);
    cmd
}

#[test]
fn rows_from_stdin_and_results_to_stdout_in_input_order() {
    let dir = Dir::new();
    // Jitter makes the answers arrive out of order; the output is in input order all the same.
    let mock = Mock::start(&["--latency", "2ms", "--latency-jitter", "30ms"]);
    let out = run_piped(
        &mut stdin_job(&dir, &mock, &["-o", "-", "--db", "job.db", "--concurrency", "8"]),
        &rows(30),
    );
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let lines: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout holds only results: {l:?}: {e}")))
        .collect();
    let ids: Vec<String> = lines
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = (1..=30).map(|i| format!("r{i}")).collect();
    assert_eq!(ids, expected);
    assert!(lines.iter().all(|l| l["status"] == "done"));
    assert!(
        out.stderr
            .contains("promptmill: read 30 rows from standard input"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("── promptmill: finished ──"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("  output     standard output\n"),
        "{}",
        out.stderr
    );
    assert!(dir.exists("job.db"), "the checkpoint is where --db says");
    assert!(!dir.exists("-"), "no file named `-`");

    // `export -o -` writes the same lines.
    let export = run(promptmill(&dir).args(["export", "job.db", "-o", "-"]));
    assert_eq!(export.code(), 0, "{}", export.stderr);
    assert_eq!(export.stdout, out.stdout);
    assert!(
        export.stderr.contains("wrote 30 rows to standard output"),
        "{}",
        export.stderr
    );
}

#[test]
fn stdin_needs_format_and_stdout_needs_a_db() {
    let dir = Dir::new();
    let mock = Mock::start(&[]);
    let no_format = run_piped(
        promptmill(&dir).args([
            "run",
            "-",
            "-o",
            "out.jsonl",
            "--model",
            "m",
            "--base-url",
            &mock.url,
        ]),
        &rows(2),
    );
    assert_eq!(no_format.code(), 1);
    assert!(
        no_format
            .stderr
            .contains("--format: is required when the input is standard input (`-`)"),
        "{}",
        no_format.stderr
    );
    let no_db = run_piped(&mut stdin_job(&dir, &mock, &["-o", "-"]), &rows(2));
    assert_eq!(no_db.code(), 1);
    assert!(
        no_db.stderr.contains("--db: is required with `-o -`"),
        "{}",
        no_db.stderr
    );
    assert_eq!(mock.requests().len(), 0, "nothing was sent");
    let sample = run_piped(
        &mut stdin_job(&dir, &mock, &["-o", "out.jsonl", "--dry-run", "--sample", "1"]),
        &rows(2),
    );
    assert_eq!(sample.code(), 1);
    assert!(
        sample
            .stderr
            .contains("--sample: cannot read standard input twice"),
        "{}",
        sample.stderr
    );
}

#[test]
fn a_job_read_from_stdin_resumes_from_its_checkpoint_alone() {
    let dir = Dir::new();
    // The first three requests fail for good (a 400 is not retried), so the job needs a resume.
    let mock = Mock::start(&["--fail-first", "3", "--fail-status", "400"]);
    let first = run_piped(
        &mut stdin_job(&dir, &mock, &["-o", "out.jsonl", "--concurrency", "1"]),
        &rows(5),
    );
    assert_eq!(first.code(), 3, "{}", first.stderr);
    let failed = dir.jsonl("out.jsonl");
    assert_eq!(failed.iter().filter(|l| l["status"] == "failed").count(), 3);

    // No input at all: the checkpoint holds every request.
    let resumed = run(promptmill(&dir).args(["resume", "out.jsonl.promptmill.db", "--retry-failed"]));
    assert_eq!(resumed.code(), 0, "{}", resumed.stderr);
    let done = dir.jsonl("out.jsonl");
    assert_eq!(done.len(), 5);
    assert!(done.iter().all(|l| l["status"] == "done"), "{done:?}");
    assert_eq!(mock.requests().len(), 8, "3 failed + 2 done, then the 3 again");

    // The same command with the same rows on stdin resumes (nothing left to send); other rows
    // are refused as another job's.
    let again = run_piped(&mut stdin_job(&dir, &mock, &["-o", "out.jsonl"]), &rows(5));
    assert_eq!(again.code(), 0, "{}", again.stderr);
    assert!(again.stderr.contains("resuming the job in"), "{}", again.stderr);
    let other = run_piped(&mut stdin_job(&dir, &mock, &["-o", "out.jsonl"]), &rows(4));
    assert_eq!(other.code(), 1, "{}", other.stderr);
    assert!(
        other
            .stderr
            .contains("this checkpoint was made for a different job"),
        "{}",
        other.stderr
    );
    assert_eq!(mock.requests().len(), 8, "nothing sent again");
}
