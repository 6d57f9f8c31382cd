//! Tests of the schema instance generator and of the structured texts made from it: instances
//! validate (checked with the `jsonschema` crate, formats included), are deterministic, keep the
//! schema's property order, end on recursive schemas, stay bounded on hostile ones; the spoiled
//! texts are what they claim to be.

use serde_json::{json, Value};

use super::*;
use crate::structured::{self, Format, Spoiled};
use crate::wire::Prompted;

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .expect("the test's schema is valid")
}

/// Asserts that `instance` fits `schema`, listing every error otherwise.
fn assert_fits(schema: &Value, instance: &Value) {
    let validator = validator(schema);
    let errors: Vec<String> = validator.iter_errors(instance).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{instance} does not fit: {errors:?}");
}

fn product() -> Value {
    json!({
        "type": "object",
        "properties": {
            "title": {"type": "string", "minLength": 3, "maxLength": 40},
            "price": {"type": "number", "minimum": 1, "exclusiveMaximum": 50},
            "stock": {"type": "integer", "minimum": 10, "maximum": 20, "multipleOf": 5},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 3, "maxItems": 4},
            "status": {"enum": ["draft", "live", "gone"]},
            "kind": {"const": "product"},
            "released": {"type": "string", "format": "date"},
            "contact": {"type": "string", "format": "email"},
            "id": {"type": "string", "format": "uuid"},
            "site": {"type": "string", "format": "uri"},
            "updated": {"type": "string", "format": "date-time"},
            "discount": {"type": ["null", "number"], "maximum": 0.5},
            "active": {"type": "boolean"},
            "note": {"anyOf": [{"type": "string", "maxLength": 2}, {"type": "null"}]},
            "pair": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "boolean"}], "items": false},
            "size": {"$ref": "#/$defs/size"},
            "legacy": {"$ref": "#/definitions/legacy"},
            "both": {"allOf": [
                {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                {"properties": {"b": {"type": "string"}}, "required": ["b"]}
            ]}
        },
        "required": ["title", "price", "stock", "tags", "status", "kind", "size", "both"],
        "additionalProperties": false,
        "$defs": {"size": {"type": "object", "properties": {"w": {"type": "integer", "exclusiveMinimum": 0}}, "required": ["w"]}},
        "definitions": {"legacy": {"type": "string", "maxLength": 5}}
    })
}

#[test]
fn an_instance_fits_every_supported_keyword() {
    let schema = product();
    let value = instance(&schema, "Describe the blue kettle for the shop");
    assert_fits(&schema, &value);
    assert_eq!(value["kind"], "product");
    assert_eq!(
        value["tags"].as_array().map(Vec::len),
        Some(3),
        "minItems wins over 2"
    );
    assert_eq!(
        value["both"].as_object().map(|o| o.len()),
        Some(2),
        "allOf parts joined"
    );
}

#[test]
fn properties_come_in_the_schemas_order() {
    let schema = product();
    let value = instance(&schema, "x");
    let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
    let expected: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
    assert_eq!(keys, expected);
}

#[test]
fn the_same_schema_and_prompt_give_the_same_instance_and_strings_come_from_the_prompt() {
    let schema = json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}});
    let first = instance(&schema, "alpha beta gamma delta");
    assert_eq!(first, instance(&schema, "alpha beta gamma delta"));
    assert_ne!(first, instance(&schema, "one two three four"));
    let a = first["a"].as_str().unwrap();
    assert!(
        a.split(' ')
            .all(|w| ["alpha", "beta", "gamma", "delta"].contains(&w)),
        "{a}"
    );
    let clean = instance(&schema, "row [[mock:reply=cut]]");
    assert_eq!(clean["a"], "row", "directives are not words of the answer");
}

#[test]
fn a_recursive_schema_ends_in_a_valid_instance() {
    let tree = json!({
        "type": "object",
        "properties": {"name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#"}}},
        "required": ["name", "children"],
        "additionalProperties": false
    });
    let value = instance(&tree, "root");
    assert_fits(&tree, &value);
    assert_eq!(value["children"].as_array().map(Vec::len), Some(2));
    let list = json!({
        "$ref": "#/$defs/node",
        "$defs": {"node": {"type": "object", "properties": {
            "value": {"type": "integer"},
            "next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]}
        }, "required": ["value", "next"]}}
    });
    let value = instance(&list, "list");
    assert_fits(&list, &value);
    let mut depth = 0;
    let mut node = &value;
    while !node.is_null() {
        node = &node["next"];
        depth += 1;
    }
    assert!((2..=MAX_DEPTH as usize + 1).contains(&depth), "{depth}");
}

#[test]
fn a_reference_cycle_and_a_dangling_reference_end() {
    assert_eq!(instance(&json!({"$ref": "#"}), "x"), Value::Null);
    assert_eq!(instance(&json!({"$ref": "#/$defs/missing"}), "x"), Value::Null);
    let loop_of_branches = json!({"anyOf": [{"$ref": "#"}]});
    assert_eq!(instance(&loop_of_branches, "x"), Value::Null);
}

#[test]
fn a_hostile_schema_makes_a_bounded_instance() {
    // Each level an array of at least a billion arrays: without the caps, 1e9^depth values.
    let mut schema = json!({"type": "string", "minLength": 1_000_000_000u64});
    for _ in 0..100 {
        schema = json!({"type": "array", "items": schema, "minItems": 1_000_000_000u64});
    }
    let value = instance(&schema, "x");
    let text = structured::render(&value);
    assert!(text.len() < 2_000_000, "{} bytes", text.len());
    assert_eq!(value.as_array().map(Vec::len), Some(MAX_ITEMS as usize));
    // A wide object of wide objects, referenced from everywhere.
    let props: serde_json::Map<String, Value> = (0..500)
        .map(|i| (format!("p{i}"), json!({"$ref": "#"})))
        .collect();
    let wide = json!({"type": "object", "properties": props});
    let text = structured::render(&instance(&wide, "x"));
    assert!(text.len() < 1_000_000, "{} bytes", text.len());
    // A large constant, asked for many times.
    let big = json!({"const": "y".repeat(1_000_000)});
    let many = json!({"type": "array", "items": big, "minItems": 16});
    let text = structured::render(&instance(&many, "x"));
    assert!(text.len() < 1_000_000 * 2, "{} bytes", text.len());
}

#[test]
fn strings_longer_than_the_cap_are_not_made() {
    let value = instance(&json!({"type": "string", "minLength": 100_000}), "x");
    assert_eq!(value.as_str().map(str::len), Some(MAX_STRING));
}

fn prompted(format: Option<Format>) -> Prompted<'static> {
    Prompted {
        model: "m".into(),
        prompt: "summarise the blue kettle".into(),
        prompt_tokens: 5,
        max_tokens: None,
        n: 1,
        format,
    }
}

fn schema_format() -> Format {
    Format::Schema(Box::new(json!({
        "type": "object",
        "properties": {"title": {"type": "string"}, "price": {"type": "number"}},
        "required": ["title", "price"]
    })))
}

#[test]
fn a_schemas_text_is_spaced_json_counted_in_words() {
    let said = structured::say(&prompted(Some(schema_format())), None);
    let value: Value = serde_json::from_str(&said.text).unwrap();
    assert!(said.text.starts_with("{\"title\": \""), "{}", said.text);
    assert!(said.text.contains(", \"price\": "), "{}", said.text);
    assert_eq!(said.words, said.text.split_whitespace().count() as u64);
    assert_eq!((said.finish_reason, said.refused), ("stop", false));
    assert!(value["price"].is_number());
    let object = structured::say(&prompted(Some(Format::Object)), None);
    let value: Value = serde_json::from_str(&object.text).unwrap();
    assert_eq!(value["answer"], "Mock reply: summarise the blue kettle");
}

#[test]
fn a_schemas_text_longer_than_max_tokens_is_cut_there() {
    let mut p = prompted(Some(schema_format()));
    p.max_tokens = Some(2);
    let said = structured::say(&p, None);
    assert_eq!((said.words, said.finish_reason), (2, "length"));
    assert!(serde_json::from_str::<Value>(&said.text).is_err());
}

#[test]
fn the_spoiled_texts_are_what_they_say() {
    let p = prompted(Some(schema_format()));
    let whole = structured::say(&p, None).text;
    let invalid = structured::say(&p, Some(Spoiled::InvalidJson));
    assert!(
        invalid.text.starts_with("Sure! Here is the JSON: {\"title\": "),
        "{}",
        invalid.text
    );
    assert!(serde_json::from_str::<Value>(&invalid.text).is_err());
    let cut = structured::say(&p, Some(Spoiled::Cut));
    assert_eq!(cut.finish_reason, "length");
    assert!(whole.starts_with(&cut.text) && cut.text.len() < whole.len());
    assert!(serde_json::from_str::<Value>(&cut.text).is_err());
    let refusal = structured::say(&p, Some(Spoiled::Refusal));
    assert_eq!(
        (refusal.text.as_str(), refusal.refused),
        (structured::REFUSAL, true)
    );
    let plain = structured::say(&prompted(None), Some(Spoiled::Cut));
    assert_eq!(
        (plain.text.as_str(), plain.finish_reason),
        ("Mock reply: summar", "length")
    );
}

#[test]
fn a_misfit_breaks_the_schema_where_a_validator_looks() {
    let check = |schema: Value| {
        let value = structured::misfit(Some(&Format::Schema(Box::new(schema.clone()))), "a b c");
        assert!(!validator(&schema).is_valid(&value), "{value} fits {schema}");
        value
    };
    let price = check(json!({"type": "object", "properties": {
        "title": {"type": "string"}, "price": {"type": "integer"}}, "required": ["title"]}));
    assert!(
        price["price"].is_string() && price["title"].is_string(),
        "{price}"
    );
    let missing = check(json!({"type": "object", "properties": {
        "title": {"type": "string"}, "done": {"type": "boolean"}}, "required": ["done"]}));
    assert_eq!(missing.as_object().map(|o| o.contains_key("done")), Some(false));
    let retyped = check(json!({"type": "object", "properties": {"title": {"type": "string"}}}));
    assert!(retyped["title"].is_number());
    let root = check(json!({"type": "string"}));
    assert!(root.is_number());
    check(json!({"$ref": "#/$defs/p", "$defs": {"p": {"type": "object",
        "properties": {"n": {"$ref": "#/$defs/n"}}}, "n": {"type": "number"}}}));
    assert_eq!(structured::misfit(Some(&Format::Object), "x"), json!({}));
}
