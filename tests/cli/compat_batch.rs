//! `--provider groq|together|gemini` end to end: the real binary against the mock speaking each
//! provider's dialect (Groq's `/openai/v1/…` and Gemini's `/v1beta/openai/…` paths, Together's
//! `--dialect together`). A batch job's output equals a live run of the same input at half its
//! cost; for Groq, a job split in two parts survives a kill and a lost create answer; the key
//! goes with every request to the base URL and nowhere else.

use crate::util::*;

/// A provider under test: its `--provider` name, the mock's flags, the base URL path under the
/// mock's root.
struct Case {
    provider: &'static str,
    mock_args: &'static [&'static str],
    path: &'static str,
}

const GROQ: Case = Case {
    provider: "groq",
    mock_args: &[],
    path: "/openai/v1",
};
const TOGETHER: Case = Case {
    provider: "together",
    mock_args: &["--dialect", "together"],
    path: "/v1",
};
const GEMINI: Case = Case {
    provider: "gemini",
    mock_args: &[],
    path: "/v1beta/openai",
};

/// The base URL of `case`'s API on `mock`.
fn base_url(mock: &Mock, case: &Case) -> String {
    let root = mock.url.trim_end_matches("/v1");
    format!("{root}{}", case.path)
}

fn job(dir: &Dir, mock: &Mock, case: &Case, out: &str, summary: &str) -> std::process::Command {
    let mut cmd = promptmill(dir);
    cmd.args(["run", "p.jsonl", "-o", out, "--summary", summary])
        .args(["--model", "gpt-4o-mini", "--provider", case.provider])
        .args(["--base-url", &base_url(mock, case)]);
    cmd
}

/// The batch job's rows equal the live job's, completion by completion, and cost half.
fn batch_equals_live(case: &Case) {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 300);
    let mut args = vec!["--batch-polls", "2"];
    args.extend_from_slice(case.mock_args);
    let mock = Mock::start(&args);
    let live = run(&mut job(&dir, &mock, case, "live.jsonl", "live.json"));
    assert_eq!(live.code(), 0, "{}", live.stderr);
    let batch = run(job(&dir, &mock, case, "batch.jsonl", "batch.json").args([
        "--mode",
        "batch",
        "--poll-interval",
        "20ms",
        "--no-cache",
    ]));
    assert_eq!(batch.code(), 0, "{}", batch.stderr);
    assert_eq!(mock.stats()["batches_created"], 1, "{}", batch.stderr);

    let rows = assert_batch_equals_live_at_half_price(
        &dir,
        ["live.jsonl", "live.json"],
        ["batch.jsonl", "batch.json"],
    );
    assert_eq!(rows, 300);
    // Every Files and Batches call went to the provider's own paths.
    let paths: Vec<String> = mock
        .requests()
        .iter()
        .filter_map(|r| r["path"].as_str().map(str::to_string))
        .collect();
    assert!(paths.iter().any(|p| p.ends_with("/batches")), "{paths:?}");
}

#[test]
fn a_groq_batch_equals_a_live_run_at_half_the_price() {
    batch_equals_live(&GROQ);
}

#[test]
fn a_together_batch_equals_a_live_run_at_half_the_price() {
    batch_equals_live(&TOGETHER);
}

#[test]
fn a_gemini_batch_equals_a_live_run_at_half_the_price() {
    batch_equals_live(&GEMINI);
}

#[test]
fn a_together_job_against_an_openai_dialect_server_is_refused_at_upload() {
    // The mock's `/v1/` speaks OpenAI: Together's `purpose=batch-api` is not its batch purpose.
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 5);
    let mock = Mock::start(&[]);
    let out = run(job(&dir, &mock, &TOGETHER, "o.jsonl", "s.json").args([
        "--mode",
        "batch",
        "--poll-interval",
        "20ms",
    ]));
    assert_ne!(out.code(), 0);
    assert!(out.stderr.contains("purpose"), "{}", out.stderr);
}

#[test]
fn a_groq_job_in_two_parts_survives_a_lost_create_answer_and_a_kill() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 200);
    let mock = Mock::start(&["--batch-polls", "50", "--drop-batch-create", "1:after"]);
    let mut child = job(&dir, &mock, &GROQ, "out.jsonl", "s.json")
        .args([
            "--mode",
            "batch",
            "--poll-interval",
            "20ms",
            "--batch-max-rows",
            "100",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    wait_until(std::time::Duration::from_secs(60), "two batches made", || {
        mock.stats()["batches_created"].as_u64() >= Some(2)
    });
    child.kill().expect("kill");
    let _ = child.wait();
    let out = run(promptmill(&dir).args(["resume", "out.jsonl.promptmill.db", "--poll-interval", "20ms"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let stats = mock.stats();
    assert_eq!(
        stats["batches_created"], 2,
        "the lost create was adopted: {stats}"
    );
    assert_eq!(stats["files_uploaded"], 2, "{stats}");
    let done = dir
        .jsonl("out.jsonl")
        .iter()
        .filter(|r| r["status"] == "done")
        .count();
    assert_eq!(done, 200);
}

#[test]
fn the_key_goes_with_every_request_to_the_base_url_and_is_written_nowhere() {
    let key = "gsk-compat-test-key-0123456789";
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 20);
    let mock = Mock::start_with_env(
        &["--api-key-env", "MOCK_KEY", "--batch-polls", "1"],
        &[("MOCK_KEY", key)],
    );
    let out = run(job(&dir, &mock, &GROQ, "out.jsonl", "s.json")
        .args(["--mode", "batch", "--poll-interval", "20ms"])
        .env("GROQ_API_KEY", key));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let requests = mock.requests();
    assert!(requests.len() >= 4, "{requests:?}");
    for r in &requests {
        assert_eq!(r["credential"], "bearer", "{r}");
        assert_ne!(r["status"], 401, "{r}");
    }
    assert_nowhere(dir.root(), &[&out.stdout, &out.stderr], key);
}

#[test]
fn families_a_provider_does_not_serve_are_refused_before_sending() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    let mock = Mock::start(&[]);
    let out = run(job(&dir, &mock, &GROQ, "o.jsonl", "s.json").args(["--endpoint", "embeddings"]));
    assert_ne!(out.code(), 0);
    assert!(out.stderr.contains("Groq does not serve"), "{}", out.stderr);
    let out = run(job(&dir, &mock, &GEMINI, "o2.jsonl", "s2.json").args(["--endpoint", "responses"]));
    assert_ne!(out.code(), 0);
    assert!(out.stderr.contains("Gemini does not serve"), "{}", out.stderr);
    assert_eq!(mock.stats()["requests"], 0, "nothing was sent");
}
