//! Tests of the nested columns: the levels of the Dremel encoding for known values, and the
//! round trip through a file that `input::RowReader` reads back (its JSON, and the schema text
//! it records, which must parse back into the same type).

use std::sync::Arc;

use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use serde_json::{json, Value};

use super::*;
use promptmill_core::input::{InputFormat, RowReader};

const TAGS: &str =
    "message m { optional group tags (LIST) { repeated group list { optional binary element (STRING); } } }";
const NUMS: &str =
    "message m { optional group nums (LIST) { repeated group list { required int64 element; } } }";
const STRUCT: &str = "message m { optional group s { optional int64 a; required binary b (STRING); } }";
const ITEMS: &str = "message m { optional group items (LIST) { repeated group list { optional group element { optional binary name (STRING); optional int32 n; } } } }";
const MAP: &str = "message m { optional group m (MAP) { repeated group key_value { required binary key (STRING); optional int64 value; } } }";
const LEGACY: &str = "message m { required group legacy (LIST) { repeated int32 element; } }";
const BARE: &str = "message m { repeated int32 bare; }";
const LISTS: &str = "message m { optional group ll (LIST) { repeated group list { optional group element (LIST) { repeated group list { optional int32 element; } } } } }";
const UNSIGNED: &str = "message m { optional group u (LIST) { repeated group list { optional int32 element (INTEGER(32,false)); } } }";

fn column(schema: &str) -> NestedColumn {
    NestedColumn::new(&parse(schema).expect("a schema")).expect("a nested column")
}

#[test]
fn a_list_of_strings_gets_the_levels_of_the_three_level_form() {
    let mut c = column(TAGS);
    for v in [json!(["a", "b"]), json!([]), Value::Null, json!([null])] {
        c.push(Some(&v)).expect("a list");
    }
    let leaf = &c.leaves[0];
    assert_eq!(leaf.defs, [3, 3, 1, 0, 2]);
    assert_eq!(leaf.reps, [0, 1, 0, 0, 0]);
    assert!(matches!(&leaf.values, Values::Text(v) if v.len() == 2));
}

#[test]
fn a_list_of_structs_levels_each_field_and_a_null_struct() {
    let mut c = column(ITEMS);
    let v = json!([{"name": "x", "n": 1}, null, {"name": null, "n": 2}]);
    c.push(Some(&v)).expect("a list of structs");
    assert_eq!(c.leaves[0].defs, [4, 2, 3]);
    assert_eq!(c.leaves[1].defs, [4, 2, 4]);
    assert_eq!(c.leaves[0].reps, [0, 1, 1]);
}

#[test]
fn a_value_of_the_wrong_shape_or_a_null_where_required_is_an_error_naming_the_field() {
    let mut c = column(STRUCT);
    let e = c.push(Some(&json!({"a": 1}))).expect_err("b is required");
    assert!(e.contains("`b`") && e.contains("required"), "{e}");
    let e = column(TAGS).push(Some(&json!("a"))).expect_err("not a list");
    assert!(e.contains("`tags`") && e.contains("a string"), "{e}");
}

#[test]
fn a_column_with_a_leaf_json_cannot_give_back_exactly_is_refused() {
    let date =
        "message m { optional group d (LIST) { repeated group list { optional int32 element (DATE); } } }";
    let e = NestedColumn::new(&parse(date).expect("a schema"))
        .err()
        .expect("a date is refused");
    assert!(e.contains("element"), "{e}");
    assert!(NestedColumn::new(&parse("message m { optional int64 x; }").expect("a schema")).is_err());
}

/// Writes `rows` of one column typed `schema` to a file, and reads them back with the input's
/// reader: the JSON of each row, and the schema text the reader records for the column.
fn round_trip(schema: &str, rows: &[Value]) -> (Vec<Value>, String) {
    let field = parse(schema).expect("a schema");
    let name = field.name().to_string();
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("t.parquet");
    let file = std::fs::File::create(&path).expect("a file");
    let message = parquet::schema::types::Type::group_type_builder("m")
        .with_fields(vec![Arc::new(field.clone())])
        .build()
        .expect("a message");
    let props = Arc::new(WriterProperties::builder().build());
    let mut writer = SerializedFileWriter::new(file, Arc::new(message), props).expect("a writer");
    let mut column = NestedColumn::new(&field).expect("a nested column");
    for (i, chunk) in rows.chunks(2).enumerate() {
        for row in chunk {
            column.push(Some(row)).unwrap_or_else(|e| panic!("row {i}: {e}"));
        }
        let mut group = writer.next_row_group().expect("a row group");
        column.write(&mut group).expect("written");
        group.close().expect("closed");
    }
    writer.close().expect("a footer");
    let mut reader = RowReader::open(&path, InputFormat::Parquet).expect("readable");
    let schemas = reader.column_schemas();
    let mut read = Vec::new();
    while let Some(row) = reader.next_row() {
        let mut fields = row.expect("no read error").expect("a good row").fields;
        read.push(fields.remove(&name).unwrap_or(Value::Null));
    }
    (read, schemas.get(&name).cloned().expect("a recorded schema"))
}

#[test]
fn nested_values_read_back_as_written_and_the_recorded_schema_is_the_same_type() {
    let cases: &[(&str, Vec<Value>)] = &[
        (
            TAGS,
            vec![
                json!(["a", "b"]),
                json!([]),
                Value::Null,
                json!([null, "c"]),
                json!(["é"]),
            ],
        ),
        (
            NUMS,
            vec![json!([1, -2, 9_007_199_254_740_993_i64]), json!([]), Value::Null],
        ),
        (
            STRUCT,
            vec![
                json!({"a": 1, "b": "x"}),
                json!({"a": null, "b": ""}),
                Value::Null,
            ],
        ),
        (
            ITEMS,
            vec![
                json!([{"name": "x", "n": 1}, null]),
                json!([]),
                Value::Null,
                json!([{"name": null, "n": null}]),
            ],
        ),
        (MAP, vec![json!({"k": 1, "j": null}), json!({}), Value::Null]),
        // The reader gives a two-level list as an array of one array (see `Shape::List`).
        (LEGACY, vec![json!([[1, 2]]), json!([]), json!([[3]])]),
        (BARE, vec![json!([1, 2]), json!([]), json!([3])]),
        (
            LISTS,
            vec![json!([[1, null], [], null]), json!([]), Value::Null, json!([[2]])],
        ),
        (UNSIGNED, vec![json!([4_000_000_000_u32, 0]), Value::Null]),
    ];
    for (schema, rows) in cases {
        let (read, recorded) = round_trip(schema, rows);
        assert_eq!(&read, rows, "{schema}");
        assert_eq!(
            parse(&recorded).expect("the recorded schema parses"),
            parse(schema).expect("a schema"),
            "{recorded}"
        );
    }
}

#[test]
fn a_renamed_column_keeps_its_type() {
    let field = parse(ITEMS).expect("a schema");
    let renamed = renamed(&field, "input.items").expect("renamed");
    assert_eq!(renamed.name(), "input.items");
    assert_eq!(renamed.get_fields(), field.get_fields());
    assert_eq!(
        renamed.get_basic_info().converted_type(),
        field.get_basic_info().converted_type()
    );
    assert_eq!(
        renamed.get_basic_info().repetition(),
        field.get_basic_info().repetition()
    );
}
