//! Where requests go and what goes with them: redirects are never followed, plain http off this
//! machine needs `--allow-http`, the base URL's query stays after the path (credential-like
//! parameters never stored), `--api-key-env` takes a name and never a key, and a run whose first
//! answers all say "wrong setting" stops with its rows pending.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::util::*;

/// A server on 127.0.0.1 that answers every request with `status` and `Location: location`.
/// Returns its base URL (`http://127.0.0.1:P/v1`) and the request heads it received.
fn redirecting(status: u16, location: String) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/v1", listener.local_addr().expect("addr"));
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&heads);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let seen = Arc::clone(&seen);
            let location = location.clone();
            std::thread::spawn(move || serve(stream, status, &location, &seen));
        }
    });
    (url, heads)
}

/// Answers requests on one connection until the client closes it.
fn serve(stream: TcpStream, status: u16, location: &str, seen: &Mutex<Vec<String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut out = stream;
    loop {
        let mut head = String::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        seen.lock().expect("lock").push(head);
        let answer = format!("HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n");
        if out.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// A listener on 127.0.0.1 (what `localhost:P` reaches) that counts connections: the second
/// origin a redirect points to. Nothing may ever reach it.
fn second_origin() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let reached = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&reached);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            count.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (port, reached)
}

/// `promptmill run p.jsonl -o out.jsonl --model m` (the base URL is the test's).
fn job(dir: &Dir) -> std::process::Command {
    let mut cmd = promptmill(dir);
    cmd.args(["run", "p.jsonl", "-o", "out.jsonl", "--model", "m"]);
    cmd
}

fn status_rows(dir: &Dir) -> Value {
    let out = run(promptmill(dir).args(["status", "out.jsonl.promptmill.db", "--json"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let status: Value = serde_json::from_str(&out.stdout).expect("status JSON");
    status["rows"].clone()
}

#[test]
fn redirects_are_never_followed_and_nothing_reaches_the_other_origin() {
    for provider in ["openai", "azure"] {
        for status in [301, 302, 307, 308] {
            let dir = Dir::new();
            prompts_jsonl(&dir, "p.jsonl", 5);
            let (port, reached) = second_origin();
            let location = format!("http://localhost:{port}/v1/chat/completions");
            let (url, heads) = redirecting(status, location.clone());
            let mut cmd = job(&dir);
            let cmd = cmd
                .args(["--header", "X-Api-Token: tok-2b7f-secret"])
                .env("OPENAI_API_KEY", "sk-redirect-key-9c1e")
                .env("AZURE_OPENAI_API_KEY", "azure-redirect-key-9c1e");
            if provider == "azure" {
                cmd.args(["--provider", "azure", "--base-url", url.trim_end_matches("/v1")]);
            } else {
                cmd.args(["--base-url", &url]);
            }
            let out = run(cmd);
            let case = format!("{provider} {status}: {}", out.stderr);
            assert_eq!(out.code(), 4, "{case}");
            assert!(
                out.stderr.contains(&format!(
                    "the base URL redirects to {location}; give that URL as --base-url"
                )),
                "{case}"
            );
            assert!(
                out.stderr
                    .contains(&format!("--base-url http://localhost:{port}/v1\n")),
                "the resume command names the base URL the Location implies: {case}"
            );
            assert_eq!(reached.load(Ordering::SeqCst), 0, "{case}");
            let heads = heads.lock().expect("lock");
            assert_eq!(heads.len(), 5, "each row asked once: {case}");
            // The first origin got the credentials: following would have sent them on.
            let credential = if provider == "azure" {
                "api-key:"
            } else {
                "authorization:"
            };
            for head in heads.iter() {
                let head = head.to_ascii_lowercase();
                assert!(
                    head.contains(credential) && head.contains("x-api-token:"),
                    "{case}: {head}"
                );
            }
            let rows = status_rows(&dir);
            assert_eq!(
                (rows["pending"].as_u64(), rows["failed"].as_u64()),
                (Some(5), Some(0)),
                "{case}"
            );
            assert!(
                !dir.exists("out.jsonl") || !dir.read("out.jsonl").contains("\"done\""),
                "{case}"
            );
        }
    }
}

#[test]
fn a_batch_call_that_is_redirected_stops_the_run_with_the_location() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 4);
    let (port, reached) = second_origin();
    let location = format!("http://localhost:{port}/v1/files");
    let (url, _) = redirecting(307, location.clone());
    let out = run(job(&dir)
        .args(["--base-url", &url, "--mode", "batch", "--poll-interval", "20ms"])
        .args(["--header", "X-Api-Token: tok-batch-secret"])
        .env("OPENAI_API_KEY", "sk-batch-redirect-key"));
    assert_eq!(out.code(), 4, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "the base URL redirects to {location}; give that URL as --base-url"
        )),
        "{}",
        out.stderr
    );
    assert_eq!(reached.load(Ordering::SeqCst), 0);
}

#[test]
fn plain_http_to_another_host_is_refused_unless_allowed_for_each_run() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    let remote = "http://promptmill-test.invalid/v1";
    let refused = run(job(&dir)
        .args(["--base-url", remote])
        .env("OPENAI_API_KEY", "sk-plain-http-key"));
    assert_eq!(refused.code(), 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("would travel in clear text"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("--allow-http"), "{}", refused.stderr);
    assert!(
        !dir.exists("out.jsonl.promptmill.db"),
        "refused before the checkpoint is made"
    );
    let azure = run(job(&dir)
        .args([
            "--provider",
            "azure",
            "--base-url",
            "http://promptmill-test.invalid",
        ])
        .env("AZURE_OPENAI_API_KEY", "azure-plain-http-key"));
    assert_eq!(azure.code(), 1, "{}", azure.stderr);
    assert!(
        azure.stderr.contains("would travel in clear text"),
        "{}",
        azure.stderr
    );

    // Allowed, it is sent; the host does not resolve, so the run stops with every row pending.
    let allowed = run_within(
        job(&dir)
            .args(["--base-url", remote, "--allow-http"])
            .env("OPENAI_API_KEY", "sk-plain-http-key"),
        Duration::from_secs(60),
    );
    assert_eq!(allowed.code(), 4, "{}", allowed.stderr);
    assert!(
        allowed
            .stderr
            .contains("cannot resolve promptmill-test.invalid: DNS lookup failed"),
        "{}",
        allowed.stderr
    );
    assert_eq!(status_rows(&dir)["pending"], 3);

    // The permission is not stored: a resume needs it again.
    let resume = run(promptmill(&dir)
        .args(["resume", "out.jsonl.promptmill.db"])
        .env("OPENAI_API_KEY", "sk-plain-http-key"));
    assert_eq!(resume.code(), 1, "{}", resume.stderr);
    assert!(
        resume
            .stderr
            .contains("every run and resume of it needs the flag again"),
        "{}",
        resume.stderr
    );
}

#[test]
fn the_base_urls_query_stays_after_the_path_and_a_credential_in_it_is_never_stored() {
    let secret = "qk-7a1d-never-stored";
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 6);
    let mock = Mock::start(&[]);
    let base = format!("{}?tenant=abc&api_key={secret}", mock.url);
    let out = run(job(&dir).args(["--base-url", &base, "-vv"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    for r in mock.requests() {
        assert_eq!(r["path"], "/v1/chat/completions", "{r}");
        assert_eq!(r["query"], format!("tenant=abc&api_key={secret}"), "{r}");
    }
    let status = run(promptmill(&dir).args(["status", "out.jsonl.promptmill.db", "--json"]));
    assert!(status.stdout.contains("tenant=abc"), "{}", status.stdout);
    assert_nowhere(dir.root(), &[&out.stdout, &out.stderr, &status.stdout], secret);

    // A resume must be given the base URL again, and is told how.
    let again = run(promptmill(&dir).args(["resume", "out.jsonl.promptmill.db", "--retry-failed"]));
    assert_eq!(again.code(), 1, "{}", again.stderr);
    assert!(
        again.stderr.contains("the query parameter `api_key`"),
        "{}",
        again.stderr
    );
    assert!(
        again
            .stderr
            .contains("promptmill resume out.jsonl.promptmill.db --base-url 'URL'"),
        "{}",
        again.stderr
    );
    let given = run(promptmill(&dir).args(["resume", "out.jsonl.promptmill.db", "--base-url", &base]));
    assert_eq!(given.code(), 0, "{}", given.stderr);
    assert_nowhere(dir.root(), &[&again.stderr, &given.stderr], secret);
}

#[test]
fn a_base_url_with_a_fragment_is_refused() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 2);
    let mock = Mock::start(&[]);
    let out = run(job(&dir).args(["--base-url", &format!("{}#frag", mock.url)]));
    assert_eq!(out.code(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("has a fragment"), "{}", out.stderr);
    assert!(mock.requests().is_empty());
}

#[test]
fn a_key_given_as_api_key_env_is_refused_and_written_nowhere() {
    let key = "sk-proj-4Qx9Tz2VbN7mK1pL8rS3dF6gH0jW5eY";
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 2);
    let mock = Mock::start(&[]);
    let out = run(run_job(&dir, &mock).args(["--api-key-env", key]));
    assert_eq!(out.code(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "takes the NAME of the variable that holds the key (e.g. OPENAI_API_KEY), not the key itself"
        ),
        "{}",
        out.stderr
    );
    assert!(mock.requests().is_empty());

    // A job made with a proper name, then a resume given the key instead of a name.
    let made = run(run_job(&dir, &mock).args(["--api-key-env", "MY_KEY"]));
    assert_eq!(made.code(), 0, "{}", made.stderr);
    let resume = run(promptmill(&dir).args(["resume", "out.jsonl.promptmill.db", "--api-key-env", key]));
    assert_eq!(resume.code(), 1, "{}", resume.stderr);
    assert!(resume.stderr.contains("takes the NAME"), "{}", resume.stderr);
    let status = run(promptmill(&dir).args(["status", "out.jsonl.promptmill.db", "--json"]));
    assert_nowhere(
        dir.root(),
        &[
            &out.stdout,
            &out.stderr,
            &resume.stdout,
            &resume.stderr,
            &status.stdout,
        ],
        key,
    );
}

#[test]
fn a_wrong_path_stops_the_run_with_every_row_pending_and_a_resume_finishes_it() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 1000);
    let mock = Mock::start(&[]);
    let wrong = format!("{}/wrong", mock.url);
    let out = run(job(&dir).args(["--base-url", &wrong]));
    assert_eq!(out.code(), 4, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "all 20 requests so far got 404 Not Found from {wrong}/chat/completions"
        )),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("is --base-url right?"), "{}", out.stderr);
    assert!(
        out.stderr.contains("out.jsonl.promptmill.db --base-url URL"),
        "{}",
        out.stderr
    );
    let rows = status_rows(&dir);
    assert_eq!(
        (rows["pending"].as_u64(), rows["failed"].as_u64()),
        (Some(1000), Some(0))
    );
    assert!(mock.requests().len() < 200, "{} requests", mock.requests().len());

    let fixed = run(promptmill(&dir).args(["resume", "out.jsonl.promptmill.db", "--base-url", &mock.url]));
    assert_eq!(fixed.code(), 0, "{}", fixed.stderr);
    assert_eq!(status_rows(&dir)["done"], 1000);
    assert_eq!(dir.jsonl("out.jsonl").len(), 1000);
}

#[test]
fn a_dead_port_stops_the_run_quickly_with_the_address() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 100);
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let out = run_within(
        job(&dir).args(["--base-url", &format!("http://{addr}/v1")]),
        Duration::from_secs(30),
    );
    assert_eq!(out.code(), 4, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("cannot connect to {addr}: connection refused")),
        "{}",
        out.stderr
    );
    let rows = status_rows(&dir);
    assert_eq!(
        (rows["pending"].as_u64(), rows["failed"].as_u64()),
        (Some(100), Some(0))
    );
}
