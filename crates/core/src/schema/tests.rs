use serde_json::json;

use super::*;

fn product() -> Schema {
    Schema::new(json!({
        "title": "product copy",
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "price": {"type": "number"},
            "bullets": {"type": "array", "items": {"type": "string"}}
        },
        "required": ["title", "price", "bullets"],
        "additionalProperties": false
    }))
    .unwrap()
}

#[test]
fn a_valid_answer_is_parsed_and_its_properties_keep_the_schema_order() {
    let s = product();
    assert_eq!(s.name(), "product_copy");
    assert!(s.strict());
    assert_eq!(s.properties(), ["title", "price", "bullets"]);
    let judged = s.judge(
        Some(r#"{"title":"Mug","price":12.5,"bullets":["a"]}"#),
        None,
        false,
    );
    assert_eq!(
        judged,
        Judged::Valid(json!({"title":"Mug","price":12.5,"bullets":["a"]}))
    );
    assert_eq!(judged.name(), "valid");
    // A fenced answer (models without a strict mode) is read too.
    let fenced = "```json\n{\"title\":\"Mug\",\"price\":1,\"bullets\":[]}\n```";
    assert!(matches!(s.judge(Some(fenced), None, false), Judged::Valid(_)));
}

#[test]
fn schema_breaking_json_names_each_path_and_what_is_wrong() {
    let judged = product().judge(Some(r#"{"title":"Mug","price":"12"}"#), None, false);
    let Judged::Invalid(errors) = &judged else {
        panic!("{judged:?}")
    };
    assert!(
        errors
            .iter()
            .any(|e| e == r#"/price: "12" is not of type "number""#),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("/: ") && e.contains("bullets")),
        "{errors:?}"
    );
    assert!(judged.retryable());
    assert!(judged.errors().starts_with("invalid: "));
}

#[test]
fn not_json_cut_and_refused_answers_are_told_apart() {
    let s = product();
    let not_json = s.judge(Some("Sure! Here it is: {\"title\": "), None, false);
    assert!(
        matches!(&not_json, Judged::Invalid(e) if e[0].starts_with("not JSON")),
        "{not_json:?}"
    );
    let cut = s.judge(Some("{\"title\": \"Mu"), None, true);
    assert_eq!(cut.name(), "truncated");
    assert!(cut.retryable());
    let refused = s.judge(None, Some("I can't help with that."), false);
    assert_eq!(refused, Judged::Refused("I can't help with that.".into()));
    assert!(!refused.retryable());
    let empty = s.judge(None, None, false);
    assert!(
        matches!(&empty, Judged::Invalid(e) if e[0].starts_with("no text")),
        "{empty:?}"
    );
}

#[test]
fn a_schema_must_be_an_object_schema_and_compile_without_the_network() {
    assert!(Schema::new(json!([1])).unwrap_err().contains("JSON object"));
    assert!(Schema::new(json!({"type": "string"}))
        .unwrap_err()
        .contains("root"));
    let bad = Schema::new(json!({"type": "object", "properties": {"a": {"type": 7}}}));
    assert!(bad.unwrap_err().contains("not a usable JSON Schema"));
    let remote = json!({"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json"}}});
    assert!(Schema::new(remote).is_err());
    // A local `$ref` works.
    let local = Schema::new(json!({
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/n"}},
        "$defs": {"n": {"type": "integer"}}
    }))
    .unwrap();
    assert!(matches!(
        local.judge(Some(r#"{"a":1}"#), None, false),
        Judged::Valid(_)
    ));
    assert!(matches!(
        local.judge(Some(r#"{"a":1.5}"#), None, false),
        Judged::Invalid(_)
    ));
    // Open objects are sent without `strict`.
    assert!(!local.strict());
}

#[test]
fn read_takes_inline_json_or_a_file_and_names_the_file_line_and_column() {
    assert!(Schema::read(r#"{"type":"object"}"#).is_ok());
    assert!(Schema::read("{nope")
        .unwrap_err()
        .starts_with("--schema: not JSON"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    std::fs::write(&path, "{\n  \"type\": \"object\",\n  oops\n}").unwrap();
    let err = Schema::read(path.to_str().unwrap()).unwrap_err();
    assert!(err.starts_with(&format!("{}:3:", path.display())), "{err}");
    let missing = Schema::read(dir.path().join("none.json").to_str().unwrap()).unwrap_err();
    assert!(missing.starts_with("--schema "), "{missing}");
}

#[test]
fn fields_become_a_strict_schema() {
    let v =
        from_fields("title, bullets: list[str], price: number, n:int?, tone: enum(formal|casual)").unwrap();
    let s = Schema::new(v).unwrap();
    assert!(s.strict());
    assert_eq!(s.properties(), ["title", "bullets", "price", "n", "tone"]);
    let ok = r#"{"title":"t","bullets":["a"],"price":1.5,"n":null,"tone":"formal"}"#;
    assert!(matches!(s.judge(Some(ok), None, false), Judged::Valid(_)));
    let bad = r#"{"title":"t","bullets":[1],"price":1.5,"n":2,"tone":"loud"}"#;
    let Judged::Invalid(errors) = s.judge(Some(bad), None, false) else {
        panic!()
    };
    assert!(errors.iter().any(|e| e.starts_with("/bullets/0: ")), "{errors:?}");
    assert!(errors.iter().any(|e| e.starts_with("/tone: ")), "{errors:?}");
}

#[test]
fn bad_fields_name_the_field_and_the_grammar() {
    for (spec, wants) in [
        ("a,,b", "field 2"),
        ("1a", "not a name"),
        ("a: money", "`money` is no type"),
        ("a, a", "named twice"),
        ("a:", "no type"),
        ("e: enum(x||y)", "enum"),
    ] {
        let err = from_fields(spec).unwrap_err();
        assert!(
            err.starts_with("--fields: ") && err.contains(wants),
            "{spec}: {err}"
        );
    }
}
