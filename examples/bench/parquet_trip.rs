//! Scenario 5 ("parquet"): a Parquet round trip. N rows (default 1,000,000; the throughput
//! scenario's ~100-byte prompts) written as a Parquet file in row groups of 64k rows, run
//! against the zero-latency mock with `-o out.parquet`: wall time, rows/s, CPU per row and peak
//! RSS of the whole command (reading the Parquet input into the checkpoint, sending, writing the
//! Parquet output). The output's row count is read from its footer.

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
    let written = count_rows(&out);
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

/// `id` and `prompt` string columns, snappy, row groups of 64k rows.
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
        .with_fields(vec![text("id"), text("prompt")])
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
        group.close().expect("close row group");
        start = end;
    }
    writer.close().expect("close input");
}

fn count_rows(path: &Path) -> u64 {
    let file = std::fs::File::open(path).expect("output");
    let reader = SerializedFileReader::new(file).expect("a Parquet output");
    reader.metadata().file_metadata().num_rows() as u64
}
