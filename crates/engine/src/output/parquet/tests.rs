//! Tests of the Parquet writer's schema: a nested input column is written with its recorded
//! Parquet type, and without a recorded schema (a checkpoint made before it was recorded) as
//! JSON text, as before; an embeddings job's vectors cut the row groups by their values.

use std::collections::BTreeMap;
use std::io::BufWriter;

use parquet::file::reader::{FileReader, SerializedFileReader};

use super::*;

const TAGS: &str =
    "message m { optional group tags (LIST) { repeated group list { optional binary element (STRING); } } }";

fn row(fields: &str) -> ExportRow {
    ExportRow {
        seq: 1,
        id: "r1".into(),
        state: "pending".into(),
        invalid: false,
        fields: fields.into(),
        request: None,
        response: None,
        completion: None,
        finish_reason: None,
        prompt_tokens: None,
        completion_tokens: None,
        total_tokens: None,
        model: None,
        response_id: None,
        http_status: None,
        error: None,
        cached_tokens: None,
        cache_creation_tokens: None,
        reasoning_tokens: None,
        via_batch: false,
        cached: false,
        outcome: None,
        data: None,
        cost: None,
        embedding: None,
    }
}

/// Writes one row with a `tags` list under `schemas`, and gives back the `tags` column's type.
fn tags_column(schemas: BTreeMap<String, String>) -> Type {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("o.parquet");
    let out = BufWriter::new(std::fs::File::create(&path).expect("a file"));
    let types = BTreeMap::from([("tags".to_string(), ColumnType::Text)]);
    let job = JobFacts {
        types,
        schemas,
        vectors: false,
    };
    let mut writer = Box::new(Parquet::new(out, &["tags".into()], job).expect("a writer"));
    writer.row(&row(r#"{"tags":["a",null]}"#)).expect("a row");
    writer.finish().expect("finished").into_inner().expect("flushed");
    let reader = SerializedFileReader::new(std::fs::File::open(&path).expect("the output")).expect("Parquet");
    let schema = reader.metadata().file_metadata().schema();
    let tags = schema
        .get_fields()
        .iter()
        .find(|f| f.name() == "tags")
        .expect("a tags column");
    tags.as_ref().clone()
}

#[test]
fn a_nested_column_with_a_recorded_schema_keeps_its_type() {
    let schemas = BTreeMap::from([("tags".to_string(), TAGS.to_string())]);
    let tags = tags_column(schemas);
    assert_eq!(Some(tags), nested::parse(TAGS).ok());
}

#[test]
fn a_nested_column_without_a_recorded_schema_is_json_text_as_in_older_checkpoints() {
    let tags = tags_column(BTreeMap::new());
    assert!(tags.is_primitive(), "{tags:?}");
    assert_eq!(
        tags.get_basic_info().logical_type_ref(),
        Some(&LogicalType::String)
    );
}

#[test]
fn vectors_cut_row_groups_by_their_values_so_memory_stays_flat() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("o.parquet");
    let out = BufWriter::new(std::fs::File::create(&path).expect("a file"));
    let job = JobFacts {
        vectors: true,
        ..JobFacts::default()
    };
    let mut writer = Box::new(Parquet::new(out, &[], job).expect("a writer"));
    // Four rows fill a row group; the fifth starts the next, and a row without a vector is null.
    let vector = vec![0.5f32; vectors::MAX_VALUES_PER_GROUP / 4];
    for i in 0..6 {
        let mut r = row("{}");
        r.embedding = (i != 5).then(|| vector.clone());
        writer.row(&r).expect("a row");
    }
    writer.finish().expect("finished").into_inner().expect("flushed");
    let reader = SerializedFileReader::new(std::fs::File::open(&path).expect("the output")).expect("Parquet");
    let groups: Vec<i64> = reader
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows())
        .collect();
    assert_eq!(groups, [4, 2]);
    let schema = reader.metadata().file_metadata().schema();
    let last = schema.get_fields().last().expect("columns");
    assert_eq!(last.as_ref(), &vectors::field().expect("the field"));
}
