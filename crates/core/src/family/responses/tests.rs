use super::*;

fn completion(body: &str) -> Completion {
    parse(body.as_bytes()).unwrap()
}

const DONE: &str = r#"{"id":"resp_1","object":"response","status":"completed","model":"gpt-4.1-mini",
  "output":[{"type":"reasoning","id":"rs_1","summary":[]},
    {"type":"message","id":"msg_1","status":"completed","role":"assistant",
     "content":[{"type":"output_text","text":"Hello, ","annotations":[]},{"type":"output_text","text":"world","annotations":[]}]}],
  "usage":{"input_tokens":12,"input_tokens_details":{"cached_tokens":4},"output_tokens":7,
    "output_tokens_details":{"reasoning_tokens":3},"total_tokens":19},"incomplete_details":null}"#;

#[test]
fn the_text_is_the_output_text_parts_of_the_message_items_and_usage_keeps_its_details() {
    let c = completion(DONE);
    assert_eq!(c.text.as_deref(), Some("Hello, world"));
    assert_eq!(c.finish_reason.as_deref(), Some("stop"));
    assert_eq!(c.id.as_deref(), Some("resp_1"));
    assert_eq!(c.model.as_deref(), Some("gpt-4.1-mini"));
    assert_eq!(
        c.usage,
        Usage {
            prompt_tokens: 12,
            completion_tokens: 7,
            total_tokens: 19,
            cached_tokens: Some(4),
            cache_creation_tokens: None,
            reasoning_tokens: Some(3),
        }
    );
    assert_eq!(c.raw, DONE);
}

#[test]
fn incomplete_answers_say_why_they_stopped() {
    let cut = r#"{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},
      "output":[{"type":"message","status":"incomplete","content":[{"type":"output_text","text":"Hel"}]}]}"#;
    assert_eq!(completion(cut).finish_reason.as_deref(), Some("length"));
    assert_eq!(completion(cut).text.as_deref(), Some("Hel"));
    let filtered = r#"{"status":"incomplete","incomplete_details":{"reason":"content_filter"},"output":[]}"#;
    assert_eq!(
        completion(filtered).finish_reason.as_deref(),
        Some("content_filter")
    );
    assert_eq!(completion(filtered).text, None);
}

#[test]
fn a_completed_status_with_no_text_or_a_cut_message_is_not_taken_on_trust() {
    let empty = r#"{"status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":""}]}]}"#;
    assert_eq!(completion(empty).finish_reason.as_deref(), Some("empty"));
    let nothing = r#"{"status":"completed","output":[]}"#;
    assert_eq!(completion(nothing).finish_reason.as_deref(), Some("empty"));
    let cut = r#"{"status":"completed","output":[{"type":"message","status":"incomplete","content":[{"type":"output_text","text":"Hel"}]}]}"#;
    assert_eq!(completion(cut).finish_reason.as_deref(), Some("incomplete"));
    let tools = r#"{"status":"completed","output":[{"type":"function_call","name":"f","arguments":"{}"}]}"#;
    assert_eq!(completion(tools).finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(completion(tools).text, None);
    let refusal = r#"{"status":"completed","output":[{"type":"message","content":[{"type":"refusal","refusal":"no"}]}]}"#;
    // A refusal says so (a `--schema` row's outcome `refused`).
    assert_eq!(completion(refusal).finish_reason.as_deref(), Some("refusal"));
    assert_eq!(completion(refusal).refusal.as_deref(), Some("no"));
}

#[test]
fn failed_or_unfinished_responses_are_no_completion() {
    let failed = br#"{"status":"failed","error":{"code":"server_error","message":"boom"},"output":[]}"#;
    match parse(failed) {
        Err(BadBody::Unusable(why)) => assert!(why.contains("server_error: boom"), "{why}"),
        other => panic!("{other:?}"),
    }
    for status in ["queued", "in_progress", "cancelled"] {
        let body = format!(r#"{{"status":"{status}","output":[]}}"#);
        assert!(
            matches!(parse(body.as_bytes()), Err(BadBody::Unusable(_))),
            "{status}"
        );
    }
    assert!(matches!(parse(b"{\"status\":"), Err(BadBody::NotJson(_))));
    assert!(matches!(parse(b"[1]"), Err(BadBody::Unusable(_))));
    let absurd = br#"{"status":"completed","output":[],"usage":{"input_tokens":-3}}"#;
    match parse(absurd) {
        Err(BadBody::Unusable(why)) => assert!(why.contains("usage.input_tokens"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bodies_are_built_as_the_responses_api_takes_them() {
    let mut body = Map::new();
    Responses.put_text(&mut body, "hi".into(), Some("be brief".into()));
    Responses.defaults(&mut body);
    assert_eq!(
        Value::Object(body),
        serde_json::json!({"input":"hi","instructions":"be brief","store":false})
    );
    let mut kept = Map::new();
    kept.insert("store".into(), Value::Bool(true));
    Responses.defaults(&mut kept);
    assert_eq!(kept.get("store"), Some(&Value::Bool(true)));
    let tool = serde_json::json!([{"role":"tool","content":"x"}]);
    let refused = Responses
        .put_messages(&mut Map::new(), tool.as_array().unwrap().clone())
        .unwrap_err();
    assert_eq!(refused.field.as_deref(), Some("messages[0].role"));
}

#[test]
fn batch_bodies_need_an_input() {
    let check = |v: Value| Responses.check_body(v.as_object().unwrap());
    assert!(check(serde_json::json!({"input":"hi"})).is_ok());
    assert!(check(serde_json::json!({"input":[{"role":"user","content":"hi"}]})).is_ok());
    assert!(
        check(serde_json::json!({"input":[{"type":"function_call_output","call_id":"c","output":"4"}]}))
            .is_ok()
    );
    assert_eq!(
        check(serde_json::json!({})).unwrap_err().field.as_deref(),
        Some("body.input")
    );
    assert_eq!(
        check(serde_json::json!({"input":" "})).unwrap_err().message,
        "the prompt is empty"
    );
    assert_eq!(
        check(serde_json::json!({"input":7}))
            .unwrap_err()
            .field
            .as_deref(),
        Some("body.input")
    );
    let bad_role = check(serde_json::json!({"input":[{"role":"robot","content":"hi"}]})).unwrap_err();
    assert_eq!(bad_role.field.as_deref(), Some("body.input[0].role"));
}

#[test]
fn prompt_tokens_follow_the_chat_framing() {
    // instructions: 3 + "system" (1) + "hello world" (2); input: 3 + "user" (1) + 2; priming 3.
    let body =
        r#"{"model":"gpt-4o","instructions":"hello world","input":"hello world","max_output_tokens":9}"#;
    let (cost, model) = Responses.measure(body).unwrap();
    assert_eq!(cost.prompt_tokens, 6 + 6 + 3);
    assert_eq!(cost.max_output_tokens, 9);
    assert_eq!(model.as_deref(), Some("gpt-4o"));
    let items = r#"{"model":"gpt-4o","input":[{"role":"user","content":[{"type":"input_text","text":"hello world"}]}]}"#;
    assert_eq!(Responses.measure(items).unwrap().0.prompt_tokens, 6 + 3);
}
