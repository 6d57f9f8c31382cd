//! Property tests of templates: any text parses to a template or to an error that points inside
//! it, rendering never panics whatever the fields hold, and a well-formed template renders, with
//! every field present, to exactly its text with the values put in.

use proptest::collection::{hash_map, vec};
use proptest::prelude::*;
use serde_json::{Map, Value};

use super::*;

/// 256 cases per property, enough for the shallow bugs on every `cargo test` and few enough to
/// keep it fast; `PROPTEST_CASES=5000 cargo test --lib proptests` searches deeper.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok());
    ProptestConfig {
        cases: cases.unwrap_or(256),
        ..ProptestConfig::default()
    }
}

/// Text with plenty of braces, so the parser's every branch is reached.
fn brace_heavy_text() -> impl Strategy<Value = String> {
    vec(
        prop_oneof![
            Just("{".to_string()),
            Just("}".to_string()),
            Just("{{".to_string()),
            Just("}}".to_string()),
            Just(" ".to_string()),
            "[a-c]{1,3}",
            any::<char>().prop_map(String::from),
        ],
        0..30,
    )
    .prop_map(|pieces| pieces.concat())
}

fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        vec(any::<u8>(), 0..3).prop_map(Value::from),
        hash_map("[a-c]", any::<u8>(), 0..3)
            .prop_map(|m| m.into_iter().map(|(k, v)| (k, Value::from(v))).collect()),
    ]
}

/// A template's parts: literal text (any, braces included) or a field name.
#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Field { name: String, pad: bool },
}

fn part() -> impl Strategy<Value = Part> {
    prop_oneof![
        any::<String>().prop_map(Part::Text),
        ("[a-zA-Z_][a-zA-Z0-9_.-]{0,7}", any::<bool>()).prop_map(|(name, pad)| Part::Field { name, pad }),
    ]
}

/// The template source for `parts`: braces in text doubled, fields in braces.
fn source(parts: &[Part]) -> String {
    parts
        .iter()
        .map(|p| match p {
            Part::Text(t) => t.replace('{', "{{").replace('}', "}}"),
            Part::Field { name, pad: true } => format!("{{ {name} }}"),
            Part::Field { name, pad: false } => format!("{{{name}}}"),
        })
        .collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_text_parses_or_says_where_it_went_wrong(text in prop_oneof![brace_heavy_text(), any::<String>()]) {
        match Template::parse(&text) {
            Ok(t) => prop_assert_eq!(t.source(), text.as_str()),
            Err(e) => prop_assert!(
                (1..=text.chars().count()).contains(&e.at),
                "error at character {} of {}",
                e.at,
                text.chars().count()
            ),
        }
    }

    #[test]
    fn rendering_any_fields_never_panics_and_names_a_used_field_when_it_fails(
        text in brace_heavy_text(),
        fields in hash_map("[a-c]{1,3}", any_value(), 0..6),
    ) {
        if let Ok(t) = Template::parse(&text) {
            let fields: Map<String, Value> = fields.into_iter().collect();
            if let Err(e) = t.render(&fields) {
                prop_assert!(t.fields().contains(&e.field.as_str()), "{} is not used", e.field);
                let value = fields.get(&e.field);
                prop_assert!(matches!(value, None | Some(Value::Null)), "{} is {:?}", e.field, value);
            }
        }
    }

    #[test]
    fn a_well_formed_template_renders_its_text_with_every_value_in(
        parts in vec(part(), 0..12),
        values in vec(any::<String>(), 12),
    ) {
        let template = Template::parse(&source(&parts)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut fields = Map::new();
        let mut expected = String::new();
        let mut names = Vec::new();
        for (part, value) in parts.iter().zip(&values) {
            match part {
                Part::Text(t) => expected.push_str(t),
                Part::Field { name, .. } => {
                    let value = fields.entry(name.clone()).or_insert_with(|| Value::String(value.clone()));
                    expected.push_str(value.as_str().unwrap_or_default());
                    if !names.contains(&name.as_str()) {
                        names.push(name);
                    }
                }
            }
        }
        prop_assert_eq!(template.fields(), names);
        prop_assert_eq!(template.render(&fields).map_err(|e| TestCaseError::fail(e.to_string()))?, expected);
    }
}
