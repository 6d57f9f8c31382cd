//! `status` while a run is going: whether one is (its pid, since when) and the requests on the
//! wire, not the page of rows the run has claimed.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::util::*;

fn status(dir: &Dir, json: bool) -> Outcome {
    let mut cmd = promptmill(dir);
    cmd.args(["status", "out.jsonl.promptmill.db"]);
    if json {
        cmd.arg("--json");
    }
    run(&mut cmd)
}

#[test]
fn status_during_a_run_shows_the_process_and_the_requests_on_the_wire() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 40);
    let mock = Mock::start(&["--latency", "150ms"]);
    let mut child = run_job(&dir, &mock)
        .args(["--concurrency", "2", "--quiet"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the run");
    let mut seen: Option<Value> = None;
    wait_until(
        Duration::from_secs(60),
        "a status with requests on the wire",
        || {
            if !dir.exists("out.jsonl.promptmill.db") {
                return false;
            }
            let out = status(&dir, true);
            let Ok(v) = serde_json::from_str::<Value>(&out.stdout) else {
                return false;
            };
            let going = v["active_run"].is_object() && v["on_wire"].as_u64().unwrap_or(0) > 0;
            if going {
                seen = Some(v);
            }
            going
        },
    );
    let v = seen.expect("a status");
    assert_eq!(v["active_run"]["pid"].as_u64(), Some(child.id() as u64), "{v}");
    let on_wire = v["on_wire"].as_u64().unwrap();
    assert!(on_wire <= 2, "at most --concurrency on the wire: {v}");
    assert_eq!(v["active_run"]["on_wire"], on_wire);
    let text = status(&dir, false).stdout;
    assert!(
        text.contains(&format!("running     yes: run 1, pid {}, since ", child.id())),
        "{text}"
    );
    assert!(text.contains("  on wire   "), "{text}");

    assert!(wait_for(&mut child, DEADLINE).success());
    let v: Value = serde_json::from_str(&status(&dir, true).stdout).unwrap();
    assert!(v["active_run"].is_null(), "{v}");
    assert_eq!(v["on_wire"], 0);
    assert!(status(&dir, false).stdout.contains("running     no"));
}
