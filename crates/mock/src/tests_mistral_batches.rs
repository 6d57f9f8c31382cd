//! In-process tests of Mistral's `/v1/batch/jobs` against a real server on 127.0.0.1:0: a job's
//! statuses and files, its answers equal to live ones, the error file for a line's fault
//! directive, the list's metadata filter, cancel, the --drop-batch-create hook, and Mistral's
//! paging of `GET /v1/files`.

use serde_json::{json, Value};

use super::tests::{chat_body, json_of, Running};
use super::tests_batches::Client;
use super::{DropCreate, MockConfig};

/// A Mistral batch file: `{custom_id, body}` lines.
fn file(prompts: &[&str]) -> String {
    prompts
        .iter()
        .enumerate()
        .map(|(i, p)| json!({"custom_id": format!("r{i}"), "body": chat_body(p)}).to_string() + "\n")
        .collect()
}

async fn create(server: &Running, file_id: &str, part: &str) -> reqwest::Result<reqwest::Response> {
    let body = json!({"input_files": [file_id], "model": "mistral-small-latest",
        "endpoint": "/v1/chat/completions", "metadata": {"job": "t", "part": part}, "timeout_hours": 24});
    reqwest::Client::new()
        .post(server.url("/v1/batch/jobs"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
}

async fn get(server: &Running, path: &str) -> Value {
    let response = reqwest::get(server.url(path)).await.expect("answered");
    assert_eq!(response.status(), 200, "{path}");
    json_of(response).await
}

async fn poll_to_end(server: &Running, id: &str) -> (Value, Vec<String>) {
    let mut seen = Vec::new();
    for _ in 0..50 {
        let job = get(server, &format!("/v1/batch/jobs/{id}")).await;
        let status = job["status"].as_str().unwrap_or("?").to_string();
        seen.push(status.clone());
        if ["SUCCESS", "FAILED", "TIMEOUT_EXCEEDED", "CANCELLED"].contains(&status.as_str()) {
            return (job, seen);
        }
    }
    panic!("job {id} did not end: {seen:?}");
}

#[tokio::test]
async fn a_job_runs_to_success_and_its_answers_equal_live_ones() {
    let server = Running::start(MockConfig::default()).await;
    let client = Client::new();
    let file_id = client
        .upload(&server, &file(&["alpha beta", "[[mock:status=400]]"]))
        .await;
    let job = json_of(create(&server, &file_id, "1").await.unwrap()).await;
    assert_eq!(job["status"], "QUEUED");
    assert_eq!(job["model"], "mistral-small-latest");
    let (job, seen) = poll_to_end(&server, job["id"].as_str().unwrap()).await;
    assert!(
        seen.contains(&"RUNNING".to_string()) || seen.len() == 1,
        "{seen:?}"
    );
    assert_eq!(job["status"], "SUCCESS");
    assert_eq!(
        (job["total_requests"].as_u64(), job["succeeded_requests"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(job["failed_requests"], 1);
    let output = client.lines(&server, &job["output_file"]).await;
    let errors = client.lines(&server, &job["error_file"]).await;
    assert_eq!(errors["r1"]["response"]["status_code"], 400);
    let live = reqwest::Client::new()
        .post(server.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(chat_body("alpha beta").to_string())
        .send()
        .await
        .unwrap();
    let live = json_of(live).await;
    let batch = &output["r0"]["response"]["body"];
    assert_eq!(batch["choices"], live["choices"]);
    assert_eq!(batch["usage"], live["usage"]);
}

#[tokio::test]
async fn the_list_filters_by_metadata_and_cancel_ends_a_job() {
    let server = Running::start(MockConfig::default()).await;
    let client = Client::new();
    let file_id = client.upload(&server, &file(&["one", "two"])).await;
    let first = json_of(create(&server, &file_id, "1").await.unwrap()).await;
    json_of(create(&server, &file_id, "2").await.unwrap()).await;
    let filter = url::form_urlencoded::byte_serialize(br#"{"job":"t","part":"1"}"#).collect::<String>();
    let listed = get(&server, &format!("/v1/batch/jobs?metadata={filter}")).await;
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["data"][0]["id"], first["id"]);
    assert_eq!(get(&server, "/v1/batch/jobs").await["total"], 2);
    let id = first["id"].as_str().unwrap();
    let cancelled = reqwest::Client::new()
        .post(server.url(&format!("/v1/batch/jobs/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(cancelled).await["status"], "CANCELLATION_REQUESTED");
    assert_eq!(poll_to_end(&server, id).await.0["status"], "CANCELLED");
}

#[tokio::test]
async fn drop_batch_create_applies_to_mistral_jobs_before_or_after_creating() {
    for after in [false, true] {
        let config = MockConfig {
            drop_batch_create: Some(DropCreate { nth: 1, after }),
            ..MockConfig::default()
        };
        let server = Running::start(config).await;
        let file_id = Client::new().upload(&server, &file(&["x"])).await;
        assert!(create(&server, &file_id, "1").await.is_err(), "after={after}");
        let listed = get(&server, "/v1/batch/jobs").await;
        assert_eq!(listed["total"], u64::from(after), "after={after}");
    }
}

#[tokio::test]
async fn files_page_by_page_and_page_size_with_a_total() {
    let server = Running::start(MockConfig::default()).await;
    let client = Client::new();
    for i in 0..3 {
        client.upload(&server, &file(&[&format!("p{i}")])).await;
    }
    let page = get(&server, "/v1/files?purpose=batch&page=1&page_size=2").await;
    assert_eq!(page["total"], 3);
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let missing = reqwest::get(server.url("/v1/batch/jobs/batch_mock_9"))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}
