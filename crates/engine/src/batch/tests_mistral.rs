//! Mistral's batch jobs without a server: statuses mapped to the driver's states, job objects'
//! counts bounded, the lines and the create body as Mistral takes them, result lines read, and a
//! lost create matched by its metadata (one adopted, none, several ambiguous).

use super::*;
use crate::batch::service::LineOutcome;

fn job(id: &str, status: &str, part: &str, created_at: i64) -> Job {
    serde_json::from_value(serde_json::json!({
        "id": id, "object": "batch", "input_files": ["f1"], "endpoint": "/v1/chat/completions",
        "model": "mistral-small-latest", "status": status, "created_at": created_at,
        "metadata": {"promptmill_job": "t", "promptmill_part": part},
        "total_requests": 5, "completed_requests": 5, "succeeded_requests": 4, "failed_requests": 1,
        "output_file": "out1", "error_file": "err1", "errors": [],
    }))
    .unwrap()
}

fn lost_create(part: i64) -> Create {
    Create {
        part,
        tag: "t".into(),
        model: "mistral-small-latest".into(),
        endpoint: Endpoint::Chat,
        input: Input::File("f1".into()),
        requests: 5,
        planned_at: 1_800_000_000_000,
        known: vec![],
    }
}

#[test]
fn every_mistral_status_maps_to_a_driver_state() {
    let cases = [
        ("QUEUED", State::Queued),
        ("RUNNING", State::Running),
        ("CANCELLATION_REQUESTED", State::Finishing),
        ("SUCCESS", State::Ended(End::Completed)),
        ("FAILED", State::Ended(End::Failed)),
        ("TIMEOUT_EXCEEDED", State::Ended(End::Expired)),
        ("CANCELLED", State::Ended(End::Cancelled)),
        ("SOMETHING_NEW", State::Running),
    ];
    for (status, state) in cases {
        assert_eq!(state_of(status), state, "{status}");
    }
}

#[test]
fn a_job_shows_its_counts_files_and_errors_bounded() {
    let mut j = job("b1", "SUCCESS", "1", 1_800_000_000);
    j.total_requests = Some(u64::MAX);
    j.errors = (0..500)
        .map(|_| JobError {
            message: Some("bad line".into()),
            count: Some(3),
        })
        .collect();
    let v = view(j);
    assert_eq!(v.state, State::Ended(End::Completed));
    assert_eq!(v.counts.total, MAX_COUNT);
    assert_eq!((v.counts.completed, v.counts.failed), (4, 1));
    assert_eq!(v.results().collect::<Vec<_>>(), ["out1", "err1"]);
    assert_eq!(v.errors.len(), MAX_ERRORS);
    assert_eq!(v.errors[0].message.as_deref(), Some("bad line (3 times)"));
}

#[test]
fn a_line_is_custom_id_and_body_only() {
    let line = request_line("row-1", r#"{"model":"m","messages":[]}"#).unwrap();
    let v: Value = serde_json::from_slice(&line).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"custom_id": "row-1", "body": {"model": "m", "messages": []}})
    );
    assert!(line.ends_with(b"\n"));
    assert!(request_line("x", "not json").is_err());
}

#[test]
fn the_create_names_the_file_model_endpoint_and_the_parts_metadata() {
    let body = create_body(&lost_create(3), "/v1/chat/completions").unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["input_files"], serde_json::json!(["f1"]));
    assert_eq!(v["model"], "mistral-small-latest");
    assert_eq!(v["endpoint"], "/v1/chat/completions");
    assert_eq!(
        v["metadata"],
        serde_json::json!({"promptmill_job": "t", "promptmill_part": "3"})
    );
    assert_eq!(v["timeout_hours"], 24);
    let mut no_model = lost_create(3);
    no_model.model.clear();
    assert!(create_body(&no_model, "/v1/chat/completions").is_err());
}

#[test]
fn result_lines_read_as_openai_output_lines() {
    let ok =
        r#"{"id":"r1","custom_id":"a","response":{"status_code":200,"body":{"choices":[]}},"error":null}"#;
    match read_output_line_for_test(ok) {
        LineOutcome::Response { status, body } => assert_eq!((status, body), (200, r#"{"choices":[]}"#)),
        other => panic!("{other:?}"),
    }
    let failed =
        r#"{"id":"r2","custom_id":"b","response":{"status_code":400,"body":{"message":"bad"}},"error":null}"#;
    assert!(matches!(
        read_output_line_for_test(failed),
        LineOutcome::Response { status: 400, .. }
    ));
}

fn read_output_line_for_test(line: &str) -> LineOutcome<'_> {
    super::super::openai::read_output_line(line).unwrap().outcome
}

#[test]
fn a_lost_create_is_the_one_job_with_the_parts_metadata() {
    let request = lost_create(2);
    let planned = request.planned_at / 1000;
    let mine = job("mine", "QUEUED", "2", planned + 5);
    let other_part = job("other", "QUEUED", "3", planned + 5);
    let found: Vec<Job> = [mine, other_part]
        .into_iter()
        .filter(|j| is_for(j, &request))
        .collect();
    assert!(matches!(verdict(found, &request), Found::Batch(b) if b.id == "mine"));
}

#[test]
fn a_job_older_than_the_part_is_not_its_lost_create() {
    let request = lost_create(2);
    let planned = request.planned_at / 1000;
    assert!(!is_for(&job("old", "SUCCESS", "2", planned - 7200), &request));
    assert!(is_for(&job("skewed", "QUEUED", "2", planned - 600), &request));
    assert!(matches!(verdict(vec![], &request), Found::Nothing));
}

#[test]
fn two_jobs_with_the_parts_metadata_are_ambiguous() {
    let request = lost_create(2);
    let planned = request.planned_at / 1000;
    let found = vec![
        job("a", "QUEUED", "2", planned),
        job("b", "QUEUED", "2", planned + 1),
    ];
    match verdict(found, &request) {
        Found::Ambiguous(why) => assert!(why.contains("a, b"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn paging_stops_at_a_short_page_or_the_total() {
    assert!(last_page(0, 0, None));
    assert!(last_page(7, 7, None));
    assert!(!last_page(PAGE as usize, PAGE, None));
    assert!(last_page(PAGE as usize, PAGE, Some(PAGE)));
    assert!(!last_page(PAGE as usize, PAGE, Some(u64::MAX)));
}

/// A server on 127.0.0.1:0 that answers every request with `body` and records request lines.
async fn canned(body: Value) -> (reqwest::Url, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = reqwest::Url::parse(&format!("http://{}/v1", listener.local_addr().unwrap())).unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = std::sync::Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = vec![0u8; 16 * 1024];
            let mut read = 0;
            while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") && read < buf.len() {
                match socket.read(&mut buf[read..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => read += n,
                }
            }
            let head = String::from_utf8_lossy(&buf[..read]);
            log.lock()
                .unwrap()
                .push(head.lines().next().unwrap_or("").to_string());
            let text = body.to_string();
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                text.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    (url, seen)
}

fn service(url: reqwest::Url) -> MistralBatches {
    let settings = crate::api::http::HttpSettings {
        url,
        key: None,
        key_header: promptmill_core::provider::KeyHeader::Bearer,
        headers: vec![],
        timeout: std::time::Duration::from_secs(10),
        max_response: 1 << 20,
    };
    MistralBatches::new(HttpBatchApi::new(&settings, Provider::Mistral).unwrap())
}

fn listed(id: &str, part: &str) -> Value {
    serde_json::json!({"id": id, "status": "QUEUED", "created_at": 1_800_000_000,
        "metadata": {"promptmill_job": "t", "promptmill_part": part}, "total_requests": 0})
}

#[tokio::test]
async fn find_created_asks_by_metadata_and_checks_it_again() {
    // A server that ignores the filter and lists another part's job too.
    let page = serde_json::json!({"object": "list", "total": 2,
        "data": [listed("other", "3"), listed("mine", "2")]});
    let (url, seen) = canned(page).await;
    let calls = Calls::new(tokio_util::sync::CancellationToken::new());
    let found = service(url).find_created(&calls, &lost_create(2)).await.unwrap();
    assert!(matches!(found, Found::Batch(b) if b.id == "mine"));
    let line = seen.lock().unwrap()[0].clone();
    assert!(line.starts_with("GET /v1/batch/jobs?metadata="), "{line}");
    assert!(line.contains("promptmill_part"), "{line}");
}

#[tokio::test]
async fn find_created_with_two_jobs_of_the_part_is_ambiguous() {
    let page = serde_json::json!({"object": "list", "total": 2,
        "data": [listed("a", "2"), listed("b", "2")]});
    let (url, _) = canned(page).await;
    let calls = Calls::new(tokio_util::sync::CancellationToken::new());
    let found = service(url).find_created(&calls, &lost_create(2)).await.unwrap();
    assert!(matches!(found, Found::Ambiguous(_)), "{found:?}");
}
