//! Specifications of request preparation: the body each row shape becomes, how flags shape it,
//! which id a row gets, how the endpoint is settled, and the checks of a CSV header. The rows that
//! cannot be sent are in `tests_errors.rs`.

use serde_json::{json, Value};

use super::*;

pub(super) const FILE: &str = "prompts.jsonl";

pub(super) fn settings() -> RequestSettings {
    RequestSettings {
        model: Some("gpt-4o-mini".into()),
        ..RequestSettings::default()
    }
}

pub(super) fn template(source: &str) -> Option<Template> {
    Some(Template::parse(source).unwrap())
}

pub(super) fn preparer(settings: RequestSettings) -> Preparer {
    Preparer::new(PathBuf::from(FILE), settings)
}

/// A row numbered `number`, starting on line `number + 1` (as under a CSV header).
pub(super) fn row(number: u64, fields: Value) -> RawRow {
    match fields {
        Value::Object(fields) => RawRow {
            number,
            line: number + 1,
            fields,
        },
        other => panic!("not an object: {other}"),
    }
}

fn body(prepared: &Prepared) -> Value {
    serde_json::from_str(&prepared.body).unwrap()
}

pub(super) fn prepare_ok(p: &mut Preparer, r: &RawRow) -> Value {
    body(&p.prepare(r).unwrap_or_else(|e| panic!("row should prepare: {e}")))
}

pub(super) fn prepare_err(p: &mut Preparer, r: &RawRow) -> InputError {
    match p.prepare(r) {
        Ok(prepared) => panic!("row should be refused, got {}", prepared.body),
        Err(e) => e,
    }
}

pub(super) fn batch_line(custom_id: &str, url: &str, body: Value) -> Value {
    json!({"custom_id": custom_id, "method": "POST", "url": url, "body": body})
}

pub(super) fn chat_body(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

fn columns(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

// ---- Row shapes ----

#[test]
fn template_row_becomes_one_user_message() {
    let mut p = preparer(RequestSettings {
        template: template("Describe {name} in {color}."),
        ..settings()
    });
    let b = prepare_ok(
        &mut p,
        &row(1, json!({"name": "a mug", "color": "red", "unused": 1})),
    );
    assert_eq!(b, chat_body("gpt-4o-mini", "Describe a mug in red."));
}

#[test]
fn system_template_is_prepended_as_a_system_message() {
    let mut p = preparer(RequestSettings {
        template: template("Describe {name}."),
        system: template("You write for {brand}."),
        ..settings()
    });
    let b = prepare_ok(&mut p, &row(1, json!({"name": "a mug", "brand": "Acme"})));
    assert_eq!(
        b,
        json!({"model": "gpt-4o-mini", "messages": [
            {"role": "system", "content": "You write for Acme."},
            {"role": "user", "content": "Describe a mug."},
        ]})
    );
}

#[test]
fn prompt_field_becomes_one_user_message() {
    let mut p = preparer(settings());
    let b = prepare_ok(&mut p, &row(1, json!({"prompt": "Say hi", "other": "x"})));
    assert_eq!(b, chat_body("gpt-4o-mini", "Say hi"));
}

#[test]
fn numeric_prompt_field_is_sent_as_its_text() {
    let mut p = preparer(settings());
    assert_eq!(
        prepare_ok(&mut p, &row(1, json!({"prompt": 42}))),
        chat_body("gpt-4o-mini", "42")
    );
}

#[test]
fn messages_row_is_sent_with_the_model() {
    let mut p = preparer(settings());
    let messages = json!([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1"}]},
        {"role": "tool", "content": "42", "tool_call_id": "c1"},
    ]);
    let b = prepare_ok(&mut p, &row(1, json!({"messages": messages.clone()})));
    assert_eq!(b, json!({"model": "gpt-4o-mini", "messages": messages}));
}

#[test]
fn system_is_prepended_to_messages_without_a_system_message() {
    let mut p = preparer(RequestSettings {
        system: template("Be brief."),
        ..settings()
    });
    let b = prepare_ok(
        &mut p,
        &row(1, json!({"messages": [{"role": "user", "content": "Hi"}]})),
    );
    assert_eq!(
        b["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    );
}

#[test]
fn system_with_messages_that_have_one_is_refused_naming_the_flag_and_line() {
    let p = preparer(RequestSettings {
        system: template("Be brief."),
        ..settings()
    });
    let messages = json!([{"role": "system", "content": "Mine."}, {"role": "user", "content": "Hi"}]);
    let err = p
        .check_flags_fit(&row(1, json!({"messages": messages})))
        .unwrap_err();
    assert_eq!(
        err,
        "--system adds a system message, but prompts.jsonl:2 has its own in `messages`; \
         drop --system or the row's system message"
    );
    let without = json!([{"role": "user", "content": "Hi"}]);
    assert_eq!(p.check_flags_fit(&row(1, json!({"messages": without}))), Ok(()));
}

#[test]
fn template_with_a_messages_row_is_refused() {
    let p = preparer(RequestSettings {
        template: template("Hi {name}"),
        ..settings()
    });
    let err = p
        .check_flags_fit(&row(4, json!({"messages": [{"role": "user", "content": "Hi"}]})))
        .unwrap_err();
    assert!(
        err.starts_with("--template renders a prompt from fields, but prompts.jsonl:5 has"),
        "{err}"
    );
    assert_eq!(p.check_flags_fit(&row(4, json!({"name": "x"}))), Ok(()));
}

#[test]
fn batch_line_body_is_sent_as_it_is_without_flags() {
    let mut p = preparer(RequestSettings::default());
    let sent = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}],
                      "max_tokens": 10, "temperature": 0.2, "seed": 7});
    let prepared = p
        .prepare(&row(1, batch_line("req-1", "/v1/chat/completions", sent.clone())))
        .unwrap();
    assert_eq!(prepared.id, "req-1");
    assert_eq!(body(&prepared), sent);
}

#[test]
fn batch_line_fields_are_overridden_by_flags_that_are_given() {
    let mut p = preparer(RequestSettings {
        model: Some("gpt-4.1".into()),
        max_tokens: Some(50),
        temperature: Some(0.0),
        params: [("seed".to_string(), json!(1)), ("top_p".to_string(), json!(0.5))].into(),
        ..RequestSettings::default()
    });
    let r = row(
        1,
        batch_line(
            "a",
            "/v1/chat/completions",
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}],
                   "max_tokens": 10, "temperature": 0.2, "seed": 7, "n": 1}),
        ),
    );
    assert_eq!(
        prepare_ok(&mut p, &r),
        json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "Hi"}],
               "max_tokens": 50, "temperature": 0.0, "seed": 1, "n": 1, "top_p": 0.5})
    );
}

#[test]
fn batch_line_keeps_its_own_max_tokens_key_when_the_flag_overrides_it() {
    let mut p = preparer(RequestSettings {
        max_tokens: Some(50),
        ..RequestSettings::default()
    });
    let r = row(
        1,
        batch_line(
            "a",
            "/v1/chat/completions",
            json!({"model": "o3-mini", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 10}),
        ),
    );
    let b = prepare_ok(&mut p, &r);
    assert_eq!(b["max_tokens"], json!(50));
    assert!(b.get("max_completion_tokens").is_none());
}

#[test]
fn batch_line_without_a_max_tokens_key_gets_the_one_its_model_takes() {
    let mut p = preparer(RequestSettings {
        max_tokens: Some(50),
        ..RequestSettings::default()
    });
    let r = row(
        1,
        batch_line(
            "a",
            "/v1/chat/completions",
            json!({"model": "o3-mini", "messages": [{"role": "user", "content": "Hi"}]}),
        ),
    );
    let b = prepare_ok(&mut p, &r);
    assert_eq!(b["max_completion_tokens"], json!(50));
    assert!(b.get("max_tokens").is_none());
}

#[test]
fn completions_batch_line_is_sent_as_it_is() {
    let mut p = preparer(RequestSettings::default());
    let sent = json!({"model": "gpt-3.5-turbo-instruct", "prompt": "Once upon"});
    let b = prepare_ok(&mut p, &row(1, batch_line("a", "/v1/completions", sent.clone())));
    assert_eq!(b, sent);
    assert_eq!(p.endpoint(), Endpoint::Completions);
}

// ---- Flags ----

#[test]
fn flags_are_added_to_template_and_prompt_rows() {
    let mut p = preparer(RequestSettings {
        max_tokens: Some(100),
        temperature: Some(0.7),
        params: [("stop".to_string(), json!(["\n"]))].into(),
        ..settings()
    });
    assert_eq!(
        prepare_ok(&mut p, &row(1, json!({"prompt": "Hi"}))),
        json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}],
               "max_tokens": 100, "temperature": 0.7, "stop": ["\n"]})
    );
}

#[test]
fn reasoning_models_get_max_completion_tokens() {
    let mut p = preparer(RequestSettings {
        model: Some("o1".into()),
        max_tokens: Some(100),
        ..RequestSettings::default()
    });
    let b = prepare_ok(&mut p, &row(1, json!({"prompt": "Hi"})));
    assert_eq!(b["max_completion_tokens"], json!(100));
    assert!(b.get("max_tokens").is_none());
}

#[test]
fn max_tokens_key_follows_the_model_family() {
    for model in [
        "o1",
        "o1-mini",
        "o3",
        "o3-mini-2025-01-31",
        "o4-mini",
        "gpt-5",
        "gpt-5-mini",
        "gpt-5.1",
    ] {
        assert_eq!(max_tokens_key(model), "max_completion_tokens", "{model}");
    }
    assert_eq!(max_tokens_key("openai/o3-mini"), "max_completion_tokens");
    for model in [
        "gpt-4o",
        "gpt-4.1-mini",
        "gpt-50",
        "o10",
        "llama-3.1-8b",
        "foo-o1",
        "",
    ] {
        assert_eq!(max_tokens_key(model), "max_tokens", "{model}");
    }
}

#[test]
fn template_row_without_a_model_asks_for_model_flag() {
    let mut p = preparer(RequestSettings::default());
    let e = prepare_err(&mut p, &row(3, json!({"prompt": "Hi"})));
    assert_eq!((e.line, e.field.as_deref()), (4, None));
    assert_eq!(e.message, "no model for this row: pass --model");
}

// ---- Row ids ----

#[test]
fn id_column_names_the_row_id_and_it_is_kept_as_written() {
    let mut p = preparer(RequestSettings {
        id_column: Some("sku".into()),
        ..settings()
    });
    let prepared = p
        .prepare(&row(1, json!({"sku": "  A-1 ", "id": "ignored", "prompt": "Hi"})))
        .unwrap();
    assert_eq!(prepared.id, "  A-1 ");
}

#[test]
fn id_field_is_the_row_id_by_default() {
    let mut p = preparer(settings());
    let r = row(1, json!({"id": "x", "custom_id": "y", "prompt": "Hi"}));
    assert_eq!(p.prepare(&r).unwrap().id, "x");
}

#[test]
fn custom_id_is_the_row_id_when_there_is_no_id_field() {
    let mut p = preparer(settings());
    assert_eq!(
        p.prepare(&row(1, json!({"custom_id": "y", "prompt": "Hi"})))
            .unwrap()
            .id,
        "y"
    );
}

#[test]
fn row_number_is_the_row_id_when_no_field_names_one() {
    let mut p = preparer(settings());
    assert_eq!(p.prepare(&row(17, json!({"prompt": "Hi"}))).unwrap().id, "17");
}

#[test]
fn numeric_ids_are_their_json_text() {
    let mut p = preparer(settings());
    assert_eq!(
        p.prepare(&row(1, json!({"id": 42, "prompt": "Hi"}))).unwrap().id,
        "42"
    );
    assert_eq!(
        p.prepare(&row(2, json!({"id": 1.5, "prompt": "Hi"}))).unwrap().id,
        "1.5"
    );
}

#[test]
fn empty_id_is_an_error_naming_the_id_field() {
    let mut p = preparer(settings());
    let e = prepare_err(&mut p, &row(1, json!({"id": "   ", "prompt": "Hi"})));
    assert_eq!((e.line, e.field.as_deref()), (2, Some("id")));
    assert_eq!(e.message, "the row id is empty");
}

#[test]
fn id_that_is_not_a_string_or_number_is_an_error() {
    let mut p = preparer(settings());
    let e = prepare_err(&mut p, &row(1, json!({"id": null, "prompt": "Hi"})));
    assert_eq!(e.field.as_deref(), Some("id"));
    assert_eq!(e.message, "an id must be a string or a number, found null");
}

#[test]
fn row_without_the_id_column_is_an_error_naming_it() {
    let mut p = preparer(RequestSettings {
        id_column: Some("sku".into()),
        ..settings()
    });
    let e = prepare_err(&mut p, &row(1, json!({"prompt": "Hi"})));
    assert_eq!(e.field.as_deref(), Some("sku"));
    assert_eq!(e.message, "missing (it names the row id)");
}

#[test]
fn fallback_id_is_the_row_number_when_the_id_is_unusable() {
    let p = preparer(settings());
    assert_eq!(p.fallback_id(&row(9, json!({"id": "", "prompt": "Hi"}))), "9");
    assert_eq!(
        p.fallback_id(&row(9, json!({"id": "kept", "prompt": ""}))),
        "kept"
    );
}

// ---- Endpoint resolution ----

#[test]
fn endpoint_is_chat_by_default() {
    let mut p = preparer(settings());
    assert_eq!(p.endpoint(), Endpoint::Chat);
    p.prepare(&row(1, json!({"prompt": "Hi"}))).unwrap();
    assert_eq!(p.endpoint(), Endpoint::Chat);
}

#[test]
fn endpoint_flag_sends_text_rows_as_completions_prompts() {
    let mut p = preparer(RequestSettings {
        template: template("Continue: {text}"),
        endpoint: Some(Endpoint::Completions),
        max_tokens: Some(5),
        ..settings()
    });
    assert_eq!(p.endpoint(), Endpoint::Completions);
    assert_eq!(
        prepare_ok(&mut p, &row(1, json!({"text": "Once"}))),
        json!({"model": "gpt-4o-mini", "prompt": "Continue: Once", "max_tokens": 5})
    );
}

#[test]
fn first_batch_lines_url_decides_the_endpoint() {
    let mut p = preparer(RequestSettings::default());
    p.prepare(&row(
        1,
        batch_line("a", "/completions/", json!({"model": "m", "prompt": "x"})),
    ))
    .unwrap();
    assert_eq!(p.endpoint(), Endpoint::Completions);
}

#[test]
fn an_invalid_first_batch_line_does_not_decide_the_endpoint() {
    let mut p = preparer(RequestSettings::default());
    // No model anywhere: refused, and its url must not bind the rows after it.
    prepare_err(
        &mut p,
        &row(1, batch_line("a", "/v1/completions", json!({"prompt": "x"}))),
    );
    prepare_ok(
        &mut p,
        &row(
            2,
            batch_line("b", "/v1/chat/completions", chat_body("m", "hello")),
        ),
    );
    assert_eq!(p.endpoint(), Endpoint::Chat);
}

#[test]
fn batch_line_that_disagrees_with_the_endpoint_flag_is_an_error() {
    let mut p = preparer(RequestSettings {
        endpoint: Some(Endpoint::Chat),
        ..RequestSettings::default()
    });
    let e = prepare_err(
        &mut p,
        &row(
            1,
            batch_line("a", "/v1/completions", json!({"model": "m", "prompt": "x"})),
        ),
    );
    assert_eq!(e.field.as_deref(), Some("url"));
    assert!(
        e.message.contains("(set by --endpoint or by earlier rows)"),
        "{}",
        e.message
    );
}

// ---- Checking a CSV header ----

#[test]
fn header_with_every_needed_column_passes() {
    let p = preparer(RequestSettings {
        template: template("{name} {color}"),
        system: template("{brand}"),
        id_column: Some("sku".into()),
        ..settings()
    });
    assert_eq!(
        p.check_columns(&columns(&["sku", "name", "color", "brand"])),
        Ok(())
    );
}

#[test]
fn header_missing_a_template_field_is_an_error_at_line_1_listing_the_columns() {
    let p = preparer(RequestSettings {
        template: template("{name} {colour}"),
        ..settings()
    });
    let e = p.check_columns(&columns(&["name", "color"])).unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (1, Some("colour")));
    assert_eq!(
        e.message,
        "the header has no such column, but the template uses it (columns: name, color)"
    );
}

#[test]
fn header_missing_a_system_template_field_is_an_error() {
    let p = preparer(RequestSettings {
        template: template("{name}"),
        system: template("{brand}"),
        ..settings()
    });
    let e = p.check_columns(&columns(&["name"])).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("brand"));
    assert!(e.message.contains("the system template uses it"), "{}", e.message);
}

#[test]
fn header_missing_the_id_column_is_an_error() {
    let p = preparer(RequestSettings {
        id_column: Some("sku".into()),
        ..settings()
    });
    let e = p.check_columns(&columns(&["prompt"])).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("sku"));
    assert!(e.message.contains("--id-column names it"), "{}", e.message);
}

#[test]
fn header_without_a_prompt_column_and_no_template_is_an_error() {
    let p = preparer(settings());
    let e = p.check_columns(&columns(&["text", "id"])).unwrap_err();
    assert_eq!(e.line, 1);
    assert_eq!(
        e.message,
        "no --template was given and the header has no `prompt` column (columns: text, id)"
    );
}
