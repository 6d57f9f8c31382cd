//! Specifications of the row readers: what each format yields, where errors point, and that the
//! fingerprint taken while reading is the file's.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tempfile::TempDir;

use super::*;

fn fixture(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Every item a reader yields until the end; a fatal error fails the test.
fn read_all(reader: &mut RowReader) -> Vec<RowResult> {
    let mut out = Vec::new();
    while let Some(item) = reader.next_row() {
        out.push(item.expect("no fatal read error"));
    }
    out
}

fn rows_of(path: &Path, format: InputFormat) -> Vec<RowResult> {
    read_all(&mut RowReader::open(path, format).unwrap())
}

fn open_error(path: &Path, format: InputFormat) -> InputError {
    match RowReader::open(path, format) {
        Err(ReadError::Input(e)) => e,
        Err(other) => panic!("expected an input error, got {other}"),
        Ok(_) => panic!("expected the file to be refused"),
    }
}

fn fields(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn ok(item: &RowResult) -> &RawRow {
    item.as_ref().expect("a row")
}

fn err(item: &RowResult) -> &InputError {
    item.as_ref().expect_err("an error")
}

// ---- InputFormat ----

#[test]
fn format_follows_the_file_extension_case_insensitively() {
    assert_eq!(InputFormat::from_path(Path::new("a.csv")), Some(InputFormat::Csv));
    assert_eq!(InputFormat::from_path(Path::new("a.CSV")), Some(InputFormat::Csv));
    assert_eq!(
        InputFormat::from_path(Path::new("a.jsonl")),
        Some(InputFormat::Jsonl)
    );
    assert_eq!(
        InputFormat::from_path(Path::new("a.ndjson")),
        Some(InputFormat::Jsonl)
    );
    assert_eq!(InputFormat::from_path(Path::new("a.json")), None);
    assert_eq!(InputFormat::from_path(Path::new("noext")), None);
}

#[test]
fn a_missing_file_is_an_io_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.csv");
    match RowReader::open(&path, InputFormat::Csv) {
        Err(ReadError::Io { path: p, .. }) => assert_eq!(p, path),
        Err(other) => panic!("expected an I/O error, got {other}"),
        Ok(_) => panic!("expected an error"),
    }
}

// ---- CSV ----

#[test]
fn csv_rows_carry_their_number_line_and_fields_in_header_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "in.csv", b"name,color\nmug,red\nlamp,blue\n");
    let mut reader = RowReader::open(&path, InputFormat::Csv).unwrap();
    assert!(reader.has_header());
    assert_eq!(reader.columns(), ["name", "color"]);
    let rows = read_all(&mut reader);
    assert_eq!(
        rows,
        vec![
            Ok(RawRow {
                number: 1,
                line: 2,
                fields: fields(json!({"name": "mug", "color": "red"})),
            }),
            Ok(RawRow {
                number: 2,
                line: 3,
                fields: fields(json!({"name": "lamp", "color": "blue"})),
            }),
        ]
    );
    let keys: Vec<&String> = ok(&rows[0]).fields.keys().collect();
    assert_eq!(keys, ["name", "color"]);
}

#[test]
fn csv_quoted_field_with_newlines_is_one_row_at_the_line_it_starts_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "in.csv", b"id,text\n1,\"first\nsecond\nthird\"\n2,after\n");
    let rows = rows_of(&path, InputFormat::Csv);
    assert_eq!(rows.len(), 2);
    assert_eq!(ok(&rows[0]).line, 2);
    assert_eq!(ok(&rows[0]).fields["text"], json!("first\nsecond\nthird"));
    assert_eq!((ok(&rows[1]).number, ok(&rows[1]).line), (2, 5));
}

#[test]
fn csv_ragged_row_is_an_error_at_its_line_and_reading_continues() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "in.csv", b"a,b\n1,2\n3\n4,5,6\n7,8\n");
    let rows = rows_of(&path, InputFormat::Csv);
    assert_eq!(rows.len(), 4);
    let short = err(&rows[1]);
    assert_eq!((short.line, short.field.as_deref()), (3, None));
    assert_eq!(short.message, "row has 1 field, but the header has 2");
    assert_eq!(short.file, path);
    let long = err(&rows[2]);
    assert_eq!(long.line, 4);
    assert_eq!(long.message, "row has 3 fields, but the header has 2");
    let last = ok(&rows[3]);
    assert_eq!((last.number, last.line), (4, 5));
    assert_eq!(last.fields, fields(json!({"a": "7", "b": "8"})));
}

#[test]
fn csv_invalid_utf8_in_a_field_names_the_column_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "in.csv", b"id,text\n1,fine\n2,ab\xFFcd\n3,fine\n");
    let rows = rows_of(&path, InputFormat::Csv);
    let e = err(&rows[1]);
    assert_eq!(e.line, 3);
    assert_eq!(e.field.as_deref(), Some("text"));
    assert_eq!(e.message, "invalid UTF-8 (byte 3 of the field)");
    assert!(ok(&rows[2]).fields["text"] == json!("fine"));
}

#[test]
fn csv_invalid_utf8_in_the_header_is_refused_at_line_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "in.csv", b"id,te\xFFxt\n1,x\n");
    let e = open_error(&path, InputFormat::Csv);
    assert_eq!(e.line, 1);
    assert!(
        e.message.contains("header column 2 is not valid UTF-8"),
        "{}",
        e.message
    );
}

#[test]
fn csv_byte_order_mark_is_not_part_of_the_first_column_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "in.csv", b"\xEF\xBB\xBFprompt,id\r\nhello,1\r\nbye,2\r\n");
    let mut reader = RowReader::open(&path, InputFormat::Csv).unwrap();
    assert_eq!(reader.columns(), ["prompt", "id"]);
    let rows = read_all(&mut reader);
    assert_eq!(ok(&rows[0]).fields, fields(json!({"prompt": "hello", "id": "1"})));
    assert_eq!((ok(&rows[1]).number, ok(&rows[1]).line), (2, 3));
}

#[test]
fn csv_crlf_line_endings_leave_no_carriage_returns_and_count_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "in.csv", b"a,b\r\n1,2\r\n3,4\r\n");
    let mut reader = RowReader::open(&path, InputFormat::Csv).unwrap();
    assert_eq!(reader.columns(), ["a", "b"]);
    let rows = read_all(&mut reader);
    assert_eq!(ok(&rows[1]).fields, fields(json!({"a": "3", "b": "4"})));
    assert_eq!((ok(&rows[0]).line, ok(&rows[1]).line), (2, 3));
}

#[test]
fn csv_blank_lines_between_rows_count_toward_the_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "in.csv", b"a,b\n1,2\n\n\n3,4\n\n5\n");
    let rows = rows_of(&path, InputFormat::Csv);
    assert_eq!((ok(&rows[1]).number, ok(&rows[1]).line), (2, 5));
    assert_eq!(err(&rows[2]).line, 7);
}

#[test]
fn csv_crlf_quoted_newlines_and_ragged_rows_report_the_line_the_record_starts_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "in.csv", b"a,b\r\n1,\"x\r\ny\"\r\n\r\n3\r\n4,5");
    let rows = rows_of(&path, InputFormat::Csv);
    assert_eq!(ok(&rows[0]).line, 2);
    assert_eq!(ok(&rows[0]).fields["b"], json!("x\r\ny"));
    assert_eq!(err(&rows[1]).line, 5);
    assert_eq!((ok(&rows[2]).number, ok(&rows[2]).line), (3, 6));
}

#[test]
fn csv_line_numbers_stay_exact_across_buffer_refills() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"id,text\r\n".to_vec();
    let mut expected = Vec::new();
    let mut line = 2;
    for i in 1..=20_000u64 {
        expected.push((i, line));
        if i % 7 == 0 {
            bytes.extend_from_slice(format!("{i},\"two\r\nlines\"\r\n").as_bytes());
            line += 2;
        } else if i % 5 == 0 {
            bytes.extend_from_slice(format!("{i},padded\n\n").as_bytes());
            line += 2;
        } else {
            bytes.extend_from_slice(format!("{i},plain text\r\n").as_bytes());
            line += 1;
        }
    }
    let path = fixture(&dir, "in.csv", &bytes);
    let got: Vec<(u64, u64)> = rows_of(&path, InputFormat::Csv)
        .iter()
        .map(|r| (ok(r).number, ok(r).line))
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn csv_empty_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "in.csv", b"");
    let e = open_error(&path, InputFormat::Csv);
    assert_eq!(e.line, 1);
    assert!(e.message.contains("the file is empty"), "{}", e.message);
}

#[test]
fn csv_header_only_has_no_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "in.csv", b"name,color\n");
    let mut reader = RowReader::open(&path, InputFormat::Csv).unwrap();
    assert_eq!(reader.columns(), ["name", "color"]);
    assert!(reader.next_row().is_none());
}

#[test]
fn csv_duplicate_column_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "in.csv", b"name,color,name\nx,y,z\n");
    let e = open_error(&path, InputFormat::Csv);
    assert_eq!(e.line, 1);
    assert_eq!(e.message, "column `name` appears twice in the header");
}

#[test]
fn csv_column_names_are_trimmed_and_must_not_be_blank() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "in.csv", b" name , color\nx,y\n");
    assert_eq!(
        RowReader::open(&path, InputFormat::Csv).unwrap().columns(),
        ["name", "color"]
    );
    let path = fixture(&dir, "blank.csv", b"name,,color\nx,y,z\n");
    assert_eq!(
        open_error(&path, InputFormat::Csv).message,
        "header column 2 has no name"
    );
}

// ---- JSON Lines ----

#[test]
fn jsonl_rows_carry_their_number_line_and_fields_in_file_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "in.jsonl", b"{\"b\":1,\"a\":\"x\"}\n{\"a\":null}\n");
    let mut reader = RowReader::open(&path, InputFormat::Jsonl).unwrap();
    assert!(!reader.has_header());
    let rows = read_all(&mut reader);
    assert_eq!(
        rows,
        vec![
            Ok(RawRow {
                number: 1,
                line: 1,
                fields: fields(json!({"b": 1, "a": "x"})),
            }),
            Ok(RawRow {
                number: 2,
                line: 2,
                fields: fields(json!({"a": null})),
            }),
        ]
    );
    let keys: Vec<&String> = ok(&rows[0]).fields.keys().collect();
    assert_eq!(keys, ["b", "a"]);
}

#[test]
fn jsonl_blank_lines_are_skipped_but_counted_as_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "in.jsonl", b"\n{\"n\":1}\n   \n\t\r\n{\"n\":2}\n\n");
    let rows = rows_of(&path, InputFormat::Jsonl);
    assert_eq!(rows.len(), 2);
    assert_eq!((ok(&rows[0]).number, ok(&rows[0]).line), (1, 2));
    assert_eq!((ok(&rows[1]).number, ok(&rows[1]).line), (2, 5));
}

#[test]
fn jsonl_byte_order_mark_on_the_first_line_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "in.jsonl", b"\xEF\xBB\xBF{\"prompt\":\"hi\"}\n");
    let rows = rows_of(&path, InputFormat::Jsonl);
    assert_eq!(ok(&rows[0]).fields, fields(json!({"prompt": "hi"})));
}

#[test]
fn jsonl_crlf_line_endings_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "in.jsonl", b"{\"n\":1}\r\n{\"n\":2}\r\n");
    let rows = rows_of(&path, InputFormat::Jsonl);
    assert_eq!(ok(&rows[1]).fields, fields(json!({"n": 2})));
    assert_eq!(ok(&rows[1]).line, 2);
}

#[test]
fn jsonl_line_that_is_not_an_object_is_an_error_naming_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "in.jsonl", b"{\"n\":1}\n[1,2]\n\"text\"\n");
    let rows = rows_of(&path, InputFormat::Jsonl);
    let e = err(&rows[1]);
    assert_eq!(e.line, 2);
    assert_eq!(e.message, "each line must be a JSON object, found an array");
    assert_eq!(
        err(&rows[2]).message,
        "each line must be a JSON object, found a string"
    );
}

#[test]
fn jsonl_invalid_json_is_an_error_at_its_line_and_reading_continues() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "in.jsonl", b"{\"n\":1}\n{n: 2}\n{\"n\":3}\n");
    let rows = rows_of(&path, InputFormat::Jsonl);
    assert_eq!(rows.len(), 3);
    let e = err(&rows[1]);
    assert_eq!((e.line, e.file.as_path()), (2, path.as_path()));
    assert!(e.message.starts_with("not valid JSON ("), "{}", e.message);
    assert_eq!((ok(&rows[2]).number, ok(&rows[2]).line), (3, 3));
}

#[test]
fn jsonl_last_line_cut_off_at_end_of_file_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "in.jsonl", b"{\"n\":1}\n{\"n\":2, \"text\": \"half a");
    let rows = rows_of(&path, InputFormat::Jsonl);
    let e = err(&rows[1]);
    assert_eq!(e.line, 2);
    assert_eq!(
        e.message,
        "the JSON is cut off at the end of the file (the last line is incomplete)"
    );
}

#[test]
fn jsonl_incomplete_line_that_ends_with_a_newline_is_not_called_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "in.jsonl", b"{\"n\":1\n{\"n\":2}\n");
    let rows = rows_of(&path, InputFormat::Jsonl);
    let e = err(&rows[0]);
    assert!(e.message.starts_with("the JSON is incomplete ("), "{}", e.message);
    assert!(rows[1].is_ok());
}

#[test]
fn jsonl_complete_last_line_without_a_newline_is_a_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "in.jsonl", b"{\"n\":1}\n{\"n\":2}");
    let rows = rows_of(&path, InputFormat::Jsonl);
    assert_eq!(ok(&rows[1]).fields, fields(json!({"n": 2})));
}

#[test]
fn jsonl_invalid_utf8_is_an_error_saying_where_on_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "in.jsonl", b"{\"n\":1}\n{\"t\":\"\xC3\x28\"}\n{\"n\":3}\n");
    let rows = rows_of(&path, InputFormat::Jsonl);
    let e = err(&rows[1]);
    assert_eq!(e.line, 2);
    assert_eq!(e.message, "invalid UTF-8 at byte 7 of the line");
    assert!(rows[2].is_ok());
}

#[test]
fn jsonl_very_long_line_is_one_row() {
    let dir = tempfile::tempdir().unwrap();
    let text = "x".repeat(5 * 1024 * 1024);
    let mut bytes = format!("{{\"prompt\":\"{text}\"}}\n").into_bytes();
    bytes.extend_from_slice(b"{\"prompt\":\"short\"}\n");
    let path = fixture(&dir, "in.jsonl", &bytes);
    let rows = rows_of(&path, InputFormat::Jsonl);
    assert_eq!(rows.len(), 2);
    assert_eq!(
        ok(&rows[0]).fields["prompt"].as_str().map(str::len),
        Some(text.len())
    );
    assert_eq!(ok(&rows[1]).line, 2);
}

#[test]
fn jsonl_columns_list_every_key_in_first_seen_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(
        &dir,
        "in.jsonl",
        b"{\"z\":1,\"a\":2}\n{\"a\":3,\"m\":4}\nnot json\n{\"q\":5,\"z\":6}\n",
    );
    let mut reader = RowReader::open(&path, InputFormat::Jsonl).unwrap();
    assert!(reader.columns().is_empty());
    read_all(&mut reader);
    assert_eq!(reader.columns(), ["z", "a", "m", "q"]);
}

// ---- Fingerprints ----

fn fingerprint_after_reading(path: &Path, format: InputFormat) -> String {
    let mut reader = RowReader::open(path, format).unwrap();
    read_all(&mut reader);
    reader.fingerprint()
}

#[test]
fn fingerprint_after_reading_a_csv_is_the_files_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "in.csv", b"a,b\n1,2\n3\n\"x\ny\",4\n");
    assert_eq!(
        fingerprint_after_reading(&path, InputFormat::Csv),
        fingerprint_file(&path).unwrap()
    );
}

#[test]
fn fingerprint_after_reading_jsonl_is_the_files_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"\n{\"n\":1}\r\nbad\n".to_vec();
    bytes.extend(std::iter::repeat_n(b' ', 600 * 1024));
    bytes.extend_from_slice(b"{\"n\":2}");
    let path = fixture(&dir, "in.jsonl", &bytes);
    let expected = blake3::hash(&bytes).to_hex().to_string();
    assert_eq!(fingerprint_file(&path).unwrap(), expected);
    assert_eq!(fingerprint_after_reading(&path, InputFormat::Jsonl), expected);
}

#[test]
fn fingerprint_changes_when_one_byte_changes() {
    let dir = tempfile::tempdir().unwrap();
    let a = fixture(&dir, "a.jsonl", b"{\"prompt\":\"hello\"}\n");
    let b = fixture(&dir, "b.jsonl", b"{\"prompt\":\"hellp\"}\n");
    assert_ne!(fingerprint_file(&a).unwrap(), fingerprint_file(&b).unwrap());
    assert_ne!(
        fingerprint_after_reading(&a, InputFormat::Jsonl),
        fingerprint_after_reading(&b, InputFormat::Jsonl)
    );
}

#[test]
fn fingerprint_of_a_missing_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.jsonl");
    let e = fingerprint_file(&path).unwrap_err();
    assert!(format!("{e:#}").contains("absent.jsonl"), "{e:#}");
}
