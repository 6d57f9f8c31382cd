//! `estimate --sample N` calibrates prompt tokens too: the mock bills prompts by words (plus
//! chat framing), not by `o200k_base`, which makes it a server with its own tokenizer. For a
//! model whose tokenizer promptmill does not know, the estimate scales its count by the
//! sample's billed / counted ratio and the full run's bill falls inside the interval; for a
//! known model, the difference is shown, so a server that counts differently stands out.

use serde_json::Value;

use crate::util::*;

/// Rows of 4 to 40 long words: o200k_base splits each into several tokens, the mock's word
/// count bills one, so billed / counted is well below 1 and varies a little from row to row.
fn long_words(dir: &Dir, rows: usize) {
    let mut text = String::new();
    for i in 1..=rows {
        let words = vec!["internationalization"; 4 + (i * 7) % 37].join(" ");
        text.push_str(&format!("{{\"id\":\"r{i}\",\"prompt\":\"{words} {i}\"}}\n"));
    }
    dir.write("p.jsonl", text);
}

fn job<'a>(url: &'a str, model: &'a str) -> [&'a str; 13] {
    [
        "p.jsonl",
        "-o",
        "out.jsonl",
        "--model",
        model,
        "--max-tokens",
        "20",
        "--base-url",
        url,
        "--price-in",
        "1",
        "--price-out",
        "2",
    ]
}

#[test]
fn a_sample_scales_the_prompt_tokens_of_an_unknown_tokenizer_and_the_bill_falls_in_its_interval() {
    let dir = Dir::new();
    long_words(&dir, 150);
    let mock = Mock::start(&[]);
    let common = job(&mock.url, "my-local-model");
    let plain = run(promptmill(&dir).arg("estimate").args(common).arg("--json"));
    assert_eq!(plain.code(), 0, "stderr: {}", plain.stderr);
    let plain: Value = serde_json::from_str(&plain.stdout).unwrap();
    let counted = plain["prompt_tokens"].as_u64().unwrap();
    assert_eq!(
        plain["prompt_tokens_expected"].as_f64(),
        Some(counted as f64),
        "no sample, no scaling"
    );

    let out = run(promptmill(&dir)
        .arg("estimate")
        .args(common)
        .args(["--sample", "30", "--json"]));
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let m = &v["models"][0]["prompt_tokens"];
    assert_eq!(
        m["total"].as_u64(),
        Some(counted),
        "the local count is kept as it is"
    );
    let sample = &m["sample"];
    assert_eq!(sample["rows"], 30);
    assert_eq!(sample["scaled"], true);
    let ratio = sample["ratio"].as_f64().unwrap();
    assert!(ratio < 0.6, "the mock bills a long word as one token: {sample}");
    let expected = m["expected"].as_f64().unwrap();
    assert!((expected - counted as f64 * ratio).abs() < 1e-6, "{m}");
    let (lo, hi) = (
        m["expected_low"].as_f64().unwrap(),
        m["expected_high"].as_f64().unwrap(),
    );
    assert!(lo < expected && expected < hi, "{m}");
    let cost = v["cost_live"]["expected"].as_f64().unwrap();

    // The checkpoint holds both counts of every sampled row.
    let conn = rusqlite::Connection::open(dir.path("out.jsonl.promptmill.db")).unwrap();
    let (rows, local, billed): (i64, i64, i64) = conn
        .query_row(
            "SELECT count(*), sum(local_prompt_tokens), sum(rows.prompt_tokens)
               FROM sample JOIN rows USING (seq)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    drop(conn);
    assert_eq!(
        (rows as u64, local as u64, billed as u64),
        (
            30,
            sample["counted"].as_u64().unwrap(),
            sample["billed"].as_u64().unwrap()
        )
    );

    let text = run(promptmill(&dir)
        .arg("estimate")
        .args(common)
        .args(["--sample", "30"]));
    assert_eq!(text.code(), 0, "stderr: {}", text.stderr);
    assert!(
        text.stderr
            .contains("(tokenizer unknown: counted with o200k_base, scaled by the calibration sample)"),
        "{}",
        text.stderr
    );
    assert!(text.stderr.contains("    calibrated  "), "{}", text.stderr);
    assert!(text.stderr.contains("30 sampled rows billed"), "{}", text.stderr);
    assert_eq!(
        mock.requests().len(),
        30,
        "the second calibration reuses the sample"
    );

    let out = run(promptmill(&dir)
        .arg("run")
        .args(common)
        .args(["--summary", "s.json"]));
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    let s: Value = serde_json::from_str(&dir.read("s.json")).unwrap();
    let billed = s["tokens"]["prompt"].as_f64().unwrap();
    assert!(
        lo <= billed && billed <= hi,
        "billed {billed} outside {lo} – {hi}"
    );
    assert!(
        (billed - expected).abs() / billed < 0.03,
        "billed {billed}, expected {expected}"
    );
    let job_cost = s["cost"]["job"].as_f64().unwrap();
    assert!(
        (job_cost - cost).abs() / job_cost < 0.05,
        "billed ${job_cost}, expected ${cost}"
    );
    // Unscaled, the estimate was far off: that is what the calibration corrects.
    assert!(
        (billed - counted as f64).abs() / billed > 0.5,
        "{billed} vs {counted}"
    );
}

#[test]
fn with_a_known_tokenizer_the_sample_shows_how_far_the_servers_count_is() {
    let dir = Dir::new();
    long_words(&dir, 40);
    let mock = Mock::start(&[]);
    let common = job(&mock.url, "gpt-4o-mini");
    let out = run(promptmill(&dir)
        .arg("estimate")
        .args(common)
        .args(["--sample", "10", "--json"]));
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let m = &v["models"][0]["prompt_tokens"];
    let sample = &m["sample"];
    assert_eq!(sample["scaled"], false, "a known tokenizer is trusted: {m}");
    let (counted, billed) = (
        sample["counted"].as_i64().unwrap(),
        sample["billed"].as_i64().unwrap(),
    );
    assert!(billed < counted, "{sample}");
    assert_eq!(sample["difference"].as_i64(), Some(billed - counted));
    assert_eq!(m["expected"].as_f64(), m["total"].as_f64(), "not scaled");

    let text = run(promptmill(&dir)
        .arg("estimate")
        .args(common)
        .args(["--sample", "10"]));
    assert_eq!(text.code(), 0, "stderr: {}", text.stderr);
    let line = format!(
        "    sample      10 sampled rows billed {billed} prompt tokens, {counted} counted here; difference {}: the server counts differently (a wrong encoding, or framing)",
        billed - counted
    );
    assert!(text.stderr.contains(&line), "{line}\n{}", text.stderr);
    assert_eq!(mock.requests().len(), 10);
}
