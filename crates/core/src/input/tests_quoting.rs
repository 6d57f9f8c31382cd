//! Specifications of what the readers refuse beyond the formats' own errors: CSV quoting that the
//! `csv` crate would forgive silently, and rows longer than the row limit.

use std::path::{Path, PathBuf};

use serde_json::json;
use tempfile::TempDir;

use super::*;

fn fixture(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Every item until the end or the first fatal error (opening included), which ends the list.
fn read_limited(path: &Path, format: InputFormat, max_row: u64) -> (Vec<RowResult>, Option<ReadError>) {
    let mut reader = match RowReader::open_limited(path, format, max_row) {
        Ok(r) => r,
        Err(fatal) => return (Vec::new(), Some(fatal)),
    };
    let mut rows = Vec::new();
    while let Some(item) = reader.next_row() {
        match item {
            Ok(row) => rows.push(row),
            Err(fatal) => return (rows, Some(fatal)),
        }
    }
    (rows, None)
}

fn rows_of(path: &Path, format: InputFormat) -> Vec<RowResult> {
    let (rows, fatal) = read_limited(path, format, MAX_ROW_BYTES);
    assert!(fatal.is_none(), "unexpected fatal error: {fatal:?}");
    rows
}

fn err(item: &RowResult) -> &InputError {
    item.as_ref().expect_err("an error")
}

fn ok(item: &RowResult) -> &RawRow {
    item.as_ref().expect("a row")
}

#[test]
fn csv_unclosed_quote_makes_its_row_invalid_at_the_line_it_starts_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(
        &dir,
        "in.csv",
        b"id,prompt\n1,fine\n2,\"never closed\n3,swallowed\n",
    );
    let rows = rows_of(&path, InputFormat::Csv);
    assert_eq!(rows.len(), 2, "the unclosed field runs to the end of the file");
    assert_eq!(ok(&rows[0]).fields["prompt"], json!("fine"));
    let e = err(&rows[1]);
    assert_eq!((e.line, e.field.as_deref()), (3, Some("prompt")));
    assert_eq!(
        e.message,
        "the quote that opens this field on line 3 is never closed (the rest of the file would be one field)"
    );
}

#[test]
fn csv_unclosed_quote_wins_over_the_field_count_it_upsets() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "in.csv", b"a,b,c\r\n1,2,3\r\n4,\"5,6\r\n");
    let rows = rows_of(&path, InputFormat::Csv);
    let e = err(&rows[1]);
    assert_eq!((e.line, e.field.as_deref()), (3, Some("b")));
    assert!(e.message.contains("never closed"), "{}", e.message);
}

#[test]
fn csv_text_after_a_closing_quote_is_an_error_and_reading_continues() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(
        &dir,
        "in.csv",
        b"id,prompt\n1,\"He said \"hi\" to me\"\n2,\"fine, \"\"quoted\"\"\"\n",
    );
    let rows = rows_of(&path, InputFormat::Csv);
    let e = err(&rows[0]);
    assert_eq!((e.line, e.field.as_deref()), (2, Some("prompt")));
    assert_eq!(
        e.message,
        "text after the closing quote on line 2; a quote inside a quoted field must be doubled (\"\")"
    );
    assert_eq!(ok(&rows[1]).fields["prompt"], json!("fine, \"quoted\""));
}

#[test]
fn csv_quote_inside_an_unquoted_field_is_literal() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "in.csv", b"id,prompt\n1,a 5\" pipe\n");
    let rows = rows_of(&path, InputFormat::Csv);
    assert_eq!(ok(&rows[0]).fields["prompt"], json!("a 5\" pipe"));
}

#[test]
fn csv_bad_quoting_in_the_header_refuses_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "in.csv", b"id,\"prompt\"x\n1,a\n");
    match RowReader::open(&path, InputFormat::Csv) {
        Err(ReadError::Input(e)) => {
            assert_eq!(e.line, 1);
            assert!(
                e.message.starts_with("text after the closing quote"),
                "{}",
                e.message
            );
        }
        Err(other) => panic!("expected an input error, got {other}"),
        Ok(_) => panic!("expected the header to be refused"),
    }
}

#[test]
fn csv_record_longer_than_the_limit_stops_the_read_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"id,prompt\n1,short\n2,\"".to_vec();
    bytes.resize(bytes.len() + 200_000, b'x');
    let path = fixture(&dir, "in.csv", &bytes);
    // The checker reads ahead of the parser, so the read may stop before row 1 is parsed; the
    // error is fatal either way (the file is refused), and names the line the long row starts on.
    let (_, fatal) = read_limited(&path, InputFormat::Csv, 64 * 1024);
    match fatal {
        Some(ReadError::Input(e)) => {
            assert_eq!(e.line, 3);
            assert_eq!(
                e.message,
                "the row is longer than 65536 bytes, the most promptmill reads as one row; \
                 reading stopped here (is a quote never closed?)"
            );
        }
        other => panic!("expected an input error, got {other:?}"),
    }
}

#[test]
fn jsonl_line_longer_than_the_limit_is_an_invalid_row_and_the_next_line_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"{\"prompt\":\"".to_vec();
    bytes.resize(bytes.len() + 300_000, b'x');
    bytes.extend_from_slice(b"\"}\r\n{\"prompt\":\"next\"}\n");
    let path = fixture(&dir, "in.jsonl", &bytes);
    let (rows, fatal) = read_limited(&path, InputFormat::Jsonl, 100_000);
    assert!(fatal.is_none());
    let e = err(&rows[0]);
    assert_eq!(e.line, 1);
    assert_eq!(
        e.message,
        "the line is 300015 bytes long, more than the 100000 bytes promptmill reads as one row"
    );
    assert_eq!((ok(&rows[1]).number, ok(&rows[1]).line), (2, 2));
}

#[test]
fn jsonl_line_exactly_at_the_limit_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let line = format!("{{\"prompt\":\"{}\"}}", "y".repeat(1000));
    let path = fixture(&dir, "in.jsonl", format!("{line}\n{line}").as_bytes());
    let (rows, fatal) = read_limited(&path, InputFormat::Jsonl, line.len() as u64);
    assert!(fatal.is_none());
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(Result::is_ok));
}
