//! In-process tests of the Files and Batches APIs under Azure OpenAI's paths
//! (`/openai/files…`, `/openai/batches…` with `?api-version=`) against a real server on
//! 127.0.0.1:0: the api-version requirement, Azure's `/chat/completions` endpoint form, and
//! uploads that must be processed (read once) before a batch may use them.

use serde_json::{json, Value};

use super::tests::{chat_body, json_of, Running};
use super::MockConfig;

const V: &str = "api-version=2024-10-21";

fn line(custom_id: &str, url: &str, prompt: &str) -> String {
    let mut body = chat_body(prompt);
    body["model"] = json!("batch-deployment");
    json!({"custom_id": custom_id, "method": "POST", "url": url, "body": body}).to_string() + "\n"
}

async fn upload(http: &reqwest::Client, server: &Running, content: String) -> Value {
    let part = reqwest::multipart::Part::bytes(content.into_bytes()).file_name("rows.jsonl");
    let form = reqwest::multipart::Form::new()
        .text("purpose", "batch")
        .part("file", part);
    let response = http
        .post(server.url(&format!("/openai/files?{V}")))
        .multipart(form)
        .send()
        .await
        .expect("upload answered");
    assert_eq!(response.status(), 200);
    json_of(response).await
}

async fn create(
    http: &reqwest::Client,
    server: &Running,
    file_id: &str,
    endpoint: &str,
) -> reqwest::Response {
    let body = json!({"input_file_id": file_id, "endpoint": endpoint, "completion_window": "24h"});
    server
        .post_with(http, &format!("/openai/batches?{V}"), &body)
        .await
}

async fn get(http: &reqwest::Client, server: &Running, path: &str) -> Value {
    let response = http.get(server.url(path)).send().await.expect("answered");
    assert_eq!(response.status(), 200, "{path}");
    json_of(response).await
}

#[tokio::test]
async fn azure_paths_need_the_api_version() {
    let server = Running::start(MockConfig::default()).await;
    let http = reqwest::Client::new();
    for path in ["/openai/files", "/openai/batches", "/openai/batches/batch_mock_1"] {
        let response = http.get(server.url(path)).send().await.expect("answered");
        assert_eq!(response.status(), 404, "{path}");
        let body = json_of(response).await;
        assert!(
            body["error"]["message"].as_str().unwrap().contains("api-version"),
            "{body}"
        );
    }
    let files = get(&http, &server, &format!("/openai/files?{V}&purpose=batch")).await;
    assert_eq!(files["object"], "list");
    let batches = get(&http, &server, &format!("/openai/batches?{V}&limit=5")).await;
    assert_eq!(batches["object"], "list");
}

#[tokio::test]
async fn an_azure_upload_is_pending_until_read_and_its_batch_runs_chat_completions() {
    let server = Running::start(MockConfig::default()).await;
    let http = reqwest::Client::new();
    let content = line("a", "/chat/completions", "alpha beta") + &line("b", "/chat/completions", "gamma");
    let file = upload(&http, &server, content).await;
    assert_eq!(file["status"], "pending");
    let id = file["id"].as_str().unwrap();

    let early = create(&http, &server, id, "/chat/completions").await;
    assert_eq!(early.status(), 400);
    let early = json_of(early).await;
    assert!(
        early["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is in 'pending' state"),
        "{early}"
    );

    let read = get(&http, &server, &format!("/openai/files/{id}?{V}")).await;
    assert_eq!(read["status"], "pending", "the first read still finds it pending");
    let read = get(&http, &server, &format!("/openai/files/{id}?{V}")).await;
    assert_eq!(read["status"], "processed");

    // OpenAI's endpoint form is not Azure's.
    assert_eq!(
        create(&http, &server, id, "/v1/chat/completions").await.status(),
        400
    );
    let created = create(&http, &server, id, "/chat/completions").await;
    assert_eq!(created.status(), 200);
    let batch = json_of(created).await;
    assert_eq!(batch["endpoint"], "/chat/completions");
    assert_eq!(batch["model"], "batch-deployment");
    let batch_id = batch["id"].as_str().unwrap();
    let mut done = Value::Null;
    for _ in 0..10 {
        done = get(&http, &server, &format!("/openai/batches/{batch_id}?{V}")).await;
        if done["status"] == "completed" {
            break;
        }
    }
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["request_counts"]["completed"], 2);
    let output = done["output_file_id"].as_str().unwrap();
    let text = http
        .get(server.url(&format!("/openai/files/{output}/content?{V}")))
        .send()
        .await
        .expect("answered")
        .text()
        .await
        .unwrap();
    let live = json_of(server.chat("alpha beta").await).await;
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["custom_id"], "a");
    assert_eq!(
        first["response"]["body"]["choices"][0]["message"]["content"],
        live["choices"][0]["message"]["content"]
    );
}

#[tokio::test]
async fn lines_with_openais_url_fail_an_azure_batch() {
    let server = Running::start(MockConfig::default()).await;
    let http = reqwest::Client::new();
    let file = upload(&http, &server, line("a", "/v1/chat/completions", "x")).await;
    let id = file["id"].as_str().unwrap();
    get(&http, &server, &format!("/openai/files/{id}?{V}")).await;
    let batch = json_of(create(&http, &server, id, "/chat/completions").await).await;
    let batch_id = batch["id"].as_str().unwrap();
    let failed = get(&http, &server, &format!("/openai/batches/{batch_id}?{V}")).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["errors"]["data"][0]["code"], "invalid_url");
}
