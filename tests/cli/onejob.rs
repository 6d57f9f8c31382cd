//! One job, one process (issue 10, item 8): however a second process reaches a running job —
//! the same checkpoint path, a symlink or a hard link to it, or a copy of the checkpoint that
//! writes the same output — it is refused before sending, naming the running process.

use std::process::{Child, Stdio};
use std::time::Duration;

use crate::util::*;

/// Starts the job in the background against a slow mock and waits until it is sending.
fn first_run(dir: &Dir, mock: &Mock) -> Child {
    prompts_jsonl(dir, "p.jsonl", 100);
    let child = run_job(dir, mock)
        .args(["--concurrency", "2", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(30), "the first run to send", || {
        mock.requests().len() >= 4
    });
    child
}

/// `promptmill resume DB --base-url OTHER`: refused with the running process's pid, and
/// `other` sees no request.
fn refused_resume(dir: &Dir, db: &str, extra: &[&str], first: &Child) {
    let other = Mock::start(&[]);
    let second = run(promptmill(dir)
        .args(["resume", db, "--base-url", &other.url])
        .args(extra));
    assert_eq!(second.code(), 1, "{}", second.stderr);
    let holder = format!("another promptmill (pid {}, started ", first.id());
    assert!(second.stderr.contains(&holder), "{}", second.stderr);
    assert!(second.stderr.contains("is running this job"), "{}", second.stderr);
    assert_eq!(other.stats()["requests"], 0, "the second process sent nothing");
}

/// After both: the first finished every row once, the checkpoint is sound, and no lock file
/// is left.
fn finished_cleanly(dir: &Dir, mock: &Mock, mut first: Child) {
    assert_eq!(wait_for(&mut first, Duration::from_secs(60)).code(), Some(0));
    let per_prompt = requests_per_prompt(&mock.requests());
    assert_eq!(per_prompt.len(), 100);
    assert!(per_prompt.values().all(|&n| n == 1), "no row was sent twice");
    let conn = rusqlite::Connection::open(dir.path("out.jsonl.promptmill.db")).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let litter: Vec<String> = std::fs::read_dir(dir.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("lock") || n.contains("promptmill-tmp"))
        .collect();
    assert!(litter.is_empty(), "no lock file is left behind: {litter:?}");
}

#[test]
fn a_second_resume_of_the_same_checkpoint_path_is_refused() {
    let dir = Dir::new();
    let mock = Mock::start(&["--latency", "50ms"]);
    let first = first_run(&dir, &mock);
    refused_resume(&dir, "out.jsonl.promptmill.db", &[], &first);
    finished_cleanly(&dir, &mock, first);
}

#[cfg(unix)]
#[test]
fn a_resume_through_a_symlink_to_the_checkpoint_is_refused() {
    let dir = Dir::new();
    let mock = Mock::start(&["--latency", "50ms"]);
    let first = first_run(&dir, &mock);
    std::os::unix::fs::symlink("out.jsonl.promptmill.db", dir.path("soft.db")).unwrap();
    refused_resume(&dir, "soft.db", &[], &first);
    std::fs::remove_file(dir.path("soft.db")).unwrap();
    finished_cleanly(&dir, &mock, first);
}

#[test]
fn a_resume_through_a_hard_link_to_the_checkpoint_is_refused_even_with_another_output() {
    let dir = Dir::new();
    let mock = Mock::start(&["--latency", "50ms"]);
    let first = first_run(&dir, &mock);
    std::fs::hard_link(dir.path("out.jsonl.promptmill.db"), dir.path("hard.db")).unwrap();
    refused_resume(&dir, "hard.db", &["-o", "elsewhere.jsonl"], &first);
    assert!(!dir.exists("elsewhere.jsonl"));
    std::fs::remove_file(dir.path("hard.db")).unwrap();
    finished_cleanly(&dir, &mock, first);
}

#[test]
fn a_copy_of_the_checkpoint_resumed_with_the_same_output_is_refused() {
    let dir = Dir::new();
    let mock = Mock::start(&["--latency", "50ms"]);
    let first = first_run(&dir, &mock);
    // A copy as a backup tool would make it, while the job runs (SQLite's own backup, so the
    // copy is a consistent database; it records the same output).
    let conn = rusqlite::Connection::open(dir.path("out.jsonl.promptmill.db")).unwrap();
    conn.execute("VACUUM INTO ?1", [dir.path("copy.db").to_str().unwrap()])
        .unwrap();
    drop(conn);
    refused_resume(&dir, "copy.db", &[], &first);
    for name in ["copy.db", "copy.db-wal", "copy.db-shm"] {
        let _ = std::fs::remove_file(dir.path(name));
    }
    finished_cleanly(&dir, &mock, first);
}
