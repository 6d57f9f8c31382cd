//! In-process tests of everything injected on purpose: --fail-first bursts, prompt
//! directives, --rpm/--tpm limits and the random faults at rate 1.0, against a real server
//! on 127.0.0.1:0 (helpers in `tests`).

use std::time::Duration;

use serde_json::json;

use super::config::FaultRates;
use super::tests::{chat_body, json_of, Running};
use super::MockConfig;

fn faulty(faults: FaultRates) -> MockConfig {
    MockConfig {
        faults,
        ..MockConfig::default()
    }
}

#[tokio::test]
async fn fail_first_fails_a_burst_then_serves() {
    let config = MockConfig {
        fail_first: 2,
        fail_status: 429,
        ..MockConfig::default()
    };
    let server = Running::start(config).await;
    let first = server.chat("a").await;
    assert_eq!(first.status(), 429);
    assert_eq!(first.headers()["retry-after"], "1");
    assert_eq!(first.headers()["retry-after-ms"], "1000");
    assert_eq!(server.chat("b").await.status(), 429);
    assert_eq!(server.chat("c").await.status(), 200);
    assert_eq!(server.stats().await["by_outcome"]["fail_first"], 2);
}

#[tokio::test]
async fn fail_first_ignores_the_models_endpoint() {
    let config = MockConfig {
        fail_first: 1,
        ..MockConfig::default()
    };
    let server = Running::start(config).await;
    assert_eq!(
        reqwest::get(server.url("/v1/models")).await.unwrap().status(),
        200
    );
    assert_eq!(server.chat("a").await.status(), 500);
    assert_eq!(server.chat("a").await.status(), 200);
}

#[tokio::test]
async fn unauthorized_after_serves_n_requests_then_refuses_the_key() {
    let config = MockConfig {
        unauthorized_after: Some(2),
        ..MockConfig::default()
    };
    let server = Running::start(config).await;
    assert_eq!(server.chat("a").await.status(), 200);
    assert_eq!(server.chat("b").await.status(), 200);
    for prompt in ["c", "d"] {
        let refused = server.chat(prompt).await;
        assert_eq!(refused.status(), 401);
        assert_eq!(json_of(refused).await["error"]["code"], "invalid_api_key");
    }
    assert_eq!(server.stats().await["by_outcome"]["auth"], 2);
}

#[tokio::test]
async fn a_fractional_retry_after_is_sent_in_milliseconds_and_rounded_up_in_seconds() {
    let config = MockConfig {
        fail_first: 1,
        fail_status: 429,
        retry_after: Duration::from_millis(250),
        ..MockConfig::default()
    };
    let server = Running::start(config).await;
    let first = server.chat("a").await;
    assert_eq!(first.headers()["retry-after"], "1");
    assert_eq!(first.headers()["retry-after-ms"], "250");
}

#[tokio::test]
async fn status_directive_fails_that_prompt_every_time() {
    let server = Running::start(MockConfig::default()).await;
    for _ in 0..3 {
        let response = server.chat("row 9 [[mock:status=400]]").await;
        assert_eq!(response.status(), 400);
        let error = &json_of(response).await["error"];
        assert_eq!(error["message"], "mock: status 400 requested by the prompt");
        assert_eq!(error["type"], "invalid_request_error");
    }
    assert_eq!(server.chat("row 10").await.status(), 200);
}

#[tokio::test]
async fn fail_times_directive_fails_the_first_k_then_succeeds() {
    let server = Running::start(MockConfig::default()).await;
    let prompt = "row 3 [[mock:fail-times=2:status=503]]";
    let statuses = [
        server.chat(prompt).await.status(),
        server.chat(prompt).await.status(),
        server.chat(prompt).await.status(),
    ];
    assert_eq!(statuses.map(|s| s.as_u16()), [503, 503, 200]);
}

#[tokio::test]
async fn quota_directive_answers_openais_insufficient_quota_once() {
    let server = Running::start(MockConfig::default()).await;
    let prompt = "row 4 [[mock:fail-times=1:code=insufficient_quota]]";
    let refused = server.chat(prompt).await;
    assert_eq!(refused.status(), 429);
    assert!(!refused.headers().contains_key("retry-after"));
    let error = &json_of(refused).await["error"];
    assert_eq!(
        (&error["type"], &error["code"]),
        (&json!("insufficient_quota"), &json!("insufficient_quota"))
    );
    assert_eq!(server.chat(prompt).await.status(), 200);
}

#[tokio::test]
async fn retry_hint_directives_send_one_header_form_each() {
    let server = Running::start(MockConfig::default()).await;
    let seconds = server.chat("[[mock:status=429:retry-after=3]]").await;
    assert_eq!(seconds.headers()["retry-after"], "3");
    assert!(!seconds.headers().contains_key("retry-after-ms"));
    let millis = server.chat("[[mock:status=429:retry-after-ms=1500]]").await;
    assert_eq!(millis.headers()["retry-after-ms"], "1500");
    assert!(!millis.headers().contains_key("retry-after"));
    let date = server.chat("[[mock:status=503:retry-after-date=2]]").await;
    assert_eq!(date.status(), 503);
    let when = date.headers()["retry-after"].to_str().unwrap();
    assert!(httpdate::parse_http_date(when).is_ok(), "{when}");
}

#[tokio::test]
async fn rpm_limit_answers_429_with_the_real_wait_and_headers() {
    let config = MockConfig {
        rpm: Some(2),
        ..MockConfig::default()
    };
    let server = Running::start(config).await;
    let ok = server.chat("a").await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-ratelimit-limit-requests"], "2");
    assert_eq!(ok.headers()["x-ratelimit-remaining-requests"], "1");
    assert_eq!(server.chat("b").await.status(), 200);
    let limited = server.chat("c").await;
    assert_eq!(limited.status(), 429);
    // One request refills in 30 s at 2 per minute.
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((29..=30).contains(&retry_after), "{retry_after}");
    assert!(limited.headers().contains_key("retry-after-ms"));
    assert_eq!(limited.headers()["x-ratelimit-remaining-requests"], "0");
    let reset = limited.headers()["x-ratelimit-reset-requests"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(reset.ends_with('s') && reset.len() > 2, "{reset}");
    let error = &json_of(limited).await["error"];
    assert_eq!(
        (&error["type"], &error["code"]),
        (&json!("requests"), &json!("rate_limit_exceeded"))
    );
    assert_eq!(server.stats().await["by_outcome"]["rpm"], 1);
}

#[tokio::test]
async fn tpm_limit_charges_prompt_plus_max_tokens() {
    let config = MockConfig {
        tpm: Some(100),
        ..MockConfig::default()
    };
    let server = Running::start(config).await;
    // "a b" costs (2 + 4) + 3 prompt tokens + max_tokens 40 = 49.
    let mut body = chat_body("a b");
    body["max_tokens"] = json!(40);
    let first = server.post("/v1/chat/completions", &body).await;
    assert_eq!(first.headers()["x-ratelimit-remaining-tokens"], "51");
    assert_eq!(server.post("/v1/chat/completions", &body).await.status(), 200);
    let limited = server.post("/v1/chat/completions", &body).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(json_of(limited).await["error"]["type"], "tokens");
}

#[tokio::test]
async fn answers_outside_the_limiter_still_carry_the_headers() {
    let config = MockConfig {
        rpm: Some(10),
        ..MockConfig::default()
    };
    let server = Running::start(config).await;
    let response = server.post("/v1/chat/completions", &json!({"model": "m"})).await;
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["x-ratelimit-remaining-requests"], "10");
}

#[tokio::test]
async fn malformed_rate_one_gives_200_with_unparseable_json() {
    let server = Running::start(faulty(FaultRates {
        malformed: 1.0,
        ..FaultRates::default()
    }))
    .await;
    let response = server.chat("x").await;
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.unwrap();
    assert!(!bytes.is_empty());
    assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_err());
    assert_eq!(
        server.stats().await["usage"]["total_tokens"],
        0,
        "malformed answers carry no usable usage"
    );
}

#[tokio::test]
async fn reset_rate_one_gives_a_connection_error() {
    let server = Running::start(faulty(FaultRates {
        reset: 1.0,
        ..FaultRates::default()
    }))
    .await;
    let client = reqwest::Client::new();
    let result = server
        .try_post(&client, "/v1/chat/completions", &chat_body("x"))
        .await;
    assert!(result.is_err(), "expected a connection error, got {result:?}");
    let stats = server.stats().await;
    assert_eq!(stats["by_outcome"]["reset"], 1);
    assert_eq!(stats["by_status"], json!({}));
}

#[tokio::test]
async fn hang_rate_one_never_answers() {
    let server = Running::start(faulty(FaultRates {
        hang: 1.0,
        ..FaultRates::default()
    }))
    .await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let result = server
        .try_post(&client, "/v1/chat/completions", &chat_body("x"))
        .await;
    assert!(result.is_err_and(|e| e.is_timeout()));
    assert_eq!(server.stats().await["by_outcome"]["hang"], 1);
    // Stopping the server ends the hang instead of waiting an hour.
    server.stop().await;
}

#[tokio::test]
async fn rate_500_gives_openai_server_errors() {
    let server = Running::start(faulty(FaultRates {
        rate_500: 1.0,
        ..FaultRates::default()
    }))
    .await;
    for _ in 0..5 {
        let response = server.chat("x").await;
        assert!([500, 502, 503].contains(&response.status().as_u16()));
        assert_eq!(json_of(response).await["error"]["type"], "server_error");
    }
}

#[tokio::test]
async fn rate_429_uses_retry_after_flag() {
    let config = MockConfig {
        retry_after: Duration::from_secs(7),
        ..faulty(FaultRates {
            rate_429: 1.0,
            ..FaultRates::default()
        })
    };
    let server = Running::start(config).await;
    let response = server.chat("x").await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    assert_eq!(response.headers()["retry-after-ms"], "7000");
    assert_eq!(json_of(response).await["error"]["code"], "rate_limit_exceeded");
}

#[tokio::test]
async fn faults_come_after_auth_and_before_directives() {
    let server = Running::start(faulty(FaultRates {
        rate_500: 1.0,
        ..FaultRates::default()
    }))
    .await;
    let response = server.chat("[[mock:status=404]]").await;
    assert!(response.status().is_server_error());
}
