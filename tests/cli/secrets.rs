//! The API key: read from the environment only, sent as a bearer token, written nowhere.

use crate::util::*;

#[test]
fn the_key_from_api_key_env_is_used_and_written_nowhere() {
    let key = "sk-test-5f0d3c9a-unique-key-material";
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 30);
    let mock = Mock::start_with_env(
        &["--api-key-env", "MOCK_EXPECTED_KEY"],
        &[("MOCK_EXPECTED_KEY", key)],
    );
    let out = run(run_job(&dir, &mock)
        .args(["--api-key-env", "MY_PROVIDER_KEY", "--summary", "s.json", "-vv"])
        .env("MY_PROVIDER_KEY", key));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(
        mock.stats()["by_status"]["200"],
        30,
        "every request carried the key"
    );
    let export = run(promptmill(&dir).args(["export", "out.jsonl.promptmill.db", "-o", "x.csv"]));
    let status = run(promptmill(&dir).args(["status", "out.jsonl.promptmill.db", "--json"]));
    assert_nowhere(
        dir.root(),
        &[&out.stdout, &out.stderr, &export.stderr, &status.stdout],
        key,
    );
}

#[test]
fn a_refused_key_is_not_echoed_in_the_error() {
    let key = "sk-wrong-1b2c3d-should-not-appear";
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    let mock = Mock::start_with_env(
        &["--api-key-env", "MOCK_EXPECTED_KEY"],
        &[("MOCK_EXPECTED_KEY", "right")],
    );
    let out = run(run_job(&dir, &mock).arg("-vv").env("OPENAI_API_KEY", key));
    assert_eq!(out.code(), 4, "{}", out.stderr);
    assert_nowhere(dir.root(), &[&out.stdout, &out.stderr], key);
}

#[test]
fn a_missing_key_for_a_remote_api_is_an_error_before_anything_starts() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    let out = run(promptmill(&dir).args([
        "run",
        "p.jsonl",
        "-o",
        "out.jsonl",
        "--model",
        "m",
        "--base-url",
        "https://api.example.invalid/v1",
    ]));
    assert_eq!(out.code(), 1);
    assert!(
        out.stderr
            .contains("the environment variable OPENAI_API_KEY is not set"),
        "{}",
        out.stderr
    );
    assert!(!dir.exists("out.jsonl.promptmill.db"));
}

#[cfg(unix)]
#[test]
fn the_checkpoint_and_the_outputs_are_private_files() {
    use std::os::unix::fs::PermissionsExt;
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 2);
    let mock = Mock::start(&[]);
    let out = run(run_job(&dir, &mock).args(["--summary", "s.json"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    for name in ["out.jsonl", "out.jsonl.promptmill.db", "s.json"] {
        let mode = std::fs::metadata(dir.path(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name} has mode {mode:o}");
    }
}

/// Every file in `dir` has mode 0600.
#[cfg(unix)]
fn assert_private(dir: &Dir, names: &[&str]) {
    use std::os::unix::fs::PermissionsExt;
    for name in names {
        let meta = std::fs::metadata(dir.path(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mode = meta.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name} has mode {mode:o}");
    }
}

/// A job through everything that writes: a SIGKILL (leaving the WAL behind), faults whose
/// errors quote the request's URL, a key refused mid-run, a server that is not there, then a
/// clean finish, exports and status; all with `-vv` and `RUST_LOG=trace`. Not one byte of the
/// key anywhere, and every file private.
#[cfg(unix)]
#[test]
fn the_key_is_in_no_byte_written_through_kills_faults_and_refusals() {
    let key = "sk-scan-7d1e0b52-e4f3-distinctive";
    let dir = Dir::new();
    let logs = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 300);
    let env = [("MOCK_KEY", key)];
    let faulty = Mock::start_with_env(
        &[
            "--api-key-env",
            "MOCK_KEY",
            "--latency",
            "5ms",
            "--rate-429",
            "0.1",
            "--retry-after",
            "0.05",
            "--rate-500",
            "0.1",
            "--rate-reset",
            "0.1",
            "--rate-malformed",
            "0.1",
            "--rate-hang",
            "0.02",
        ],
        &env,
    );
    let with_key = |cmd: &mut std::process::Command| {
        cmd.env("OPENAI_API_KEY", key).env("RUST_LOG", "trace");
    };

    // 1. Killed mid-run: the -wal and -shm files stay behind, uncheckpointed.
    let mut cmd = run_job(&dir, &faulty);
    with_key(&mut cmd);
    let mut child = cmd
        .args([
            "-vv",
            "--concurrency",
            "8",
            "--timeout",
            "1s",
            "--max-attempts",
            "2",
        ])
        .args(["--summary", "s.json"])
        .stdout(std::fs::File::create(logs.path("1.out")).unwrap())
        .stderr(std::fs::File::create(logs.path("1.err")).unwrap())
        .spawn()
        .unwrap();
    wait_until(
        std::time::Duration::from_secs(60),
        "100 requests answered",
        || faulty.requests().len() >= 100,
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(dir.exists("out.jsonl.promptmill.db-wal"), "the kill left the WAL");
    assert_private(
        &dir,
        &[
            "out.jsonl.promptmill.db",
            "out.jsonl.promptmill.db-wal",
            "out.jsonl.promptmill.db-shm",
            ".out.jsonl.promptmill-lock",
        ],
    );
    assert_nowhere(dir.root(), &[], key);

    // 2. The key refused mid-run.
    let revoking = Mock::start_with_env(&["--api-key-env", "MOCK_KEY", "--unauthorized-after", "20"], &env);
    let mut cmd = promptmill(&dir);
    with_key(&mut cmd);
    let refused = run(cmd.args([
        "resume",
        "out.jsonl.promptmill.db",
        "-vv",
        "--base-url",
        &revoking.url,
    ]));
    assert_eq!(refused.code(), 4, "{}", refused.stderr);
    assert!(refused.stderr.contains("HTTP 401"), "{}", refused.stderr);

    // 3. Nobody listening: the first answers are all refusals, so the run stops (exit 4, rows
    //    pending); the -vv log quotes each request's URL.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let mut cmd = promptmill(&dir);
    with_key(&mut cmd);
    let unreachable = run(cmd.args([
        "resume",
        "out.jsonl.promptmill.db",
        "--base-url",
        &gone,
        "--max-attempts",
        "1",
        "-vv",
    ]));
    assert_eq!(unreachable.code(), 4, "{}", unreachable.stderr);
    assert!(
        unreachable.stderr.contains(&format!(
            "error sending request for url ({gone}/chat/completions)"
        )),
        "the log quotes the request's URL"
    );

    // 4. A clean finish, then every way of reading the checkpoint.
    let good = Mock::start_with_env(&["--api-key-env", "MOCK_KEY"], &env);
    let mut cmd = promptmill(&dir);
    with_key(&mut cmd);
    let finished = run(cmd.args([
        "resume",
        "out.jsonl.promptmill.db",
        "--base-url",
        &good.url,
        "--retry-failed",
        "--summary",
        "s.json",
        "-vv",
    ]));
    assert_eq!(finished.code(), 0, "{}", finished.stderr);
    let csv = run(promptmill(&dir).args(["export", "out.jsonl.promptmill.db", "-o", "x.csv"]));
    let batch = run(promptmill(&dir).args([
        "export",
        "out.jsonl.promptmill.db",
        "-o",
        "x.batch.jsonl",
        "--format",
        "openai-batch",
    ]));
    let table = run(promptmill(&dir).args(["status", "out.jsonl.promptmill.db"]));
    let json = run(promptmill(&dir).args(["status", "out.jsonl.promptmill.db", "--json"]));
    // The report of this run of kills, faults and refusals: every byte of it is scanned below.
    let report = run(promptmill(&dir).args(["report", "out.jsonl.promptmill.db", "-o", "r.html"]));
    for out in [&csv, &batch, &table, &json, &report] {
        assert_eq!(out.code(), 0, "{}", out.stderr);
    }
    assert_private(
        &dir,
        &[
            "out.jsonl",
            "s.json",
            "x.csv",
            "x.batch.jsonl",
            "r.html",
            "out.jsonl.promptmill.db",
        ],
    );

    let first_run = [logs.read("1.out"), logs.read("1.err")];
    assert!(first_run[1].contains("retrying"), "-vv logged the retries");
    let mut texts: Vec<&str> = first_run.iter().map(String::as_str).collect();
    for out in [
        &refused,
        &unreachable,
        &finished,
        &csv,
        &batch,
        &table,
        &json,
        &report,
    ] {
        texts.push(&out.stdout);
        texts.push(&out.stderr);
    }
    assert_nowhere(dir.root(), &texts, key);
}

#[test]
fn batch_mode_sends_the_key_to_the_files_and_batches_apis_and_writes_it_nowhere() {
    let key = "sk-batch-7a1e-unique-key-material";
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 20);
    let mock = Mock::start_with_env(
        &["--api-key-env", "MOCK_EXPECTED_KEY", "--batch-polls", "2"],
        &[("MOCK_EXPECTED_KEY", key)],
    );
    let out = run(run_job(&dir, &mock)
        .args([
            "--mode",
            "batch",
            "--poll-interval",
            "10ms",
            "--batch-max-rows",
            "8",
            "-vv",
            "--report",
            "report.html",
        ])
        .env("RUST_LOG", "trace")
        .env("OPENAI_API_KEY", key));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(
        dir.read("report.html").contains("id=\"chart-batches\""),
        "the report is scanned too"
    );
    let stats = mock.stats();
    assert_eq!(stats["batches_created"], 3, "{stats}");
    assert_eq!(
        stats["by_outcome"]["auth"], 0,
        "every call carried the key: {stats}"
    );
    let status = run(promptmill(&dir).args(["status", "out.jsonl.promptmill.db", "--json"]));
    assert_nowhere(dir.root(), &[&out.stdout, &out.stderr, &status.stdout], key);
}
