//! `--endpoint embeddings` against the mock's `/v1/embeddings`: several rows per request, each
//! row's vector the one the mock gives its text alone (so a vector shifted to another row fails),
//! the fault directives retried per request, a kill and a resume, the job's usage equal to the
//! server's, CSV's `embedding` column, the flags refused, and the estimate's numbers. Batch mode
//! is `embeddings_batch.rs`.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::util::*;

pub(crate) fn embed_job(dir: &Dir, mock: &Mock, out: &str) -> std::process::Command {
    let mut cmd = promptmill(dir);
    cmd.args([
        "run",
        "p.jsonl",
        "-o",
        out,
        "--model",
        "text-embedding-3-small",
        "--endpoint",
        "embeddings",
        "--param",
        "dimensions=8",
        "--base-url",
        &mock.url,
    ]);
    cmd
}

/// `n` rows with ids `e1..en`, their text in `input` (every 7th in `prompt`), texts distinct.
pub(crate) fn texts_jsonl(dir: &Dir, n: usize, directive: impl Fn(usize) -> &'static str) {
    let mut text = String::new();
    for i in 1..=n {
        let field = if i % 7 == 0 { "prompt" } else { "input" };
        text.push_str(&format!(
            "{{\"id\":\"e{i}\",\"{field}\":\"{}text of row {i} with {} words\"}}\n",
            directive(i),
            i % 5 + 1
        ));
    }
    dir.write("p.jsonl", text);
}

pub(crate) fn vectors(rows: &[Value]) -> HashMap<String, Vec<f64>> {
    rows.iter()
        .map(|r| {
            let v: Vec<f64> = r["embedding"]
                .as_array()
                .unwrap_or_else(|| panic!("no vector: {r}"))
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            (r["id"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

pub(crate) fn usage_sum(rows: &[Value]) -> u64 {
    rows.iter()
        .map(|r| r["usage"]["prompt_tokens"].as_u64().unwrap())
        .sum()
}

#[test]
fn rows_grouped_seven_per_request_get_the_vectors_their_texts_get_alone() {
    let dir = Dir::new();
    texts_jsonl(&dir, 50, |_| "");
    let mock = Mock::start(&[]);
    let out = run(embed_job(&dir, &mock, "out.jsonl").args(["--rows-per-request", "7"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let requests = mock.requests();
    assert_eq!(requests.len(), 8, "50 rows in requests of 7: {requests:?}");
    assert!(requests.iter().all(|r| r["path"] == "/v1/embeddings"));
    let grouped = dir.jsonl("out.jsonl");
    assert_eq!(grouped.len(), 50);
    assert!(grouped.iter().all(|r| r["status"] == "done"), "{grouped:?}");
    // The job's usage is the server's, split over the rows.
    let served = mock.stats()["usage"]["prompt_tokens"].as_u64().unwrap();
    assert_eq!(usage_sum(&grouped), served);

    // Each text alone: the same vector, for the same row.
    let alone = Mock::start(&[]);
    let out = run(embed_job(&dir, &alone, "alone.jsonl").args(["--rows-per-request", "1"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(alone.requests().len(), 50);
    let (grouped, alone) = (vectors(&grouped), vectors(&dir.jsonl("alone.jsonl")));
    assert_eq!(grouped.len(), 50);
    for (id, v) in &grouped {
        assert_eq!(v.len(), 8, "{id}: dimensions=8 went through");
        assert_eq!(Some(v), alone.get(id), "{id}");
    }
    let distinct: std::collections::HashSet<String> = grouped.values().map(|v| format!("{v:?}")).collect();
    assert_eq!(distinct.len(), 50, "every text has its own vector");
}

/// Each row's `(prompt_tokens, input_tokens)` in the checkpoint, in input order.
fn stored_tokens(db: &std::path::Path) -> Vec<(Option<i64>, Option<i64>)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut q = conn
        .prepare("SELECT prompt_tokens, input_tokens FROM rows ORDER BY seq")
        .unwrap();
    let rows = q.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn a_joined_answers_usage_is_split_by_the_counts_stored_when_the_rows_were_read() {
    let dir = Dir::new();
    texts_jsonl(&dir, 4, |_| "");
    let mock = Mock::start(&[]);
    let out = run(embed_job(&dir, &mock, "out.jsonl").args(["--rows-per-request", "4"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let db = dir.path("out.jsonl.promptmill.db");
    let first = stored_tokens(&db);
    assert!(
        first.iter().all(|(_, input)| input.is_some_and(|t| t > 0)),
        "{first:?}"
    );

    // Weights changed in the checkpoint: the resend's usage follows them, so the sending side
    // did not count the texts again.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "UPDATE rows SET state = 'pending', embedding = NULL, input_tokens = 0;
         UPDATE rows SET input_tokens = 5 WHERE seq = 3;",
    )
    .unwrap();
    drop(conn);
    let out = run(embed_job(&dir, &mock, "out.jsonl").args(["--rows-per-request", "4"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let served: i64 = first.iter().map(|(p, _)| p.unwrap()).sum();
    let shares: Vec<Option<i64>> = stored_tokens(&db).iter().map(|(p, _)| *p).collect();
    assert_eq!(shares, [Some(0), Some(0), Some(served), Some(0)]);

    // A checkpoint read before the counts were kept (NULL): counted when the answer is split.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("UPDATE rows SET state = 'pending', embedding = NULL, input_tokens = NULL;")
        .unwrap();
    drop(conn);
    let out = run(embed_job(&dir, &mock, "out.jsonl").args(["--rows-per-request", "4"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let again: Vec<Option<i64>> = stored_tokens(&db).iter().map(|(p, _)| *p).collect();
    let before: Vec<Option<i64>> = first.iter().map(|(p, _)| *p).collect();
    assert_eq!(again, before);
}

#[test]
fn float_vectors_read_the_same_as_base64_and_csv_has_an_embedding_column() {
    let dir = Dir::new();
    texts_jsonl(&dir, 12, |_| "");
    let mock = Mock::start(&[]);
    let out = run(embed_job(&dir, &mock, "b64.jsonl").args(["--rows-per-request", "5"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let out = run(embed_job(&dir, &mock, "float.csv").args([
        "--rows-per-request",
        "5",
        "--param",
        "encoding_format=float",
    ]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let b64 = vectors(&dir.jsonl("b64.jsonl"));
    let mut reader = csv::Reader::from_path(dir.path("float.csv")).unwrap();
    let header = reader.headers().unwrap().clone();
    let at = header
        .iter()
        .position(|h| h == "embedding")
        .expect("embedding column");
    let id_at = header.iter().position(|h| h == "id").unwrap();
    let mut rows = 0;
    for record in reader.records() {
        let record = record.unwrap();
        let v: Vec<f64> = serde_json::from_str(&record[at]).unwrap();
        assert_eq!(Some(&v), b64.get(&record[id_at]), "{record:?}");
        rows += 1;
    }
    assert_eq!(rows, 12);
}

#[test]
fn faults_are_retried_per_request_and_a_refused_request_fails_its_rows_only() {
    let dir = Dir::new();
    texts_jsonl(&dir, 20, |i| match i {
        1 => "[[mock:fail-times=2:status=500:retry-after-ms=10]] ",
        6 => "[[mock:fail-times=1:status=429:retry-after-ms=10]] ",
        11 => "[[mock:status=400]] ",
        _ => "",
    });
    let mock = Mock::start(&[]);
    let out = run(embed_job(&dir, &mock, "out.jsonl").args(["--rows-per-request", "5"]));
    assert_eq!(out.code(), 3, "rows failed: {}", out.stderr);
    // 4 requests, the first asked 3 times and the second twice.
    assert_eq!(mock.requests().len(), 4 + 2 + 1, "{:?}", mock.requests());
    let rows = dir.jsonl("out.jsonl");
    for row in &rows {
        let n: usize = row["id"].as_str().unwrap()[1..].parse().unwrap();
        if (11..=15).contains(&n) {
            assert_eq!(row["status"], "failed", "{row}");
            assert!(row["error"].as_str().unwrap().contains("400"), "{row}");
        } else {
            assert_eq!(row["status"], "done", "{row}");
            assert_eq!(row["embedding"].as_array().unwrap().len(), 8, "{row}");
        }
    }
    let served = mock.stats()["usage"]["prompt_tokens"].as_u64().unwrap();
    assert_eq!(
        usage_sum(
            &rows
                .iter()
                .filter(|r| r["status"] == "done")
                .cloned()
                .collect::<Vec<_>>()
        ),
        served
    );
}

#[test]
fn a_killed_embeddings_run_resumes_and_resends_at_most_the_requests_in_flight() {
    let dir = Dir::new();
    texts_jsonl(&dir, 3000, |_| "");
    let mock = Mock::start(&["--latency", "20ms"]);
    let mut child = embed_job(&dir, &mock, "out.jsonl")
        .args(["--rows-per-request", "10", "--concurrency", "4", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(60), "40 requests at the server", || {
        mock.requests().len() >= 40
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let out = run(embed_job(&dir, &mock, "out.jsonl").args(["--concurrency", "4"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.stderr.contains("resuming"), "{}", out.stderr);
    let rows = dir.jsonl("out.jsonl");
    assert_eq!(rows.len(), 3000);
    assert!(rows.iter().all(|r| r["status"] == "done"));
    // 300 requests of 10 rows (the resumed run kept --rows-per-request); a kill costs at most the
    // requests in progress (2 × concurrency), each re-sent once.
    let extra = mock.requests().len() - 300;
    assert!(extra <= 4 * 2, "{extra} requests beyond one per 10 rows");
    let status = status_json(&dir);
    assert_eq!(status["endpoint"], "/embeddings", "{status}");
}

#[test]
fn flags_that_cannot_apply_to_embeddings_are_refused_before_anything_is_sent() {
    let dir = Dir::new();
    texts_jsonl(&dir, 3, |_| "");
    let mock = Mock::start(&[]);
    for (flags, word) in [
        (&["--max-tokens", "5"][..], "--max-tokens"),
        (&["--temperature", "0.5"][..], "--temperature"),
        (&["--system", "Be brief."][..], "--system"),
        (&["--rows-per-request", "0"][..], "--rows-per-request"),
        (&["--rows-per-request", "2049"][..], "--rows-per-request"),
    ] {
        let out = run(embed_job(&dir, &mock, "out.jsonl").args(flags));
        assert_eq!(out.code(), 1, "{flags:?}: {}", out.stderr);
        assert!(out.stderr.contains(word), "{flags:?}: {}", out.stderr);
    }
    assert!(mock.requests().is_empty(), "nothing was sent");
}

#[test]
fn the_estimate_counts_input_tokens_requests_and_the_embedding_price() {
    let dir = Dir::new();
    texts_jsonl(&dir, 250, |_| "");
    let out = run(promptmill(&dir).args([
        "estimate",
        "p.jsonl",
        "--model",
        "text-embedding-3-large",
        "--endpoint",
        "embeddings",
        "--rows-per-request",
        "100",
        "--rpm",
        "60",
        "--json",
    ]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["timing"]["requests"], 3, "{report}");
    assert_eq!(report["timing"]["by_rpm"], 3.0, "{report}");
    let model = &report["models"][0];
    assert_eq!(model["prices"]["input"], 0.13, "{model}");
    assert_eq!(model["prices"]["batch_input"], 0.065, "{model}");
    let tokens = model["prompt_tokens"]["total"].as_u64().unwrap();
    let expected = tokens as f64 * 0.13 / 1e6;
    let cost = report["cost_live"]["max"].as_f64().unwrap();
    assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}");
    let text = run(promptmill(&dir).args([
        "estimate",
        "p.jsonl",
        "--model",
        "text-embedding-3-small",
        "--endpoint",
        "embeddings",
    ]));
    // The human report goes to standard error.
    assert!(text.stderr.contains("requests    3 "), "{}", text.stderr);
    assert!(text.stderr.contains("$0.02 in"), "{}", text.stderr);
}
