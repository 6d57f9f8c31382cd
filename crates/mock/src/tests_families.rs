//! In-process tests of `/v1/responses` and `/v1/embeddings` against a real server on
//! 127.0.0.1:0: each answer checked field by field against OpenAI's spec (`Response`,
//! `ResponseUsage`, `CreateEmbeddingResponse`, `Embedding`), the cut and filtered answers, the
//! 400s naming their param, determinism, dimensions, base64, the 2,048-input limit, faults and
//! directives on both routes, and batches whose endpoint is either.

use base64::Engine;
use serde_json::{json, Value};

use super::config::FaultRates;
use super::tests::{chat_body, json_of, Running};
use super::tests_batches::Client;
use super::MockConfig;

async fn respond(server: &Running, body: Value) -> reqwest::Response {
    server.post("/v1/responses", &body).await
}

async fn embed(server: &Running, body: Value) -> reqwest::Response {
    server.post("/v1/embeddings", &body).await
}

async fn ok_json(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    json_of(response).await
}

/// The vectors of an embeddings answer, whichever `encoding_format` it used.
fn vectors(answer: &Value) -> Vec<Vec<f32>> {
    let data = answer["data"].as_array().expect("data is an array");
    data.iter()
        .map(|item| match &item["embedding"] {
            Value::Array(numbers) => numbers.iter().map(|n| n.as_f64().unwrap() as f32).collect(),
            Value::String(text) => base64::engine::general_purpose::STANDARD
                .decode(text)
                .expect("base64")
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            other => panic!("embedding is {other}"),
        })
        .collect()
}

async fn error_param(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let json = json_of(response).await;
    assert_eq!(json["error"]["type"], "invalid_request_error");
    (status, json["error"]["param"].clone())
}

#[tokio::test]
async fn a_response_has_every_field_the_spec_requires_and_chats_text() {
    let server = Running::start(MockConfig::default()).await;
    let body = json!({"model": "gpt-4o-mini", "input": "what is the capital of France",
        "instructions": "be brief", "store": false, "temperature": 0.5, "metadata": {"row": "7"}});
    let r = ok_json(respond(&server, body).await).await;
    assert!(r["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(
        (&r["object"], &r["status"]),
        (&json!("response"), &json!("completed"))
    );
    assert!(r["created_at"].as_u64().is_some() && r["completed_at"].as_u64().is_some());
    assert!(r["error"].is_null() && r["incomplete_details"].is_null());
    assert_eq!(
        (&r["instructions"], &r["model"]),
        (&json!("be brief"), &json!("gpt-4o-mini"))
    );
    assert!(r["max_output_tokens"].is_null() && r["previous_response_id"].is_null());
    assert_eq!(
        (&r["store"], &r["temperature"], &r["top_p"]),
        (&json!(false), &json!(0.5), &json!(1.0))
    );
    assert_eq!((&r["tools"], &r["tool_choice"]), (&json!([]), &json!("auto")));
    assert_eq!(
        (&r["parallel_tool_calls"], &r["truncation"]),
        (&json!(true), &json!("disabled"))
    );
    assert_eq!(
        (&r["text"], &r["metadata"]),
        (&json!({"format": {"type": "text"}}), &json!({"row": "7"}))
    );
    let output = r["output"].as_array().unwrap();
    assert_eq!(output.len(), 1);
    let message = &output[0];
    assert_eq!(
        (&message["type"], &message["role"]),
        (&json!("message"), &json!("assistant"))
    );
    assert!(message["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(message["status"], "completed");
    let chat = json_of(server.chat("what is the capital of France").await).await;
    assert_eq!(
        message["content"],
        json!([{"type": "output_text", "text": chat["choices"][0]["message"]["content"],
            "annotations": [], "logprobs": []}])
    );
    // Input: instructions (2+4) + input (6+4) + 3; output: the reply's 8 words.
    assert_eq!(
        r["usage"],
        json!({"input_tokens": 19, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": 8, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 27})
    );
    assert_eq!(
        server.stats().await["usage"]["total_tokens"],
        27 + chat["usage"]["total_tokens"].as_u64().unwrap()
    );
}

#[tokio::test]
async fn message_items_answer_the_last_user_text() {
    let server = Running::start(MockConfig::default()).await;
    let body = json!({"model": "m", "input": [
        {"role": "developer", "content": "answer in French"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "bonjour tout le monde"}]}]});
    let r = ok_json(respond(&server, body).await).await;
    assert_eq!(
        r["output"][0]["content"][0]["text"],
        "Mock reply: bonjour tout le monde"
    );
    assert_eq!(r["usage"]["input_tokens"], (3 + 4) + (4 + 4) + 3);
    assert_eq!(
        (&r["metadata"], &r["instructions"], &r["store"]),
        (&json!({}), &Value::Null, &json!(true))
    );
}

#[tokio::test]
async fn a_reply_cut_by_max_output_tokens_is_incomplete() {
    let server = Running::start(MockConfig::default()).await;
    let body = json!({"model": "m", "input": "one two three four", "max_output_tokens": 3});
    let r = ok_json(respond(&server, body).await).await;
    assert_eq!(r["status"], "incomplete");
    assert_eq!(r["incomplete_details"], json!({"reason": "max_output_tokens"}));
    assert!(r["completed_at"].is_null());
    assert_eq!(
        (&r["max_output_tokens"], &r["output"][0]["status"]),
        (&json!(3), &json!("incomplete"))
    );
    assert_eq!(r["output"][0]["content"][0]["text"], "Mock reply: one");
    assert_eq!(r["usage"]["output_tokens"], 3);
}

#[tokio::test]
async fn responses_directives_come_from_the_instructions_or_any_input() {
    let server = Running::start(MockConfig::default()).await;
    let in_instructions = json!({"model": "m", "input": "hi", "instructions": "[[mock:status=503]]"});
    assert_eq!(respond(&server, in_instructions).await.status(), 503);
    let in_history = json!({"model": "m", "input": [{"role": "system", "content": "[[mock:status=429:retry-after=7]]"},
        {"role": "user", "content": "hi"}]});
    let limited = respond(&server, in_history).await;
    assert_eq!(
        (limited.status().as_u16(), &limited.headers()["retry-after"]),
        (429, &"7".parse().unwrap())
    );
    // Output: the reply's 4 words plus the 30 reasoning tokens.
    let details = json!({"model": "m", "input": "hi [[mock:prompt-tokens=900:cached=500:cache-creation=20:reasoning=30]]"});
    let r = ok_json(respond(&server, details).await).await;
    assert_eq!(
        r["usage"],
        json!({"input_tokens": 900, "input_tokens_details": {"cached_tokens": 500, "cache_write_tokens": 20},
            "output_tokens": 34, "output_tokens_details": {"reasoning_tokens": 30}, "total_tokens": 934})
    );
    let filtered = ok_json(
        respond(
            &server,
            json!({"model": "m", "input": "x [[mock:reply=content-filter]]"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (&filtered["status"], &filtered["incomplete_details"]["reason"]),
        (&json!("incomplete"), &json!("content_filter"))
    );
    let empty = ok_json(
        respond(
            &server,
            json!({"model": "m", "input": "x [[mock:reply=no-choices]]"}),
        )
        .await,
    )
    .await;
    assert_eq!(empty["output"], json!([]));
    let odd = ok_json(respond(&server, json!({"model": "m", "input": "x [[mock:usage=-1]]"})).await).await;
    assert_eq!(odd["usage"]["input_tokens"], -1);
    let cut = respond(
        &server,
        json!({"model": "m", "input": "x [[mock:reply=truncated]]"}),
    )
    .await;
    assert_eq!(cut.status(), 200);
    assert!(serde_json::from_slice::<Value>(&cut.bytes().await.unwrap()).is_err());
    let twice = json!({"model": "m", "input": "[[mock:fail-times=1:status=500]] once"});
    assert_eq!(respond(&server, twice.clone()).await.status(), 500);
    assert_eq!(respond(&server, twice).await.status(), 200);
}

#[tokio::test]
async fn chat_also_answers_a_content_filter_directive() {
    let server = Running::start(MockConfig::default()).await;
    let json = ok_json(server.chat("x [[mock:reply=content-filter]]").await).await;
    assert_eq!(json["choices"][0]["finish_reason"], "content_filter");
}

#[tokio::test]
async fn bad_responses_bodies_are_400s_naming_the_param() {
    let server = Running::start(MockConfig::default()).await;
    for (body, param) in [
        (json!({"model": "m"}), "input"),
        (json!({"model": "m", "input": ""}), "input"),
        (json!({"model": "m", "input": []}), "input"),
        (json!({"input": "x"}), "model"),
    ] {
        assert_eq!(
            error_param(respond(&server, body.clone()).await).await,
            (400, json!(param)),
            "{body}"
        );
    }
}

#[tokio::test]
async fn an_embeddings_answer_has_the_spec_shape_and_unit_vectors() {
    let server = Running::start(MockConfig::default()).await;
    let body = json!({"model": "text-embedding-3-small", "input": ["hello world", "the quick brown fox"]});
    let e = ok_json(embed(&server, body).await).await;
    assert_eq!(
        (&e["object"], &e["model"]),
        (&json!("list"), &json!("text-embedding-3-small"))
    );
    assert_eq!(e["usage"], json!({"prompt_tokens": 6, "total_tokens": 6}));
    let data = e["data"].as_array().unwrap();
    for (i, item) in data.iter().enumerate() {
        assert_eq!(item.as_object().unwrap().len(), 3);
        assert_eq!(
            (&item["object"], &item["index"]),
            (&json!("embedding"), &json!(i))
        );
    }
    let vectors = vectors(&e);
    assert_eq!((vectors.len(), vectors[0].len()), (2, 1536));
    for v in &vectors {
        let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
    assert_ne!(vectors[0], vectors[1]);
    let stats = server.stats().await;
    assert_eq!(
        stats["usage"],
        json!({"prompt_tokens": 6, "completion_tokens": 0, "total_tokens": 6})
    );
}

#[tokio::test]
async fn vectors_depend_on_the_text_only_and_base64_is_the_same_f32s() {
    let one = Running::start(MockConfig::default()).await;
    let two = Running::start(MockConfig::default()).await;
    let texts = json!(["alpha", "beta gamma", "alpha"]);
    let floats = vectors(&ok_json(embed(&one, json!({"model": "m", "input": texts})).await).await);
    assert_eq!(floats[0], floats[2]);
    let again = vectors(&ok_json(embed(&two, json!({"model": "m", "input": "beta gamma"})).await).await);
    assert_eq!(again[0], floats[1]);
    let encoded = ok_json(
        embed(
            &two,
            json!({"model": "m", "input": texts, "encoding_format": "base64"}),
        )
        .await,
    )
    .await;
    assert!(encoded["data"][0]["embedding"].is_string());
    assert_eq!(vectors(&encoded), floats, "bit for bit");
}

#[tokio::test]
async fn dimensions_and_model_defaults_set_the_length() {
    let server = Running::start(MockConfig::default()).await;
    let length = |answer: Value| vectors(&answer)[0].len();
    let large = json!({"model": "text-embedding-3-large", "input": "x"});
    assert_eq!(length(ok_json(embed(&server, large).await).await), 3072);
    let short = json!({"model": "text-embedding-3-small", "input": "x", "dimensions": 8});
    assert_eq!(length(ok_json(embed(&server, short).await).await), 8);
    let other = json!({"model": "nomic-embed", "input": "x"});
    assert_eq!(length(ok_json(embed(&server, other).await).await), 1536);
    let too_long = json!({"model": "text-embedding-3-small", "input": "x", "dimensions": 2000});
    assert_eq!(
        error_param(embed(&server, too_long).await).await,
        (400, json!("dimensions"))
    );
}

#[tokio::test]
async fn at_most_2048_inputs_and_no_token_arrays() {
    let server = Running::start(MockConfig::default()).await;
    let inputs = |n: usize| (0..n).map(|i| format!("row {i}")).collect::<Vec<_>>();
    let full = ok_json(
        embed(
            &server,
            json!({"model": "m", "input": inputs(2048), "dimensions": 4}),
        )
        .await,
    )
    .await;
    assert_eq!(full["data"].as_array().unwrap().len(), 2048);
    assert_eq!(full["data"][2047]["index"], 2047);
    let over = embed(
        &server,
        json!({"model": "m", "input": inputs(2049), "dimensions": 4}),
    )
    .await;
    assert_eq!(error_param(over).await, (400, json!("input")));
    let tokens = embed(&server, json!({"model": "m", "input": [[1212, 318]]})).await;
    assert_eq!(error_param(tokens).await, (400, json!("input")));
}

#[tokio::test]
async fn a_directive_in_any_input_faults_the_whole_embeddings_request() {
    let server = Running::start(MockConfig::default()).await;
    let body = json!({"model": "m", "input": ["fine", "[[mock:status=429:retry-after-ms=1500]] busy"]});
    let limited = embed(&server, body).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after-ms"], "1500");
    let tokens = ok_json(
        embed(
            &server,
            json!({"model": "m", "input": ["a [[mock:prompt-tokens=77]]"]}),
        )
        .await,
    )
    .await;
    assert_eq!(tokens["usage"], json!({"prompt_tokens": 77, "total_tokens": 77}));
    let empty = ok_json(
        embed(
            &server,
            json!({"model": "m", "input": "a [[mock:reply=no-choices]]"}),
        )
        .await,
    )
    .await;
    assert_eq!(empty["data"], json!([]));
    let textless = embed(
        &server,
        json!({"model": "m", "input": "a [[mock:reply=lone-surrogate]]"}),
    )
    .await;
    assert_eq!(textless.status(), 400);
}

#[tokio::test]
async fn random_faults_and_fail_first_apply_to_both_routes() {
    let config = MockConfig {
        fail_first: 2,
        fail_status: 503,
        faults: FaultRates {
            malformed: 1.0,
            ..FaultRates::default()
        },
        ..MockConfig::default()
    };
    let server = Running::start(config).await;
    assert_eq!(
        embed(&server, json!({"model": "m", "input": "x"})).await.status(),
        503
    );
    assert_eq!(
        respond(&server, json!({"model": "m", "input": "x"}))
            .await
            .status(),
        503
    );
    for response in [
        embed(&server, json!({"model": "m", "input": "x"})).await,
        respond(&server, json!({"model": "m", "input": "x"})).await,
    ] {
        assert_eq!(response.status(), 200);
        let bytes = response.bytes().await.unwrap();
        assert!(serde_json::from_slice::<Value>(&bytes).is_err(), "cut in half");
    }
}

#[tokio::test]
async fn models_list_embeddings_and_azure_serves_deployment_embeddings() {
    let server = Running::start(MockConfig::default()).await;
    let models = json_of(reqwest::get(server.url("/v1/models")).await.unwrap()).await;
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(ids.contains(&"text-embedding-3-small") && ids.contains(&"text-embedding-3-large"));
    let azure = "/openai/deployments/embed/embeddings?api-version=2024-10-21";
    let e = ok_json(
        server
            .post(azure, &json!({"model": "m", "input": "x", "dimensions": 3}))
            .await,
    )
    .await;
    assert_eq!(vectors(&e)[0].len(), 3);
    let no_version = server
        .post("/openai/responses", &json!({"model": "m", "input": "x"}))
        .await;
    assert_eq!(no_version.status(), 404);
}

pub(super) fn batch_line(id: &str, url: &str, body: Value) -> String {
    json!({"custom_id": id, "method": "POST", "url": url, "body": body}).to_string() + "\n"
}

/// Runs a batch of `file` for `endpoint` to its end; returns the batch and its output lines.
pub(super) async fn run_batch(
    server: &Running,
    file: &str,
    endpoint: &str,
) -> (Value, std::collections::HashMap<String, Value>) {
    let client = Client::new();
    let file_id = client.upload(server, file).await;
    let created = client
        .try_create_for(server, &file_id, endpoint, None)
        .await
        .unwrap();
    let batch = ok_json(created).await;
    let (done, _) = client.poll_to_end(server, batch["id"].as_str().unwrap()).await;
    let output = client.lines(server, &done["output_file_id"]).await;
    (done, output)
}

#[tokio::test]
async fn batch_lines_for_responses_and_embeddings_equal_the_live_answers() {
    let server = Running::start(MockConfig::default()).await;
    let response_body = |p: &str| json!({"model": "gpt-4o-mini", "input": p, "max_output_tokens": 4});
    let prompts = ["alpha beta gamma delta", "x"];
    let file: String = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| batch_line(&format!("r{i}"), "/v1/responses", response_body(p)))
        .collect();
    let (done, output) = run_batch(&server, &file, "/v1/responses").await;
    assert_eq!(done["status"], "completed");
    let unstamped = |mut v: Value| {
        for key in ["id", "created_at", "completed_at"] {
            v[key] = Value::Null;
        }
        v["output"][0]["id"] = Value::Null;
        v
    };
    for (i, prompt) in prompts.iter().enumerate() {
        let line = &output[&format!("r{i}")];
        assert_eq!(line["response"]["status_code"], 200);
        let live = ok_json(respond(&server, response_body(prompt)).await).await;
        assert_eq!(
            unstamped(line["response"]["body"].clone()),
            unstamped(live),
            "row {i}"
        );
    }

    let embed_body =
        |t: &str| json!({"model": "text-embedding-3-small", "input": [t, "more"], "dimensions": 16});
    let file = batch_line("e0", "/v1/embeddings", embed_body("one"))
        + &batch_line("e1", "/v1/embeddings", embed_body("two"));
    let (done, output) = run_batch(&server, &file, "/v1/embeddings").await;
    assert_eq!(
        done["request_counts"],
        json!({"total": 2, "completed": 2, "failed": 0})
    );
    let live = ok_json(embed(&server, embed_body("two")).await).await;
    assert_eq!(
        output["e1"]["response"]["body"], live,
        "embeddings carry no stamp"
    );
}

#[tokio::test]
async fn a_line_whose_url_is_not_the_batch_endpoint_fails_validation() {
    let server = Running::start(MockConfig::default()).await;
    let file = batch_line("a", "/v1/embeddings", json!({"model": "m", "input": "x"}))
        + &batch_line("b", "/v1/responses", json!({"model": "m", "input": "x"}))
        + &batch_line(
            "c",
            "/v1/chat/completions",
            json!({"model": "m", "messages": chat_body("x")["messages"]}),
        );
    let (done, _) = run_batch(&server, &file, "/v1/embeddings").await;
    assert_eq!(done["status"], "failed");
    let codes: Vec<(u64, &str)> = done["errors"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert_eq!(codes, [(2, "invalid_url"), (3, "invalid_url")]);
}
