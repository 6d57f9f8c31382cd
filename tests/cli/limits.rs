//! Limits learned from the server's headers, user flags over them, an exhausted quota, and the
//! three forms of Retry-After, end to end against the mock server.

use serde_json::{json, Value};

use crate::util::*;

fn summary(dir: &Dir) -> Value {
    serde_json::from_str(&dir.read("s.json")).unwrap()
}

/// Arrival times (ms) of the requests carrying `prompt`, in order.
fn arrivals(mock: &Mock, prompt: &str) -> Vec<f64> {
    mock.requests()
        .iter()
        .filter(|r| r["prompt"] == prompt)
        .map(|r| r["t_ms"].as_f64().unwrap())
        .collect()
}

#[test]
fn limits_not_given_are_learned_from_the_servers_headers_and_status_names_the_source() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 8);
    let mock = Mock::start(&["--rpm", "120", "--tpm", "100000"]);
    let out = run(run_job(&dir, &mock).args(["--summary", "s.json"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(summary(&dir)["run"]["http_429"], 0);
    // At the learned 120/min: the first request, a burst of 2, then one every 500 ms.
    let t = mock.arrivals_ms();
    let span = t[7] - t[0];
    assert!(span >= 2400.0, "8 requests at a learned 120/min took {span} ms");

    let s = status_json(&dir);
    assert_eq!(
        s["limits_in_force"]["rpm"],
        json!({"limit": 120, "source": "server"})
    );
    assert_eq!(
        s["limits_in_force"]["tpm"],
        json!({"limit": 100000, "source": "server"})
    );
    assert_eq!(
        (&s["limits"]["rpm"], &s["limits"]["tpm"]),
        (&Value::Null, &Value::Null),
        "learned limits are not stored as the user's"
    );
    let table = run(promptmill(&dir).args(["status", "out.jsonl.promptmill.db"]));
    assert!(
        table
            .stdout
            .contains("in force    rpm 120 (server), tpm 100000 (server)"),
        "{}",
        table.stdout
    );
}

#[test]
fn a_learned_tpm_keeps_a_run_larger_than_the_servers_minute_clear_of_429s() {
    let dir = Dir::new();
    // The mock charges each row 5 words + 7 framing + 4 max_tokens = 16 tokens: 800 rows are
    // 12,800 tokens, 800 more than its minute of 12,000 holds.
    prompts_jsonl(&dir, "p.jsonl", 800);
    let mock = Mock::start(&["--tpm", "12000"]);
    let started = std::time::Instant::now();
    let out = run(run_job(&dir, &mock).args(["--max-tokens", "4", "--summary", "s.json"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let s = summary(&dir);
    assert_eq!(s["rows"]["done"], 800);
    let http_429 = s["run"]["http_429"].as_u64().unwrap();
    assert!(http_429 <= 5, "{http_429} × 429 under a learned TPM");
    // The last 800 tokens refill at 200 a second.
    assert!(started.elapsed().as_secs_f64() >= 3.5, "{:?}", started.elapsed());
    assert_eq!(
        status_json(&dir)["limits_in_force"]["tpm"],
        json!({"limit": 12000, "source": "server"})
    );
}

#[test]
fn a_flag_wins_over_the_servers_headers() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 5);
    let mock = Mock::start(&["--rpm", "6000"]);
    let out = run(run_job(&dir, &mock).args(["--rpm", "120"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    // 120/min, not the server's 6000: a burst of 2, then one every 500 ms.
    let t = mock.arrivals_ms();
    let span = t[4] - t[0];
    assert!(span >= 1400.0, "5 requests at --rpm 120 took {span} ms");
    let s = status_json(&dir);
    assert_eq!(
        s["limits_in_force"]["rpm"],
        json!({"limit": 120, "source": "flag"})
    );
    assert_eq!(s["limits"]["rpm"], 120);
}

#[test]
fn an_exhausted_quota_stops_the_run_with_a_billing_message_and_resume_finishes_it() {
    let dir = Dir::new();
    let mut text = String::new();
    for i in 1..=10 {
        let directive = if i == 5 {
            " [[mock:fail-times=1:code=insufficient_quota]]"
        } else {
            ""
        };
        text.push_str(&format!(
            "{{\"id\":\"r{i}\",\"prompt\":\"item {i}{directive}\"}}\n"
        ));
    }
    dir.write("p.jsonl", text);
    let mock = Mock::start(&[]);
    let out = run(run_job(&dir, &mock).args(["--concurrency", "1", "--summary", "s.json"]));
    assert_eq!(out.code(), 4, "stopped: {}", out.stderr);
    assert!(out.stderr.contains("out of quota"), "{}", out.stderr);
    assert!(
        out.stderr.contains("billing matter, not a rate limit"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("You exceeded your current quota"),
        "{}",
        out.stderr
    );
    let hint = format!(
        "promptmill resume {}",
        dir.path("out.jsonl.promptmill.db").display()
    );
    assert!(out.stderr.contains(&hint), "{}", out.stderr);
    let s = summary(&dir);
    assert_eq!(s["outcome"], "stopped_quota");
    assert_eq!(
        (&s["rows"]["done"], &s["rows"]["failed"], &s["rows"]["pending"]),
        (&json!(4), &json!(0), &json!(6)),
        "nothing after the quota error was sent, nothing marked failed"
    );
    assert_eq!(mock.requests().len(), 5);

    let resumed = run(promptmill(&dir).args(["resume", "out.jsonl.promptmill.db"]));
    assert_eq!(resumed.code(), 0, "{}", resumed.stderr);
    let rows = dir.jsonl("out.jsonl");
    assert!(rows.iter().all(|r| r["status"] == "done"));
    let per_prompt = requests_per_prompt(&mock.requests());
    assert_eq!(per_prompt.len(), 10);
    assert_eq!(
        per_prompt["item 5 [[mock:fail-times=1:code=insufficient_quota]]"],
        2
    );
    assert!(per_prompt.values().all(|&n| n <= 2));
}

#[test]
fn retry_after_in_seconds_milliseconds_and_http_date_form_is_honoured() {
    let dir = Dir::new();
    let prompts = [
        (
            "seconds",
            "[[mock:fail-times=1:status=429:retry-after=2]]",
            2000.0,
        ),
        (
            "ms",
            "[[mock:fail-times=1:status=429:retry-after-ms=1500]]",
            1500.0,
        ),
        (
            "date",
            "[[mock:fail-times=1:status=503:retry-after-date=2]]",
            2000.0,
        ),
    ];
    let text: String = prompts
        .iter()
        .map(|(id, prompt, _)| format!("{{\"id\":\"{id}\",\"prompt\":\"{prompt}\"}}\n"))
        .collect();
    dir.write("p.jsonl", text);
    let mock = Mock::start(&[]);
    let out = run(run_job(&dir, &mock).args(["--concurrency", "3"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    for (id, prompt, hint_ms) in prompts {
        let t = arrivals(&mock, prompt);
        assert_eq!(t.len(), 2, "{id}: one failure, one retry");
        let gap = t[1] - t[0];
        // Without the hint a rate-limited retry waits about 1 s, a 5xx retry under 0.5 s.
        assert!(
            gap >= hint_ms,
            "{id}: retried {gap} ms after a hint of {hint_ms} ms"
        );
    }
}
