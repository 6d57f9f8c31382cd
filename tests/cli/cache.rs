//! The response cache across jobs (issue 14): a row whose request was answered before, by any
//! job, is done without a request; cached rows marked in JSONL and CSV outputs; what is never
//! cached; the file's privacy; jobs sharing it; `promptmill cache stats | prune | clear`. Each
//! test shares one cache between its commands with `--cache PATH` (every command otherwise gets
//! a fresh `$XDG_CACHE_HOME`, see util.rs).

use std::process::Stdio;

use crate::util::*;

/// Rows `r1..rn` with a `name` and an `extra` that is empty except for the rows in `changed`.
fn rows(dir: &Dir, n: usize, changed: impl Fn(usize) -> bool) {
    let mut text = String::new();
    for i in 1..=n {
        let extra = if changed(i) { " Briefly." } else { "" };
        text.push_str(&format!(
            "{{\"id\":\"r{i}\",\"name\":\"item {i}\",\"extra\":\"{extra}\"}}\n"
        ));
    }
    dir.write("p.jsonl", text);
}

/// `promptmill run p.jsonl -o OUT --model m --base-url MOCK --cache cache.db` plus `extra`.
fn cached_run(dir: &Dir, mock: &Mock, out: &str, extra: &[&str]) -> Outcome {
    let cache = dir.path("cache.db");
    let outcome = run(promptmill(dir)
        .args([
            "run",
            "p.jsonl",
            "-o",
            out,
            "--model",
            "m",
            "--base-url",
            &mock.url,
        ])
        .arg("--cache")
        .arg(&cache)
        .args(extra));
    assert_eq!(
        outcome.code(),
        0,
        "stdout: {}\nstderr: {}",
        outcome.stdout,
        outcome.stderr
    );
    outcome
}

/// Requests the mock answered during `f`.
fn sent_during(mock: &Mock, f: impl FnOnce()) -> usize {
    let before = mock.requests().len();
    f();
    mock.requests().len() - before
}

#[test]
fn a_restart_with_a_changed_template_sends_only_the_rows_whose_request_changed() {
    let dir = Dir::new();
    rows(&dir, 1000, |i| i % 10 == 0);
    let mock = Mock::start(&[]);
    let first = ["--template", "Describe {name}."];
    let sent = sent_during(&mock, || {
        cached_run(&dir, &mock, "out.jsonl", &first);
    });
    assert_eq!(sent, 1000);

    // The new template renders as the old one for 900 rows: only the 100 others are sent.
    let changed = ["--template", "Describe {name}.{extra}", "--restart"];
    let mut second = None;
    let sent = sent_during(&mock, || {
        second = Some(cached_run(&dir, &mock, "out.jsonl", &changed))
    });
    assert_eq!(sent, 100, "only the changed rows are sent");
    let second = second.expect("ran");
    assert!(
        second.stderr.contains("900 rows from the cache (this run 900)"),
        "{}",
        second.stderr
    );
    // The cached rows are settled before the cost line, which prices only what is sent.
    assert!(
        second
            .stderr
            .contains("900 rows answered from the response cache"),
        "{}",
        second.stderr
    );
    assert!(second.stderr.contains("sending 100 rows"), "{}", second.stderr);
    let out = dir.jsonl("out.jsonl");
    assert_eq!(out.len(), 1000);
    let cached = out.iter().filter(|r| r["cached"] == true).count();
    assert_eq!(cached, 900, "the rows from the cache are marked");
    assert!(out.iter().all(|r| r["status"] == "done"));
    let status = status_json(&dir);
    assert_eq!(status["rows"]["cached"], 900, "{status}");

    // Another output, the same requests: nothing is sent.
    let sent = sent_during(&mock, || {
        cached_run(&dir, &mock, "other.jsonl", &changed[..2]);
    });
    assert_eq!(sent, 0, "every row is answered from the cache");
    assert_eq!(dir.jsonl("other.jsonl").len(), 1000);
}

#[test]
fn a_cached_rows_output_line_is_the_originals_marked_cached() {
    let dir = Dir::new();
    rows(&dir, 3, |_| false);
    let mock = Mock::start(&[]);
    cached_run(&dir, &mock, "a.jsonl", &["--template", "Describe {name}."]);
    cached_run(&dir, &mock, "b.jsonl", &["--template", "Describe {name}."]);
    let (a, b) = (dir.jsonl("a.jsonl"), dir.jsonl("b.jsonl"));
    for (mut original, cached) in a.into_iter().zip(b) {
        assert_eq!(cached["cached"], true, "{cached}");
        // A cached row cost nothing (null, as the original's, when the model has no price).
        let cost = match original["cost"].is_null() {
            true => serde_json::Value::Null,
            false => serde_json::json!(0.0),
        };
        assert_eq!(cached["cost"], cost);
        original["cached"] = true.into();
        original["cost"] = cached["cost"].clone();
        assert_eq!(original, cached);
    }
}

#[test]
fn a_csv_output_marks_cached_rows_in_its_cached_column() {
    let dir = Dir::new();
    rows(&dir, 3, |_| false);
    let mock = Mock::start(&[]);
    let template = ["--template", "Describe {name}."];
    cached_run(&dir, &mock, "a.csv", &template);
    cached_run(&dir, &mock, "b.csv", &template);
    let cached_column = |name: &str| -> Vec<String> {
        let mut reader = csv::Reader::from_path(dir.path(name)).expect("a CSV output");
        let header = reader.headers().expect("a header").clone();
        let at = header
            .iter()
            .position(|h| h == "cached")
            .expect("a cached column");
        assert_eq!(header.get(at - 1), Some("error"), "{header:?}");
        reader
            .records()
            .map(|r| r.expect("a record")[at].to_string())
            .collect()
    };
    assert_eq!(
        cached_column("a.csv"),
        ["false"; 3],
        "the first run sent every row"
    );
    assert_eq!(
        cached_column("b.csv"),
        ["true"; 3],
        "the second answered every row from the cache"
    );
}

#[test]
fn the_cache_is_on_by_default_in_the_xdg_cache_home_and_no_cache_turns_it_off() {
    let dir = Dir::new();
    rows(&dir, 5, |_| false);
    let mock = Mock::start(&[]);
    let xdg = dir.path("xdg");
    let with_xdg = |out: &str, extra: &[&str]| {
        let o = run(promptmill(&dir)
            .env("XDG_CACHE_HOME", &xdg)
            .args([
                "run",
                "p.jsonl",
                "-o",
                out,
                "--model",
                "m",
                "--base-url",
                &mock.url,
            ])
            .args(["--template", "Describe {name}."])
            .args(extra));
        assert_eq!(o.code(), 0, "{}", o.stderr);
    };
    // On by default: the first job's answers serve a second job with another output.
    assert_eq!(sent_during(&mock, || with_xdg("a.jsonl", &[])), 5);
    assert!(
        xdg.join("promptmill/cache.db").exists(),
        "the cache is in $XDG_CACHE_HOME"
    );
    assert_eq!(sent_during(&mock, || with_xdg("b.jsonl", &[])), 0);
    // `--no-cache` sends everything; `--cache PATH` is another cache.
    assert_eq!(sent_during(&mock, || with_xdg("c.jsonl", &["--no-cache"])), 5);
    let cache = dir.path("c.db");
    let cache = cache.to_str().unwrap();
    assert_eq!(sent_during(&mock, || with_xdg("d.jsonl", &["--cache", cache])), 5);
    assert_eq!(sent_during(&mock, || with_xdg("e.jsonl", &["--cache", cache])), 0);
}

#[test]
fn a_read_only_cache_answers_but_stores_nothing() {
    let dir = Dir::new();
    rows(&dir, 5, |_| false);
    let mock = Mock::start(&[]);
    let t = ["--template", "Describe {name}."];
    let read_only = ["--template", "Describe {name}.", "--cache-read-only"];
    assert_eq!(
        sent_during(&mock, || drop(cached_run(&dir, &mock, "a.jsonl", &read_only))),
        5
    );
    assert_eq!(
        sent_during(&mock, || drop(cached_run(&dir, &mock, "b.jsonl", &t))),
        5
    );
    assert_eq!(
        sent_during(&mock, || drop(cached_run(&dir, &mock, "c.jsonl", &read_only))),
        0
    );
}

#[test]
fn cut_short_and_filtered_answers_are_not_cached() {
    let dir = Dir::new();
    rows(&dir, 4, |_| false);
    let mock = Mock::start(&[]);
    let cut = ["--template", "Describe {name} at length.", "--max-tokens", "1"];
    assert_eq!(
        sent_during(&mock, || drop(cached_run(&dir, &mock, "a.jsonl", &cut))),
        4
    );
    assert_eq!(dir.jsonl("a.jsonl")[0]["finish_reason"], "length");
    assert_eq!(
        sent_during(&mock, || drop(cached_run(&dir, &mock, "b.jsonl", &cut))),
        4
    );
    let filtered = ["--template", "{name} [[mock:reply=content-filter]]"];
    assert_eq!(
        sent_during(&mock, || drop(cached_run(&dir, &mock, "c.jsonl", &filtered))),
        4
    );
    assert_eq!(
        sent_during(&mock, || drop(cached_run(&dir, &mock, "d.jsonl", &filtered))),
        4
    );
}

#[test]
fn a_damaged_cache_warns_once_and_the_run_goes_on_without_it() {
    let dir = Dir::new();
    rows(&dir, 20, |_| false);
    dir.write("cache.db", vec![0x5au8; 16384]);
    let mock = Mock::start(&[]);
    let out = cached_run(&dir, &mock, "out.jsonl", &["--template", "Describe {name}."]);
    assert_eq!(out.stderr.matches("response cache").count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("going on without it"), "{}", out.stderr);
    assert_eq!(dir.jsonl("out.jsonl").len(), 20);
    assert_eq!(mock.requests().len(), 20);
}

#[test]
fn two_jobs_sharing_one_cache_at_once_both_complete() {
    let dir = Dir::new();
    rows(&dir, 200, |_| false);
    let mock = Mock::start(&["--latency", "5ms"]);
    let cache = dir.path("cache.db");
    let start = |out: &str| {
        promptmill(&dir)
            .args([
                "run",
                "p.jsonl",
                "-o",
                out,
                "--model",
                "m",
                "--base-url",
                &mock.url,
            ])
            .args(["--template", "Describe {name}.", "--concurrency", "8", "--quiet"])
            .arg("--cache")
            .arg(&cache)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let mut a = start("a.jsonl");
    let mut b = start("b.jsonl");
    assert!(wait_for(&mut a, DEADLINE).success());
    assert!(wait_for(&mut b, DEADLINE).success());
    assert_eq!(dir.jsonl("a.jsonl").len(), 200);
    assert_eq!(dir.jsonl("b.jsonl").len(), 200);
    // What either stored is there for a third job.
    let sent = sent_during(&mock, || {
        drop(cached_run(
            &dir,
            &mock,
            "c.jsonl",
            &["--template", "Describe {name}."],
        ))
    });
    assert_eq!(sent, 0);
}

#[test]
fn cache_stats_prune_and_clear() {
    let dir = Dir::new();
    rows(&dir, 6, |_| false);
    let mock = Mock::start(&[]);
    cached_run(&dir, &mock, "a.jsonl", &["--template", "Describe {name}."]);
    let cache = dir.path("cache.db");
    let stats = || {
        let o = run(promptmill(&dir)
            .args(["cache", "stats", "--json", "--cache"])
            .arg(&cache));
        assert_eq!(o.code(), 0, "{}", o.stderr);
        serde_json::from_str::<serde_json::Value>(&o.stdout).expect("JSON")
    };
    assert_eq!(stats()["answers"], 6);
    let pruned = run(promptmill(&dir)
        .args(["cache", "prune", "--older-than", "30d", "--cache"])
        .arg(&cache));
    assert_eq!(pruned.code(), 0, "{}", pruned.stderr);
    assert!(pruned.stderr.contains("removed 0 answers"), "{}", pruned.stderr);
    assert_eq!(stats()["answers"], 6);
    let plain = run(promptmill(&dir).args(["cache", "stats", "--cache"]).arg(&cache));
    assert!(plain.stdout.contains("answers     6"), "{}", plain.stdout);
    let cleared = run(promptmill(&dir).args(["cache", "clear", "--cache"]).arg(&cache));
    assert!(cleared.stderr.contains("removed 6 answers"), "{}", cleared.stderr);
    assert_eq!(stats()["answers"], 0);
}

#[cfg(unix)]
#[test]
fn the_cache_file_is_private_and_holds_no_key() {
    use std::os::unix::fs::PermissionsExt;
    let dir = Dir::new();
    rows(&dir, 5, |_| false);
    let mock = Mock::start(&[]);
    let key = "sk-cache-test-4f1d9a77e2";
    let o = run(promptmill(&dir)
        .env("OPENAI_API_KEY", key)
        .args([
            "run",
            "p.jsonl",
            "-o",
            "out.jsonl",
            "--model",
            "m",
            "--base-url",
            &mock.url,
        ])
        .args([
            "--template",
            "Describe {name}.",
            "--header",
            "X-Api-Token: tok-77e2",
        ])
        .args(["--cache", "private/cache.db"]));
    assert_eq!(o.code(), 0, "{}", o.stderr);
    let path = dir.path("private/cache.db");
    let mode = std::fs::metadata(&path).expect("cache").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(dir.path("private"))
        .expect("dir")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
    for file in ["private/cache.db", "private/cache.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.path(file)) {
            for secret in [key, "tok-77e2"] {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{secret} in {file}"
                );
            }
        }
    }
}

#[test]
fn a_cache_that_is_one_of_the_jobs_files_is_refused_and_nothing_is_written() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    let mock = Mock::start(&[]);
    for (cache, says) in [
        ("out.jsonl", "--cache: is the same file as --output"),
        ("out.jsonl.promptmill.db", "--cache: is the same file as --db"),
        ("p.jsonl", "--cache: is the input file (p.jsonl)"),
    ] {
        let refused = run(promptmill(&dir).args([
            "run",
            "p.jsonl",
            "-o",
            "out.jsonl",
            "--model",
            "m",
            "--base-url",
            &mock.url,
            "--cache",
            cache,
        ]));
        assert_eq!(refused.code(), 1, "{cache}: {}", refused.stderr);
        assert!(refused.stderr.contains(says), "{cache}: {}", refused.stderr);
        assert!(!dir.path("out.jsonl").exists(), "{cache}: an output was written");
        assert!(
            !dir.path("out.jsonl.promptmill.db").exists(),
            "{cache}: a checkpoint was made"
        );
    }
    assert!(mock.requests().is_empty(), "nothing was sent");
}

/// `promptmill run p.jsonl -o out.jsonl` with `--template T --cache cache.db` against a mock
/// that answers after 20 ms, killed (SIGKILL) once it has answered 60 requests.
fn killed_run(dir: &Dir, mock: &Mock, template: &str) {
    let mut child = run_job(dir, mock)
        .args(["--template", template, "--concurrency", "8", "--quiet"])
        .arg("--cache")
        .arg(dir.path("cache.db"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let before = mock.requests().len();
    wait_until(std::time::Duration::from_secs(60), "60 answers", || {
        mock.requests().len() >= before + 60
    });
    child.kill().expect("kill"); // SIGKILL
    child.wait().expect("wait");
}

#[test]
fn answers_paid_for_by_a_killed_run_are_not_paid_for_again_after_a_restart() {
    let dir = Dir::new();
    rows(&dir, 300, |_| false);
    let mock = Mock::start(&["--latency", "20ms"]);
    killed_run(&dir, &mock, "Describe {name}.");
    let done = status_json(&dir)["rows"]["done"].as_u64().expect("done rows");
    assert!(done >= 40, "{done} rows done before the kill");
    // The killed run never copied its answers; `--restart` copies them before it discards
    // the checkpoint, so only the rows that were not done are sent.
    let sent = sent_during(&mock, || {
        cached_run(
            &dir,
            &mock,
            "out.jsonl",
            &["--template", "Describe {name}.", "--restart"],
        );
    });
    assert_eq!(sent as u64, 300 - done);
    let out = dir.jsonl("out.jsonl");
    assert_eq!(out.len(), 300);
    assert_eq!(out.iter().filter(|r| r["cached"] == true).count() as u64, done);
}

#[test]
fn a_kill_during_a_run_answered_from_the_cache_loses_nothing() {
    let dir = Dir::new();
    rows(&dir, 300, |i| i > 150);
    let mock = Mock::start(&["--latency", "20ms"]);
    // The first 150 rows' requests are in the cache.
    cached_run(&dir, &mock, "warm.jsonl", &["--template", "Describe {name}."]);
    let before = mock.requests().len();
    killed_run(&dir, &mock, "Describe {name}.{extra}");
    let resumed = run(promptmill(&dir)
        .args(["resume", "out.jsonl.promptmill.db", "--cache"])
        .arg(dir.path("cache.db")));
    assert_eq!(resumed.code(), 0, "{}", resumed.stderr);
    let out = dir.jsonl("out.jsonl");
    assert_eq!(out.len(), 300);
    assert!(out.iter().all(|r| r["status"] == "done"));
    assert_eq!(out.iter().filter(|r| r["cached"] == true).count(), 150);
    // Each changed row sent once, but for the requests in flight at the kill.
    let sent = mock.requests().len() - before;
    assert!(
        (150..=150 + 8).contains(&sent),
        "{sent} requests for 150 changed rows"
    );
}
