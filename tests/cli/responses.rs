//! `--endpoint responses`: the OpenAI Responses API, live and through the Batch API, against the
//! mock's `/v1/responses` — the bodies on the wire (`input`, `instructions`, `max_output_tokens`,
//! `store: false`), the text and usage read back, the fault directives, a kill and a resume, and
//! Batch input lines that name `/v1/responses`.

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::util::*;

fn responses_job(dir: &Dir, mock: &Mock) -> std::process::Command {
    let mut cmd = run_job(dir, mock);
    cmd.args(["--endpoint", "responses"]);
    cmd
}

#[test]
fn live_rows_go_to_responses_and_come_back_with_their_text_usage_and_finish_reason() {
    let dir = Dir::new();
    dir.write(
        "p.jsonl",
        concat!(
            "{\"id\":\"a\",\"prompt\":\"Say hello to the reader.\"}\n",
            "{\"id\":\"b\",\"prompt\":\"[[mock:cached=3:reasoning=2]] Say more about it.\"}\n",
            "{\"id\":\"c\",\"messages\":[{\"role\":\"developer\",\"content\":\"Be terse.\"},{\"role\":\"user\",\"content\":\"Tell a story.\"}]}\n",
        ),
    );
    let mock = Mock::start(&[]);
    let out = run(responses_job(&dir, &mock).args(["--max-tokens", "64"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let requests = mock.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert!(
        requests.iter().all(|r| r["path"] == "/v1/responses"),
        "{requests:?}"
    );
    let rows = dir.jsonl("out.jsonl");
    assert_eq!(rows.len(), 3);
    for row in &rows {
        assert_eq!(row["status"], "done", "{row}");
        assert!(!row["completion"].as_str().unwrap().is_empty(), "{row}");
        assert_eq!(row["finish_reason"], "stop", "{row}");
        assert!(row["usage"]["prompt_tokens"].as_u64().unwrap() > 0, "{row}");
        assert!(row["response_id"].as_str().is_some(), "{row}");
    }
    assert_eq!(rows[1]["usage"]["cached_tokens"], 3, "{}", rows[1]);
    assert_eq!(rows[1]["usage"]["reasoning_tokens"], 2, "{}", rows[1]);
}

#[test]
fn a_cut_answer_is_length_and_faults_are_retried_as_on_chat() {
    let dir = Dir::new();
    dir.write(
        "p.jsonl",
        concat!(
            "{\"id\":\"cut\",\"prompt\":\"Write a very long essay about rivers and their many bends.\"}\n",
            "{\"id\":\"flaky\",\"prompt\":\"[[mock:fail-times=2:status=500:retry-after-ms=10]] Say something.\"}\n",
            "{\"id\":\"slow\",\"prompt\":\"[[mock:fail-times=1:status=429:retry-after-ms=10]] Say something else.\"}\n",
            "{\"id\":\"bad\",\"prompt\":\"[[mock:status=400]] Never works.\"}\n",
        ),
    );
    let mock = Mock::start(&[]);
    let out = run(responses_job(&dir, &mock).args(["--max-tokens", "2"]));
    assert_eq!(out.code(), 3, "one row failed: {}", out.stderr);
    let rows = dir.jsonl("out.jsonl");
    let by_id = |id: &str| rows.iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(by_id("cut")["finish_reason"], "length", "{}", by_id("cut"));
    assert_eq!(by_id("flaky")["status"], "done");
    assert_eq!(by_id("slow")["status"], "done");
    let bad = by_id("bad");
    assert_eq!(bad["status"], "failed");
    assert!(bad["error"].as_str().unwrap().contains("400"), "{bad}");
    let per_prompt = requests_per_prompt(&mock.requests());
    assert_eq!(
        per_prompt["[[mock:fail-times=2:status=500:retry-after-ms=10]] Say something."],
        3
    );
}

#[test]
fn a_killed_responses_run_resumes_and_sends_no_done_row_twice() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 600);
    let mock = Mock::start(&["--latency", "20ms"]);
    let mut child = responses_job(&dir, &mock)
        .args(["--concurrency", "8", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(60), "100 requests at the server", || {
        mock.requests().len() >= 100
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let out = run(responses_job(&dir, &mock).args(["--concurrency", "8"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.stderr.contains("resuming"), "{}", out.stderr);
    let rows = dir.jsonl("out.jsonl");
    assert_eq!(rows.len(), 600);
    assert!(rows.iter().all(|r| r["status"] == "done"));
    let extra = mock.requests().len() - 600;
    assert!(extra <= 8 * 2, "{extra} requests beyond one per row");
    let requests = mock.requests();
    assert!(requests.iter().all(|r| r["path"] == "/v1/responses"));
    // The resumed job kept its family without being told again.
    let resumed = run(promptmill(&dir).args(["status", "--json", "out.jsonl.promptmill.db"]));
    let status: Value = serde_json::from_str(&resumed.stdout).unwrap();
    assert_eq!(status["endpoint"], "/responses", "{status}");
}

/// The lines of every file the mock was given for a batch.
fn uploaded_lines(mock: &Mock) -> Vec<Value> {
    let overview = mock.get_json("/mock/batches");
    let mut lines = Vec::new();
    for upload in overview["uploads"].as_array().unwrap() {
        let id = upload["id"].as_str().unwrap();
        let content = mock.get(&format!("/v1/files/{id}/content"), None);
        lines.extend(content.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()));
    }
    lines
}

#[test]
fn batch_mode_sends_responses_lines_with_instructions_and_store_false_and_reads_them_back() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 30);
    let mock = Mock::start(&["--batch-polls", "2"]);
    let out = run(responses_job(&dir, &mock).args([
        "--mode",
        "batch",
        "--poll-interval",
        "20ms",
        "--system",
        "Answer in one line.",
        "--max-tokens",
        "40",
        "--param",
        r#"reasoning={"effort":"low"}"#,
    ]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let lines = uploaded_lines(&mock);
    assert_eq!(lines.len(), 30);
    let mut ids = HashSet::new();
    for line in &lines {
        assert_eq!(line["url"], "/v1/responses", "{line}");
        let body = &line["body"];
        assert_eq!(body["instructions"], "Answer in one line.", "{line}");
        assert!(
            body["input"].as_str().unwrap().starts_with("Say something"),
            "{line}"
        );
        assert_eq!(body["max_output_tokens"], 40, "{line}");
        assert_eq!(body["store"], false, "{line}");
        assert_eq!(body["reasoning"]["effort"], "low", "{line}");
        assert!(body.get("messages").is_none(), "{line}");
        assert!(ids.insert(line["custom_id"].as_str().unwrap().to_string()));
    }
    let rows = dir.jsonl("out.jsonl");
    assert_eq!(rows.len(), 30);
    for row in &rows {
        assert_eq!(row["status"], "done", "{row}");
        assert!(!row["completion"].as_str().unwrap().is_empty(), "{row}");
        assert!(row["usage"]["prompt_tokens"].as_u64().unwrap() > 0, "{row}");
    }
}

#[test]
fn batch_input_lines_naming_v1_responses_decide_the_family_and_keep_their_store_setting() {
    let dir = Dir::new();
    let mut text = String::new();
    for i in 1..=4 {
        text.push_str(&format!(
            "{{\"custom_id\":\"q{i}\",\"method\":\"POST\",\"url\":\"/v1/responses\",\"body\":{{\"model\":\"gpt-4.1-mini\",\"input\":\"Question {i}?\",\"store\":true}}}}\n"
        ));
    }
    dir.write("p.jsonl", &text);
    let mock = Mock::start(&[]);
    let out = run(promptmill(&dir).args(["run", "p.jsonl", "-o", "out.jsonl", "--base-url", &mock.url]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(mock.requests().iter().all(|r| r["path"] == "/v1/responses"));
    let rows = dir.jsonl("out.jsonl");
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r["status"] == "done"), "{rows:?}");
    // A line naming another endpoint in the same file is refused at its line.
    dir.write(
        "mixed.jsonl",
        format!(
            "{text}{{\"custom_id\":\"x\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{{\"model\":\"m\",\"messages\":[{{\"role\":\"user\",\"content\":\"hi\"}}]}}}}\n"
        ),
    );
    let out = run(promptmill(&dir).args(["estimate", "mixed.jsonl"]));
    assert!(out.stderr.contains("mixed.jsonl:5"), "{}", out.stderr);
    assert!(out.stderr.contains("/v1/responses"), "{}", out.stderr);
}

#[test]
fn flags_that_cannot_apply_to_responses_are_refused_before_anything_is_sent() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 2);
    let mock = Mock::start(&[]);
    for (param, word) in [
        ("max_output_tokens=5", "--max-tokens"),
        ("instructions=x", "--system"),
        ("input=x", "input rows"),
        ("background=true", "background"),
    ] {
        let out = run(responses_job(&dir, &mock).args(["--param", param]));
        assert_eq!(out.code(), 1, "{param}: {}", out.stderr);
        assert!(out.stderr.contains(word), "{param}: {}", out.stderr);
    }
    let azure = run(responses_job(&dir, &mock).args(["--provider", "azure", "--deployment", "d"]));
    assert_ne!(azure.code(), 0);
    assert!(azure.stderr.contains("--endpoint"), "{}", azure.stderr);
    assert!(
        !dir.exists("out.jsonl.promptmill.db"),
        "refused before a checkpoint was made"
    );
    assert!(mock.requests().is_empty(), "nothing was sent");
}
