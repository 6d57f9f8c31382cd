//! Scenario 6 ("embeddings"): N rows (default 0, off; `--embed-rows N`) of ~200-byte texts
//! through `--endpoint embeddings` with `--rows-per-request 100` and `--param dimensions=64`,
//! against the zero-latency mock: wall time, rows/s over the whole command and over the sending
//! phase, CPU per row and peak RSS of the promptmill process. The goal is at least 200,000
//! rows/s over the sending phase within 100 MB.

use std::io::{BufWriter, Write};
use std::path::Path;

use std::process::Command;

use super::{measure, report, summary_wall, MockServer};

pub fn embeddings(bin: &Path, dir: &Path, rows: u64, concurrency: usize) {
    let input = dir.join("embed.jsonl");
    write_input(&input, rows);
    let server = MockServer::start(bin, &[]);
    let out = dir.join("embed.out.jsonl");
    let summary = dir.join("embed.summary.json");
    let mut cmd = Command::new(bin);
    cmd.arg("run")
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .args(["--base-url", &server.url, "--quiet", "--summary"])
        .arg(&summary)
        .args(["--concurrency", &concurrency.to_string()])
        .args(["--endpoint", "embeddings", "--model", "text-embedding-3-small"])
        .args(["--rows-per-request", "100", "--param", "dimensions=64"]);
    let m = measure(&mut cmd);
    let send_secs = summary_wall(&summary);
    println!();
    println!(
        "embeddings: {rows} rows of ~200 bytes, 100 rows per request, 64 dimensions, zero latency, --concurrency {concurrency}"
    );
    report(&m, rows, &out, "read + send + export", Some(send_secs));
}

/// ~200-byte texts, each different.
fn write_input(path: &Path, rows: u64) {
    let mut f = BufWriter::new(std::fs::File::create(path).expect("create input"));
    for i in 0..rows {
        writeln!(
            f,
            r#"{{"id":"row-{i}","input":"Item number {i} is a small blue ceramic bowl with a white glaze inside, made by hand in a workshop by the sea, sold in sets of four and safe for the oven, the microwave and the dishwasher."}}"#
        )
        .expect("write input");
    }
    f.flush().expect("flush input");
}
