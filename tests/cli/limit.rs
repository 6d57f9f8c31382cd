//! `run --limit N`: only the first N rows are sent; the job remembers the limit, and running
//! again without it (or with a larger one, or `resume --limit N` / `--no-limit`) sends the rest,
//! never a done row twice.

use crate::util::*;

/// `run p.jsonl -o out.jsonl` against `mock`, with `args`.
fn run_with(dir: &Dir, mock: &Mock, args: &[&str]) -> Outcome {
    run(run_job(dir, mock).args(args))
}

/// The item numbers of the prompts the mock received (`Say something about item N.`).
fn items_sent(mock: &Mock) -> Vec<usize> {
    let mut items: Vec<usize> = mock
        .requests()
        .iter()
        .filter_map(|r| r["prompt"].as_str())
        .filter_map(|p| p.strip_prefix("Say something about item "))
        .filter_map(|p| p.trim_end_matches('.').parse().ok())
        .collect();
    items.sort_unstable();
    items
}

#[test]
fn limit_sends_only_the_first_rows_and_a_run_without_it_sends_only_the_rest() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 10);
    let mock = Mock::start(&[]);
    let out = run_with(&dir, &mock, &["--limit", "3"]);
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    assert_eq!(items_sent(&mock), [1, 2, 3]);
    // The cost line before the first request counts the rows this run may send, not the file.
    assert!(
        out.stderr.contains("promptmill: sending 3 rows to m;"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("promptmill: --limit 3: the 7 pending rows past the first 3 were not sent."),
        "{}",
        out.stderr
    );
    let rows = dir.jsonl("out.jsonl");
    let states: Vec<&str> = rows.iter().map(|r| r["status"].as_str().unwrap_or("?")).collect();
    assert_eq!(states[..3], ["done"; 3]);
    assert_eq!(states[3..], ["pending"; 7]);

    let status = run(promptmill(&dir).args(["status", "out.jsonl.promptmill.db"]));
    assert!(
        status
            .stdout
            .contains("rows        10 total; --limit 3: only the first 3 are sent"),
        "{}",
        status.stdout
    );
    let json = run(promptmill(&dir).args(["status", "--json", "out.jsonl.promptmill.db"]));
    let json: serde_json::Value = serde_json::from_str(&json.stdout).expect("status --json");
    assert_eq!(json["limit"], 3);

    let out = run_with(&dir, &mock, &[]);
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    assert_eq!(
        items_sent(&mock),
        (1..=10).collect::<Vec<_>>(),
        "each row sent once"
    );
    assert!(dir.jsonl("out.jsonl").iter().all(|r| r["status"] == "done"));
}

#[test]
fn a_larger_limit_extends_the_job_by_the_rows_it_adds() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 10);
    let mock = Mock::start(&[]);
    assert_eq!(run_with(&dir, &mock, &["--limit", "2"]).code(), 0);
    let out = run_with(&dir, &mock, &["--limit", "5"]);
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    assert_eq!(items_sent(&mock), [1, 2, 3, 4, 5]);
}

#[test]
fn resume_changes_the_recorded_limit_or_lifts_it() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 10);
    let mock = Mock::start(&[]);
    let out = run_with(&dir, &mock, &["--limit", "2"]);
    assert!(
        out.stderr
            .contains("out.jsonl.promptmill.db --no-limit`, to send them."),
        "{}",
        out.stderr
    );
    let resume = |extra: &[&str]| {
        let mut cmd = promptmill(&dir);
        cmd.args(["resume", "out.jsonl.promptmill.db"]).args(extra);
        run(&mut cmd)
    };
    // Without a flag, resume keeps the recorded limit: nothing new is sent.
    assert_eq!(resume(&[]).code(), 0);
    assert_eq!(items_sent(&mock), [1, 2]);
    let out = resume(&["--limit", "4"]);
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    assert_eq!(items_sent(&mock), [1, 2, 3, 4]);
    let out = resume(&["--no-limit"]);
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    assert_eq!(
        items_sent(&mock),
        (1..=10).collect::<Vec<_>>(),
        "each row sent once"
    );
    let both = resume(&["--limit", "3", "--no-limit"]);
    assert_eq!(both.code(), 2, "{}", both.stderr);
}

#[test]
fn a_limit_below_the_rows_done_sends_nothing_and_says_so() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 6);
    let mock = Mock::start(&[]);
    assert_eq!(run_with(&dir, &mock, &["--limit", "4"]).code(), 0);
    let out = run_with(&dir, &mock, &["--limit", "2"]);
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    assert!(
        out.stderr
            .contains("promptmill: --limit 2: the first 2 rows are settled already; nothing to send"),
        "{}",
        out.stderr
    );
    assert_eq!(items_sent(&mock), [1, 2, 3, 4]);
}

#[test]
fn limit_is_refused_where_it_cannot_apply_batch_mode_and_estimate() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 4);
    let mock = Mock::start(&[]);
    let batch = run_with(&dir, &mock, &["--limit", "2", "--mode", "batch"]);
    assert_eq!(batch.code(), 1, "stderr: {}", batch.stderr);
    assert!(
        batch
            .stderr
            .contains("--limit: applies to live runs; a --mode batch job submits every row"),
        "{}",
        batch.stderr
    );
    assert_eq!(mock.requests().len(), 0, "nothing was sent");
    let estimate = run(promptmill(&dir).args(["estimate", "p.jsonl", "--model", "m", "--limit", "2"]));
    assert_eq!(estimate.code(), 1, "stderr: {}", estimate.stderr);
    assert!(
        estimate.stderr.contains("--limit: applies to `run`"),
        "{}",
        estimate.stderr
    );
}
