//! The dry run's scan of an input, driven from the command line's flags as `estimate` drives it.

use std::io::Write;
use std::path::Path;

use promptmill_core::tokens;
use promptmill_engine::estimate::*;

use super::InputConfig;
use crate::cli::{Cli, Command};
use clap::Parser;

fn input_config(dir: &Path, name: &str, text: &str, flags: &[&str]) -> InputConfig {
    let path = dir.join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let mut argv = vec!["promptmill", "estimate", path.to_str().unwrap()];
    argv.extend_from_slice(flags);
    let Command::Estimate(args) = Cli::parse_from(argv).command else {
        unreachable!()
    };
    super::input_config(&args).unwrap()
}

#[test]
fn counts_every_row_with_framing_and_exact_percentiles() {
    let dir = tempfile::tempdir().unwrap();
    // "hello" ×k: k tokens of content; chat framing adds 3 + 1 (role) + 3 per request.
    let mut csv = String::from("id,text\n");
    for k in 1..=100 {
        csv.push_str(&format!("r{k},\"{}\"\n", vec!["hello"; k].join(" ")));
    }
    let cfg = input_config(
        dir.path(),
        "p.csv",
        &csv,
        &["--template", "{text}", "--model", "gpt-4o", "--max-tokens", "10"],
    );
    for threads in [1, 3] {
        let scan = scan(&cfg, threads, None, &|_| {}).unwrap();
        assert_eq!((scan.rows, scan.invalid), (100, 0));
        let t = &scan.models["gpt-4o"];
        assert_eq!(t.rows, 100);
        assert_eq!(t.prompt_tokens, (1..=100).map(|k| k + 7).sum::<u64>());
        assert_eq!((t.quantile(0.5), t.quantile(0.95), t.max()), (57, 102, 107));
        assert_eq!(t.max_output_tokens, 1000);
        assert_eq!(t.rows_over(100), 7);
    }
}

#[test]
fn invalid_rows_and_duplicate_ids_are_reported_as_run_would() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = input_config(
        dir.path(),
        "p.jsonl",
        "{\"id\":\"a\",\"prompt\":\"x\"}\n{\"id\":\"a\",\"prompt\":\"y\"}\n{\"id\":\"b\"}\n",
        &["--model", "gpt-4o-mini"],
    );
    let scan = scan(&cfg, 2, None, &|_| {}).unwrap();
    assert_eq!((scan.rows, scan.invalid, scan.rows_to_send()), (3, 2, 1));
    let listed: Vec<String> = scan.listed.iter().map(|e| e.to_string()).collect();
    assert!(
        listed[0].ends_with("p.jsonl:2: field `id`: duplicate id `a` (first used on line 1)"),
        "{listed:?}"
    );
    assert!(listed[1].contains("p.jsonl:3:"), "{listed:?}");
}

#[test]
fn a_sample_gives_its_mean_and_a_t_interval() {
    let e = expectation_from_sample(&[10, 20, 30]);
    assert_eq!(e.per_request, 20.0);
    let (lo, hi) = e.interval.unwrap();
    // sd = 10, se = 10/√3, t(2) = 4.303.
    let half = 4.303 * 10.0 / 3f64.sqrt();
    assert!((hi - (20.0 + half)).abs() < 1e-9 && lo == 0.0, "{lo} {hi}");
    assert_eq!(expectation_from_sample(&[7]).interval, None);
}

#[test]
fn with_mode_batch_the_estimate_counts_the_input_files_by_rows_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut jsonl = String::new();
    for k in 1..=10 {
        jsonl.push_str(&format!(
            "{{\"id\":\"r{k}\",\"prompt\":\"{}\"}}\n",
            "x".repeat(100)
        ));
    }
    let cfg = input_config(dir.path(), "p.jsonl", &jsonl, &["--model", "gpt-4o-mini"]);
    for threads in [1, 3] {
        let scan = scan(&cfg, threads, None, &|_| {}).unwrap();
        let body = scan.models["gpt-4o-mini"].request_bytes / 10;
        assert!(body > 100, "every body holds its prompt: {body}");
        let report = |max_rows, max_bytes| {
            let settings = super::BatchSettings {
                mode: crate::cli::Mode::Batch,
                max_rows,
                max_bytes,
                ..Default::default()
            };
            let book = promptmill_core::models::PriceBook::new(None, None, None).unwrap();
            let limits = super::SendLimits::default();
            let a = report::Assumptions {
                prices: &book,
                limits: &limits,
                latency: std::time::Duration::from_secs(2),
                expectation: None,
                prompt_ratios: None,
                skip_invalid: false,
                batch: Some(&settings),
            };
            report::Report::new(&scan, &a).unwrap().batch.unwrap()
        };
        let all = report(50_000, 200_000_000);
        assert_eq!(all.files, 1);
        assert_eq!(all.bytes, 10 * (body + 80));
        assert_eq!(report(4, 200_000_000).files, 3, "by rows: 4 + 4 + 2");
        assert_eq!(
            report(50_000, 3 * (body + 80)).files,
            4,
            "by bytes: 3 lines a file"
        );
    }
}

#[test]
fn prompts_are_split_into_bands_at_the_long_context_thresholds() {
    let mut t = ModelTally::default();
    for prompt in [100, 100, 300_000] {
        t.add(
            &tokens::RequestCost {
                prompt_tokens: prompt,
                max_output_tokens: 10,
                choices: 1,
            },
            10,
        );
    }
    let bands = t.bands(&[200_000]);
    assert_eq!(bands.len(), 2, "{bands:?}");
    assert_eq!((bands[0].least, bands[1].least), (100, 300_000));
    assert!((bands[0].rows - 2.0 / 3.0).abs() < 1e-12);
    assert!((bands[1].prompt - 300_000.0 / 300_200.0).abs() < 1e-12);
    let one = t.bands(&[]);
    assert_eq!((one.len(), one[0].least, one[0].rows), (1, 100, 1.0));
    assert!((one[0].prompt - 1.0).abs() < 1e-12);
}
