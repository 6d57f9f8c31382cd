//! Throughput, CPU and memory of the real `promptmill run` binary against the bundled mock
//! server on loopback. Run with:
//!
//! ```text
//! cargo run --release --example bench                 # both scenarios, default sizes
//! cargo run --release --example bench -- --rows 200000 --latency-rows 10000
//! ```
//!
//! Scenario 1 ("throughput"): N rows (default 1,000,000, ~100-byte prompts), zero server
//! latency, checkpointing on as always. Reports wall time, rows/s over the whole command (reading
//! the input into the checkpoint, sending, exporting) and over the sending phase alone, CPU
//! microseconds per row (user + system of the promptmill process only, from `wait4`), and peak
//! RSS of the promptmill process.
//!
//! Scenario 2 ("latency"): every request takes 2 s at the server, `--concurrency 2000`;
//! reports sustained rows/s.
//!
//! Scenario 3 ("dry run"): `promptmill estimate` over N prompts (default 1,000,000) of ~1 KB of
//! varied English-like text each: wall time, rows/s, CPU (all threads) and peak RSS.
//!
//! Scenario 4 ("batch"): the throughput scenario's input through `--mode batch` (default
//! 1,000,000 rows: 20 batches of 50,000), the mock's batches completing at their first poll, so
//! what is measured is promptmill's own work: reading, planning, building and uploading the
//! files, downloading and joining the results, exporting. Wall time, rows/s, CPU per row, peak
//! RSS.
//!
//! The mock server runs as a separate process, so its CPU is not counted against promptmill.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Args {
    rows: u64,
    latency_rows: u64,
    estimate_rows: u64,
    batch_rows: u64,
    concurrency: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        rows: 1_000_000,
        latency_rows: 20_000,
        estimate_rows: 1_000_000,
        batch_rows: 1_000_000,
        concurrency: 64,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| usage())
        };
        match flag.as_str() {
            "--rows" => args.rows = value(),
            "--latency-rows" => args.latency_rows = value(),
            "--estimate-rows" => args.estimate_rows = value(),
            "--batch-rows" => args.batch_rows = value(),
            "--concurrency" => args.concurrency = value() as usize,
            _ => usage(),
        }
    }
    args
}

fn usage() -> ! {
    eprintln!(
        "usage: bench [--rows N] [--latency-rows N] [--estimate-rows N] [--batch-rows N] [--concurrency N]   (0 rows skips a scenario)"
    );
    std::process::exit(2)
}

fn main() {
    let args = parse_args();
    let bin = promptmill_binary();
    let dir = tempfile::tempdir().expect("temp dir");
    println!("promptmill bench — binary {}", bin.display());
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    if args.rows > 0 {
        throughput(&bin, dir.path(), args.rows, args.concurrency);
    }
    if args.latency_rows > 0 {
        latency(&bin, dir.path(), args.latency_rows);
    }
    if args.estimate_rows > 0 {
        dry_run(&bin, dir.path(), args.estimate_rows);
    }
    if args.batch_rows > 0 {
        batch(&bin, dir.path(), args.batch_rows);
    }
}

fn batch(bin: &Path, dir: &Path, rows: u64) {
    let input = dir.join("batch.jsonl");
    write_input(&input, rows);
    let server = MockServer::start(bin, &["--batch-polls", "1"]);
    let out = dir.join("batch.out.jsonl");
    let summary = dir.join("batch.summary.json");
    let mut cmd = run_command(bin, &input, &out, &summary, &server.url, 1);
    cmd.args(["--mode", "batch", "--poll-interval", "10ms"]);
    let m = measure(&mut cmd);
    println!();
    println!("batch: {rows} rows through --mode batch, batches complete at the first poll");
    report(
        &m,
        rows,
        &out,
        "read, plan, upload, poll, download, join, export",
        None,
    );
}

/// The lines every whole-job scenario prints; checks that every input row has an output row.
fn report(m: &Measured, rows: u64, out: &Path, phases: &str, send_secs: Option<f64>) {
    let lines = count_lines(out);
    println!("  output rows        {lines}");
    println!(
        "  wall               {:.2} s (whole command: {phases})",
        m.wall.as_secs_f64()
    );
    println!("  rows/s (overall)   {:.0}", rows as f64 / m.wall.as_secs_f64());
    if let Some(secs) = send_secs {
        println!("  rows/s (sending)   {:.0}", rows as f64 / secs);
    }
    println!(
        "  CPU per row        {:.1} µs (user {:.2} s + sys {:.2} s)",
        (m.user + m.sys).as_secs_f64() * 1e6 / rows as f64,
        m.user.as_secs_f64(),
        m.sys.as_secs_f64()
    );
    println!("  peak RSS           {:.1} MB", m.max_rss_kb as f64 / 1024.0);
    assert_eq!(lines, rows, "every input row has one output row");
}

fn dry_run(bin: &Path, dir: &Path, rows: u64) {
    let input = dir.join("estimate.jsonl");
    write_kilobyte_input(&input, rows);
    let bytes = std::fs::metadata(&input).map(|m| m.len()).unwrap_or(0);
    let m = measure(
        Command::new(bin)
            .args([
                "estimate",
                "--model",
                "gpt-4o-mini",
                "--max-tokens",
                "200",
                "--json",
            ])
            .arg(&input),
    );
    let cpu = m.user + m.sys;
    println!(
        "dry run: {rows} rows ({:.0} MB): {:.1} s wall, {:.0} rows/s, CPU {:.1} s ({:.0}% of one core), peak RSS {:.1} MB",
        bytes as f64 / 1e6,
        m.wall.as_secs_f64(),
        rows as f64 / m.wall.as_secs_f64(),
        cpu.as_secs_f64(),
        100.0 * cpu.as_secs_f64() / m.wall.as_secs_f64(),
        m.max_rss_kb as f64 / 1024.0
    );
}

/// ~1 KB prompts of English-like words, different in every row (a fixed pseudo-random walk over a
/// vocabulary, so runs are comparable).
fn write_kilobyte_input(path: &Path, rows: u64) {
    const WORDS: &[&str] = &[
        "the",
        "product",
        "review",
        "customer",
        "delivery",
        "quality",
        "summarize",
        "following",
        "price",
        "excellent",
        "disappointing",
        "arrived",
        "quickly",
        "packaging",
        "recommend",
        "battery",
        "screen",
        "however",
        "although",
        "because",
        "lightweight",
        "durable",
        "warranty",
        "support",
        "returned",
        "colour",
        "size",
        "fits",
        "perfectly",
        "2024",
        "model",
        "version",
        "upgrade",
        "noise",
        "kitchen",
        "garden",
        "outdoor",
        "comfortable",
        "instructions",
        "assembly",
        "minutes",
        "hours",
        "great",
        "value",
        "would",
        "buy",
        "again",
        "not",
        "worth",
        "it",
        "and",
        "but",
        "with",
        "for",
        "of",
        "a",
        "in",
        "on",
    ];
    let mut f = BufWriter::new(std::fs::File::create(path).expect("create input"));
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut text = String::with_capacity(1100);
    for i in 0..rows {
        text.clear();
        while text.len() < 1000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            text.push_str(WORDS[(state >> 33) as usize % WORDS.len()]);
            text.push(if (state >> 20).is_multiple_of(11) {
                '.'
            } else {
                ' '
            });
        }
        writeln!(
            f,
            r#"{{"id":"row-{i}","prompt":"Summarize this review: {text}"}}"#
        )
        .expect("write input");
    }
    f.flush().expect("flush input");
}

fn throughput(bin: &Path, dir: &Path, rows: u64, concurrency: usize) {
    let input = dir.join("throughput.jsonl");
    write_input(&input, rows);
    let server = MockServer::start(bin, &[]);
    let out = dir.join("throughput.out.jsonl");
    let summary = dir.join("throughput.summary.json");
    let m = measure(&mut run_command(
        bin,
        &input,
        &out,
        &summary,
        &server.url,
        concurrency,
    ));
    let send_secs = summary_wall(&summary);
    println!();
    println!("throughput: {rows} rows, zero latency, --concurrency {concurrency}");
    report(&m, rows, &out, "read + send + export", Some(send_secs));
}

fn latency(bin: &Path, dir: &Path, rows: u64) {
    let input = dir.join("latency.jsonl");
    write_input(&input, rows);
    let server = MockServer::start(bin, &["--latency", "2s"]);
    let out = dir.join("latency.out.jsonl");
    let summary = dir.join("latency.summary.json");
    let m = measure(&mut run_command(bin, &input, &out, &summary, &server.url, 2000));
    let send_secs = summary_wall(&summary);
    println!();
    println!("latency: {rows} rows, 2 s server latency, --concurrency 2000");
    println!("  wall               {:.2} s", m.wall.as_secs_f64());
    println!(
        "  rows/s (sending)   {:.0}   (ceiling: 2000 in flight / 2 s = 1000)",
        rows as f64 / send_secs
    );
    println!("  peak RSS           {:.1} MB", m.max_rss_kb as f64 / 1024.0);
    assert_eq!(count_lines(&out), rows);
}

/// `promptmill run INPUT -o OUT --summary SUMMARY` against the mock at `url`.
fn run_command(
    bin: &Path,
    input: &Path,
    out: &Path,
    summary: &Path,
    url: &str,
    concurrency: usize,
) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("run")
        .arg(input)
        .arg("-o")
        .arg(out)
        .args(["--base-url", url, "--model", "gpt-4o-mini", "--quiet"])
        .args(["--concurrency", &concurrency.to_string()])
        .arg("--summary")
        .arg(summary);
    cmd
}

/// ~100-byte prompts, each different.
fn write_input(path: &Path, rows: u64) {
    let mut f = BufWriter::new(std::fs::File::create(path).expect("create input"));
    for i in 0..rows {
        writeln!(
            f,
            r#"{{"id":"row-{i}","prompt":"Write one short sentence about item number {i}, which is blue, round and light."}}"#
        )
        .expect("write input");
    }
    f.flush().expect("flush input");
}

struct Measured {
    wall: Duration,
    user: Duration,
    sys: Duration,
    max_rss_kb: i64,
}

/// Runs a command to completion and reads its own resource usage with `wait4`.
fn measure(cmd: &mut Command) -> Measured {
    let start = Instant::now();
    // The child is reaped by wait4 below, which also reports its resource usage.
    #[allow(clippy::zombie_processes)]
    let child = cmd.stdout(Stdio::null()).spawn().expect("spawn promptmill");
    let mut status = 0;
    // SAFETY: `rusage` is plain data that wait4 fills in; the pid is our own child's.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    assert_eq!(pid, child.id() as libc::pid_t, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "promptmill failed: status {status}"
    );
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec * 1000) as u32);
    Measured {
        wall,
        user: tv(usage.ru_utime),
        sys: tv(usage.ru_stime),
        max_rss_kb: usage.ru_maxrss,
    }
}

fn summary_wall(path: &Path) -> f64 {
    let text = std::fs::read_to_string(path).expect("summary");
    let v: serde_json::Value = serde_json::from_str(&text).expect("summary JSON");
    v["run"]["wall_seconds"].as_f64().expect("wall_seconds")
}

fn count_lines(path: &Path) -> u64 {
    BufReader::new(std::fs::File::open(path).expect("output"))
        .lines()
        .count() as u64
}

struct MockServer {
    child: Child,
    url: String,
}

impl MockServer {
    fn start(bin: &Path, extra: &[&str]) -> MockServer {
        let mut child = Command::new(bin)
            .arg("mock-server")
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn mock server");
        let stdout = child.stdout.take().expect("mock stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("mock address");
        let url = line.trim().trim_start_matches("listening on ").to_string();
        MockServer { child, url }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The release binary beside this example; built first when run through cargo.
fn promptmill_binary() -> PathBuf {
    if let Ok(cargo) = std::env::var("CARGO") {
        let status = Command::new(cargo)
            .args(["build", "--release", "--bin", "promptmill"])
            .status()
            .expect("cargo build");
        assert!(status.success(), "building promptmill failed");
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("promptmill");
    assert!(
        bin.exists(),
        "{} not found; run `cargo build --release` first",
        bin.display()
    );
    bin
}
