//! Scenario 6 ("recording"): what recording per-attempt data (the run report's `attempts`
//! table) costs. The throughput scenario's job (N rows, default 200,000, zero latency) is run
//! with recording on and with it off (the hidden `PROMPTMILL_BENCH_NO_ATTEMPTS`), alternating,
//! [`PAIRS`] times each, each run from a fresh checkpoint against the same mock. Prints each
//! run, then the median sending rows/s and CPU per row of each side and the overhead in %
//! (the bound: 5 %).

use std::path::Path;

use super::{measure, run_command, summary_wall, write_input, MockServer};

/// Runs per side; alternated so that a drift of the machine (another build, a warm cache)
/// falls on both.
const PAIRS: usize = 3;

struct Sample {
    rows_per_s: f64,
    cpu_us_per_row: f64,
}

pub fn recording_overhead(bin: &Path, dir: &Path, rows: u64, concurrency: usize) {
    let input = dir.join("recording.jsonl");
    write_input(&input, rows);
    let server = MockServer::start(bin, &[]);
    println!();
    println!("recording: {rows} rows, zero latency, --concurrency {concurrency}, {PAIRS} pairs (attempts recorded / not)");
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for pair in 0..PAIRS {
        for recording in [true, false] {
            let s = one_run(bin, dir, &input, &server.url, rows, concurrency, recording);
            println!(
                "  pair {} {:<13} {:>8.0} rows/s (sending), {:.1} µs CPU/row",
                pair + 1,
                if recording { "recording" } else { "not recording" },
                s.rows_per_s,
                s.cpu_us_per_row
            );
            if recording { &mut on } else { &mut off }.push(s);
        }
    }
    let median = |v: &[Sample], f: fn(&Sample) -> f64| {
        let mut xs: Vec<f64> = v.iter().map(f).collect();
        xs.sort_by(f64::total_cmp);
        xs[xs.len() / 2]
    };
    let (rate_on, rate_off) = (median(&on, |s| s.rows_per_s), median(&off, |s| s.rows_per_s));
    let (cpu_on, cpu_off) = (
        median(&on, |s| s.cpu_us_per_row),
        median(&off, |s| s.cpu_us_per_row),
    );
    println!("  median recording       {rate_on:.0} rows/s, {cpu_on:.1} µs CPU/row");
    println!("  median not recording   {rate_off:.0} rows/s, {cpu_off:.1} µs CPU/row");
    println!(
        "  recording overhead     {:+.1} % rows/s, {:+.1} % CPU/row (bound: 5 %)",
        (rate_off / rate_on - 1.0) * 100.0,
        (cpu_on / cpu_off - 1.0) * 100.0
    );
}

/// One run of the job from a fresh checkpoint; its sending rate and CPU per row.
fn one_run(
    bin: &Path,
    dir: &Path,
    input: &Path,
    url: &str,
    rows: u64,
    concurrency: usize,
    recording: bool,
) -> Sample {
    let out = dir.join("recording.out.jsonl");
    let summary = dir.join("recording.summary.json");
    for path in [&out, &summary, &dir.join("recording.out.jsonl.promptmill.db")] {
        let _ = std::fs::remove_file(path);
    }
    let mut cmd = run_command(bin, input, &out, &summary, url, concurrency);
    if !recording {
        cmd.env("PROMPTMILL_BENCH_NO_ATTEMPTS", "1");
    }
    let m = measure(&mut cmd);
    Sample {
        rows_per_s: rows as f64 / summary_wall(&summary),
        cpu_us_per_row: (m.user + m.sys).as_secs_f64() * 1e6 / rows as f64,
    }
}
