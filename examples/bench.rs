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
//! Scenario 3 ("dry run"): `promptmill estimate` over N prompts (default 1,000,000) of ~1 KB each,
//! a mix of the text that is hard for a tokenizer (base64, URLs, runs of one character, minified
//! code, CJK without spaces, emoji ZWJ sequences, mixed scripts, long runs of letters) and some
//! plain English (`bench/mixed_text.rs`): wall time, rows/s, CPU (all threads) and peak RSS. Then
//! Python `tiktoken` (one thread, `bench/tiktoken_count.py`) counts the same file in the same
//! session: its time, the ratio, and a check that both counted the same tokens. Python needs
//! `pip install tiktoken` and a vocabulary cache: `TIKTOKEN_CACHE_DIR`, or else
//! `../shared/tiktoken-cache` beside the crate; `--skip-tiktoken` leaves it out.
//!
//! `--keep` leaves the scenarios' inputs, outputs and checkpoints in the directory the bench
//! names, to profile one command by hand on the same files.
//!
//! Scenario 4 ("batch"): the throughput scenario's input through `--mode batch` (default
//! 1,000,000 rows: 20 batches of 50,000), the mock's batches completing at their first poll, so
//! what is measured is promptmill's own work: reading, planning, building and uploading the
//! files, downloading and joining the results, exporting. Wall time, rows/s, CPU per row, peak
//! RSS.
//!
//! Scenario 5 ("parquet"): a 1,000,000-row Parquet round trip, Parquet input -> mock -> Parquet
//! output (`bench/parquet_trip.rs`; `--parquet-rows N`). Wall time, rows/s, CPU per row, peak RSS.
//!
//! Scenario 6 ("recording"): the throughput job (`--recording-rows N`, default 200,000) with and
//! without per-attempt recording, alternating 3 pairs: median rows/s and CPU per row of each, and
//! the overhead in % (`bench/recording.rs`).
//! Scenario 7 ("embeddings", off unless `--embed-rows N`): ~200-byte texts through
//! `--endpoint embeddings`, 100 rows per request (`bench/embed.rs`).
//!
//! Every command runs with `--no-cache`, so a scenario measures sending; `--with-cache` gives each
//! command a fresh, empty response cache instead (every row a lookup that misses and an answer
//! stored: what the cache costs a first run).
//!
//! The mock server runs as a separate process, so its CPU is not counted against promptmill.

#[path = "bench/embed.rs"]
mod embed;
#[path = "bench/mixed_text.rs"]
mod mixed_text;
#[path = "bench/parquet_trip.rs"]
mod parquet_trip;
#[path = "bench/recording.rs"]
mod recording;

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Args {
    rows: u64,
    latency_rows: u64,
    estimate_rows: u64,
    batch_rows: u64,
    parquet_rows: u64,
    recording_rows: u64,
    embed_rows: u64,
    concurrency: usize,
    skip_tiktoken: bool,
    keep: bool,
    with_cache: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        rows: 1_000_000,
        latency_rows: 20_000,
        estimate_rows: 1_000_000,
        batch_rows: 1_000_000,
        parquet_rows: 1_000_000,
        recording_rows: 200_000,
        embed_rows: 0,
        concurrency: 64,
        skip_tiktoken: false,
        keep: false,
        with_cache: false,
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
            "--parquet-rows" => args.parquet_rows = value(),
            "--recording-rows" => args.recording_rows = value(),
            "--embed-rows" => args.embed_rows = value(),
            "--concurrency" => args.concurrency = value() as usize,
            "--skip-tiktoken" => args.skip_tiktoken = true,
            "--keep" => args.keep = true,
            "--with-cache" => args.with_cache = true,
            _ => usage(),
        }
    }
    args
}

fn usage() -> ! {
    eprintln!(
        "usage: bench [--rows N] [--latency-rows N] [--estimate-rows N] [--batch-rows N] [--parquet-rows N] [--recording-rows N] [--embed-rows N] [--concurrency N] [--skip-tiktoken] [--with-cache] [--keep]   (0 rows skips a scenario)"
    );
    std::process::exit(2)
}

fn main() {
    let args = parse_args();
    WITH_CACHE.store(args.with_cache, Ordering::Relaxed);
    let bin = promptmill_binary();
    let tmp = tempfile::tempdir().expect("temp dir");
    // `--keep` leaves the inputs, outputs and checkpoints behind, for profiling a scenario's
    // command by hand on the same files.
    let (_removed, dir_path) = if args.keep {
        (None, tmp.keep())
    } else {
        let path = tmp.path().to_path_buf();
        (Some(tmp), path)
    };
    let dir = dir_path.as_path();
    println!(
        "inputs and outputs in {} ({})",
        dir.display(),
        if args.keep { "kept" } else { "removed at the end" }
    );
    println!("promptmill bench — binary {}", bin.display());
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    if args.rows > 0 {
        throughput(&bin, dir, args.rows, args.concurrency);
    }
    if args.latency_rows > 0 {
        latency(&bin, dir, args.latency_rows);
    }
    if args.estimate_rows > 0 {
        dry_run(&bin, dir, args.estimate_rows, !args.skip_tiktoken);
    }
    if args.batch_rows > 0 {
        batch(&bin, dir, args.batch_rows);
    }
    if args.parquet_rows > 0 {
        parquet_trip::parquet_round_trip(&bin, dir, args.parquet_rows, args.concurrency);
    }
    if args.recording_rows > 0 {
        recording::recording_overhead(&bin, dir, args.recording_rows, args.concurrency);
    }
    if args.embed_rows > 0 {
        embed::embeddings(&bin, dir, args.embed_rows, args.concurrency);
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

fn dry_run(bin: &Path, dir: &Path, rows: u64, with_tiktoken: bool) {
    let input = dir.join("estimate.jsonl");
    write_mixed_input(&input, rows);
    let bytes = std::fs::metadata(&input).map(|m| m.len()).unwrap_or(0);
    let (m, stdout) = measure_with_stdout(
        Command::new(bin)
            .args([
                "estimate",
                "--model",
                "gpt-4o-mini",
                "--max-tokens",
                "200",
                "--json",
                // Counting is what is measured: a response cache on this machine would leave out
                // the rows it answers, and its lookups are timed apart (docs/CACHE.md).
                "--no-cache",
            ])
            .arg(&input),
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("estimate --json");
    let tokens = report["prompt_tokens"].as_u64().expect("prompt_tokens");
    let (wall, cpu) = (m.wall.as_secs_f64(), (m.user + m.sys).as_secs_f64());
    println!();
    println!(
        "dry run: {rows} rows ({:.0} MB) of mixed hard text, promptmill estimate --model gpt-4o-mini (o200k_base)",
        bytes as f64 / 1e6
    );
    println!("  wall               {wall:.2} s (goal for 1,000,000 rows: <= 20 s on 2 cores)");
    println!("  rows/s             {:.0}", rows as f64 / wall);
    println!(
        "  CPU                {cpu:.1} s ({:.0}% of one core)",
        100.0 * cpu / wall
    );
    println!(
        "  peak RSS           {:.1} MB (goal: <= 150 MB)",
        m.max_rss_kb as f64 / 1024.0
    );
    println!("  prompt tokens      {tokens}");
    if with_tiktoken {
        python_tiktoken(&input, wall, tokens);
    }
}

/// Python `tiktoken` on the dry run's file, one thread: its time, the ratio to promptmill's wall
/// time and whether both counted the same tokens.
fn python_tiktoken(input: &Path, promptmill_wall: f64, promptmill_tokens: u64) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bench/tiktoken_count.py");
    let shared_cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tiktoken-cache");
    let mut cmd = Command::new("python3");
    cmd.arg(&script).arg(input).arg("o200k_base");
    if std::env::var_os("TIKTOKEN_CACHE_DIR").is_none() && shared_cache.is_dir() {
        cmd.env("TIKTOKEN_CACHE_DIR", &shared_cache);
    }
    let Some((m, stdout)) = try_measure(&mut cmd) else {
        println!("  python tiktoken    not run: python3 with tiktoken failed (pip install tiktoken; TIKTOKEN_CACHE_DIR)");
        return;
    };
    let wall = m.wall.as_secs_f64();
    let tokens: u64 = stdout.trim().parse().expect("tiktoken_count.py prints a count");
    println!(
        "  python tiktoken    {wall:.2} s wall, CPU {:.1} s, peak RSS {:.1} MB (one thread, same file)",
        (m.user + m.sys).as_secs_f64(),
        m.max_rss_kb as f64 / 1024.0
    );
    println!(
        "  ratio              {:.1}x faster than python tiktoken (goal: >= 5x)",
        wall / promptmill_wall
    );
    println!(
        "  tokens agree       {} (tiktoken {tokens}, promptmill {promptmill_tokens})",
        if tokens == promptmill_tokens { "yes" } else { "NO" }
    );
    assert_eq!(
        tokens, promptmill_tokens,
        "promptmill and tiktoken count the same tokens"
    );
}

/// ~1 KB prompts of mixed hard text, different in every row (`mixed_text.rs`).
fn write_mixed_input(path: &Path, rows: u64) {
    let mut f = BufWriter::new(std::fs::File::create(path).expect("create input"));
    let mut walk = mixed_text::Walk::new();
    for i in 0..rows {
        let prompt = mixed_text::prompt(&mut walk, 1000);
        let line = serde_json::json!({"id": format!("row-{i}"), "prompt": prompt});
        writeln!(f, "{line}").expect("write input");
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
    let db = dir.join("throughput.out.jsonl.promptmill.db");
    attempts_size(&db, rows);
    let html = dir.join("throughput.report.html");
    let m = measure(Command::new(bin).arg("report").arg(&db).arg("-o").arg(&html));
    let size = std::fs::metadata(&html).map_or(0, |m| m.len());
    println!(
        "  report             {:.2} s, peak RSS {:.1} MB, page {:.1} KB",
        m.wall.as_secs_f64(),
        m.max_rss_kb as f64 / 1024.0,
        size as f64 / 1024.0
    );
}

/// What the `attempts` table (the run report's data) adds to the checkpoint: the size of a
/// vacuumed copy with it, less the size of one without it, per row. `PROMPTMILL_BENCH_NO_ATTEMPTS`
/// (hidden) makes the run record none, to time the same binary without it.
fn attempts_size(db: &Path, rows: u64) {
    let vacuumed = |drop: bool| -> rusqlite::Result<u64> {
        let copy = db.with_extension(if drop { "without.db" } else { "with.db" });
        let _ = std::fs::remove_file(&copy);
        let conn = rusqlite::Connection::open(db)?;
        conn.execute("VACUUM INTO ?1", [copy.display().to_string()])?;
        let conn = rusqlite::Connection::open(&copy)?;
        if drop {
            conn.execute_batch("DROP TABLE attempts; VACUUM;")?;
        }
        let pages: u64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let size: u64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let counted: u64 = if drop {
            0
        } else {
            conn.query_row("SELECT count(*) FROM attempts", [], |r| r.get(0))?
        };
        drop_file(&copy);
        if !drop {
            println!("  attempts recorded  {counted}");
        }
        Ok(pages * size)
    };
    match (vacuumed(false), vacuumed(true)) {
        (Ok(with), Ok(without)) => println!(
            "  attempts table     {:.1} MB, {:.1} bytes/row (checkpoint {:.1} MB vacuumed)",
            with.saturating_sub(without) as f64 / 1e6,
            with.saturating_sub(without) as f64 / rows.max(1) as f64,
            with as f64 / 1e6
        ),
        (a, b) => println!("  attempts table     not measured: {a:?} {b:?}"),
    }
}

fn drop_file(path: &Path) {
    let _ = std::fs::remove_file(path);
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
    if WITH_CACHE.load(Ordering::Relaxed) {
        // A fresh, empty cache for each command: every row is looked up (a miss) and its
        // answer stored, the cost a first run pays for the cache.
        let n = CACHES.fetch_add(1, Ordering::Relaxed);
        let dir = out.parent().unwrap_or(Path::new("."));
        cmd.arg("--cache").arg(dir.join(format!("bench-cache-{n}.db")));
    } else {
        // Every scenario measures sending: a row answered from the response cache sends nothing.
        cmd.arg("--no-cache");
    }
    cmd
}

/// `--with-cache`: each command runs with a fresh response cache instead of `--no-cache`.
static WITH_CACHE: AtomicBool = AtomicBool::new(false);
/// How many caches the bench has made (each command gets its own file).
static CACHES: AtomicU64 = AtomicU64::new(0);

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
    measure_with_stdout(cmd).0
}

/// [`measure`], and what the command printed on standard output. A command that fails ends the
/// bench with its exit status and what it printed on both streams, so the cause shows.
fn measure_with_stdout(cmd: &mut Command) -> (Measured, String) {
    let run = run_measured(cmd).expect("spawn promptmill");
    if !run.succeeded() {
        panic!("{}", run.failure());
    }
    (run.measured, run.stdout)
}

/// [`measure_with_stdout`] for a command that may be missing or fail: `None` then (a failure's
/// output is printed).
fn try_measure(cmd: &mut Command) -> Option<(Measured, String)> {
    let run = run_measured(cmd).ok()?;
    if !run.succeeded() {
        println!("  {}", run.failure().replace('\n', "\n  "));
        return None;
    }
    Some((run.measured, run.stdout))
}

/// A finished command: its usage, wait status and output.
struct Run {
    program: String,
    measured: Measured,
    status: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn succeeded(&self) -> bool {
        libc::WIFEXITED(self.status) && libc::WEXITSTATUS(self.status) == 0
    }

    /// How the command ended and the end of what it printed.
    fn failure(&self) -> String {
        let how = if libc::WIFEXITED(self.status) {
            format!("exit code {}", libc::WEXITSTATUS(self.status))
        } else if libc::WIFSIGNALED(self.status) {
            format!("killed by signal {}", libc::WTERMSIG(self.status))
        } else {
            format!("wait status {}", self.status)
        };
        format!(
            "{} failed: {how}\n--- stderr:\n{}\n--- stdout:\n{}",
            self.program,
            tail(&self.stderr),
            tail(&self.stdout)
        )
    }
}

/// The last 4,000 bytes of `text` (at a character boundary).
fn tail(text: &str) -> &str {
    let mut start = text.len().saturating_sub(4000);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// Writes out what earlier commands left in the kernel's page cache, so that a command is not
/// timed flushing its predecessor's gigabytes: measured on the 1,000,000-row Batch job, a run
/// that started with the last one's 4.7 GB still unwritten took up to 4 s longer.
fn settle_disk() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    std::thread::sleep(Duration::from_millis(500));
}

/// Spawns, reads standard output and standard error to their ends, reaps with `wait4`.
fn run_measured(cmd: &mut Command) -> std::io::Result<Run> {
    let program = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    settle_disk();
    let start = Instant::now();
    // The child is reaped by wait4 below, which also reports its resource usage.
    #[allow(clippy::zombie_processes)]
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    // Standard error is read on its own thread so that neither pipe can fill up and block the
    // child while the other is read.
    let stderr = child.stderr.take().map(|mut err| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = err.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    });
    let mut stdout = Vec::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_end(&mut stdout)?;
    }
    let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    let mut status = 0;
    // SAFETY: `rusage` is plain data that wait4 fills in; the pid is our own child's.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    assert_eq!(pid, child.id() as libc::pid_t, "wait4 failed");
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec * 1000) as u32);
    let measured = Measured {
        wall,
        user: tv(usage.ru_utime),
        sys: tv(usage.ru_stime),
        max_rss_kb: usage.ru_maxrss,
    };
    Ok(Run {
        program,
        measured,
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr,
    })
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
