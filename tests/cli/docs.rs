//! The docs test: every command shown in README.md and docs/*.md runs as written, in order per
//! page, and ends with the exit code the page implies; every relative link resolves. The rules
//! for reading commands are in `doc_commands.rs` (and docs/DEVELOPMENT.md, "The docs test").
//!
//! Each page runs in its own temp directory holding a copy of sample-data/ (a reader who opens
//! one page on a fresh clone), with `promptmill` the built binary, against a bundled mock server
//! of its own (`--batch-polls 1`, so a batch completes at its first poll), `OPENAI_BASE_URL`
//! pointing at it and a fake key in `OPENAI_API_KEY`. Every URL given with `--base-url`, in a
//! `*_BASE_URL` or `*_ENDPOINT` variable, or to curl, keeps its path and query but goes to the
//! mock (its scheme, host and port are replaced): `http://gpu-box:8000/v1` becomes
//! `http://127.0.0.1:PORT/v1`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::doc_commands::{commands_of, DocCommand, Kind};
use crate::util::{promptmill, run, Dir, Mock};

const FAKE_KEY: &str = "sk-docs-test-not-a-real-key";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md, then every docs/*.md page, by name.
fn pages() -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .expect("docs/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    let mut all = vec![repo().join("README.md")];
    all.extend(docs);
    all
}

fn name(page: &Path) -> String {
    page.strip_prefix(repo()).unwrap_or(page).display().to_string()
}

fn commands(page: &Path) -> Vec<DocCommand> {
    let text = std::fs::read_to_string(page).expect("read page");
    commands_of(&text).unwrap_or_else(|e| panic!("{}: {e}", name(page)))
}

/// `url` with the mock's scheme, host and port; anything that is not a URL is left alone.
fn to_mock(value: &str, mock: &url::Url) -> String {
    let Ok(mut u) = url::Url::parse(value) else {
        return value.to_string();
    };
    if !matches!(u.scheme(), "http" | "https") {
        return value.to_string();
    }
    let moved = u.set_scheme("http").is_ok()
        && u.set_host(Some("127.0.0.1")).is_ok()
        && u.set_port(mock.port()).is_ok();
    assert!(moved, "cannot point {value} at the mock");
    u.to_string()
}

fn env_to_mock(name: &str, value: &str, mock: &url::Url) -> String {
    if name.ends_with("_BASE_URL") || name.ends_with("_ENDPOINT") {
        to_mock(value, mock)
    } else {
        value.to_string()
    }
}

fn args_to_mock(args: &[String], mock: &url::Url) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut after_base_url = false;
    for a in args {
        if after_base_url {
            out.push(to_mock(a, mock));
        } else if let Some(v) = a.strip_prefix("--base-url=") {
            out.push(format!("--base-url={}", to_mock(v, mock)));
        } else {
            out.push(a.clone());
        }
        after_base_url = a == "--base-url";
    }
    out
}

/// Runs every command of `page` in order in a fresh directory against a fresh mock; returns how
/// many promptmill commands ran.
fn run_page(page: &Path) -> usize {
    let commands = commands(page);
    let dir = Dir::new();
    copy_dir(&repo().join("sample-data"), &dir.path("sample-data"));
    let mock = Mock::start(&["--batch-polls", "1"]);
    let mock_url = url::Url::parse(&mock.url).expect("mock url");
    let mut exported: Vec<(String, String)> = Vec::new();
    // One response cache for the page's commands, as a reader running them in order has.
    let cache_home = dir.fresh_cache_home();
    let mut ran = 0;
    for c in &commands {
        let (mut cmd, stdout_to) = match &c.kind {
            Kind::Export { vars } => {
                for (k, v) in vars {
                    exported.push((k.clone(), env_to_mock(k, v, &mock_url)));
                }
                continue;
            }
            Kind::Promptmill { env, args, stdout_to } => {
                let mut cmd = promptmill(&dir);
                cmd.env("XDG_CACHE_HOME", &cache_home)
                    .env("OPENAI_BASE_URL", &mock.url)
                    .env("OPENAI_API_KEY", FAKE_KEY);
                for (k, v) in exported.iter().chain(env) {
                    cmd.env(k, env_to_mock(k, v, &mock_url));
                }
                cmd.args(args_to_mock(args, &mock_url));
                ran += 1;
                (cmd, stdout_to.clone())
            }
            Kind::Curl { args } => {
                let mut cmd = Command::new("curl");
                cmd.current_dir(dir.path("."));
                cmd.args(args.iter().map(|a| to_mock(a, &mock_url)));
                (cmd, None)
            }
        };
        eprintln!("{}:{}: {}", name(page), c.line, c.text);
        let out = run(&mut cmd);
        assert_eq!(
            out.code(),
            c.expect,
            "{}:{}: `{}` exited {} (the page implies {})\n--- stdout\n{}\n--- stderr\n{}",
            name(page),
            c.line,
            c.text,
            out.code(),
            c.expect,
            out.stdout,
            out.stderr
        );
        if let Some(file) = stdout_to {
            dir.write(&file, &out.stdout);
        }
    }
    ran
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read sample-data").flatten() {
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy sample file");
    }
}

#[test]
fn every_readme_command_runs_as_written_in_order() {
    let ran = run_page(&repo().join("README.md"));
    assert!(
        ran >= 8,
        "the README shows its main uses; only {ran} promptmill commands ran"
    );
}

#[test]
fn every_docs_page_command_runs_as_written_in_order() {
    let mut ran = BTreeMap::new();
    for page in pages().into_iter().skip(1) {
        ran.insert(name(&page), run_page(&page));
    }
    for page in [
        "docs/GUIDE.md",
        "docs/BATCH.md",
        "docs/CHECKPOINT.md",
        "docs/PROVIDERS.md",
    ] {
        assert!(
            ran.get(page).is_some_and(|&n| n > 0),
            "{page}: no promptmill command ran: {ran:?}"
        );
    }
}

/// A reader runs the README and then the pages in one clone: no two pages may write the same
/// output (the second job would be refused as a different one, or would resume the first).
#[test]
fn no_two_pages_write_the_same_output() {
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    for page in pages() {
        for c in commands(&page) {
            let Kind::Promptmill { args, .. } = &c.kind else {
                continue;
            };
            let output = args
                .iter()
                .position(|a| a == "-o" || a == "--output")
                .and_then(|i| args.get(i + 1))
                .or_else(|| args.iter().find_map(|a| a.strip_prefix("--output=").map(|_| a)));
            let Some(output) = output else { continue };
            let here = name(&page);
            let first = owner.entry(output.clone()).or_insert_with(|| here.clone());
            assert_eq!(
                *first, here,
                "{here}:{}: `-o {output}` is already written by {first}",
                c.line
            );
        }
    }
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            out.push(slug(line.trim_start_matches('#').replace('`', "").as_str()));
        }
    }
    out
}

/// Every `[text](target)` outside code blocks whose target is not a URL.
fn relative_links(text: &str) -> Vec<(usize, String)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = &rest[..end];
            if !target.contains("://") && !target.starts_with("mailto:") {
                out.push((n + 1, target.to_string()));
            }
            rest = &rest[end..];
        }
    }
    out
}

#[test]
fn every_relative_link_and_anchor_in_the_docs_resolves() {
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).expect("read page");
        for (line, target) in relative_links(&text) {
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let file = if path.is_empty() {
                page.clone()
            } else {
                page.parent().expect("page dir").join(path)
            };
            let at = format!("{}:{line}: `{target}`", name(&page));
            assert!(file.exists(), "{at}: {} does not exist", file.display());
            if !anchor.is_empty() {
                let target_text = std::fs::read_to_string(&file).expect("read link target");
                assert!(
                    anchors(&target_text).iter().any(|a| a == anchor),
                    "{at}: no heading has the anchor #{anchor}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} links were checked");
}

/// Every `src/…`, `crates/…` or `tests/…` path and every `module::test_name` the docs cite, as evidence for
/// a claim, still exists: a renamed test or file must take its docs along.
#[test]
fn every_file_and_test_the_docs_cite_exists() {
    let mut sources = String::new();
    for dir in ["src", "crates", "tests"] {
        collect_rust(&repo().join(dir), &mut sources);
    }
    let mut cited = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).expect("read page");
        for span in text.split('`').skip(1).step_by(2) {
            let at = name(&page);
            if ["src/", "crates/", "tests/"].iter().any(|p| span.starts_with(p)) && !span.contains([' ', '…'])
            {
                assert!(
                    repo().join(span).exists(),
                    "{at}: cites `{span}`, which does not exist"
                );
                cited += 1;
            } else if let Some((module, test)) = span.split_once("::") {
                let is_test_name = module.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    && test.len() > 12
                    && test
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if is_test_name {
                    assert!(
                        sources.contains(&format!("fn {test}(")),
                        "{at}: cites the test `{span}`, which does not exist"
                    );
                    cited += 1;
                }
            }
        }
    }
    assert!(cited > 20, "only {cited} citations were checked");
}

fn collect_rust(dir: &Path, into: &mut String) {
    for entry in std::fs::read_dir(dir).expect("read source dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rust(&path, into);
        } else if path.extension().is_some_and(|x| x == "rs") {
            into.push_str(&std::fs::read_to_string(&path).expect("read source"));
        }
    }
}
