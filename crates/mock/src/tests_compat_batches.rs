//! In-process tests of the OpenAI-format providers' dialects of the Files and Batches APIs
//! against a real server on 127.0.0.1:0: Groq's `/openai/v1/…` and Gemini's `/v1beta/openai/…`
//! paths, Together's (`--dialect together`) `purpose=batch-api`, `{custom_id, body}` lines,
//! `{"job": …}` create answer and upper-case statuses, and each dialect's batch endpoints.

use serde_json::{json, Value};

use super::batch_api::Dialect;
use super::tests::{chat_body, json_of, Running};
use super::MockConfig;

async fn upload(
    http: &reqwest::Client,
    server: &Running,
    prefix: &str,
    purpose: &str,
    content: String,
) -> reqwest::Response {
    let part = reqwest::multipart::Part::bytes(content.into_bytes()).file_name("rows.jsonl");
    let form = reqwest::multipart::Form::new()
        .text("purpose", purpose.to_string())
        .part("file", part);
    http.post(server.url(&format!("{prefix}/files")))
        .multipart(form)
        .send()
        .await
        .expect("upload answered")
}

fn openai_line(id: &str) -> String {
    json!({"custom_id": id, "method": "POST", "url": "/v1/chat/completions", "body": chat_body("hi")})
        .to_string()
        + "\n"
}

async fn create(
    http: &reqwest::Client,
    server: &Running,
    prefix: &str,
    file_id: &str,
    endpoint: &str,
) -> reqwest::Response {
    let body = json!({"input_file_id": file_id, "endpoint": endpoint, "completion_window": "24h"});
    server.post_with(http, &format!("{prefix}/batches"), &body).await
}

async fn get(http: &reqwest::Client, server: &Running, path: &str) -> Value {
    let response = http.get(server.url(path)).send().await.expect("answered");
    assert_eq!(response.status(), 200, "{path}");
    json_of(response).await
}

#[tokio::test]
async fn groq_and_gemini_paths_serve_openai_batches_and_their_live_routes() {
    let server = Running::start(MockConfig {
        batch_polls: 1,
        ..MockConfig::default()
    })
    .await;
    let http = reqwest::Client::new();
    for prefix in ["/openai/v1", "/v1beta/openai"] {
        let file = json_of(upload(&http, &server, prefix, "batch", openai_line("a")).await).await;
        let file_id = file["id"].as_str().expect("file id");
        let created = create(&http, &server, prefix, file_id, "/v1/chat/completions").await;
        assert_eq!(created.status(), 200, "{prefix}");
        let batch = json_of(created).await;
        assert_eq!(batch["status"], "validating", "{prefix}");
        let id = batch["id"].as_str().expect("batch id");
        let done = get(&http, &server, &format!("{prefix}/batches/{id}")).await;
        assert_eq!(done["status"], "completed", "{prefix}: {done}");
        let live = server
            .post_with(&http, &format!("{prefix}/chat/completions"), &chat_body("hi"))
            .await;
        assert_eq!(live.status(), 200, "{prefix}");
    }
}

#[tokio::test]
async fn groq_batches_run_chat_completions_only() {
    let server = Running::start(MockConfig::default()).await;
    let http = reqwest::Client::new();
    let file = json_of(upload(&http, &server, "/openai/v1", "batch", openai_line("a")).await).await;
    let file_id = file["id"].as_str().expect("file id");
    let refused = create(&http, &server, "/openai/v1", file_id, "/v1/embeddings").await;
    assert_eq!(refused.status(), 400);
    let gemini = create(&http, &server, "/v1beta/openai", file_id, "/v1/embeddings").await;
    assert_eq!(gemini.status(), 200, "Gemini's batches run embeddings");
}

#[tokio::test]
async fn together_speaks_its_purpose_line_shape_wrapper_and_status_words() {
    let config = MockConfig {
        batch_polls: 1,
        dialect: Dialect::Together,
        ..MockConfig::default()
    };
    let server = Running::start(config).await;
    let http = reqwest::Client::new();
    let refused = upload(&http, &server, "/v1", "batch", openai_line("a")).await;
    assert_eq!(refused.status(), 400, "Together's batch purpose is batch-api");
    let lines = json!({"custom_id": "a", "body": chat_body("hi")}).to_string() + "\n";
    let file = json_of(upload(&http, &server, "/v1", "batch-api", lines).await).await;
    let file_id = file["id"].as_str().expect("file id");
    let created = create(&http, &server, "/v1", file_id, "/v1/chat/completions").await;
    assert_eq!(created.status(), 200);
    let answer = json_of(created).await;
    let job = &answer["job"];
    assert_eq!(job["status"], "VALIDATING", "{answer}");
    assert!(job["created_at"].is_string(), "{answer}");
    let id = job["id"].as_str().expect("batch id");
    let done = get(&http, &server, &format!("/v1/batches/{id}")).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert!(done["output_file_id"].is_string(), "{done}");
}

#[tokio::test]
async fn together_refuses_a_custom_id_longer_than_64_characters() {
    let config = MockConfig {
        batch_polls: 1,
        dialect: Dialect::Together,
        ..MockConfig::default()
    };
    let server = Running::start(config).await;
    let http = reqwest::Client::new();
    let lines = json!({"custom_id": "x".repeat(65), "body": chat_body("hi")}).to_string() + "\n";
    let file = json_of(upload(&http, &server, "/v1", "batch-api", lines).await).await;
    let file_id = file["id"].as_str().expect("file id");
    let job = json_of(create(&http, &server, "/v1", file_id, "/v1/chat/completions").await).await;
    let id = job["job"]["id"].as_str().expect("batch id");
    let failed = get(&http, &server, &format!("/v1/batches/{id}")).await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
}
