//! SIGKILL at random moments, then resume: nothing lost, nothing doubled, and the requests
//! paid twice bounded by what was on the wire at each kill.

use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::util::*;

const ROWS: usize = 2000;
const KILLS: usize = 20;
const CONCURRENCY: usize = 16;

/// The output's rows without `response_id`, which the mock numbers by arrival order (so it
/// differs between any two runs); everything else is a function of the prompt.
fn comparable(dir: &Dir) -> Vec<Value> {
    dir.jsonl("out.jsonl")
        .into_iter()
        .map(|mut row| {
            let id = row["response_id"].take();
            assert!(
                id.as_str().is_some_and(|s| !s.is_empty()),
                "row {} has no response id",
                row["id"]
            );
            row
        })
        .collect()
}

#[test]
fn twenty_sigkills_at_random_moments_lose_nothing_and_pay_at_most_what_was_on_the_wire() {
    let started = Instant::now();
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", ROWS);
    let mock = Mock::start(&["--latency", "20ms", "--latency-jitter", "30ms", "--seed", "3"]);
    let concurrency = CONCURRENCY.to_string();
    let mut rng = rand::rngs::SmallRng::seed_from_u64(20_240_611);
    let mut lifetimes = Vec::new();

    for kill in 1..=KILLS {
        let mut child = run_job(&dir, &mock)
            .args(["--concurrency", &concurrency, "--quiet"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn promptmill");
        // Anywhere from start-up (opening the checkpoint, loading the input on the first run)
        // to well into sending.
        let lifetime = Duration::from_millis(rng.random_range(10..=250));
        std::thread::sleep(lifetime);
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "kill {kill}: the job ended before it could be killed"
        );
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        lifetimes.push(lifetime);
    }
    let killed_at = mock.stats()["requests"].as_u64().unwrap();
    let killed_phase = started.elapsed();

    let resumed_at = Instant::now();
    let out = run(run_job(&dir, &mock).args(["--concurrency", &concurrency, "--summary", "s.json"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let summary: Value = serde_json::from_str(&dir.read("s.json")).unwrap();
    assert!(
        summary["run"]["requests"].as_u64().unwrap() > 0,
        "rows were still pending after the {KILLS}th kill"
    );
    let final_run = resumed_at.elapsed();

    // Every input row has exactly one output row, done.
    let rows = dir.jsonl("out.jsonl");
    assert_eq!(rows.len(), ROWS);
    let ids: HashSet<&str> = rows.iter().filter_map(|r| r["id"].as_str()).collect();
    let expected: HashSet<String> = (1..=ROWS).map(|i| format!("r{i}")).collect();
    assert_eq!(
        ids,
        expected.iter().map(String::as_str).collect(),
        "one output row per input row"
    );
    assert!(rows.iter().all(|r| r["status"] == "done"));

    // The server saw each prompt at least once. What it saw beyond one per row is what the kills
    // cost: requests on the wire at a kill (never answered), and requests answered but not yet
    // committed (sent again, so paid twice). A row's last answer keeps its place on the wire
    // until its outcome commits, so both together are at most --concurrency per kill.
    let stats = mock.stats();
    let arrived = stats["requests"].as_u64().unwrap() as usize;
    let answered = mock.requests();
    let per_prompt = requests_per_prompt(&answered);
    assert_eq!(per_prompt.len(), ROWS, "every row was answered");
    let answered_twice: usize = per_prompt.values().map(|&n| n - 1).sum();
    let extra = arrived - ROWS;
    let abandoned = arrived - answered.len();
    assert_eq!(extra, abandoned + answered_twice);
    let bound = CONCURRENCY * KILLS;
    assert!(
        extra <= bound,
        "{extra} requests beyond one per row ({abandoned} abandoned, {answered_twice} answered twice); \
         at most --concurrency × kills = {bound}"
    );

    // The same job run cleanly writes the same output.
    let clean = Dir::new();
    prompts_jsonl(&clean, "p.jsonl", ROWS);
    let fast = Mock::start(&[]);
    let out = run(run_job(&clean, &fast).args(["--concurrency", &concurrency]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(
        comparable(&dir),
        comparable(&clean),
        "the output equals a clean run's"
    );

    let leftovers: Vec<String> = std::fs::read_dir(dir.root())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains("promptmill-tmp"))
        .collect();
    let mean_life = lifetimes.iter().sum::<Duration>() / KILLS as u32;
    eprintln!(
        "kill loop: {ROWS} rows, --concurrency {CONCURRENCY}, 20-50 ms latency, {KILLS} SIGKILLs \
         (mean {mean_life:?} after start); {killed_at} requests arrived before the final run; \
         {extra} beyond one per row ({:.1} per kill; --concurrency × kills = {bound}): \
         {abandoned} abandoned unanswered, {answered_twice} answered twice ({:.2} per kill); killed phase {killed_phase:.1?}, final run {final_run:.1?}, \
         whole test {:.1?}; export temp files left by kills: {}",
        extra as f64 / KILLS as f64,
        answered_twice as f64 / KILLS as f64,
        started.elapsed(),
        leftovers.len(),
    );
}
