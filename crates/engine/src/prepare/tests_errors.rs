//! Specifications of the rows that cannot be sent: each error names its field and the line of
//! the row, so a user can find and fix it.

use std::path::Path;

use serde_json::json;

use super::tests::{batch_line, chat_body, prepare_err, prepare_ok, preparer, row, settings, template, FILE};
use super::*;

#[test]
fn missing_template_field_is_an_error_naming_it_at_the_rows_line() {
    let mut p = preparer(RequestSettings {
        template: template("Describe {name} in {color}."),
        ..settings()
    });
    let e = prepare_err(&mut p, &row(4, json!({"name": "a mug"})));
    assert_eq!(e.file, Path::new(FILE));
    assert_eq!((e.line, e.field.as_deref()), (5, Some("color")));
    assert_eq!(e.message, "missing (the template uses {color})");
}

#[test]
fn null_template_field_is_an_error_naming_it() {
    let mut p = preparer(RequestSettings {
        template: template("Describe {name}."),
        ..settings()
    });
    let e = prepare_err(&mut p, &row(1, json!({"name": null})));
    assert_eq!(e.field.as_deref(), Some("name"));
    assert_eq!(e.message, "is null, but the template needs a value");
}

#[test]
fn missing_system_template_field_says_it_is_in_system() {
    let mut p = preparer(RequestSettings {
        template: template("{q}"),
        system: template("For {brand}"),
        ..settings()
    });
    let e = prepare_err(&mut p, &row(1, json!({"q": "Hi"})));
    assert_eq!(e.field.as_deref(), Some("brand"));
    assert_eq!(e.message, "missing (the template uses {brand}) (in --system)");
}

#[test]
fn template_that_renders_blank_is_an_empty_prompt() {
    let mut p = preparer(RequestSettings {
        template: template(" {name} "),
        ..settings()
    });
    let e = prepare_err(&mut p, &row(1, json!({"name": "\n"})));
    assert_eq!(
        (e.field.as_deref(), e.message.as_str()),
        (None, "the prompt is empty")
    );
}

#[test]
fn blank_prompt_field_is_an_empty_prompt_naming_the_field() {
    let mut p = preparer(settings());
    let e = prepare_err(&mut p, &row(1, json!({"prompt": "  "})));
    assert_eq!(
        (e.field.as_deref(), e.message.as_str()),
        (Some("prompt"), "the prompt is empty")
    );
}

#[test]
fn prompt_field_that_is_not_text_is_an_error() {
    let mut p = preparer(settings());
    let e = prepare_err(&mut p, &row(1, json!({"prompt": ["a"]})));
    assert_eq!(e.field.as_deref(), Some("prompt"));
    assert_eq!(e.message, "must be a string, found an array");
}

#[test]
fn row_with_nothing_to_send_is_an_error() {
    let mut p = preparer(settings());
    let e = prepare_err(&mut p, &row(1, json!({"text": "Hi"})));
    assert_eq!(e.field, None);
    assert!(
        e.message
            .contains("no `prompt`, `messages`, or Batch `body` field"),
        "{}",
        e.message
    );
}

#[test]
fn unknown_role_is_an_error_naming_the_message() {
    let mut p = preparer(settings());
    let r = row(
        1,
        json!({"messages": [{"role": "user", "content": "Hi"}, {"role": "bot", "content": "x"}]}),
    );
    let e = prepare_err(&mut p, &r);
    assert_eq!(e.field.as_deref(), Some("messages[1].role"));
    assert!(e
        .message
        .starts_with("unknown role `bot` (expected one of: system, developer, user"));
}

#[test]
fn messages_that_are_not_an_array_are_an_error() {
    let mut p = preparer(settings());
    let e = prepare_err(&mut p, &row(1, json!({"messages": "Hi"})));
    assert_eq!(e.field.as_deref(), Some("messages"));
    assert_eq!(
        e.message,
        "must be an array of {role, content} objects, found a string"
    );
}

#[test]
fn empty_messages_array_is_an_error() {
    let mut p = preparer(settings());
    let e = prepare_err(&mut p, &row(1, json!({"messages": []})));
    assert_eq!(
        (e.field.as_deref(), e.message.as_str()),
        (Some("messages"), "the messages array is empty")
    );
}

#[test]
fn message_that_is_not_an_object_is_an_error_naming_its_index() {
    let mut p = preparer(settings());
    let e = prepare_err(
        &mut p,
        &row(1, json!({"messages": [{"role": "user", "content": "Hi"}, "x"]})),
    );
    assert_eq!(e.field.as_deref(), Some("messages[1]"));
    assert_eq!(e.message, "must be a {role, content} object, found a string");
}

#[test]
fn message_without_role_is_an_error() {
    let mut p = preparer(settings());
    let e = prepare_err(&mut p, &row(1, json!({"messages": [{"content": "Hi"}]})));
    assert_eq!(
        (e.field.as_deref(), e.message.as_str()),
        (Some("messages[0].role"), "missing")
    );
}

#[test]
fn null_content_without_tool_calls_is_an_error() {
    let mut p = preparer(settings());
    let e = prepare_err(
        &mut p,
        &row(1, json!({"messages": [{"role": "user", "content": null}]})),
    );
    assert_eq!(e.field.as_deref(), Some("messages[0].content"));
    assert_eq!(e.message, "is null or missing, but the message has no tool calls");
}

#[test]
fn messages_whose_contents_are_all_blank_are_an_empty_prompt() {
    let mut p = preparer(settings());
    let r = row(
        1,
        json!({"messages": [{"role": "system", "content": ""}, {"role": "user", "content": " "}]}),
    );
    let e = prepare_err(&mut p, &r);
    assert_eq!(e.field.as_deref(), Some("messages"));
    assert_eq!(e.message, "the prompt is empty: every message's content is empty");
}

#[test]
fn messages_row_is_refused_on_the_completions_endpoint() {
    let mut p = preparer(RequestSettings {
        endpoint: Some(Endpoint::Completions),
        ..settings()
    });
    let e = prepare_err(
        &mut p,
        &row(1, json!({"messages": [{"role": "user", "content": "Hi"}]})),
    );
    assert_eq!(e.field.as_deref(), Some("messages"));
    assert_eq!(
        e.message,
        "a `messages` row needs the chat endpoint, but the job uses /completions"
    );
}

#[test]
fn batch_line_without_a_model_and_no_model_flag_is_an_error() {
    let mut p = preparer(RequestSettings::default());
    let r = row(
        1,
        batch_line(
            "a",
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "Hi"}]}),
        ),
    );
    let e = prepare_err(&mut p, &r);
    assert_eq!(e.field.as_deref(), Some("body.model"));
    assert_eq!(e.message, "missing; add it to the body or pass --model");
}

#[test]
fn batch_line_without_a_model_takes_the_model_flag() {
    let mut p = preparer(settings());
    let r = row(
        1,
        batch_line(
            "a",
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "Hi"}]}),
        ),
    );
    assert_eq!(prepare_ok(&mut p, &r), chat_body("gpt-4o-mini", "Hi"));
}

#[test]
fn batch_line_whose_url_differs_from_the_first_lines_is_an_error_naming_url() {
    let mut p = preparer(RequestSettings::default());
    let chat = json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}]});
    p.prepare(&row(1, batch_line("a", "/v1/chat/completions", chat)))
        .unwrap();
    let e = prepare_err(
        &mut p,
        &row(
            2,
            batch_line("b", "/v1/completions", json!({"model": "m", "prompt": "x"})),
        ),
    );
    assert_eq!((e.line, e.field.as_deref()), (3, Some("url")));
    assert_eq!(
        e.message,
        "`/v1/completions` differs from the job's endpoint /v1/chat/completions (set by line 2); \
         one job sends to one endpoint"
    );
}

#[test]
fn batch_line_with_an_unknown_url_is_an_error() {
    let mut p = preparer(RequestSettings::default());
    let e = prepare_err(
        &mut p,
        &row(
            1,
            batch_line("a", "/v1/moderations", json!({"model": "m", "input": "x"})),
        ),
    );
    assert_eq!(e.field.as_deref(), Some("url"));
    assert!(
        e.message
            .starts_with("`/v1/moderations` is not an endpoint promptmill sends"),
        "{}",
        e.message
    );
}

#[test]
fn batch_input_lines_for_embeddings_carry_one_text_each() {
    let mut p = preparer(RequestSettings::default());
    let line = batch_line(
        "a",
        "/v1/embeddings",
        json!({"model": "m", "input": "x", "dimensions": 8}),
    );
    let body = prepare_ok(&mut p, &row(1, line));
    assert_eq!(body["input"], "x");
    assert_eq!(body["dimensions"], 8);
    assert_eq!(body["encoding_format"], "base64", "the family's default applies");
    for (input, says) in [
        (json!(["x", "y"]), "must be one text"),
        (json!(7), "must be a string, found a number"),
    ] {
        let line = batch_line("b", "/v1/embeddings", json!({"model": "m", "input": input}));
        let e = prepare_err(&mut p, &row(2, line));
        assert_eq!(e.field.as_deref(), Some("body.input"), "{}", e.message);
        assert!(e.message.starts_with(says), "{}", e.message);
    }
    let line = batch_line("c", "/v1/embeddings", json!({"model": "m"}));
    let e = prepare_err(&mut p, &row(3, line));
    assert_eq!(e.field.as_deref(), Some("body.input"), "{}", e.message);
}

#[test]
fn a_batch_line_whose_url_is_not_the_jobs_names_its_line_and_the_url_field() {
    let mut p = preparer(RequestSettings::default());
    let first = row(
        1,
        batch_line("a", "/v1/embeddings", json!({"model": "m", "input": "x"})),
    );
    p.prepare(&first).unwrap();
    let chat = row(2, batch_line("b", "/v1/chat/completions", chat_body("m", "Hi")));
    let e = prepare_err(&mut p, &chat);
    assert_eq!(
        (e.line, e.field.as_deref()),
        (chat.line, Some("url")),
        "{}",
        e.message
    );
    assert!(
        e.message.contains(&format!(
            "differs from the job's endpoint /v1/embeddings (set by line {})",
            first.line
        )),
        "{}",
        e.message
    );
}

#[test]
fn batch_line_method_must_be_post() {
    let mut p = preparer(RequestSettings::default());
    let mut line = batch_line("a", "/v1/chat/completions", chat_body("m", "Hi"));
    line["method"] = json!("GET");
    let e = prepare_err(&mut p, &row(1, line.clone()));
    assert_eq!(e.field.as_deref(), Some("method"));
    assert_eq!(e.message, "must be \"POST\", found \"GET\"");
    line["method"] = json!("post");
    assert!(p.prepare(&row(2, line)).is_ok());
}

#[test]
fn batch_line_without_custom_id_is_an_error() {
    let mut p = preparer(RequestSettings::default());
    let r = row(
        1,
        json!({"url": "/v1/chat/completions", "body": chat_body("m", "Hi")}),
    );
    let e = prepare_err(&mut p, &r);
    assert_eq!(e.field.as_deref(), Some("custom_id"));
    assert_eq!(e.message, "missing (a Batch input line needs one)");
}

#[test]
fn batch_line_with_system_flag_is_an_error() {
    let mut p = preparer(RequestSettings {
        system: template("Be brief."),
        ..RequestSettings::default()
    });
    let e = prepare_err(
        &mut p,
        &row(1, batch_line("a", "/v1/chat/completions", chat_body("m", "Hi"))),
    );
    assert_eq!(
        e.message,
        "--system does not apply to Batch input lines (their body is sent as it is)"
    );
}

#[test]
fn batch_body_that_is_not_an_object_is_an_error() {
    let mut p = preparer(RequestSettings::default());
    let e = prepare_err(
        &mut p,
        &row(1, batch_line("a", "/v1/chat/completions", json!("Hi"))),
    );
    assert_eq!(e.field.as_deref(), Some("body"));
    assert_eq!(e.message, "must be a JSON object, found a string");
}

#[test]
fn chat_batch_body_needs_messages() {
    let mut p = preparer(RequestSettings::default());
    let e = prepare_err(
        &mut p,
        &row(1, batch_line("a", "/v1/chat/completions", json!({"model": "m"}))),
    );
    assert_eq!(
        (e.field.as_deref(), e.message.as_str()),
        (Some("body.messages"), "missing")
    );
    let e = prepare_err(
        &mut p,
        &row(
            2,
            batch_line(
                "b",
                "/v1/chat/completions",
                json!({"model": "m", "messages": [{"role": "x"}]}),
            ),
        ),
    );
    assert_eq!(e.field.as_deref(), Some("body.messages[0].role"));
}

#[test]
fn completions_batch_body_with_a_blank_prompt_is_an_error() {
    let mut p = preparer(RequestSettings::default());
    let e = prepare_err(
        &mut p,
        &row(
            1,
            batch_line("a", "/v1/completions", json!({"model": "m", "prompt": " "})),
        ),
    );
    assert_eq!(
        (e.field.as_deref(), e.message.as_str()),
        (Some("body.prompt"), "the prompt is empty")
    );
}
