use base64::Engine;

use super::answer::{decode, join, parse, split};
use super::*;

fn base64_of(values: &[f32]) -> String {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn answer(items: &[(u64, &[f32])], prompt_tokens: u64) -> Completion {
    let data: Vec<String> = items
        .iter()
        .map(|(i, v)| {
            format!(
                r#"{{"object":"embedding","index":{i},"embedding":"{}"}}"#,
                base64_of(v)
            )
        })
        .collect();
    let body = format!(
        r#"{{"object":"list","data":[{}],"model":"m","usage":{{"prompt_tokens":{prompt_tokens},"total_tokens":{prompt_tokens}}}}}"#,
        data.join(",")
    );
    parse(body.as_bytes()).unwrap()
}

#[test]
fn base64_decodes_to_little_endian_f32s() {
    let values = [0.5f32, -1.25, 3.0e-8, f32::MAX];
    assert_eq!(decode(&base64_of(&values)).unwrap(), values);
    assert!(
        decode("AAAA").unwrap_err().contains("3 bytes"),
        "not 4-byte floats"
    );
    assert!(decode("not base64!").unwrap_err().contains("not base64"));
}

#[test]
fn float_and_base64_answers_read_the_same() {
    let floats = r#"{"data":[{"index":0,"embedding":[0.5,-1.25]}],"model":"m","usage":{"prompt_tokens":3,"total_tokens":3}}"#;
    let c = parse(floats.as_bytes()).unwrap();
    assert_eq!(c.embeddings[0].vector, [0.5, -1.25]);
    assert_eq!(c.usage.prompt_tokens, 3);
    assert_eq!(answer(&[(0, &[0.5, -1.25])], 3).embeddings, c.embeddings);
    let bad = r#"{"data":[{"index":0,"embedding":"AAAA"}]}"#;
    assert!(matches!(parse(bad.as_bytes()), Err(BadBody::Unusable(m)) if m.contains("data[0].embedding")));
}

#[test]
fn each_row_gets_the_vector_of_its_index_not_of_its_place() {
    let c = answer(&[(2, &[2.0]), (0, &[0.0]), (1, &[1.0])], 6);
    let rows = split(c, &[1, 1, 1]);
    for (i, row) in rows.iter().enumerate() {
        let row = row.as_ref().unwrap();
        assert_eq!(row.embeddings[0].vector, [i as f32]);
        assert_eq!(row.usage.prompt_tokens, 2);
    }
}

#[test]
fn a_missing_duplicate_or_out_of_range_index_fails_those_rows_only() {
    let c = answer(&[(0, &[0.0]), (0, &[9.0]), (1, &[1.0]), (7, &[7.0])], 3);
    let rows = split(c, &[1, 1, 1]);
    assert!(rows[0]
        .as_ref()
        .unwrap_err()
        .contains("two embeddings with `index` 0"));
    assert_eq!(rows[1].as_ref().unwrap().embeddings[0].vector, [1.0]);
    let missing = rows[2].as_ref().unwrap_err();
    assert!(
        missing.contains("no embedding with `index` 2") && missing.contains("index` 7"),
        "{missing}"
    );
}

#[test]
fn usage_is_split_by_token_counts_and_sums_to_the_servers() {
    assert_eq!(split_usage(10, &[1, 1, 2]), [3, 2, 5]);
    assert_eq!(split_usage(7, &[0, 0, 0]), [3, 2, 2]);
    assert_eq!(split_usage(0, &[5, 5]), [0, 0]);
    let weights: Vec<u64> = (1..=97).collect();
    for total in [0, 1, 96, 4753, 1_000_003] {
        assert_eq!(split_usage(total, &weights).iter().sum::<u64>(), total);
    }
}

#[test]
fn rows_join_into_one_input_array_with_the_first_rows_settings() {
    let a = r#"{"dimensions":64,"encoding_format":"base64","input":"first \"row\"","model":"m"}"#;
    let b = r#"{"dimensions":64,"encoding_format":"base64","input":"second","model":"m"}"#;
    let joined: Value = serde_json::from_str(&join(&[a, b]).unwrap()).unwrap();
    assert_eq!(
        joined,
        serde_json::json!({"input": ["first \"row\"", "second"], "dimensions": 64, "encoding_format": "base64", "model": "m"})
    );
    let other = r#"{"input":"x","model":"n"}"#;
    assert!(join(&[a, other])
        .unwrap_err()
        .to_string()
        .contains("different models"));
}

#[test]
fn tokens_are_the_inputs_own_without_chat_framing() {
    let one = r#"{"model":"text-embedding-3-small","input":"hello world"}"#;
    let many = r#"{"model":"text-embedding-3-small","input":["hello world","hello world"]}"#;
    let (cost, model) = Embeddings.measure(one).unwrap();
    assert_eq!((cost.prompt_tokens, cost.max_output_tokens), (2, 0));
    assert_eq!(model.as_deref(), Some("text-embedding-3-small"));
    assert_eq!(Embeddings.measure(many).unwrap().0.prompt_tokens, 4);
}

#[test]
fn the_body_asks_for_base64_unless_it_sets_a_format() {
    let mut body = Map::new();
    Embeddings.defaults(&mut body);
    assert_eq!(body["encoding_format"], "base64");
    let mut body = Map::new();
    body.insert("encoding_format".into(), "float".into());
    Embeddings.defaults(&mut body);
    assert_eq!(body["encoding_format"], "float");
}
