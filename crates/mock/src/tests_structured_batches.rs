//! Structured output away from a live request, and by chance: batch lines asking for a schema
//! (OpenAI's `/v1/batches` input files, Anthropic's Message Batches `requests[].params`) are
//! answered exactly as live, spoiled shapes included; the --rate-invalid-json, --rate-schema-break,
//! --rate-cut and --rate-refusal draws are per request, counted as `spoiled`, and leave families
//! without text alone.

use serde_json::{json, Value};

use super::config::FaultRates;
use super::tests::{json_of, Running};
use super::tests_families::{batch_line, run_batch};
use super::tests_structured::{ask, fits, json_in, schema, Family};
use super::MockConfig;

/// A body without what differs between two answers to it (`id`, `created`, `created_at`,
/// `completed_at`, the output message's and tool call's ids).
fn unstamped(mut body: Value) -> Value {
    if let Some(o) = body.as_object_mut() {
        for key in ["id", "created", "created_at", "completed_at"] {
            o.remove(key);
        }
    }
    for list in ["output", "content"] {
        if let Some(items) = body[list].as_array_mut() {
            for item in items.iter_mut().filter_map(Value::as_object_mut) {
                item.remove("id");
            }
        }
    }
    body
}

#[tokio::test]
async fn openai_batch_lines_asking_for_a_schema_are_answered_as_live() {
    let server = Running::start(MockConfig::default()).await;
    let prompts = [
        "Describe the blue kettle",
        "kettle [[mock:reply=schema-break]]",
        "x [[mock:reply=refusal]]",
    ];
    for (family, endpoint) in [
        (Family::Chat, "/v1/chat/completions"),
        (Family::Responses, "/v1/responses"),
    ] {
        let file: String = prompts
            .iter()
            .enumerate()
            .map(|(i, p)| batch_line(&format!("r{i}"), endpoint, family.body(p, &schema())))
            .collect();
        let (done, output) = run_batch(&server, &file, endpoint).await;
        assert_eq!(done["status"], "completed");
        for (i, prompt) in prompts.iter().enumerate() {
            let line = &output[&format!("r{i}")];
            assert_eq!(line["response"]["status_code"], 200, "{line}");
            let body = line["response"]["body"].clone();
            let live = json_of(server.post(family.path(), &family.body(prompt, &schema())).await).await;
            assert_eq!(unstamped(body.clone()), unstamped(live), "{family:?} {prompt}");
            if i == 0 {
                assert!(fits(&schema(), &json_in(&family.said(&body))), "{body}");
            }
        }
    }
}

/// Runs a message batch of `params` (custom ids `m0`, `m1`, …) to its end; its results by id.
async fn run_message_batch(server: &Running, params: &[Value]) -> std::collections::HashMap<String, Value> {
    let requests: Vec<Value> = params
        .iter()
        .enumerate()
        .map(|(i, p)| json!({"custom_id": format!("m{i}"), "params": p}))
        .collect();
    let created = server
        .post("/v1/messages/batches", &json!({"requests": requests}))
        .await;
    assert_eq!(created.status(), 200);
    let id = json_of(created).await["id"]
        .as_str()
        .expect("batch id")
        .to_string();
    let client = reqwest::Client::new();
    for _ in 0..20 {
        let url = server.url(&format!("/v1/messages/batches/{id}"));
        let batch = json_of(client.get(url).send().await.expect("retrieve answered")).await;
        if batch["processing_status"] == "ended" {
            break;
        }
    }
    let url = server.url(&format!("/v1/messages/batches/{id}/results"));
    let text = client
        .get(url)
        .send()
        .await
        .expect("results answered")
        .text()
        .await
        .unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line"))
        .map(|v| (v["custom_id"].as_str().unwrap_or_default().to_string(), v))
        .collect()
}

#[tokio::test]
async fn anthropic_batch_requests_asking_for_a_schema_are_answered_as_live() {
    let server = Running::start(MockConfig::default()).await;
    let asks = [
        (Family::Messages, "Describe the blue kettle"),
        (Family::Tool, "Describe the blue kettle"),
        (Family::Tool, "kettle [[mock:reply=cut]]"),
        (Family::Messages, "kettle [[mock:reply=invalid-json]]"),
    ];
    let params: Vec<Value> = asks.iter().map(|(f, p)| f.body(p, &schema())).collect();
    let results = run_message_batch(&server, &params).await;
    assert_eq!(results.len(), asks.len());
    for (i, (family, prompt)) in asks.iter().enumerate() {
        let result = &results[&format!("m{i}")]["result"];
        assert_eq!(result["type"], "succeeded", "{result}");
        let live = json_of(server.post(family.path(), &family.body(prompt, &schema())).await).await;
        assert_eq!(
            unstamped(result["message"].clone()),
            unstamped(live),
            "{family:?} {prompt}"
        );
    }
    let tool = Family::Tool.said(&results["m1"]["result"]["message"]);
    assert_eq!(tool.ending, "tool_use");
    assert!(fits(&schema(), &json_in(&tool)));
}

fn rates(set: impl FnOnce(&mut FaultRates)) -> MockConfig {
    let mut faults = FaultRates::default();
    set(&mut faults);
    MockConfig {
        faults,
        seed: 7,
        ..MockConfig::default()
    }
}

#[tokio::test]
async fn a_spoil_rate_is_drawn_per_request_so_a_retry_may_fit() {
    let server = Running::start(rates(|r| r.cut = 0.5)).await;
    let mut cut = 0;
    for _ in 0..40 {
        let said = ask(&server, Family::Chat, "the same prompt every time", &schema()).await;
        match said.ending.as_str() {
            "length" => cut += 1,
            _ => assert!(fits(&schema(), &json_in(&said)), "{said:?}"),
        }
    }
    assert!((8..=32).contains(&cut), "{cut} of 40 cut at rate 0.5");
    let stats = server.stats().await;
    assert_eq!(stats["by_outcome"]["spoiled"], cut);
    assert_eq!(stats["by_outcome"]["ok"], 40 - cut);
}

#[tokio::test]
async fn each_spoil_rate_gives_its_shape_in_every_family() {
    type Set = fn(&mut FaultRates);
    let cases: [(Set, [&str; 4]); 3] = [
        (|r| r.refusal = 1.0, ["stop", "completed", "refusal", "refusal"]),
        (
            |r| r.cut = 1.0,
            [
                "length",
                "incomplete/max_output_tokens",
                "max_tokens",
                "max_tokens",
            ],
        ),
        (
            |r| r.schema_break = 1.0,
            ["stop", "completed", "end_turn", "tool_use"],
        ),
    ];
    for (set, endings) in cases {
        let server = Running::start(rates(set)).await;
        for (family, ending) in super::tests_structured::ALL.into_iter().zip(endings) {
            let said = ask(&server, family, "kettle", &schema()).await;
            assert_eq!(said.ending, ending, "{family:?}");
        }
    }
    let server = Running::start(rates(|r| r.invalid_json = 1.0)).await;
    let said = ask(&server, Family::Responses, "kettle", &schema()).await;
    assert!(said.text.unwrap().starts_with("Sure! Here is the JSON: "));
    let refusing = Running::start(rates(|r| r.refusal = 1.0)).await;
    let said = ask(&refusing, Family::Chat, "kettle", &schema()).await;
    assert_eq!(
        (said.text, said.refusal.as_deref()),
        (None, Some(crate::structured::REFUSAL))
    );
    // Embeddings have no text to spoil: they are answered as normal.
    let embed = json!({"model": "text-embedding-3-small", "input": "x"});
    let response = refusing.post("/v1/embeddings", &embed).await;
    assert_eq!(response.status(), 200);
    assert!(json_of(response).await["data"][0]["embedding"].is_array());
}
