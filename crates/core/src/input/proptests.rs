//! Property tests of the row readers: any bytes at all are read without a panic, every line an
//! error or a row names is within the file, and rows written by a correct writer (the `csv`
//! crate, `serde_json`) come back exactly, each at the line it starts on.

use std::io::Write;

use proptest::collection::{btree_set, vec};
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

/// Bytes that are mostly the ones the formats care about (quotes, separators, line endings,
/// braces, a byte-order mark, invalid UTF-8), so random input reaches deep into both parsers.
fn tricky_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"\"".to_vec()),
        Just(b",".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"{".to_vec()),
        Just(b"}".to_vec()),
        Just(b"\"prompt\":".to_vec()),
        Just(b"[1,".to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        Just(b"\xFF".to_vec()),
        Just("é".as_bytes().to_vec()),
        "[a-z ]{1,4}".prop_map(String::into_bytes),
    ];
    prop_oneof![
        vec(piece, 0..60).prop_map(|pieces| pieces.concat()),
        vec(any::<u8>(), 0..300),
    ]
}

/// Reads everything from `bytes` as `format` with a row limit of `max_row`, and checks what a
/// reader must always do: no panic, rows numbered 1, 2, 3…, lines within the file and never
/// going back. (Two CSV rows can share a line: a lone `\r` ends a record but is not a line break.)
fn read_anything(bytes: &[u8], format: InputFormat, max_row: u64) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let path = dir.path().join("in");
    std::fs::write(&path, bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    let in_file = |line: u64| (1..=lines).contains(&line);
    let mut reader = match RowReader::open_limited(&path, format, max_row) {
        Ok(reader) => reader,
        Err(ReadError::Input(e)) => {
            prop_assert!(in_file(e.line), "header error at line {} of {lines}", e.line);
            return Ok(());
        }
        Err(other) => return Err(TestCaseError::fail(format!("not an input error: {other}"))),
    };
    let mut last_line = 0;
    let mut count = 0;
    while let Some(item) = reader.next_row() {
        let (line, number) = match item {
            Ok(Ok(row)) => (row.line, Some(row.number)),
            Ok(Err(e)) => (e.line, None),
            Err(ReadError::Input(e)) => {
                prop_assert!(in_file(e.line), "fatal error at line {} of {lines}", e.line);
                break;
            }
            Err(other) => return Err(TestCaseError::fail(format!("not an input error: {other}"))),
        };
        count += 1;
        prop_assert!(in_file(line), "row {count} at line {line} of {lines}");
        prop_assert!(
            line >= last_line,
            "row {count} at line {line}, after line {last_line}"
        );
        if let Some(number) = number {
            prop_assert_eq!(number, count);
        }
        last_line = line;
    }
    Ok(())
}

/// A JSON value with finite numbers that survive a round trip exactly.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1_000_000i32..1_000_000).prop_map(|n| Value::from(f64::from(n) / 8.0)),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            vec(("[a-z]{1,5}", inner), 0..4).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn csv_reader_takes_any_bytes(bytes in tricky_bytes(), max_row in prop_oneof![Just(MAX_ROW_BYTES), 1u64..64]) {
        read_anything(&bytes, InputFormat::Csv, max_row)?;
    }

    #[test]
    fn jsonl_reader_takes_any_bytes(bytes in tricky_bytes(), max_row in prop_oneof![Just(MAX_ROW_BYTES), 1u64..64]) {
        read_anything(&bytes, InputFormat::Jsonl, max_row)?;
    }

    #[test]
    fn csv_rows_written_by_a_csv_writer_read_back_exactly_at_their_lines(
        columns in btree_set("[a-z][a-z0-9_]{0,6}", 1..5),
        cells in vec(vec(any::<String>(), 5), 1..8),
        crlf in any::<bool>(),
    ) {
        let columns: Vec<String> = columns.into_iter().collect();
        let terminator = if crlf { ::csv::Terminator::CRLF } else { ::csv::Terminator::Any(b'\n') };
        let mut writer = ::csv::WriterBuilder::new().terminator(terminator).from_writer(Vec::new());
        writer.write_record(&columns).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut expected = Vec::new();
        for row in &cells {
            writer.flush().map_err(|e| TestCaseError::fail(e.to_string()))?;
            let written = writer.get_ref();
            let line = written.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
            let record = &row[..columns.len()];
            writer.write_record(record).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let fields: Map<String, Value> = columns
                .iter()
                .cloned()
                .zip(record.iter().map(|c| Value::String(c.clone())))
                .collect();
            expected.push((line, fields));
        }
        let bytes = writer.into_inner().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let path = dir.path().join("in.csv");
        std::fs::write(&path, &bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut reader = RowReader::open(&path, InputFormat::Csv).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(reader.columns(), &columns[..]);
        let mut got = Vec::new();
        while let Some(item) = reader.next_row() {
            let row = item
                .map_err(|e| TestCaseError::fail(e.to_string()))?
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            got.push((row.line, row.fields));
        }
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn jsonl_rows_written_by_serde_json_read_back_exactly_at_their_lines(
        rows in vec(vec(("[a-z_]{1,6}", json_value()), 0..5), 1..8),
        separators in vec(prop_oneof![Just("\n"), Just("\r\n"), Just("\n\n"), Just("\n  \n")], 8),
        bom in any::<bool>(),
    ) {
        let mut bytes = Vec::new();
        if bom {
            bytes.extend_from_slice(b"\xEF\xBB\xBF");
        }
        let mut expected = Vec::new();
        for (row, separator) in rows.into_iter().zip(&separators) {
            let fields: Map<String, Value> = row.into_iter().collect();
            let line = bytes.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
            serde_json::to_writer(&mut bytes, &fields).map_err(|e| TestCaseError::fail(e.to_string()))?;
            bytes.write_all(separator.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            expected.push((line, fields));
        }
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let path = dir.path().join("in.jsonl");
        std::fs::write(&path, &bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut reader = RowReader::open(&path, InputFormat::Jsonl).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut got = Vec::new();
        while let Some(item) = reader.next_row() {
            let row = item
                .map_err(|e| TestCaseError::fail(e.to_string()))?
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            got.push((row.line, row.fields));
        }
        prop_assert_eq!(got, expected);
    }
}
