//! `run --mode batch` end to end: the real binary against the mock's Files and Batches APIs.
//! Splitting, a kill between uploads and the resume after it (nothing uploaded twice, no row in
//! two batches), lost answers, expired, failed and cancelled batches, `--retry-failed` as a new
//! batch or live, and equality with a live run of the same input.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::Value;

use crate::util::*;

/// A batch the mock made: id, status, the custom_ids of its input file.
type MockBatch = (String, String, Vec<String>);

/// Every batch the mock made, and every upload's file name.
fn batches(mock: &Mock) -> (Vec<MockBatch>, Vec<String>) {
    let v = mock.get_json("/mock/batches");
    let batches = v["batches"]
        .as_array()
        .expect("batches")
        .iter()
        .map(|b| {
            let ids = b["custom_ids"]
                .as_array()
                .expect("custom_ids")
                .iter()
                .map(|i| i.as_str().expect("id").to_string())
                .collect();
            (
                b["id"].as_str().expect("id").to_string(),
                b["status"].as_str().expect("status").to_string(),
                ids,
            )
        })
        .collect();
    let uploads = v["uploads"]
        .as_array()
        .expect("uploads")
        .iter()
        .map(|u| u["filename"].as_str().expect("filename").to_string())
        .collect();
    (batches, uploads)
}

/// No row is in two batches, and every upload has its own file name.
fn assert_no_double_work(mock: &Mock) {
    let (batches, uploads) = batches(mock);
    let mut seen = HashSet::new();
    for (id, _, ids) in &batches {
        for row in ids {
            assert!(
                seen.insert(row.clone()),
                "row {row} is in two batches (again in {id})"
            );
        }
    }
    let names: HashSet<_> = uploads.iter().collect();
    assert_eq!(
        names.len(),
        uploads.len(),
        "a file was uploaded twice: {uploads:?}"
    );
}

fn batch_job(dir: &Dir, mock: &Mock, extra: &[&str]) -> std::process::Command {
    let mut cmd = run_job(dir, mock);
    cmd.args(["--mode", "batch", "--poll-interval", "20ms"])
        .args(extra);
    cmd
}

#[test]
fn a_120000_row_job_splits_into_3_batches_and_a_kill_after_the_second_upload_resumes_cleanly() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 120_000);
    let mock = Mock::start(&["--batch-polls", "4"]);
    let mut child = batch_job(&dir, &mock, &[])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    wait_until(Duration::from_secs(120), "the second upload", || {
        mock.stats()["files_uploaded"].as_u64().unwrap_or(0) >= 2
    });
    child.kill().expect("kill"); // SIGKILL
    let _ = child.wait();

    let out = run(promptmill(&dir).args(["resume", "out.jsonl.promptmill.db"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let stats = mock.stats();
    assert_eq!(stats["files_uploaded"], 3, "{stats}");
    assert_eq!(stats["batches_created"], 3, "{stats}");
    assert_no_double_work(&mock);
    let (batches, _) = batches(&mock);
    let sizes: Vec<usize> = batches.iter().map(|b| b.2.len()).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 120_000);
    assert!(sizes.iter().all(|&n| n <= 50_000), "{sizes:?}");

    let rows = dir.jsonl("out.jsonl");
    assert_eq!(rows.len(), 120_000);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r["id"], format!("r{}", i + 1), "input order");
        assert_eq!(r["status"], "done", "{r}");
    }
    // No completion was asked for live: every row went through the Batch API.
    assert_eq!(stats["usage"]["total_tokens"], 0, "{stats}");
}

#[test]
fn output_and_totals_equal_a_live_run_and_cost_half() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3_000);
    let job = |mock: &Mock, out: &str, summary: &str| {
        let mut cmd = promptmill(&dir);
        cmd.args([
            "run",
            "p.jsonl",
            "-o",
            out,
            "--summary",
            summary,
            "--model",
            "gpt-4o-mini",
        ])
        .args(["--base-url", &mock.url]);
        cmd
    };
    let live_mock = Mock::start(&[]);
    let live = run(&mut job(&live_mock, "live.jsonl", "live.json"));
    assert_eq!(live.code(), 0, "{}", live.stderr);

    let mock = Mock::start(&["--batch-polls", "2"]);
    let batch = run(job(&mock, "batch.jsonl", "batch.json").args([
        "--mode",
        "batch",
        "--poll-interval",
        "20ms",
        "--batch-max-rows",
        "1000",
    ]));
    assert_eq!(batch.code(), 0, "{}", batch.stderr);
    assert_eq!(mock.stats()["batches_created"], 3);

    assert_batch_equals_live_at_half_price(&dir, ["live.jsonl", "live.json"], ["batch.jsonl", "batch.json"]);
    let (l, b): (Value, Value) = (
        serde_json::from_str(&dir.read("live.json")).unwrap(),
        serde_json::from_str(&dir.read("batch.json")).unwrap(),
    );
    assert_eq!(l["rows"], b["rows"]);
}

#[test]
fn lost_answers_to_an_upload_and_a_create_are_found_not_repeated() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 300);
    let mock = Mock::start(&["--drop-upload", "2", "--drop-batch-create", "3:after"]);
    let out = run(&mut batch_job(&dir, &mock, &["--batch-max-rows", "100"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let stats = mock.stats();
    assert_eq!(
        (
            stats["files_uploaded"].as_u64(),
            stats["batches_created"].as_u64()
        ),
        (Some(3), Some(3)),
        "{stats}"
    );
    assert_no_double_work(&mock);
    assert!(out.stderr.contains("reusing the upload"), "{}", out.stderr);
    assert!(
        out.stderr.contains("created by an earlier attempt"),
        "{}",
        out.stderr
    );
    assert_eq!(
        dir.jsonl("out.jsonl")
            .iter()
            .filter(|r| r["status"] == "done")
            .count(),
        300
    );
}

#[test]
fn a_create_lost_before_it_happened_is_made_once_with_the_same_upload() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 50);
    let mock = Mock::start(&["--drop-batch-create", "1:before"]);
    let out = run(&mut batch_job(&dir, &mock, &[]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let stats = mock.stats();
    assert_eq!(
        (
            stats["files_uploaded"].as_u64(),
            stats["batches_created"].as_u64()
        ),
        (Some(1), Some(1)),
        "{stats}"
    );
}

#[test]
fn an_expired_batch_keeps_its_finished_rows_and_the_rest_go_again_as_a_new_batch() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 900);
    let mock = Mock::start(&["--batch-outcome", "2=expired:0.4"]);
    let out = run(&mut batch_job(&dir, &mock, &["--batch-max-rows", "300"]));
    assert_eq!(out.code(), 3, "{}", out.stderr);
    assert!(out.stderr.contains("--retry-failed"), "{}", out.stderr);
    let rows = dir.jsonl("out.jsonl");
    let failed: Vec<&Value> = rows.iter().filter(|r| r["status"] == "failed").collect();
    assert_eq!(failed.len(), 180, "60% of the second batch's 300 rows");
    assert!(
        failed
            .iter()
            .all(|r| r["error"].as_str().unwrap().contains("batch_expired")),
        "{:?}",
        failed[0]
    );
    let done_before: HashSet<String> = rows
        .iter()
        .filter(|r| r["status"] == "done")
        .map(|r| r["id"].as_str().unwrap().into())
        .collect();

    let again = run(promptmill(&dir).args(["resume", "out.jsonl.promptmill.db", "--retry-failed"]));
    assert_eq!(again.code(), 0, "{}", again.stderr);
    let (batches, _) = batches(&mock);
    assert_eq!(batches.len(), 4);
    let resent: HashSet<String> = batches[3].2.iter().cloned().collect();
    assert_eq!(resent.len(), 180);
    assert!(resent.is_disjoint(&done_before), "a finished row was sent again");
    assert_no_double_work_except_retried(&batches);
    assert!(dir.jsonl("out.jsonl").iter().all(|r| r["status"] == "done"));
}

/// Rows may be in a second batch only after their first one expired.
fn assert_no_double_work_except_retried(batches: &[MockBatch]) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (_, _, ids) in batches {
        for id in ids {
            *seen.entry(id).or_default() += 1;
        }
    }
    assert!(seen.values().all(|&n| n <= 2));
}

#[test]
fn retry_failed_with_finish_live_sends_the_rest_one_request_each() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 200);
    let mock = Mock::start(&["--batch-outcome", "expired:0.5"]);
    let out = run(&mut batch_job(&dir, &mock, &[]));
    assert_eq!(out.code(), 3, "{}", out.stderr);
    let again = run(promptmill(&dir).args([
        "resume",
        "out.jsonl.promptmill.db",
        "--retry-failed",
        "--finish-live",
    ]));
    assert_eq!(again.code(), 0, "{}", again.stderr);
    let live = requests_per_prompt(&mock.requests());
    assert_eq!(live.len(), 100, "the expired half went live");
    assert!(live.values().all(|&n| n == 1));
    assert_eq!(mock.stats()["batches_created"], 1);
    assert!(dir.jsonl("out.jsonl").iter().all(|r| r["status"] == "done"));
}

#[test]
fn a_failed_batch_shows_its_errors_and_fails_its_rows() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 20);
    let mock = Mock::start(&["--batch-outcome", "failed"]);
    let out = run(&mut batch_job(&dir, &mock, &[]));
    assert_eq!(out.code(), 3, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("error: mock_failed: mock: this batch was made to fail"),
        "errors.data is shown: {}",
        out.stderr
    );
    let status = run(promptmill(&dir).args(["status", "out.jsonl.promptmill.db"]));
    assert!(status.stdout.contains("failed, collected"), "{}", status.stdout);
    assert!(status.stdout.contains("error: mock_failed"), "{}", status.stdout);
    // The batches block belongs to the table: after the usage lines, never before the job's.
    let at = |needle: &str| status.stdout.find(needle).unwrap_or(usize::MAX);
    assert!(
        at("checkpoint ") < at("batches (as last seen"),
        "the batches come after the job's lines:\n{}",
        status.stdout
    );
    let rows = dir.jsonl("out.jsonl");
    assert!(rows
        .iter()
        .all(|r| r["status"] == "failed" && r["error"].as_str().unwrap().contains("failed")));
}

#[test]
fn rows_the_server_refuses_land_in_the_error_file_and_fail_with_its_status() {
    let dir = Dir::new();
    dir.write(
        "p.jsonl",
        "{\"id\":\"a\",\"prompt\":\"fine\"}\n{\"id\":\"b\",\"prompt\":\"[[mock:status=400]] not fine\"}\n{\"id\":\"c\",\"prompt\":\"fine too\"}\n",
    );
    let mock = Mock::start(&[]);
    let out = run(&mut batch_job(&dir, &mock, &[]));
    assert_eq!(out.code(), 3, "{}", out.stderr);
    let rows = dir.jsonl("out.jsonl");
    assert_eq!(rows[0]["status"], "done");
    assert_eq!(rows[1]["status"], "failed");
    assert!(
        rows[1]["error"].as_str().unwrap().starts_with("HTTP 400"),
        "{}",
        rows[1]
    );
    assert_eq!(rows[2]["status"], "done");
}

#[test]
fn no_wait_submits_and_exits_then_cancel_collects_what_finished() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 400);
    // Batches take 20 polls: they are still running when cancelled.
    let mock = Mock::start(&["--batch-polls", "20"]);
    let out = run(&mut batch_job(
        &dir,
        &mock,
        &["--batch-max-rows", "200", "--no-wait"],
    ));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.stderr.contains("2 batches submitted"), "{}", out.stderr);
    let status = run(promptmill(&dir).args(["status", "out.jsonl.promptmill.db"]));
    assert!(status.stdout.contains("in batches 400"), "{}", status.stdout);
    // Someone looks at the batches a few times (the mock's batches move on polls).
    let (batches_now, _) = batches(&mock);
    for (id, _, _) in &batches_now {
        for _ in 0..5 {
            mock.get_json(&format!("/v1/batches/{id}"));
        }
    }
    let cancel = run(promptmill(&dir).args(["cancel", "out.jsonl.promptmill.db"]));
    assert_eq!(cancel.code(), 3, "{}", cancel.stderr);
    let stats = mock.stats();
    assert_eq!(stats["batches_cancelled"], 2, "{stats}");
    let rows = dir.jsonl("out.jsonl");
    let done = rows.iter().filter(|r| r["status"] == "done").count();
    let cancelled = rows
        .iter()
        .filter(|r| r["status"] == "failed" && r["error"].as_str().unwrap().contains("cancelled"))
        .count();
    assert!(done > 0 && cancelled > 0, "{done} done, {cancelled} cancelled");
    assert_eq!(done + cancelled, 400);
}

#[test]
fn a_refused_key_stops_the_batch_run_with_the_credentials_message() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 5);
    let mock = Mock::start_with_env(
        &["--api-key-env", "MOCK_KEY"],
        &[("MOCK_KEY", "sk-right-key-1234")],
    );
    let out = run(batch_job(&dir, &mock, &[]).env("OPENAI_API_KEY", "sk-wrong-key-9876"));
    assert_eq!(out.code(), 4, "{}", out.stderr);
    assert!(out.stderr.contains("refused the credentials"), "{}", out.stderr);
    assert!(!out.stderr.contains("sk-wrong-key-9876"));
    assert_eq!(mock.stats()["files_uploaded"], 0);
}

#[test]
fn a_signal_while_waiting_detaches_and_the_same_command_collects_later() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 60);
    // The batch completes at its 200th retrieve (seconds of polling): still open when the
    // signal comes, however slow the machine.
    let mock = Mock::start(&["--batch-polls", "200"]);
    let mut child = batch_job(&dir, &mock, &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_until(Duration::from_secs(30), "the batch to be created", || {
        mock.stats()["batches_created"] == 1
    });
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = wait_for(&mut child, Duration::from_secs(30));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr).expect("stderr");
    assert_eq!(status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("the submitted batches go on at the provider"),
        "{stderr}"
    );
    assert!(stderr.contains("promptmill resume"), "{stderr}");
    let status = run(promptmill(&dir).args(["status", "out.jsonl.promptmill.db"]));
    assert!(status.stdout.contains("in batches 60"), "{}", status.stdout);

    // The same command again re-attaches to the batch (no --mode needed on resume; here the
    // run command is repeated as is) and collects it.
    let again = run(&mut batch_job(&dir, &mock, &[]));
    assert_eq!(again.code(), 0, "{}", again.stderr);
    let stats = mock.stats();
    assert_eq!(
        (
            stats["files_uploaded"].as_u64(),
            stats["batches_created"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert!(dir.jsonl("out.jsonl").iter().all(|r| r["status"] == "done"));
}

#[test]
fn switching_a_job_to_live_mode_collects_its_open_batch_and_sends_the_rest_live() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 30);
    let mock = Mock::start(&["--batch-polls", "3"]);
    // A queue of 100 prompt tokens takes a few rows; --no-wait leaves the rest pending.
    let out = run(&mut batch_job(
        &dir,
        &mock,
        &["--batch-max-enqueued-tokens", "100", "--no-wait"],
    ));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let (batches, _) = batches(&mock);
    assert_eq!(batches.len(), 1);
    let in_batch = batches[0].2.len();
    assert!(in_batch > 0 && in_batch < 30, "{in_batch}");

    let live = run(promptmill(&dir).args(["resume", "out.jsonl.promptmill.db", "--mode", "live"]));
    assert_eq!(live.code(), 0, "{}", live.stderr);
    assert_eq!(mock.stats()["batches_created"], 1, "no new batch");
    let sent_live = requests_per_prompt(&mock.requests());
    assert_eq!(sent_live.len(), 30 - in_batch, "the rest went live, once each");
    assert!(sent_live.values().all(|&n| n == 1));
    assert!(dir.jsonl("out.jsonl").iter().all(|r| r["status"] == "done"));
}
