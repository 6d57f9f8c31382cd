//! Tests of the Parquet writer's schema: a nested input column is written with its recorded
//! Parquet type, and without a recorded schema (a checkpoint made before it was recorded) as
//! JSON text, as before; an embeddings job's vectors cut the row groups by their values; every
//! row says whether it came from the cache; a `--schema` job's outcome and `data.*` columns.

use std::collections::BTreeMap;
use std::io::BufWriter;

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

use super::*;
use crate::output::blank_row as row;

const TAGS: &str =
    "message m { optional group tags (LIST) { repeated group list { optional binary element (STRING); } } }";

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
        properties: None,
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

/// Writes `rows` with input columns `columns` for `job`; gives back the column names and each
/// row's values by column name.
fn write_and_read(
    columns: &[String],
    job: JobFacts,
    rows: &[ExportRow],
) -> (Vec<String>, Vec<BTreeMap<String, Field>>) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("o.parquet");
    let out = BufWriter::new(std::fs::File::create(&path).expect("a file"));
    let mut writer = Box::new(Parquet::new(out, columns, job).expect("a writer"));
    for r in rows {
        writer.row(r).expect("a row");
    }
    writer.finish().expect("finished").into_inner().expect("flushed");
    let reader = SerializedFileReader::new(std::fs::File::open(&path).expect("the output")).expect("Parquet");
    let schema = reader.metadata().file_metadata().schema();
    let names = schema.get_fields().iter().map(|f| f.name().to_string()).collect();
    let values = reader
        .get_row_iter(None)
        .expect("rows")
        .map(|r| {
            let r = r.expect("a row");
            r.get_column_iter().map(|(n, v)| (n.clone(), v.clone())).collect()
        })
        .collect();
    (names, values)
}

fn text(value: &str) -> Field {
    Field::Str(value.into())
}

#[test]
fn every_row_says_whether_it_came_from_the_cache() {
    let mut cached = row("{}");
    cached.cached = true;
    let (names, rows) = write_and_read(&[], JobFacts::default(), &[row("{}"), cached]);
    assert_eq!(names.last().map(String::as_str), Some("cached"), "{names:?}");
    assert_eq!(names.iter().rev().nth(1).map(String::as_str), Some("error"));
    assert_eq!(rows[0]["cached"], Field::Bool(false));
    assert_eq!(rows[1]["cached"], Field::Bool(true));
}

#[test]
fn a_schema_job_has_its_outcome_and_a_text_column_per_property_in_schema_order() {
    let props = ["title", "price", "tags", "status"].map(String::from).to_vec();
    let mut valid = row("{}");
    valid.outcome = Some("valid".into());
    valid.data = Some(serde_json::json!({"title": "A lamp", "price": 12.5, "tags": ["x", 1]}));
    let mut refused = row("{}");
    refused.outcome = Some("refused".into());
    let job = JobFacts {
        properties: Some(props),
        ..JobFacts::default()
    };
    // An input column named like a data column gives way to it, as in CSV.
    let (names, rows) = write_and_read(&["data.title".into()], job, &[valid, refused, row("{}")]);
    assert!(names.contains(&"input.data.title".to_string()), "{names:?}");
    let tail = [
        "cached",
        "schema",
        "data.title",
        "data.price",
        "data.tags",
        "data.status",
    ];
    assert!(names.ends_with(&tail.map(String::from)), "{names:?}");
    assert_eq!(rows[0]["schema"], text("valid"));
    assert_eq!(rows[0]["data.title"], text("A lamp"), "strings as they are");
    assert_eq!(rows[0]["data.price"], text("12.5"), "numbers as JSON text");
    assert_eq!(rows[0]["data.tags"], text(r#"["x",1]"#), "arrays as JSON text");
    assert_eq!(rows[0]["data.status"], Field::Null, "a property the answer lacks");
    assert_eq!(rows[1]["schema"], text("refused"));
    assert_eq!(rows[1]["data.title"], Field::Null);
    assert_eq!(rows[2]["schema"], Field::Null, "a row not answered yet");
}

#[test]
fn a_job_without_a_schema_has_no_schema_columns() {
    let (names, _) = write_and_read(&[], JobFacts::default(), &[row("{}")]);
    assert!(
        !names.iter().any(|n| n == "schema" || n.starts_with("data.")),
        "{names:?}"
    );
}
