//! In-process tests of the normal behaviour: answers, usage, auth, errors, stats, log and
//! shutdown, each against a real server on 127.0.0.1:0 driven over HTTP with reqwest. The
//! helpers here are shared with `tests_faults`, which covers injected faults and limits.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{MockArgs, MockConfig, MockServer};

/// A server serving in the background; stopped when dropped.
pub(super) struct Running {
    base: String,
    shutdown: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    pub async fn start(config: MockConfig) -> Self {
        let server = MockServer::bind(config).await.expect("bind on 127.0.0.1:0");
        let base = format!("http://{}", server.local_addr());
        let shutdown = CancellationToken::new();
        let task = Some(tokio::spawn(server.serve(shutdown.clone())));
        Running { base, shutdown, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.post_with(&reqwest::Client::new(), path, body).await
    }

    pub async fn post_with(&self, client: &reqwest::Client, path: &str, body: &Value) -> reqwest::Response {
        self.try_post(client, path, body)
            .await
            .expect("request reaches the server")
    }

    pub async fn try_post(
        &self,
        client: &reqwest::Client,
        path: &str,
        body: &Value,
    ) -> reqwest::Result<reqwest::Response> {
        client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
    }

    pub async fn chat(&self, prompt: &str) -> reqwest::Response {
        self.post("/v1/chat/completions", &chat_body(prompt)).await
    }

    pub async fn stats(&self) -> Value {
        let response = reqwest::get(self.url("/mock/stats"))
            .await
            .expect("stats reachable");
        json_of(response).await
    }

    /// Stops serving and checks that `serve` returned Ok, within a bound.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let task = self.task.take().expect("not stopped twice");
        let result = tokio::time::timeout(Duration::from_secs(3), task).await;
        result
            .expect("serve returns promptly")
            .expect("serve task did not panic")
            .expect("serve is Ok");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub(super) fn chat_body(prompt: &str) -> Value {
    json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]})
}

pub(super) async fn json_of(response: reqwest::Response) -> Value {
    let bytes = response.bytes().await.expect("body readable");
    serde_json::from_slice(&bytes).expect("body is JSON")
}

async fn content_of(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 200);
    let json = json_of(response).await;
    json["choices"][0]["message"]["content"]
        .as_str()
        .expect("content is a string")
        .to_string()
}

#[tokio::test]
async fn same_prompt_gets_the_same_text_whatever_the_order() {
    let server = Running::start(MockConfig::default()).await;
    let first = content_of(server.chat("what is the capital of France").await).await;
    let other = content_of(server.chat("something else entirely").await).await;
    let again = content_of(server.chat("what is the capital of France").await).await;
    assert_eq!(first, again);
    assert_ne!(first, other);
    assert_eq!(first, "Mock reply: what is the capital of France");
    server.stop().await;
}

#[tokio::test]
async fn chat_answer_is_real_shaped_and_echoes_the_model() {
    let server = Running::start(MockConfig::default()).await;
    let json = json_of(server.chat("hi").await).await;
    assert_eq!(json["object"], "chat.completion");
    assert_eq!(json["model"], "gpt-4o-mini");
    assert!(json["id"].as_str().unwrap().starts_with("chatcmpl-mock-"));
    assert!(json["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(json["choices"][0]["message"]["role"], "assistant");
    assert_eq!(json["choices"][0]["finish_reason"], "stop");
    assert!(json["choices"][0]["logprobs"].is_null());
    assert!(json["system_fingerprint"].is_string());
}

#[tokio::test]
async fn chat_usage_counts_words_plus_overheads() {
    let server = Running::start(MockConfig::default()).await;
    let body = json!({"model": "m", "messages": [
        {"role": "system", "content": "you are terse"},
        {"role": "user", "content": "one two three four"}]});
    let json = json_of(server.post("/v1/chat/completions", &body).await).await;
    // (3 + 4) + (4 + 4) + 3 = 18; "Mock reply: one two three four" = 6 words.
    assert_eq!(
        json["usage"],
        json!({"prompt_tokens": 18, "completion_tokens": 6, "total_tokens": 24})
    );
}

#[tokio::test]
async fn max_tokens_truncates_the_reply_with_finish_reason_length() {
    let server = Running::start(MockConfig::default()).await;
    let mut body = chat_body("alpha beta gamma delta");
    body["max_completion_tokens"] = json!(3);
    let json = json_of(server.post("/v1/chat/completions", &body).await).await;
    assert_eq!(json["choices"][0]["message"]["content"], "Mock reply: alpha");
    assert_eq!(json["choices"][0]["finish_reason"], "length");
    assert_eq!(json["usage"]["completion_tokens"], 3);
}

#[tokio::test]
async fn n_returns_identical_choices_and_multiplies_completion_tokens() {
    let server = Running::start(MockConfig::default()).await;
    let mut body = chat_body("x y");
    body["n"] = json!(3);
    let json = json_of(server.post("/v1/chat/completions", &body).await).await;
    let choices = json["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 3);
    assert_eq!(choices[2]["index"], 2);
    assert_eq!(choices[0]["message"], choices[2]["message"]);
    assert_eq!(json["usage"]["completion_tokens"], 12);
}

#[tokio::test]
async fn legacy_completions_use_the_same_rules_without_overhead() {
    let server = Running::start(MockConfig::default()).await;
    let body = json!({"model": "gpt-3.5-turbo-instruct", "prompt": "say this is a test", "max_tokens": 4});
    let json = json_of(server.post("/v1/completions", &body).await).await;
    assert_eq!(json["object"], "text_completion");
    assert_eq!(json["choices"][0]["text"], "Mock reply: say this");
    assert_eq!(json["choices"][0]["finish_reason"], "length");
    assert_eq!(
        json["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9})
    );
}

#[tokio::test]
async fn models_are_listed() {
    let server = Running::start(MockConfig::default()).await;
    let json = json_of(reqwest::get(server.url("/v1/models")).await.unwrap()).await;
    assert_eq!(json["object"], "list");
    assert!(json["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["id"] == "gpt-4o-mini"));
}

#[tokio::test]
async fn api_key_is_required_from_either_header() {
    let var = format!("PROMPTMILL_MOCK_TEST_KEY_{}", std::process::id());
    // Edition 2021: set_var is safe; the name is unique to this test process.
    std::env::set_var(&var, "sk-mock-right");
    let args = <MockArgsCli as clap::Parser>::parse_from(["mock", "--api-key-env", &var]).args;
    let server = Running::start(MockConfig::from_args(args).unwrap()).await;
    let client = reqwest::Client::new();
    let send = |auth: Option<(&'static str, &'static str)>| {
        let mut request = client
            .post(server.url("/v1/chat/completions"))
            .body(chat_body("hello").to_string());
        if let Some((name, value)) = auth {
            request = request.header(name, value);
        }
        request.send()
    };
    let missing = send(None).await.unwrap();
    assert_eq!(missing.status(), 401);
    let expected = json!({"error": {"message": "Incorrect API key provided.",
        "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}});
    assert_eq!(json_of(missing).await, expected);
    assert_eq!(
        send(Some(("authorization", "Bearer sk-mock-wrong")))
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        send(Some(("authorization", "Bearer sk-mock-right")))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        send(Some(("api-key", "sk-mock-right"))).await.unwrap().status(),
        200
    );
    assert_eq!(server.stats().await["by_outcome"]["auth"], 2);
}

#[derive(clap::Parser)]
struct MockArgsCli {
    #[command(flatten)]
    args: MockArgs,
}

#[tokio::test]
async fn bad_bodies_paths_and_methods_get_openai_errors() {
    let server = Running::start(MockConfig::default()).await;
    let client = reqwest::Client::new();
    let not_json = client
        .post(server.url("/v1/chat/completions"))
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    assert_eq!(json_of(not_json).await["error"]["type"], "invalid_request_error");
    let no_messages = server.post("/v1/chat/completions", &json!({"model": "m"})).await;
    assert_eq!(no_messages.status(), 400);
    assert_eq!(json_of(no_messages).await["error"]["param"], "messages");
    let unknown = server.post("/v1/audio/speech", &json!({})).await;
    assert_eq!(unknown.status(), 404);
    assert!(json_of(unknown).await["error"]["message"]
        .as_str()
        .unwrap()
        .contains("/v1/audio/speech"));
    let wrong_method = reqwest::get(server.url("/v1/chat/completions")).await.unwrap();
    assert_eq!(wrong_method.status(), 405);
}

#[tokio::test]
async fn azure_deployment_paths_are_served_and_need_an_api_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mock.jsonl");
    let config = MockConfig {
        log: Some(path.clone()),
        api_key: Some("k".into()),
        ..MockConfig::default()
    };
    let server = Running::start(config).await;
    let client = reqwest::Client::new();
    let send = |path: &str, body: Value| {
        let request = client
            .post(server.url(path))
            .header("api-key", "k")
            .body(body.to_string())
            .send();
        async { request.await.expect("request reaches the server") }
    };
    let chat = send(
        "/openai/deployments/dep/chat/completions?api-version=2024-10-21",
        chat_body("hi"),
    )
    .await;
    assert_eq!(chat.status(), 200);
    assert_eq!(json_of(chat).await["object"], "chat.completion");
    let legacy = send(
        "/openai/deployments/dep/completions?api-version=v",
        json!({"model": "m", "prompt": "hi"}),
    )
    .await;
    assert_eq!(json_of(legacy).await["object"], "text_completion");
    let no_version = send("/openai/deployments/dep/chat/completions", chat_body("hi")).await;
    assert_eq!(no_version.status(), 404);
    assert!(json_of(no_version).await["error"]["message"]
        .as_str()
        .unwrap()
        .contains("api-version"));
    let unknown = send("/openai/deployments/dep/audio/speech?api-version=v", json!({})).await;
    assert_eq!(unknown.status(), 404);

    let text = std::fs::read_to_string(&path).unwrap();
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["path"], "/openai/deployments/dep/chat/completions");
    assert_eq!(first["query"], "api-version=2024-10-21");
    assert_eq!(first["credential"], "api-key");
    server.stop().await;
}

#[tokio::test]
async fn stats_sum_the_usage_of_successful_answers_only() {
    let server = Running::start(MockConfig::default()).await;
    let mut expected = (0, 0, 0);
    for prompt in ["a b c", "d e", "[[mock:status=400]]"] {
        let response = server.chat(prompt).await;
        if response.status() == 200 {
            let usage = json_of(response).await["usage"].clone();
            expected.0 += usage["prompt_tokens"].as_u64().unwrap();
            expected.1 += usage["completion_tokens"].as_u64().unwrap();
            expected.2 += usage["total_tokens"].as_u64().unwrap();
        }
    }
    let stats = server.stats().await;
    assert_eq!(stats["requests"], 3);
    assert_eq!(stats["by_status"], json!({"200": 2, "400": 1}));
    assert_eq!(stats["by_outcome"]["ok"], 2);
    assert_eq!(stats["by_outcome"]["directive"], 1);
    let usage = &stats["usage"];
    assert_eq!(
        (
            usage["prompt_tokens"].as_u64(),
            usage["completion_tokens"].as_u64()
        ),
        (Some(expected.0), Some(expected.1))
    );
    assert_eq!(usage["total_tokens"].as_u64(), Some(expected.2));
}

#[tokio::test]
async fn log_has_one_json_line_per_request_before_the_answer_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mock.jsonl");
    let config = MockConfig {
        log: Some(path.clone()),
        ..MockConfig::default()
    };
    let server = Running::start(config).await;
    server.chat("first row").await;
    server.chat("[[mock:status=503]] second").await;
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["prompt"], "first row");
    assert_eq!(
        (&lines[0]["status"], &lines[0]["outcome"]),
        (&json!(200), &json!("ok"))
    );
    assert_eq!(
        (&lines[1]["status"], &lines[1]["outcome"]),
        (&json!(503), &json!("directive"))
    );
    assert_eq!(lines[1]["path"], "/v1/chat/completions");
    assert!(lines[0]["t_ms"].as_f64().unwrap() > 1.6e12);
    server.stop().await;
}

#[tokio::test]
async fn latency_delays_every_answer() {
    let config = MockConfig {
        latency: Duration::from_millis(150),
        ..MockConfig::default()
    };
    let server = Running::start(config).await;
    let started = Instant::now();
    assert_eq!(server.chat("x").await.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn many_connections_wait_out_their_latency_concurrently() {
    let config = MockConfig {
        latency: Duration::from_millis(300),
        ..MockConfig::default()
    };
    let server = std::sync::Arc::new(Running::start(config).await);
    let started = Instant::now();
    let clients: Vec<_> = (0..300)
        .map(|i| {
            let server = server.clone();
            tokio::spawn(async move { server.chat(&format!("row {i}")).await.status() })
        })
        .collect();
    for client in clients {
        assert_eq!(client.await.unwrap(), 200);
    }
    // Serially this would take 90 s.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn shutdown_returns_promptly_even_with_requests_waiting() {
    let config = MockConfig {
        latency: Duration::from_secs(30),
        ..MockConfig::default()
    };
    let server = Running::start(config).await;
    let url = server.url("/v1/chat/completions");
    let waiting = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .body(chat_body("x").to_string())
            .send()
            .await
            .map(|r| r.status())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop().await;
    // The waiting request got its answer early rather than being cut off.
    assert_eq!(waiting.await.unwrap().unwrap(), 200);
}
