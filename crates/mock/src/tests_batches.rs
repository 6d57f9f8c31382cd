//! In-process tests of the Files and Batches APIs against a real server on 127.0.0.1:0:
//! the lifecycle and its files joined on custom_id against live answers, outcomes on demand,
//! validation failures, cancel, pagination, the crash-test hooks, auth, and a 120,000-row job.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::tests::{chat_body, json_of, Running};
use super::{BatchOutcomes, DropCreate, MockConfig};

/// One batch input line for a chat request with this prompt.
fn line(custom_id: &str, prompt: &str) -> String {
    json!({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
        "body": chat_body(prompt)})
    .to_string()
}

/// A JSONL file of `n` lines `row-0`, `row-1`, … with distinct prompts.
fn rows(n: usize) -> String {
    (0..n)
        .map(|i| line(&format!("row-{i}"), &format!("prompt number {i} about things")) + "\n")
        .collect()
}

/// A Files and Batches client (also used by `tests_families`).
pub(super) struct Client {
    http: reqwest::Client,
    key: Option<&'static str>,
}

impl Client {
    pub fn new() -> Self {
        Client {
            http: reqwest::Client::new(),
            key: None,
        }
    }

    fn with_key(key: &'static str) -> Self {
        Client {
            key: Some(key),
            ..Client::new()
        }
    }

    fn auth(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    async fn try_upload(
        &self,
        server: &Running,
        content: &str,
        purpose: &str,
    ) -> reqwest::Result<reqwest::Response> {
        let part = reqwest::multipart::Part::bytes(content.as_bytes().to_vec()).file_name("rows.jsonl");
        let form = reqwest::multipart::Form::new()
            .text("purpose", purpose.to_string())
            .part("file", part);
        self.auth(self.http.post(server.url("/v1/files")).multipart(form))
            .send()
            .await
    }

    /// Uploads a batch file and returns its id.
    pub async fn upload(&self, server: &Running, content: &str) -> String {
        let response = self
            .try_upload(server, content, "batch")
            .await
            .expect("upload answered");
        assert_eq!(response.status(), 200);
        let file = json_of(response).await;
        assert_eq!(
            (file["object"].as_str(), file["purpose"].as_str()),
            (Some("file"), Some("batch"))
        );
        assert_eq!(file["bytes"], content.len());
        file["id"].as_str().expect("file id").to_string()
    }

    async fn try_create(
        &self,
        server: &Running,
        file_id: &str,
        outcome: Option<&str>,
    ) -> reqwest::Result<reqwest::Response> {
        self.try_create_for(server, file_id, "/v1/chat/completions", outcome)
            .await
    }

    /// Asks for a batch over `file_id` running `endpoint`.
    pub async fn try_create_for(
        &self,
        server: &Running,
        file_id: &str,
        endpoint: &str,
        outcome: Option<&str>,
    ) -> reqwest::Result<reqwest::Response> {
        let body = json!({"input_file_id": file_id, "endpoint": endpoint,
            "completion_window": "24h", "metadata": {"job": "test"}});
        let mut request = self
            .http
            .post(server.url("/v1/batches"))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(outcome) = outcome {
            request = request.header("X-Mock-Batch-Outcome", outcome);
        }
        self.auth(request).send().await
    }

    /// Creates a batch over `file_id` and returns it.
    async fn create(&self, server: &Running, file_id: &str, outcome: Option<&str>) -> Value {
        let response = self
            .try_create(server, file_id, outcome)
            .await
            .expect("create answered");
        assert_eq!(response.status(), 200);
        let batch = json_of(response).await;
        assert_eq!(batch["status"], "validating");
        assert_eq!(batch["metadata"], json!({"job": "test"}));
        batch
    }

    async fn get(&self, server: &Running, path: &str) -> reqwest::Response {
        self.auth(self.http.get(server.url(path)))
            .send()
            .await
            .expect("request answered")
    }

    async fn retrieve(&self, server: &Running, id: &str) -> Value {
        let response = self.get(server, &format!("/v1/batches/{id}")).await;
        assert_eq!(response.status(), 200);
        json_of(response).await
    }

    /// Retrieves until the batch is in a final state (bounded), returning every status seen.
    pub async fn poll_to_end(&self, server: &Running, id: &str) -> (Value, Vec<String>) {
        let mut seen = Vec::new();
        for _ in 0..50 {
            let batch = self.retrieve(server, id).await;
            seen.push(batch["status"].as_str().unwrap_or("?").to_string());
            if ["completed", "failed", "expired", "cancelled"]
                .contains(&batch["status"].as_str().unwrap_or(""))
            {
                return (batch, seen);
            }
        }
        panic!("batch {id} did not end within 50 retrieves: {seen:?}");
    }

    /// A file's lines as JSON, by custom_id; empty when there is no file.
    pub async fn lines(&self, server: &Running, file_id: &Value) -> HashMap<String, Value> {
        let Some(id) = file_id.as_str() else {
            return HashMap::new();
        };
        let response = self.get(server, &format!("/v1/files/{id}/content")).await;
        assert_eq!(response.status(), 200);
        let text = response.text().await.expect("content readable");
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line"))
            .map(|v| (v["custom_id"].as_str().unwrap_or_default().to_string(), v))
            .collect()
    }
}

/// A body without what differs between any two answers (`id`, `created`).
fn without_stamp(mut body: Value) -> Value {
    body.as_object_mut().map(|o| {
        o.remove("id");
        o.remove("created")
    });
    body
}

#[tokio::test]
async fn a_batch_runs_through_its_stages_and_each_output_equals_the_live_answer() {
    let server = Running::start(MockConfig::default()).await;
    let client = Client::new();
    let prompts = [
        "alpha beta",
        "the quick brown fox",
        "one",
        "x y z",
        "a b c d e f g h i j k l m n o",
    ];
    let file: String = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| line(&format!("id-{i}"), p) + "\n")
        .collect();
    let file_id = client.upload(&server, &file).await;
    let batch = client.create(&server, &file_id, None).await;
    assert_eq!(
        batch["request_counts"],
        json!({"total": 0, "completed": 0, "failed": 0})
    );
    let id = batch["id"].as_str().unwrap();

    // --batch-polls 3: two in-between stages, completed at the third retrieve.
    let first = client.retrieve(&server, id).await;
    assert_eq!(first["status"], "in_progress");
    assert_eq!(
        first["request_counts"],
        json!({"total": 5, "completed": 1, "failed": 0})
    );
    let second = client.retrieve(&server, id).await;
    assert_eq!(second["status"], "finalizing");
    assert_eq!(second["request_counts"]["completed"], 5);
    assert!(second["output_file_id"].is_null());
    let done = client.retrieve(&server, id).await;
    assert_eq!(done["status"], "completed");
    assert!(done["completed_at"].as_u64().is_some());
    assert!(done["error_file_id"].is_null(), "no errors, no error file");

    let output = client.lines(&server, &done["output_file_id"]).await;
    assert_eq!(output.len(), 5);
    let mut live_usage = 0;
    for (i, prompt) in prompts.iter().enumerate() {
        let answer = &output[&format!("id-{i}")];
        assert!(answer["error"].is_null());
        assert_eq!(answer["response"]["status_code"], 200);
        let live = json_of(server.chat(prompt).await).await;
        live_usage += live["usage"]["total_tokens"].as_u64().unwrap();
        assert_eq!(
            without_stamp(answer["response"]["body"].clone()),
            without_stamp(live),
            "row {i}"
        );
    }
    assert_eq!(done["usage"]["total_tokens"], live_usage);
    let file = json_of(
        client
            .get(
                &server,
                &format!("/v1/files/{}", done["output_file_id"].as_str().unwrap()),
            )
            .await,
    )
    .await;
    assert_eq!(file["purpose"], "batch_output");

    // Batch lines are not requests: the stats count the 5 live ones and the API calls only.
    let stats = server.stats().await;
    assert_eq!(stats["usage"]["total_tokens"], live_usage);
    assert_eq!(stats["by_outcome"]["ok"], stats["requests"]);
    assert_eq!(stats["requests"], 5 + 1 + 1 + 3 + 1 + 1);
    assert_eq!(
        (
            stats["files_uploaded"].as_u64(),
            stats["batches_created"].as_u64()
        ),
        (Some(1), Some(1))
    );
    server.stop().await;
}

#[tokio::test]
async fn the_same_batch_output_is_produced_every_time() {
    let bodies = |server: Running| async move {
        let client = Client::new();
        let file_id = client.upload(&server, &rows(4)).await;
        let batch = client.create(&server, &file_id, None).await;
        let (done, _) = client.poll_to_end(&server, batch["id"].as_str().unwrap()).await;
        let output = client.lines(&server, &done["output_file_id"]).await;
        let mut bodies: Vec<(String, Value)> = output
            .into_iter()
            .map(|(id, v)| (id, without_stamp(v["response"]["body"].clone())))
            .collect();
        bodies.sort_by(|a, b| a.0.cmp(&b.0));
        (bodies, done["output_file_id"].clone())
    };
    let one = bodies(Running::start(MockConfig::default()).await).await;
    let two = bodies(Running::start(MockConfig::default()).await).await;
    assert_eq!(one, two);
}

#[tokio::test]
async fn one_or_zero_polls_complete_at_the_first_retrieve() {
    for polls in [0, 1] {
        let config = MockConfig {
            batch_polls: polls,
            ..MockConfig::default()
        };
        let server = Running::start(config).await;
        let client = Client::new();
        let file_id = client.upload(&server, &rows(3)).await;
        let batch = client.create(&server, &file_id, None).await;
        let (done, seen) = client.poll_to_end(&server, batch["id"].as_str().unwrap()).await;
        assert_eq!(seen, ["completed"]);
        assert_eq!(
            done["request_counts"],
            json!({"total": 3, "completed": 3, "failed": 0})
        );
    }
}

#[tokio::test]
async fn directive_rows_land_in_the_error_file_with_their_status_and_openai_body() {
    let server = Running::start(MockConfig::default()).await;
    let client = Client::new();
    let file = [
        line("fine", "hello"),
        line("bad", "[[mock:status=400]] nope"),
        line("busy", "[[mock:status=503]] later"),
    ]
    .join("\n");
    let file_id = client.upload(&server, &file).await;
    let batch = client.create(&server, &file_id, None).await;
    let (done, _) = client.poll_to_end(&server, batch["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(
        done["request_counts"],
        json!({"total": 3, "completed": 1, "failed": 2})
    );
    let output = client.lines(&server, &done["output_file_id"]).await;
    let errors = client.lines(&server, &done["error_file_id"]).await;
    assert_eq!(output.keys().collect::<Vec<_>>(), ["fine"]);
    assert_eq!(errors["bad"]["response"]["status_code"], 400);
    assert!(errors["bad"]["error"].is_null());
    assert_eq!(errors["busy"]["response"]["status_code"], 503);
    let live = json_of(server.chat("[[mock:status=503]] later").await).await;
    assert_eq!(errors["busy"]["response"]["body"], live);
    assert_eq!(
        errors["busy"]["response"]["body"]["error"]["type"],
        "server_error"
    );
}

#[tokio::test]
async fn expired_answers_the_first_fraction_and_expires_the_rest() {
    let server = Running::start(MockConfig::default()).await;
    let client = Client::new();
    let file_id = client.upload(&server, &rows(10)).await;
    let batch = client.create(&server, &file_id, Some("expired:0.4")).await;
    let (done, seen) = client.poll_to_end(&server, batch["id"].as_str().unwrap()).await;
    assert_eq!(seen, ["in_progress", "in_progress", "expired"]);
    assert_eq!(
        done["request_counts"],
        json!({"total": 10, "completed": 4, "failed": 6})
    );
    assert!(done["expired_at"].as_u64().is_some());
    let output = client.lines(&server, &done["output_file_id"]).await;
    let errors = client.lines(&server, &done["error_file_id"]).await;
    let mut answered: Vec<_> = output.keys().cloned().collect();
    answered.sort();
    assert_eq!(answered, ["row-0", "row-1", "row-2", "row-3"]);
    assert_eq!(errors.len(), 6);
    let late = &errors["row-9"];
    assert!(late["response"].is_null());
    assert_eq!(late["error"]["code"], "batch_expired");
    assert_eq!(
        late["error"]["message"],
        "This request could not be executed before the completion window expired."
    );
}

#[tokio::test]
async fn the_outcome_flag_fails_the_nth_batch_and_the_header_wins_over_it() {
    let config = MockConfig {
        batch_outcomes: BatchOutcomes::parse(&["2=failed", "expired"]).unwrap(),
        ..MockConfig::default()
    };
    let server = Running::start(config).await;
    let client = Client::new();
    let file_id = client.upload(&server, &rows(4)).await;
    let mut ends = Vec::new();
    for header in [None, None, Some("completed")] {
        let batch = client.create(&server, &file_id, header).await;
        let (done, _) = client.poll_to_end(&server, batch["id"].as_str().unwrap()).await;
        ends.push(done);
    }
    let statuses: Vec<_> = ends.iter().map(|b| b["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["expired", "failed", "completed"]);
    let failed = &ends[1];
    assert_eq!(failed["errors"]["object"], "list");
    assert_eq!(failed["errors"]["data"].as_array().unwrap().len(), 1);
    assert!(failed["output_file_id"].is_null() && failed["error_file_id"].is_null());
    assert!(failed["failed_at"].as_u64().is_some());
    let bad_header = client.try_create(&server, &file_id, Some("soon")).await.unwrap();
    assert_eq!(bad_header.status(), 400);
    assert!(json_of(bad_header).await["error"]["message"]
        .as_str()
        .unwrap()
        .contains("X-Mock-Batch-Outcome"));
}

#[tokio::test]
async fn bad_lines_fail_validation_with_one_error_per_line() {
    let server = Running::start(MockConfig::default()).await;
    let client = Client::new();
    let mut other_model = json!({"custom_id": "m", "method": "POST", "url": "/v1/chat/completions",
        "body": chat_body("hi")});
    other_model["body"]["model"] = json!("gpt-4o");
    let file = [
        line("a", "fine"),
        "{broken".to_string(),
        json!({"custom_id": "b", "method": "POST", "url": "/v1/completions", "body": {"model": "gpt-4o-mini", "prompt": "x"}}).to_string(),
        other_model.to_string(),
        line("a", "repeated id"),
    ]
    .join("\n");
    let file_id = client.upload(&server, &file).await;
    let batch = client.create(&server, &file_id, None).await;
    let failed = client.retrieve(&server, batch["id"].as_str().unwrap()).await;
    assert_eq!(failed["status"], "failed");
    let errors: Vec<(u64, String)> = failed["errors"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            (2, "invalid_json_line".to_string()),
            (3, "invalid_url".to_string()),
            (4, "mismatched_model".to_string()),
            (5, "duplicate_custom_id".to_string())
        ]
    );
    assert_eq!(failed["request_counts"]["total"], 0);
}

#[tokio::test]
async fn cancel_keeps_the_answered_lines_and_puts_the_rest_in_no_file() {
    let config = MockConfig {
        batch_polls: 4,
        ..MockConfig::default()
    };
    let server = Running::start(config).await;
    let client = Client::new();
    let file_id = client.upload(&server, &rows(8)).await;
    let batch = client.create(&server, &file_id, None).await;
    let id = batch["id"].as_str().unwrap();
    let running = client.retrieve(&server, id).await;
    assert_eq!(running["request_counts"]["completed"], 2);
    let cancel = |id: String| {
        let request = client
            .http
            .post(server.url(&format!("/v1/batches/{id}/cancel")))
            .send();
        async { request.await.expect("cancel answered") }
    };
    let cancelling = json_of(cancel(id.to_string()).await).await;
    assert_eq!(cancelling["status"], "cancelling");
    assert!(cancelling["cancelling_at"].as_u64().is_some());
    let (done, seen) = client.poll_to_end(&server, id).await;
    assert_eq!(seen, ["cancelled"]);
    assert_eq!(
        done["request_counts"],
        json!({"total": 8, "completed": 2, "failed": 0})
    );
    let output = client.lines(&server, &done["output_file_id"]).await;
    assert_eq!(output.len(), 2);
    assert!(done["error_file_id"].is_null());
    let again = cancel(id.to_string()).await;
    assert_eq!(again.status(), 409);
    assert_eq!(json_of(again).await["error"]["type"], "invalid_request_error");
    assert_eq!(cancel("batch_mock_99".into()).await.status(), 404);
    assert_eq!(server.stats().await["batches_cancelled"], 1);
}

#[tokio::test]
async fn batches_list_newest_first_in_pages() {
    let server = Running::start(MockConfig::default()).await;
    let client = Client::new();
    let file_id = client.upload(&server, &rows(1)).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            client.create(&server, &file_id, None).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let page = json_of(client.get(&server, "/v1/batches?limit=2").await).await;
    let listed: Vec<_> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].clone())
        .collect();
    assert_eq!(listed, [json!(ids[2]), json!(ids[1])]);
    assert_eq!(
        (page["has_more"].as_bool(), &page["first_id"]),
        (Some(true), &json!(ids[2]))
    );
    let after = page["last_id"].as_str().unwrap();
    let rest = json_of(
        client
            .get(&server, &format!("/v1/batches?limit=2&after={after}"))
            .await,
    )
    .await;
    assert_eq!(rest["data"][0]["id"], json!(ids[0]));
    assert_eq!(
        (rest["data"].as_array().unwrap().len(), rest["has_more"].as_bool()),
        (1, Some(false))
    );
    assert_eq!(client.get(&server, "/v1/batches?limit=0").await.status(), 400);
}

#[tokio::test]
async fn files_are_listed_read_and_deleted_like_openais() {
    let server = Running::start(MockConfig::default()).await;
    let client = Client::new();
    let content = rows(2);
    let batch_file = client.upload(&server, &content).await;
    let other = client
        .try_upload(&server, "free text\n", "user_data")
        .await
        .unwrap();
    let other = json_of(other).await["id"].as_str().unwrap().to_string();

    let all = json_of(client.get(&server, "/v1/files").await).await;
    assert_eq!(all["object"], "list");
    assert_eq!(all["data"][0]["id"], json!(other), "newest first");
    let only_batch = json_of(client.get(&server, "/v1/files?purpose=batch").await).await;
    assert_eq!(only_batch["data"].as_array().unwrap().len(), 1);
    let oldest = json_of(client.get(&server, "/v1/files?order=asc&limit=1").await).await;
    assert_eq!(
        (&oldest["data"][0]["id"], oldest["has_more"].as_bool()),
        (&json!(batch_file), Some(true))
    );

    let got = client
        .get(&server, &format!("/v1/files/{batch_file}/content"))
        .await;
    assert_eq!(got.text().await.unwrap(), content);
    let deleted = client.auth(client.http.delete(server.url(&format!("/v1/files/{batch_file}"))));
    let deleted = json_of(deleted.send().await.unwrap()).await;
    assert_eq!(
        deleted,
        json!({"id": batch_file, "object": "file", "deleted": true})
    );
    let gone = client.get(&server, &format!("/v1/files/{batch_file}")).await;
    assert_eq!(gone.status(), 404);
    assert!(json_of(gone).await["error"]["message"]
        .as_str()
        .unwrap()
        .contains(&batch_file));
    let again = client
        .http
        .delete(server.url(&format!("/v1/files/{batch_file}")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    assert_eq!(server.stats().await["files_deleted"], 1);
    let unknown = client.try_create(&server, &batch_file, None).await.unwrap();
    assert_eq!(unknown.status(), 404);
    let wrong_purpose = client.try_create(&server, &other, None).await.unwrap();
    assert_eq!(json_of(wrong_purpose).await["error"]["param"], "input_file_id");
}

#[tokio::test]
async fn uploads_without_a_good_purpose_or_file_are_refused() {
    let server = Running::start(MockConfig::default()).await;
    let client = Client::new();
    let bad = client.try_upload(&server, "x\n", "pictures").await.unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(json_of(bad).await["error"]["param"], "purpose");
    let form =
        reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::text("x").file_name("a"));
    let no_purpose = client
        .http
        .post(server.url("/v1/files"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(no_purpose).await["error"]["param"], "purpose");
    let form = reqwest::multipart::Form::new().text("purpose", "batch");
    let no_file = client
        .http
        .post(server.url("/v1/files"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(no_file.status(), 400);
    assert_eq!(json_of(no_file).await["error"]["param"], "file");
    let not_multipart = server.post("/v1/files", &json!({"purpose": "batch"})).await;
    assert_eq!(not_multipart.status(), 400);
    assert_eq!(server.stats().await["files_uploaded"], 0);
}

#[tokio::test]
async fn uploads_may_be_larger_than_the_32_mb_cap_of_completions() {
    let server = Running::start(MockConfig::default()).await;
    let client = Client::new();
    let big = "word ".repeat(7 * 1024 * 1024); // 35 MB
    let uploaded = client.try_upload(&server, &big, "user_data").await.unwrap();
    assert_eq!(uploaded.status(), 200);
    assert_eq!(json_of(uploaded).await["bytes"], big.len());
    let too_big = server.chat(&big).await;
    assert_eq!(too_big.status(), 413);
}

#[tokio::test]
async fn drop_upload_stores_the_nth_file_but_never_answers() {
    let config = MockConfig {
        drop_upload: Some(2),
        ..MockConfig::default()
    };
    let server = Running::start(config).await;
    let client = Client::new();
    client.upload(&server, &rows(1)).await;
    let dropped = client.try_upload(&server, &rows(2), "batch").await;
    assert!(dropped.is_err(), "the second upload gets no answer: {dropped:?}");
    client.upload(&server, &rows(3)).await;
    let overview = json_of(reqwest::get(server.url("/mock/batches")).await.unwrap()).await;
    let lines: Vec<_> = overview["uploads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["lines"].clone())
        .collect();
    assert_eq!(lines, [json!(1), json!(2), json!(3)]);
    let files = json_of(client.get(&server, "/v1/files").await).await;
    assert_eq!(files["data"].as_array().unwrap().len(), 3, "the orphan is stored");
    let stats = server.stats().await;
    assert_eq!(
        (
            stats["files_uploaded"].as_u64(),
            stats["by_outcome"]["dropped"].as_u64()
        ),
        (Some(3), Some(1))
    );
}

#[tokio::test]
async fn drop_batch_create_before_or_after_creating() {
    for after in [false, true] {
        let config = MockConfig {
            drop_batch_create: Some(DropCreate { nth: 1, after }),
            ..MockConfig::default()
        };
        let server = Running::start(config).await;
        let client = Client::new();
        let file_id = client.upload(&server, &rows(2)).await;
        let dropped = client.try_create(&server, &file_id, None).await;
        assert!(dropped.is_err(), "after={after}: no answer");
        let overview = json_of(reqwest::get(server.url("/mock/batches")).await.unwrap()).await;
        let created = overview["batches"].as_array().unwrap().len();
        assert_eq!(created, usize::from(after), "after={after}");
        // Fires once: the next create is answered.
        let batch = client.create(&server, &file_id, None).await;
        let overview = json_of(reqwest::get(server.url("/mock/batches")).await.unwrap()).await;
        let last = overview["batches"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["id"], batch["id"]);
        assert_eq!(last["custom_ids"], json!(["row-0", "row-1"]));
        assert_eq!(last["status"], "validating");
        assert_eq!(server.stats().await["batches_created"], created as u64 + 1);
    }
}

#[tokio::test]
async fn files_and_batches_need_the_key_like_every_route() {
    let config = MockConfig {
        api_key: Some("sk-batch".into()),
        unauthorized_after: Some(4),
        ..MockConfig::default()
    };
    let server = Running::start(config).await;
    let keyless = Client::new()
        .try_upload(&server, &rows(1), "batch")
        .await
        .unwrap();
    assert_eq!(keyless.status(), 401);
    let client = Client::with_key("sk-batch");
    let file_id = client.upload(&server, &rows(1)).await;
    assert_eq!(Client::new().get(&server, "/v1/batches").await.status(), 401);
    client.create(&server, &file_id, None).await;
    // The fourth /v1 request: the key has been "revoked".
    assert_eq!(client.get(&server, "/v1/batches").await.status(), 401);
    assert_eq!(server.stats().await["by_outcome"]["auth"], 3);
}

#[tokio::test]
async fn a_120_000_row_job_in_three_files_goes_through_in_seconds() {
    let server = Running::start(MockConfig::default()).await;
    let client = Client::new();
    let started = Instant::now();
    let mut next = 0;
    let mut bytes = 0;
    let mut batches = Vec::new();
    for size in [50_000, 50_000, 20_000] {
        let file: String = (next..next + size)
            .map(|i| {
                let prompt = format!(
                    "row {i}: summarise the following short paragraph about item {i} in one line please"
                );
                line(&format!("row-{i}"), &prompt) + "\n"
            })
            .collect();
        next += size;
        bytes += file.len();
        let file_id = client.upload(&server, &file).await;
        batches.push(
            client.create(&server, &file_id, None).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let uploaded = started.elapsed();
    let mut outputs = Vec::new();
    for id in &batches {
        let (done, _) = client.poll_to_end(&server, id).await;
        assert_eq!(done["status"], "completed");
        outputs.push(done["output_file_id"].as_str().unwrap().to_string());
    }
    let polled = started.elapsed();
    let mut rows = 0;
    for id in &outputs {
        let content = client
            .get(&server, &format!("/v1/files/{id}/content"))
            .await
            .bytes()
            .await
            .unwrap();
        rows += content.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
    }
    let elapsed = started.elapsed();
    eprintln!(
        "120k rows, {bytes} bytes: uploaded and created in {uploaded:?}, completed in {polled:?}, \
         downloaded in {elapsed:?}"
    );
    assert_eq!(rows, 120_000);
    assert!(bytes > 20_000_000, "{bytes}");
    // Generous: a few seconds is the expectation on a loaded 2-core machine, even in debug.
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");
}
