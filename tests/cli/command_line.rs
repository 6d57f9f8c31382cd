//! The command line itself: flag names shared by the subcommands, the tip for a misspelt flag,
//! help that can be scanned (headings, one `-h` line per flag, examples in `--help`).

use crate::util::*;

/// A help text as a 100-column terminal (clap's width off a terminal) shows it.
fn help(dir: &Dir, args: &[&str]) -> String {
    let out = run(promptmill(dir).args(args).env("COLUMNS", "100"));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    out.stdout
}

#[test]
fn a_misspelt_flag_gets_the_closest_real_flag_as_its_tip() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 1);
    let out = run(promptmill(&dir).args(["run", "p.jsonl", "-o", "out.jsonl", "--modle", "m"]));
    assert_eq!(out.code(), 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("error: unexpected argument '--modle' found"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("tip: a similar argument exists: '--model'"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("'--mode'"), "{}", out.stderr);
    assert!(
        out.stderr.contains("Usage: promptmill run [OPTIONS] <INPUT>"),
        "{}",
        out.stderr
    );
    let other = run(promptmill(&dir).args(["export", "x.db", "-o", "x.csv", "--outptu-format", "csv"]));
    assert_eq!(other.code(), 2);
    assert!(
        other
            .stderr
            .contains("tip: a similar argument exists: '--output-format'"),
        "{}",
        other.stderr
    );
    assert!(!dir.exists("out.jsonl.promptmill.db"), "nothing ran");
}

#[test]
fn export_names_the_output_format_as_run_and_resume_do() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 2);
    let mock = Mock::start(&[]);
    let first = run(run_job(&dir, &mock).args(["--output-format", "csv"]));
    assert_eq!(first.code(), 0, "{}", first.stderr);
    let out = run(promptmill(&dir).args([
        "export",
        "out.jsonl.promptmill.db",
        "-o",
        "lines.txt",
        "--output-format",
        "openai-batch",
    ]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let lines = dir.jsonl("lines.txt");
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["custom_id"], "r1");
    // The old name still works, and is not shown.
    let old = run(promptmill(&dir).args([
        "export",
        "out.jsonl.promptmill.db",
        "-o",
        "old.txt",
        "--format",
        "csv",
    ]));
    assert_eq!(old.code(), 0, "{}", old.stderr);
    assert!(dir.read("old.txt").starts_with("id,"), "{}", dir.read("old.txt"));
    let text = help(&dir, &["export", "--help"]);
    assert!(text.contains("      --output-format <FORMAT>"), "{text}");
    assert!(!text.contains("      --format"), "{text}");
}

/// The flag lines of a help text: from the first heading to the exit codes.
fn flag_section(text: &str) -> Vec<&str> {
    text.lines()
        .skip_while(|l| *l != "Options:")
        .take_while(|l| !l.starts_with("Exit codes:"))
        .collect()
}

#[test]
fn run_short_help_is_one_line_per_flag_under_headings() {
    let dir = Dir::new();
    let text = help(&dir, &["run", "-h"]);
    let section = flag_section(&text);
    let headings: Vec<&str> = section
        .iter()
        .copied()
        .filter(|l| !l.is_empty() && !l.starts_with(' '))
        .collect();
    for h in [
        "Input:",
        "Request:",
        "Provider:",
        "Limits:",
        "Cost:",
        "Checkpoint:",
        "Output:",
        "Batch:",
        "Estimate:",
    ] {
        assert!(headings.contains(&h), "no heading {h} in:\n{text}");
    }
    for line in &section {
        let flag_line = line.starts_with("  -") || line.starts_with("      --") || line.starts_with("  <");
        assert!(
            line.is_empty() || !line.starts_with(' ') || flag_line,
            "a flag's -h text runs onto a second line: {line:?}\n{text}"
        );
    }
    let flags = section.iter().filter(|l| l.trim_start().starts_with('-')).count();
    assert!(flags > 50, "{flags} flags listed");
    assert!(!text.contains("Examples:"), "examples are for --help");
    let long = help(&dir, &["run", "--help"]);
    assert!(
        long.contains("Examples:\n  # every row of a JSONL file"),
        "{long}"
    );
    assert!(
        long.contains("Counts prompt tokens + max_tokens per request, as OpenAI does."),
        "the details stay in --help"
    );
}

#[test]
fn every_subcommand_has_examples_in_its_long_help() {
    let dir = Dir::new();
    for sub in [
        "run",
        "estimate",
        "resume",
        "status",
        "export",
        "cancel",
        "mock-server",
        "completions",
        "man",
    ] {
        let text = help(&dir, &[sub, "--help"]);
        let examples = text
            .split("Examples:\n")
            .nth(1)
            .unwrap_or_else(|| panic!("`{sub} --help` has no Examples block:\n{text}"));
        assert!(
            examples.contains(&format!("  promptmill {sub} ")),
            "`{sub} --help` examples:\n{examples}"
        );
    }
}

#[test]
fn estimate_help_shows_only_the_flags_of_a_dry_run() {
    let dir = Dir::new();
    let full = help(&dir, &["estimate", "-h"]);
    let text = flag_section(&full).join("\n");
    for shown in [
        "--model",
        "--sample",
        "--expect-latency",
        "--rpm",
        "--price-in",
        "--mode",
    ] {
        assert!(text.contains(shown), "{shown} missing:\n{text}");
    }
    for hidden in [
        "--dry-run",
        "--retry-failed",
        "--no-wait",
        "--finish-live",
        "--drain-timeout",
        "--max-attempts",
        "--summary",
        "--restart",
        "--output-format",
        "--max-cost",
    ] {
        assert!(!text.contains(hidden), "{hidden} shown in estimate -h:\n{text}");
    }
    assert!(help(&dir, &["run", "-h"]).contains("--retry-failed"));
}
