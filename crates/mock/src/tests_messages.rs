//! In-process tests of Anthropic's `/v1/messages` against a real server on 127.0.0.1:0: the
//! `Message` answer field by field, the cache usage a directive asks for, the 400s for a
//! missing `max_tokens` and a role Anthropic does not take, Anthropic's error bodies for the
//! fault directives (529 `overloaded_error`, the low-credit 400), `x-api-key`, and the
//! `anthropic-ratelimit-*` headers.

use serde_json::{json, Value};

use super::tests::{json_of, Running};
use super::MockConfig;

fn body(prompt: &str) -> Value {
    json!({"model": "claude-haiku-4-5", "max_tokens": 50, "system": "Be brief.",
        "messages": [{"role": "user", "content": prompt}]})
}

#[tokio::test]
async fn a_message_is_real_shaped_with_text_blocks_stop_reason_and_usage() {
    let server = Running::start(MockConfig::default()).await;
    let response = server
        .post("/v1/messages", &body("what is the capital of France"))
        .await;
    assert_eq!(response.status(), 200);
    let m = json_of(response).await;
    assert!(m["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!((&m["type"], &m["role"]), (&json!("message"), &json!("assistant")));
    assert_eq!(m["content"][0]["type"], "text");
    assert_eq!(
        m["content"][0]["text"],
        "Mock reply: what is the capital of France"
    );
    assert_eq!(m["stop_reason"], "end_turn");
    assert!(m["stop_sequence"].is_null());
    // 6 words + 4, the system's 2 words + 4, and 3 to prime the reply.
    assert_eq!(m["usage"]["input_tokens"], 19);
    assert_eq!(m["usage"]["output_tokens"], 8);
    assert_eq!(m["usage"]["cache_read_input_tokens"], 0);
    let cut = json!({"model": "m", "max_tokens": 2, "messages": [{"role": "user", "content": "a b c"}]});
    let cut = json_of(server.post("/v1/messages", &cut).await).await;
    assert_eq!(cut["stop_reason"], "max_tokens");
    let cached = json_of(
        server
            .post("/v1/messages", &body("x [[mock:cached=30:cache-creation=5]]"))
            .await,
    )
    .await;
    assert_eq!(cached["usage"]["cache_read_input_tokens"], 30);
    assert_eq!(cached["usage"]["cache_creation_input_tokens"], 5);
    let refused = json_of(
        server
            .post("/v1/messages", &body("x [[mock:reply=content-filter]]"))
            .await,
    )
    .await;
    assert_eq!(
        (&refused["stop_reason"], &refused["content"]),
        (&json!("refusal"), &json!([]))
    );
}

#[tokio::test]
async fn errors_are_worded_as_anthropic_words_them() {
    let server = Running::start(MockConfig::default()).await;
    let error = |v: &Value| (v["type"].clone(), v["error"]["type"].clone());
    let no_max = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let r = server.post("/v1/messages", &no_max).await;
    assert_eq!(r.status(), 400);
    let v = json_of(r).await;
    assert_eq!(error(&v), (json!("error"), json!("invalid_request_error")));
    assert_eq!(v["error"]["message"], "max_tokens: Field required");
    let tool = json!({"model": "m", "max_tokens": 5, "messages": [{"role": "tool", "content": "hi"}]});
    assert_eq!(server.post("/v1/messages", &tool).await.status(), 400);
    let r = server.post("/v1/messages", &body("x [[mock:status=529]]")).await;
    assert_eq!(r.status(), 529);
    assert_eq!(error(&json_of(r).await).1, "overloaded_error");
    let r = server.post("/v1/messages", &body("x [[mock:status=429]]")).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(error(&json_of(r).await).1, "rate_limit_error");
    let r = server
        .post("/v1/messages", &body("x [[mock:code=insufficient_quota]]"))
        .await;
    assert_eq!(r.status(), 400);
    let v = json_of(r).await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("credit balance is too low"),
        "{v}"
    );
}

#[tokio::test]
async fn the_key_is_read_from_x_api_key_and_limits_are_reported_in_anthropic_headers() {
    let config = MockConfig {
        api_key: Some("ant-key".into()),
        rpm: Some(600),
        tpm: Some(100_000),
        ..MockConfig::default()
    };
    let server = Running::start(config).await;
    let client = reqwest::Client::new();
    let send = |key: &'static str| {
        client
            .post(server.url("/v1/messages"))
            .header("x-api-key", key)
            .header("anthropic-version", "2023-06-01")
            .header("content-type", "application/json")
            .body(body("hello").to_string())
            .send()
    };
    let denied = send("wrong").await.unwrap();
    assert_eq!(denied.status(), 401);
    assert_eq!(json_of(denied).await["error"]["type"], "authentication_error");
    let ok = send("ant-key").await.unwrap();
    assert_eq!(ok.status(), 200);
    let h = ok.headers();
    assert_eq!(h["anthropic-ratelimit-requests-limit"], "600");
    assert_eq!(h["anthropic-ratelimit-input-tokens-limit"], "100000");
    assert_eq!(h["anthropic-ratelimit-tokens-limit"], "100000");
    let reset = h["anthropic-ratelimit-requests-reset"].to_str().unwrap();
    assert!(humantime::parse_rfc3339(reset).is_ok(), "{reset}");
    assert!(!h.contains_key("x-ratelimit-limit-requests"));
}
