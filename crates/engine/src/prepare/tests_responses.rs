//! Specifications of the bodies rows become for the Responses API (`--endpoint responses`): a
//! prompt as `input`, `--system` as `instructions`, `--max-tokens` as `max_output_tokens`,
//! `store: false` unless set, messages as input items, and Batch lines naming `/v1/responses`.

use serde_json::json;

use super::tests::{batch_line, prepare_err, prepare_ok, preparer, row, settings, template};
use super::*;

fn responses() -> RequestSettings {
    RequestSettings {
        endpoint: Some(Endpoint::Responses),
        ..settings()
    }
}

#[test]
fn a_template_row_becomes_input_with_instructions_and_store_false() {
    let mut p = preparer(RequestSettings {
        template: template("Describe {name}."),
        system: template("You write for {shop}."),
        max_tokens: Some(80),
        temperature: Some(0.2),
        ..responses()
    });
    let body = prepare_ok(&mut p, &row(1, json!({"name": "a lamp", "shop": "a catalogue"})));
    assert_eq!(
        body,
        json!({"model": "gpt-4o-mini", "input": "Describe a lamp.", "instructions": "You write for a catalogue.",
               "max_output_tokens": 80, "temperature": 0.2, "store": false})
    );
}

#[test]
fn store_given_by_param_is_kept() {
    let mut params = BTreeMap::new();
    params.insert("store".to_string(), json!(true));
    let mut p = preparer(RequestSettings {
        params,
        ..responses()
    });
    let body = prepare_ok(&mut p, &row(1, json!({"prompt": "hi"})));
    assert_eq!(body["store"], json!(true));
}

#[test]
fn a_messages_row_becomes_input_items_and_tool_roles_are_refused_at_their_field() {
    let mut p = preparer(responses());
    let messages = json!([{"role": "developer", "content": "Be terse."}, {"role": "user", "content": "hi"}]);
    let body = prepare_ok(&mut p, &row(1, json!({"messages": messages.clone()})));
    assert_eq!(body["input"], messages);
    assert!(body.get("messages").is_none());
    let tool = json!([{"role": "user", "content": "hi"}, {"role": "tool", "content": "4"}]);
    let err = prepare_err(&mut p, &row(2, json!({"messages": tool})));
    assert_eq!(err.field.as_deref(), Some("messages[1].role"), "{err}");
}

#[test]
fn batch_lines_naming_v1_responses_settle_the_endpoint_and_keep_their_body() {
    let mut p = preparer(RequestSettings {
        model: None,
        ..RequestSettings::default()
    });
    let line = batch_line(
        "q1",
        "/v1/responses",
        json!({"model": "gpt-4.1-mini", "input": "Q?", "store": true}),
    );
    let body = prepare_ok(&mut p, &row(1, line));
    assert_eq!(
        body,
        json!({"model": "gpt-4.1-mini", "input": "Q?", "store": true})
    );
    assert_eq!(p.endpoint(), Endpoint::Responses);
    let chat = batch_line(
        "q2",
        "/v1/chat/completions",
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
    );
    let err = prepare_err(&mut p, &row(2, chat));
    assert!(err.to_string().contains("/v1/responses"), "{err}");
    let empty = batch_line("q3", "/v1/responses", json!({"model": "m", "input": ""}));
    assert_eq!(
        prepare_err(&mut p, &row(3, empty)).field.as_deref(),
        Some("body.input")
    );
}

#[test]
fn an_unknown_batch_url_lists_every_family_s_url() {
    let mut p = preparer(settings());
    let line = batch_line("x", "/v1/moderations", json!({"model": "m", "input": "x"}));
    let err = prepare_err(&mut p, &row(1, line)).to_string();
    for url in ["/v1/chat/completions", "/v1/completions", "/v1/responses"] {
        assert!(err.contains(url), "{err}");
    }
}
