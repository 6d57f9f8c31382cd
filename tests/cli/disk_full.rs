//! A full disk, without root or a small filesystem: the run is started under a file-size limit
//! (`RLIMIT_FSIZE`, with `SIGXFSZ` ignored), so a write past it fails with `EFBIG` as a write to
//! a full disk fails with `ENOSPC`, through the same error paths. A run that finds no room stops
//! with exit 4, says what could not be written, that the completed rows are safe in the
//! checkpoint, and which command finishes the job; a checkpoint that cannot even hold the input
//! is an error naming it (exit 1), before anything is sent.

use std::collections::HashSet;
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::util::*;

/// Runs `cmd` in a child whose files may not grow past `bytes`.
fn with_file_size_limit(cmd: &mut Command, bytes: u64) -> &mut Command {
    // SAFETY: between fork and exec the closure only calls async-signal-safe functions
    // (signal, setrlimit) and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// What both stops say, naming the checkpoint as the command named it.
fn safe(db: &str) -> String {
    format!("The rows completed so far are safe in the checkpoint {db}. Free some space, then")
}

#[test]
fn a_checkpoint_that_cannot_grow_stops_the_run_with_the_resume_command() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3000);
    let mock = Mock::start(&[]);
    // The loaded checkpoint takes about 0.7 MB; its write-ahead log passes 1.5 MB a few hundred
    // rows into the run.
    let out = run(with_file_size_limit(&mut run_job(&dir, &mock), 1_500_000));
    assert_eq!(out.code(), 4, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("out.jsonl.promptmill.db: could not write the checkpoint: no room to write"),
        "{}",
        out.stderr
    );
    let db = dir.path("out.jsonl.promptmill.db").display().to_string();
    assert!(
        out.stderr
            .contains(&format!("{} resume with:\n  promptmill resume {db}", safe(&db))),
        "{}",
        out.stderr
    );
    assert!(
        !dir.exists("out.jsonl"),
        "no output from a run that did not finish"
    );

    let s = status_json(&dir);
    assert_eq!(s["rows"]["in_flight"], 0, "no run is going: {}", s["rows"]);
    let done = s["rows"]["done"].as_u64().unwrap();
    assert!(done > 0 && done < 3000, "the limit is met mid-run: {}", s["rows"]);
    assert_eq!(
        s["rows"]["pending"].as_u64().unwrap() + done,
        3000,
        "{}",
        s["rows"]
    );
    let table = run(promptmill(&dir).args(["status", "out.jsonl.promptmill.db"]));
    assert!(table.stdout.contains("  in flight 0\n"), "{}", table.stdout);
    // What the stopped run had committed, read back before resuming.
    let exported = run(promptmill(&dir).args(["export", "out.jsonl.promptmill.db", "-o", "first.jsonl"]));
    assert_eq!(exported.code(), 0, "{}", exported.stderr);
    let committed: HashSet<String> = dir
        .jsonl("first.jsonl")
        .iter()
        .filter(|r| r["status"] == "done")
        .map(|r| r["input"]["prompt"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(committed.len() as u64, done);

    let resumed = run(promptmill(&dir).args(["resume", "out.jsonl.promptmill.db"]));
    assert_eq!(resumed.code(), 0, "{}", resumed.stderr);
    let rows = dir.jsonl("out.jsonl");
    assert_eq!(rows.len(), 3000);
    assert!(rows.iter().all(|r| r["status"] == "done"));
    let per_prompt = requests_per_prompt(&mock.requests());
    for prompt in &committed {
        assert_eq!(
            per_prompt.get(prompt),
            Some(&1),
            "a committed row was sent again: {prompt}"
        );
    }
}

#[test]
fn a_checkpoint_that_cannot_hold_the_input_is_an_error_naming_it_before_sending() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3000);
    let mock = Mock::start(&[]);
    // Reading 3,000 rows into the checkpoint needs more than 300 kB.
    let out = run(with_file_size_limit(&mut run_job(&dir, &mock), 300_000));
    assert_eq!(
        out.code(),
        1,
        "nothing was done, nothing to resume: {}",
        out.stderr
    );
    let db = dir.path("out.jsonl.promptmill.db").display().to_string();
    assert!(
        out.stderr.contains(&format!(
            "promptmill: error: {db}: could not write the checkpoint: no room to write"
        )),
        "{}",
        out.stderr
    );
    assert_eq!(mock.stats()["requests"], 0, "nothing was sent");
}

#[test]
fn an_output_that_cannot_be_written_stops_the_run_with_the_export_command() {
    output_without_room(&[]);
}

#[test]
fn an_output_that_cannot_be_written_stops_a_batch_run_with_the_export_command() {
    output_without_room(&["--mode", "batch", "--poll-interval", "20ms"]);
}

/// A job run with `args` to the end, its output removed, then resumed under a limit the output
/// cannot fit in.
fn output_without_room(args: &[&str]) {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3000);
    let mock = Mock::start(&[]);
    let first = run(run_job(&dir, &mock).args(args));
    assert_eq!(first.code(), 0, "{}", first.stderr);
    let full = dir.read("out.jsonl");
    let first_requests = mock.stats()["requests"].clone();
    std::fs::remove_file(dir.path("out.jsonl")).unwrap();

    // Nothing left to send: this run only writes the output (about 0.9 MB), past a 300 kB limit.
    let resume = || {
        let mut cmd = promptmill(&dir);
        cmd.args(["resume", "out.jsonl.promptmill.db"]);
        cmd
    };
    let out = run(with_file_size_limit(&mut resume(), 300_000));
    assert_eq!(out.code(), 4, "{}", out.stderr);
    let path = dir.path("out.jsonl").display().to_string();
    assert!(
        out.stderr
            .contains(&format!("could not write {path}: File too large")),
        "{}",
        out.stderr
    );
    let export = format!("promptmill export out.jsonl.promptmill.db -o {path}");
    assert!(
        out.stderr.contains(&format!(
            "{} write the output with:\n  {export}",
            safe("out.jsonl.promptmill.db")
        )),
        "{}",
        out.stderr
    );
    assert!(!dir.exists("out.jsonl"), "no half-written output");
    let leftovers: Vec<_> = std::fs::read_dir(dir.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("out.jsonl") && !n.starts_with("out.jsonl.promptmill.db"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let runs = status_json(&dir)["runs"].clone();
    assert_eq!(
        runs[1]["outcome"], "output_failed",
        "not recorded as finished: {runs}"
    );

    let args: Vec<&str> = export.split(' ').skip(1).collect();
    let exported = run(promptmill(&dir).args(&args));
    assert_eq!(exported.code(), 0, "{}", exported.stderr);
    assert_eq!(dir.read("out.jsonl"), full, "the command given finishes the job");
    assert_eq!(mock.stats()["requests"], first_requests, "nothing was sent again");
}
