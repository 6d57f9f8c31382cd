//! Scenario 5 ("parquet"): a Parquet round trip. N rows (default 1,000,000; the throughput
//! scenario's ~100-byte prompts) written as a Parquet file in row groups of 64k rows, run
//! against the zero-latency mock with `-o out.parquet`: wall time, rows/s, CPU per row and peak
//! RSS of the whole command (reading the Parquet input into the checkpoint, sending, writing the
//! Parquet output). The input has a `tags: list<string>` column (three tags a row, with empty and
//! null lists among them), so the output's nested path (`output/parquet/nested.rs`) is measured
//! too. The output's row count is read from its footer, and its `tags` is checked to be a list.

use std::path::Path;
use std::sync::Arc;

use parquet::basic::{Compression, LogicalType, Repetition, Type as Physical};
use parquet::data_type::{ByteArray, ByteArrayType};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;

use super::{measure, run_command, Measured, MockServer};

const GROUP: u64 = 64 * 1024;

pub fn parquet_round_trip(bin: &Path, dir: &Path, rows: u64, concurrency: usize) {
    let input = dir.join("trip.parquet");
    write_input(&input, rows);
    let server = MockServer::start(bin, &[]);
    let out = dir.join("trip.out.parquet");
    let summary = dir.join("trip.summary.json");
    let m: Measured = measure(&mut run_command(
        bin,
        &input,
        &out,
        &summary,
        &server.url,
        concurrency,
    ));
    let (written, tags) = count_rows(&out);
    assert!(
        tags,
        "the output's tags column is a Parquet list, as in the input"
    );
    println!();
    println!("parquet: {rows} rows, Parquet input -> zero-latency mock -> Parquet output, --concurrency {concurrency}");
    println!("  output rows        {written}");
    println!(
        "  wall               {:.2} s (whole command: read Parquet + send + write Parquet)",
        m.wall.as_secs_f64()
    );
    println!("  rows/s (overall)   {:.0}", rows as f64 / m.wall.as_secs_f64());
    println!(
        "  CPU per row        {:.1} µs",
        (m.user + m.sys).as_secs_f64() * 1e6 / rows as f64
    );
    println!("  peak RSS           {:.1} MB", m.max_rss_kb as f64 / 1024.0);
    assert_eq!(written, rows, "every input row has one output row");
}

/// The `tags` column: an optional `list<string>` in the standard three-level form.
fn tags_type() -> Arc<Type> {
    let element = Type::primitive_type_builder("element", Physical::BYTE_ARRAY)
        .with_logical_type(Some(LogicalType::String))
        .with_repetition(Repetition::OPTIONAL)
        .build()
        .expect("element type");
    let list = Type::group_type_builder("list")
        .with_repetition(Repetition::REPEATED)
        .with_fields(vec![Arc::new(element)])
        .build()
        .expect("list type");
    Arc::new(
        Type::group_type_builder("tags")
            .with_repetition(Repetition::OPTIONAL)
            .with_logical_type(Some(LogicalType::List))
            .with_fields(vec![Arc::new(list)])
            .build()
            .expect("tags type"),
    )
}

/// Row `i`'s tags as the leaf column's values and levels: a null list every tenth row, an empty
/// one the row before, else three tags.
fn push_tags(i: u64, values: &mut Vec<ByteArray>, defs: &mut Vec<i16>, reps: &mut Vec<i16>) {
    match i % 10 {
        9 => {
            defs.push(0);
            reps.push(0);
        }
        8 => {
            defs.push(1);
            reps.push(0);
        }
        _ => {
            for (n, tag) in ["blue", "round", &format!("t{}", i % 100)].iter().enumerate() {
                values.push(ByteArray::from(tag.as_bytes().to_vec()));
                defs.push(3);
                reps.push(i16::from(n > 0));
            }
        }
    }
}

/// `id` and `prompt` string columns and a `tags` list, snappy, row groups of 64k rows.
fn write_input(path: &Path, rows: u64) {
    let text = |name: &str| {
        Arc::new(
            Type::primitive_type_builder(name, Physical::BYTE_ARRAY)
                .with_logical_type(Some(LogicalType::String))
                .with_repetition(Repetition::REQUIRED)
                .build()
                .expect("column type"),
        )
    };
    let schema = Type::group_type_builder("prompts")
        .with_fields(vec![text("id"), text("prompt"), tags_type()])
        .build()
        .expect("schema");
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let file = std::fs::File::create(path).expect("create input");
    let mut writer = SerializedFileWriter::new(file, Arc::new(schema), Arc::new(props)).expect("writer");
    let mut start = 0;
    while start < rows {
        let end = (start + GROUP).min(rows);
        let ids: Vec<ByteArray> = (start..end)
            .map(|i| ByteArray::from(format!("row-{i}").into_bytes()))
            .collect();
        let prompts: Vec<ByteArray> = (start..end)
            .map(|i| {
                let p = format!(
                    "Write one short sentence about item number {i}, which is blue, round and light."
                );
                ByteArray::from(p.into_bytes())
            })
            .collect();
        let mut group = writer.next_row_group().expect("row group");
        for values in [&ids, &prompts] {
            let mut column = group.next_column().expect("column").expect("a column");
            column
                .typed::<ByteArrayType>()
                .write_batch(values, None, None)
                .expect("write column");
            column.close().expect("close column");
        }
        let (mut tags, mut defs, mut reps) = (Vec::new(), Vec::new(), Vec::new());
        for i in start..end {
            push_tags(i, &mut tags, &mut defs, &mut reps);
        }
        let mut column = group.next_column().expect("column").expect("the tags column");
        column
            .typed::<ByteArrayType>()
            .write_batch(&tags, Some(&defs), Some(&reps))
            .expect("write tags");
        column.close().expect("close tags");
        group.close().expect("close row group");
        start = end;
    }
    writer.close().expect("close input");
}

/// The output's row count, and whether its `tags` column is a list as in the input.
fn count_rows(path: &Path) -> (u64, bool) {
    let file = std::fs::File::open(path).expect("output");
    let reader = SerializedFileReader::new(file).expect("a Parquet output");
    let meta = reader.metadata().file_metadata();
    let tags = meta
        .schema()
        .get_fields()
        .iter()
        .any(|f| f.name() == "tags" && f.get_basic_info().logical_type_ref() == Some(&LogicalType::List));
    (meta.num_rows() as u64, tags)
}
