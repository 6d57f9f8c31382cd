//! Checkpoints: kills, signals, reruns, changed settings, resuming from the database alone.

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::util::*;

/// Row ids the checkpoint records as done (via `export`, which reads a live or dead checkpoint).
fn done_ids(dir: &Dir) -> HashSet<String> {
    let out = run(promptmill(dir).args(["export", "out.jsonl.promptmill.db", "-o", "snapshot.jsonl"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    dir.jsonl("snapshot.jsonl")
        .into_iter()
        .filter(|r| r["status"] == "done")
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn sigkill_mid_run_then_resume_sends_no_done_row_twice() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 2000);
    let mock = Mock::start(&["--latency", "20ms", "--latency-jitter", "10ms"]);
    let mut child = run_job(&dir, &mock)
        .args(["--concurrency", "16", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(60), "300 requests at the server", || {
        mock.requests().len() >= 300
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let done_before = done_ids(&dir);
    assert!(
        !done_before.is_empty(),
        "some rows were committed before the kill"
    );
    assert!(done_before.len() < 2000, "the kill came before the end");
    let sent_before = mock.requests().len();

    let out = run(run_job(&dir, &mock).args(["--concurrency", "16"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.stderr.contains("resuming"), "{}", out.stderr);

    let rows = dir.jsonl("out.jsonl");
    assert_eq!(rows.len(), 2000, "every input row has one output row");
    let ids: HashSet<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2000, "no row is written twice");
    assert!(rows.iter().all(|r| r["status"] == "done"));

    let per_prompt = requests_per_prompt(&mock.requests());
    for id in &done_before {
        let n: usize = id[1..].parse().unwrap();
        let prompt = format!("Say something about item {n}.");
        assert_eq!(
            per_prompt[&prompt], 1,
            "row {id} was committed done, then sent again"
        );
    }
    let extra = mock.requests().len() - 2000;
    assert!(
        extra <= 16 * 4,
        "{extra} requests beyond one per row (sent {sent_before} before the kill)"
    );
}

#[test]
fn running_the_same_command_again_sends_nothing_more() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 20);
    let mock = Mock::start(&[]);
    let first = run(&mut run_job(&dir, &mock));
    assert_eq!(first.code(), 0, "{}", first.stderr);
    let output = dir.read("out.jsonl");
    let again = run(run_job(&dir, &mock).args(["--summary", "s.json"]));
    assert_eq!(again.code(), 0, "{}", again.stderr);
    assert_eq!(mock.requests().len(), 20);
    assert_eq!(dir.read("out.jsonl"), output);
    let s: Value = serde_json::from_str(&dir.read("s.json")).unwrap();
    assert_eq!(s["run"]["requests"], 0);
    assert_eq!(s["rows"]["done"], 20);
}

#[test]
fn a_changed_template_is_refused_and_restart_starts_over() {
    let dir = Dir::new();
    dir.write("p.csv", "name\nmug\nlamp\n");
    let mock = Mock::start(&[]);
    let with_template = |t: &str| {
        let mut cmd = promptmill(&dir);
        cmd.args([
            "run",
            "p.csv",
            "-o",
            "out.jsonl",
            "--model",
            "m",
            "--template",
            t,
            "--base-url",
            &mock.url,
        ]);
        cmd
    };
    assert_eq!(run(&mut with_template("Describe {name}.")).code(), 0);
    let refused = run(&mut with_template("Sell {name}."));
    assert_eq!(refused.code(), 1);
    assert!(
        refused
            .stderr
            .contains(r#"changed: --template (was "Describe {name}.", now "Sell {name}.")"#),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("--restart"), "{}", refused.stderr);
    assert_eq!(mock.requests().len(), 2, "nothing was sent");

    let restarted = run(with_template("Sell {name}.").arg("--restart"));
    assert_eq!(restarted.code(), 0, "{}", restarted.stderr);
    assert_eq!(dir.jsonl("out.jsonl")[0]["completion"], "Mock reply: Sell mug.");
}

#[test]
fn a_changed_input_file_or_model_is_refused() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    let mock = Mock::start(&[]);
    assert_eq!(run(&mut run_job(&dir, &mock)).code(), 0);
    let other_model = run(promptmill(&dir).args([
        "run",
        "p.jsonl",
        "-o",
        "out.jsonl",
        "--model",
        "other",
        "--base-url",
        &mock.url,
    ]));
    assert_eq!(other_model.code(), 1);
    assert!(
        other_model.stderr.contains(r#"--model (was "m", now "other")"#),
        "{}",
        other_model.stderr
    );

    // Rows removed (an input that only grew is taken: see input_grew.rs).
    prompts_jsonl(&dir, "p.jsonl", 2);
    let changed = run(&mut run_job(&dir, &mock));
    assert_eq!(changed.code(), 1);
    assert!(
        changed.stderr.contains("the rows differ from line 3 on"),
        "{}",
        changed.stderr
    );
}

#[test]
fn resume_needs_only_the_checkpoint() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 10);
    let mock = Mock::start_with_env(&["--api-key-env", "MOCK_KEY"], &[("MOCK_KEY", "k1")]);
    let stopped = run(run_job(&dir, &mock).env("OPENAI_API_KEY", "wrong"));
    assert_eq!(stopped.code(), 4, "{}", stopped.stderr);
    std::fs::remove_file(dir.path("p.jsonl")).unwrap();
    let resumed = run(promptmill(&dir)
        .args(["resume", "out.jsonl.promptmill.db"])
        .env("OPENAI_API_KEY", "k1"));
    assert_eq!(resumed.code(), 0, "{}", resumed.stderr);
    let rows = dir.jsonl("out.jsonl");
    assert_eq!(rows.len(), 10);
    assert!(rows.iter().all(|r| r["status"] == "done"));
}

#[test]
fn failed_rows_are_sent_again_only_with_retry_failed() {
    let dir = Dir::new();
    dir.write(
        "p.jsonl",
        "{\"prompt\":\"[[mock:fail-times=1:status=422]] flaky\"}\n{\"prompt\":\"fine\"}\n",
    );
    let mock = Mock::start(&[]);
    assert_eq!(run(&mut run_job(&dir, &mock)).code(), 3);
    assert_eq!(
        run(&mut run_job(&dir, &mock)).code(),
        3,
        "a plain rerun leaves failed rows alone"
    );
    assert_eq!(mock.requests().len(), 2);
    let retried = run(run_job(&dir, &mock).arg("--retry-failed"));
    assert_eq!(retried.code(), 0, "{}", retried.stderr);
    assert_eq!(mock.requests().len(), 3, "only the failed row was sent again");
    assert!(dir.jsonl("out.jsonl").iter().all(|r| r["status"] == "done"));
}

fn signal_stops_the_run_cleanly(signal: i32) {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 400);
    let mock = Mock::start(&["--latency", "100ms"]);
    let mut child = run_job(&dir, &mock)
        .args(["--concurrency", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(30), "20 requests", || {
        mock.requests().len() >= 20
    });
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    let status = wait_for(&mut child, Duration::from_secs(30));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("interrupted; resume with:\n  promptmill resume"),
        "{stderr}"
    );
    let sent = mock.requests().len();
    assert!(sent < 400, "dispatch stopped");
    let rows = dir.jsonl("out.jsonl");
    let done = rows.iter().filter(|r| r["status"] == "done").count();
    assert_eq!(
        done, sent,
        "requests on the wire were allowed to finish and were recorded"
    );

    let resumed = run(promptmill(&dir).args(["resume", "out.jsonl.promptmill.db", "--concurrency", "50"]));
    assert_eq!(resumed.code(), 0, "{}", resumed.stderr);
    assert_eq!(mock.requests().len(), 400, "nothing was sent twice");
}

#[test]
fn ctrl_c_drains_commits_and_prints_the_resume_command() {
    signal_stops_the_run_cleanly(libc::SIGINT);
}

#[test]
fn sigterm_behaves_like_ctrl_c() {
    signal_stops_the_run_cleanly(libc::SIGTERM);
}

#[test]
fn sighup_behaves_like_ctrl_c() {
    signal_stops_the_run_cleanly(libc::SIGHUP);
}

/// `nohup promptmill run …`: started with SIGHUP ignored, the run outlives its terminal.
#[test]
fn a_run_started_with_sighup_ignored_goes_on_after_sighup() {
    use std::os::unix::process::CommandExt;
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 100);
    let mock = Mock::start(&["--latency", "50ms"]);
    let mut cmd = run_job(&dir, &mock);
    cmd.args(["--concurrency", "4"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: between fork and exec only signal(), which is async-signal-safe, is called.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    wait_until(Duration::from_secs(30), "10 requests", || {
        mock.requests().len() >= 10
    });
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGHUP) };
    let status = wait_for(&mut child, Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "the run went on to the end");
    assert_eq!(dir.jsonl("out.jsonl").len(), 100);
}

/// The terminal really closing: the run's stderr is a terminal whose other side goes away (every
/// write to it then fails), then SIGHUP comes. The run must still drain and commit, and exit as
/// stopped, not die on the first message it can no longer print.
#[test]
fn a_closed_terminal_stops_the_run_cleanly_though_nothing_can_be_printed() {
    use std::os::fd::{FromRawFd, OwnedFd};
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 400);
    let mock = Mock::start(&["--latency", "100ms"]);
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two new descriptors, which we then own.
    let opened = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and are owned by nothing else. The child must
    // not inherit the terminal's other side, or closing ours would not close it.
    let (master, slave) = unsafe {
        libc::fcntl(master, libc::F_SETFD, libc::FD_CLOEXEC);
        (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave))
    };
    // Nobody reads the terminal: the few seconds of progress bar until it closes fit in its buffer.
    let mut child = run_job(&dir, &mock)
        .args(["--concurrency", "4"])
        .stdout(Stdio::null())
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(30), "20 requests", || {
        mock.requests().len() >= 20
    });
    drop(master);
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGHUP) };
    let status = wait_for(&mut child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(4), "stopped, not crashed: {status:?}");
    let sent = mock.requests().len();
    assert!(sent < 400, "dispatch stopped");
    let done = dir
        .jsonl("out.jsonl")
        .iter()
        .filter(|r| r["status"] == "done")
        .count();
    assert_eq!(done, sent, "requests on the wire finished and were recorded");
    let resumed = run(promptmill(&dir).args(["resume", "out.jsonl.promptmill.db", "--concurrency", "50"]));
    assert_eq!(resumed.code(), 0, "{}", resumed.stderr);
    assert_eq!(mock.requests().len(), 400, "nothing was sent twice");
}

#[test]
fn a_second_process_on_the_same_checkpoint_is_refused() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 100);
    let mock = Mock::start(&["--latency", "50ms"]);
    let mut first = run_job(&dir, &mock)
        .args(["--concurrency", "2", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(30), "the first run to send", || {
        mock.requests().len() >= 4
    });
    let second = run(&mut run_job(&dir, &mock));
    assert_eq!(second.code(), 1, "{}", second.stderr);
    assert!(
        second.stderr.contains("another promptmill (pid "),
        "{}",
        second.stderr
    );
    let resume = run(promptmill(&dir).args(["resume", "out.jsonl.promptmill.db"]));
    assert_eq!(resume.code(), 1, "{}", resume.stderr);
    assert_eq!(wait_for(&mut first, Duration::from_secs(60)).code(), Some(0));
    let per_prompt = requests_per_prompt(&mock.requests());
    assert!(per_prompt.values().all(|&n| n == 1), "no row was sent twice");
}

#[test]
fn a_resume_keeps_the_limits_the_job_ran_under_unless_flags_change_them() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    let mock = Mock::start(&[]);
    let first =
        run(run_job(&dir, &mock).args(["--rpm", "6000", "--concurrency", "7", "--max-attempts", "3"]));
    assert_eq!(first.code(), 0, "{}", first.stderr);
    let limits = |dir: &Dir| -> Value {
        let out = run(promptmill(dir).args(["status", "out.jsonl.promptmill.db", "--json"]));
        serde_json::from_str::<Value>(&out.stdout).unwrap()["limits"].clone()
    };
    let l = limits(&dir);
    assert_eq!(
        (
            l["concurrency"].clone(),
            l["rpm"].clone(),
            l["max_attempts"].clone()
        ),
        (7.into(), 6000.into(), 3.into())
    );

    let resumed = run(promptmill(&dir).args(["resume", "out.jsonl.promptmill.db", "--concurrency", "3"]));
    assert_eq!(resumed.code(), 0, "{}", resumed.stderr);
    let l = limits(&dir);
    assert_eq!(
        (
            l["concurrency"].clone(),
            l["rpm"].clone(),
            l["max_attempts"].clone()
        ),
        (3.into(), 6000.into(), 3.into())
    );

    let cleared = run(promptmill(&dir).args(["resume", "out.jsonl.promptmill.db", "--rpm", "0"]));
    assert_eq!(cleared.code(), 0, "{}", cleared.stderr);
    assert_eq!(limits(&dir)["rpm"], Value::Null);
}

/// A second signal (`second`, after `first`) exits at once, abandoning requests on the wire;
/// the checkpoint still opens (`status`) and resumes.
fn a_second_signal_exits_at_once(first: i32, second: i32) {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 30);
    let slow = Mock::start(&["--latency", "20s"]);
    // Both limits given: nothing to learn from the server, so no probe request goes alone first.
    let mut child = run_job(&dir, &slow)
        .args(["--concurrency", "10", "--rpm", "100000", "--tpm", "100000000"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The log is written when a request is answered; the stats count it when it arrives.
    wait_until(Duration::from_secs(30), "10 requests on the wire", || {
        slow.stats()["requests"].as_u64() >= Some(10)
    });
    let started = std::time::Instant::now();
    // SAFETY: signals to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, first) };
    std::thread::sleep(Duration::from_millis(300));
    unsafe { libc::kill(child.id() as libc::pid_t, second) };
    let status = wait_for(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(4));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "it did not wait out the 20 s requests"
    );
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains("exiting now. The checkpoint is consistent; resume with:"),
        "{stderr}"
    );

    let status = run(promptmill(&dir).args(["status", "out.jsonl.promptmill.db", "--json"]));
    assert_eq!(status.code(), 0, "the checkpoint still opens: {}", status.stderr);
    let rows: Value = serde_json::from_str::<Value>(&status.stdout).unwrap()["rows"].clone();
    assert_eq!(
        (rows["total"].clone(), rows["done"].clone()),
        (30.into(), 0.into())
    );

    let fast = Mock::start(&[]);
    let resumed = run(promptmill(&dir).args(["resume", "out.jsonl.promptmill.db", "--base-url", &fast.url]));
    assert_eq!(resumed.code(), 0, "{}", resumed.stderr);
    assert_eq!(dir.jsonl("out.jsonl").len(), 30);
    assert_eq!(
        fast.requests().len(),
        30,
        "nothing was recorded done by the abandoned requests"
    );
}

#[test]
fn a_second_ctrl_c_exits_at_once_and_the_checkpoint_still_resumes() {
    a_second_signal_exits_at_once(libc::SIGINT, libc::SIGINT);
}

#[test]
fn a_second_sigterm_exits_at_once_and_the_checkpoint_still_resumes() {
    a_second_signal_exits_at_once(libc::SIGTERM, libc::SIGTERM);
}

#[test]
fn a_second_sighup_exits_at_once_and_the_checkpoint_still_resumes() {
    a_second_signal_exits_at_once(libc::SIGHUP, libc::SIGHUP);
}

#[test]
fn sigterm_after_ctrl_c_also_exits_at_once() {
    a_second_signal_exits_at_once(libc::SIGINT, libc::SIGTERM);
}
