//! The run report (`promptmill report`, `run --report`): one self-contained HTML page whose
//! numbers agree with `status --json`, written when a run ends (Ctrl-C included), and rendered
//! by a real browser (headless Chromium) into a screenshot that is not blank.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::util::*;

const KEY: &str = "sk-report-test-key-0123456789";

/// A faulty job: 40 plain rows, one row refused (400), one answered 429 twice, one answered
/// 503 twice, against a mock that also answers 429 at random; `--report report.html`.
fn faulty_run(dir: &Dir) -> (Mock, Outcome) {
    let mut text = String::new();
    for i in 1..=40 {
        text.push_str(&format!(
            "{{\"id\":\"r{i}\",\"prompt\":\"Say something about item {i}.\"}}\n"
        ));
    }
    text.push_str("{\"id\":\"refused\",\"prompt\":\"x [[mock:status=400]]\"}\n");
    text.push_str("{\"id\":\"limited\",\"prompt\":\"y [[mock:fail-times=2:status=429]]\"}\n");
    text.push_str("{\"id\":\"flaky\",\"prompt\":\"z [[mock:fail-times=2:status=503]]\"}\n");
    dir.write("p.jsonl", text);
    let mock = Mock::start(&[
        "--rate-429",
        "0.1",
        "--latency",
        "5ms",
        "--latency-jitter",
        "40ms",
    ]);
    let out = run(run_job(dir, &mock)
        .env("OPENAI_API_KEY", KEY)
        .args(["--concurrency", "4", "--max-cost", "5", "--report", "report.html"])
        .args(["--price-in", "1", "--price-out", "2", "--max-tokens", "50"]));
    (mock, out)
}

/// The numbers the page embeds (`<script type="application/json" id="numbers">`).
fn embedded_numbers(html: &str) -> Value {
    let open = "<script type=\"application/json\" id=\"numbers\">";
    let start = html.find(open).expect("the numbers block") + open.len();
    let end = start + html[start..].find("</script>").expect("its end");
    serde_json::from_str(&html[start..end]).expect("numbers JSON")
}

/// Every number the report shares with `status --json`, as `status --json` says it.
fn shared_from_status(status: &Value) -> Vec<(&'static str, Value)> {
    let sum = |field: &str| -> u64 {
        status["runs"]
            .as_array()
            .expect("runs")
            .iter()
            .map(|r| r[field].as_u64().expect("a count"))
            .sum()
    };
    let mut shared = Vec::new();
    for field in [
        "total",
        "done",
        "failed",
        "invalid",
        "pending",
        "attempts",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
    ] {
        shared.push((field, status["rows"][field].clone()));
    }
    shared.push(("retries", status["retries"].clone()));
    shared.push(("cost", status["cost"].clone()));
    shared.push(("max_cost", status["max_cost"].clone()));
    shared.push(("http_429", Value::from(sum("http_429"))));
    shared.push(("requests", Value::from(sum("requests"))));
    shared
}

fn from_report(numbers: &Value, field: &str) -> Value {
    match field {
        "retries" | "cost" | "max_cost" | "http_429" | "requests" => numbers[field].clone(),
        rows => numbers["rows"][rows].clone(),
    }
}

#[test]
fn run_report_numbers_equal_status_json_and_the_page_is_self_contained() {
    let dir = Dir::new();
    let (_mock, out) = faulty_run(&dir);
    assert_eq!(out.code(), 3, "one row failed: {}", out.stderr);
    let html = dir.read("report.html");
    let numbers = embedded_numbers(&html);
    let status = status_json(&dir);
    for (field, want) in shared_from_status(&status) {
        assert_eq!(from_report(&numbers, field), want, "{field}");
    }
    assert_eq!(numbers["rows"]["failed"], 1);
    assert!(numbers["http_429"].as_u64().unwrap() >= 2, "{numbers}");
    assert!(numbers["retries"].as_u64().unwrap() >= 4, "{numbers}");
    assert_eq!(numbers["attempts_recorded"], status["rows"]["attempts"]);
    // Each chart is SVG in the page; nothing is fetched.
    for id in CHARTS {
        let at = html
            .find(&format!("<figure id=\"{id}\"><svg"))
            .unwrap_or_else(|| panic!("{id}"));
        let figure = &html[at..at + html[at..].find("</figure>").expect("its end")];
        assert!(figure.trim_end().ends_with("</svg>"), "{id}");
    }
    for fetch in ["<script src", "<link", "<img", "@import", "url("] {
        assert!(!html.contains(fetch), "the page fetches something: {fetch}");
    }
    // The errors by kind name their sample rows.
    assert!(
        html.contains("<td>refused</td><td class=\"n\">400</td>"),
        "the refused row's kind"
    );
    assert!(html.contains("flaky"), "the 503 row is a sample of its kind");
    assert!(html.contains("limited"), "the 429 row is a sample of its kind");
    assert_nowhere(dir.root(), &[&html], KEY);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path("report.html"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

/// The charts every live report has, by the id of their `<figure>`.
const CHARTS: &[&str] = &[
    "chart-rows",
    "chart-eta",
    "chart-requests",
    "chart-tokens-per-minute",
    "chart-latency",
    "chart-tokens",
    "chart-cost",
];

#[test]
fn report_command_writes_the_same_numbers_from_the_checkpoint_alone() {
    let dir = Dir::new();
    let (_mock, _) = faulty_run(&dir);
    let out = run(promptmill(&dir).args(["report", "out.jsonl.promptmill.db", "-o", "again.html"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("wrote the report to again.html"),
        "{}",
        out.stderr
    );
    let first = embedded_numbers(&dir.read("report.html"));
    let again = embedded_numbers(&dir.read("again.html"));
    assert_eq!(first, again);
}

#[test]
fn report_refuses_to_write_over_the_checkpoint_or_the_results() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    let mock = Mock::start(&[]);
    assert_eq!(run(&mut run_job(&dir, &mock)).code(), 0);
    let db_before = std::fs::read(dir.path("out.jsonl.promptmill.db")).unwrap();
    for target in ["out.jsonl.promptmill.db", "out.jsonl", "p.jsonl"] {
        let out = run(promptmill(&dir).args(["report", "out.jsonl.promptmill.db", "-o", target]));
        assert_ne!(out.code(), 0, "{target}: {}", out.stderr);
        assert!(
            out.stderr.contains("error: --output: is the"),
            "{target}: {}",
            out.stderr
        );
        assert!(out.stderr.contains(target), "{target}: {}", out.stderr);
    }
    assert_eq!(
        std::fs::read(dir.path("out.jsonl.promptmill.db")).unwrap(),
        db_before
    );
    assert_eq!(dir.jsonl("out.jsonl").len(), 3);
}

#[test]
fn ctrl_c_still_writes_the_report() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 200);
    let mock = Mock::start(&["--latency", "100ms"]);
    let mut child = run_job(&dir, &mock)
        .args(["--concurrency", "4", "--report", "report.html"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(30), "8 requests", || {
        mock.requests().len() >= 8
    });
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let status = wait_for(&mut child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(4));
    let numbers = embedded_numbers(&dir.read("report.html"));
    let status = status_json(&dir);
    assert_eq!(numbers["rows"]["done"], status["rows"]["done"]);
    assert!(numbers["rows"]["pending"].as_u64().unwrap() > 0, "{numbers}");
}

/// Headless Chromium, when installed: `chromium` or `chromium-browser` on the PATH.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| [d.join("chromium"), d.join("chromium-browser")])
        .find(|p| p.is_file())
}

fn headless(browser: &Path, args: &[&str], page: &Path) -> std::process::Output {
    let profile = tempfile::tempdir().expect("a browser profile");
    let mut cmd = Command::new(browser);
    cmd.args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null());
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let out = child.wait_with_output().expect("chromium");
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn a_faulty_runs_report_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        if std::env::var_os("PROMPTMILL_REQUIRE_SERVERS").is_some() {
            panic!("chromium is not installed, and PROMPTMILL_REQUIRE_SERVERS is set");
        }
        eprintln!("skipped: chromium is not installed (apt-get install -y chromium)");
        return;
    };
    let dir = Dir::new();
    let (mock, out) = faulty_run(&dir);
    assert_eq!(out.code(), 3, "{}", out.stderr);
    // Resumed once: the report shows the whole job and each of its two runs.
    let again = run(run_job(&dir, &mock)
        .env("OPENAI_API_KEY", KEY)
        .args(["--retry-failed", "--max-cost", "5", "--report", "report.html"])
        .args(["--price-in", "1", "--price-out", "2", "--max-tokens", "50"]));
    assert_eq!(again.code(), 3, "the refused row fails again: {}", again.stderr);
    let page = dir.path("report.html");
    let status = status_json(&dir);

    // The screenshot, kept under target/ as an artifact.
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("report.png");
    let _ = std::fs::remove_file(&shot);
    headless(
        &browser,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,3000",
        ],
        &page,
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).expect("a frame");
    assert_eq!((info.width, info.height), (1200, 3000));
    let pixels = &pixels[..info.buffer_size()];
    let white = pixels.iter().filter(|&&b| b == 255).count();
    let dark = pixels.iter().filter(|&&b| b < 128).count();
    assert!(white > pixels.len() / 2, "mostly background");
    assert!(
        dark > pixels.len() / 200,
        "not blank: text and lines are drawn ({dark} dark bytes)"
    );

    // The DOM as the browser built it: every chart drawn, every shared number shown.
    let dom = String::from_utf8(headless(&browser, &["--dump-dom"], &page).stdout).unwrap();
    for id in CHARTS {
        let at = dom
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("{id} in the DOM"));
        let figure = &dom[at..at + dom[at..].find("</figure>").expect("its end")];
        assert!(
            figure.contains("<svg") && figure.contains("<text"),
            "{id} is drawn"
        );
    }
    for (field, want) in shared_from_status(&status) {
        let name = match field {
            "retries" | "cost" | "max_cost" | "http_429" | "requests" => field.to_string(),
            rows => format!("rows.{rows}"),
        };
        let shown = format!("data-number=\"{name}\">");
        let at = dom.find(&shown).unwrap_or_else(|| panic!("{name} is shown"));
        let text = &dom[at + shown.len()..];
        let text = &text[..text.find('<').unwrap()];
        let expected = match field {
            // Dollars as `status` prints them (exactly, in the JSON block, below).
            "cost" | "max_cost" => promptmill::estimate::report::dollars(want.as_f64().unwrap()),
            _ => want.to_string(),
        };
        assert_eq!(text, expected, "{name}");
    }
    // Each run's own section, drawn, and its numbers as `status --json`'s `runs[]`.
    let runs = status["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    for want in runs {
        let n = &want["run"];
        let section = &dom[dom
            .find(&format!("<details id=\"run-{n}\""))
            .expect("the run's section")..];
        let section = &section[..section.find("</details>").expect("its end")];
        for id in CHARTS {
            let at = section
                .find(&format!("id=\"run-{n}-{id}\""))
                .unwrap_or_else(|| panic!("run {n}: {id} in the DOM"));
            let figure = &section[at..at + section[at..].find("</figure>").expect("its end")];
            assert!(
                figure.contains("<svg") && figure.contains("<text"),
                "run {n}: {id} is drawn"
            );
        }
        for field in ["requests", "retries", "http_429"] {
            let shown = format!("data-number=\"runs.{n}.{field}\">{}<", want[field]);
            assert!(dom.contains(&shown), "{shown}");
        }
    }
    let numbers = embedded_numbers(&dom);
    assert_eq!(numbers["rows"], status["rows"]);
    assert_eq!(numbers["cost"], status["cost"]);
    assert_eq!(numbers["runs"].as_array().map(Vec::len), Some(2));
}
