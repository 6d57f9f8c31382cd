//! The files promptmill writes: never through a link planted in a shared directory (issue 10,
//! item 5), never over a file the command also reads or writes under another flag (item 6),
//! never over an existing file no checkpoint of the job wrote (item 7).

use std::process::Command;

use crate::util::*;

const PRECIOUS: &str = "precious bytes that are not promptmill's\n";

/// `cmd`, run by a shell that first plants a link to `victim` at `.NAME.promptmill-tmp-PID`
/// (the predictable temporary name earlier versions used, PID being the shell's, which `exec`
/// hands to promptmill).
fn planting_old_temp_link(cmd: &Command, name: &str, victim: &str) -> Command {
    let script = format!("ln -s {victim} .{name}.promptmill-tmp-$$ && exec \"$0\" \"$@\"");
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(script)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    if let Some(cwd) = cmd.get_current_dir() {
        sh.current_dir(cwd);
    }
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => sh.env(key, v),
            None => sh.env_remove(key),
        };
    }
    sh
}

#[cfg(unix)]
fn mode(dir: &Dir, name: &str) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(dir.path(name))
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

#[cfg(unix)]
#[test]
fn a_link_planted_at_the_old_temporary_name_does_not_make_run_or_summary_overwrite_its_target() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 5);
    dir.write("victim", PRECIOUS);
    dir.write("victim2", PRECIOUS);
    std::os::unix::fs::symlink("victim2", dir.path("s.json")).unwrap();
    let mock = Mock::start(&[]);
    let mut job = run_job(&dir, &mock);
    job.args(["--summary", "s.json"]);
    let out = run(&mut planting_old_temp_link(&job, "out.jsonl", "victim"));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(dir.read("victim"), PRECIOUS, "the output went through no link");
    assert_eq!(dir.read("victim2"), PRECIOUS, "the summary went through no link");
    assert_eq!(dir.jsonl("out.jsonl").len(), 5);
    assert!(dir.read("s.json").contains("\"outcome\""));
    assert!(
        !dir.path("s.json").is_symlink(),
        "the link was replaced, not followed"
    );
    assert_eq!((mode(&dir, "out.jsonl"), mode(&dir, "s.json")), (0o600, 0o600));
    let litter: Vec<String> = std::fs::read_dir(dir.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".promptmill-tmp"))
        .collect();
    assert!(litter.is_empty(), "no temporary file is left: {litter:?}");
}

#[cfg(unix)]
#[test]
fn a_link_planted_at_the_old_temporary_name_does_not_make_export_overwrite_its_target() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 5);
    let mock = Mock::start(&[]);
    let out = run(&mut run_job(&dir, &mock));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    dir.write("victim", PRECIOUS);
    let mut export = promptmill(&dir);
    export.args(["export", "out.jsonl.promptmill.db", "-o", "x.jsonl"]);
    let out = run(&mut planting_old_temp_link(&export, "x.jsonl", "victim"));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(dir.read("victim"), PRECIOUS);
    assert_eq!(dir.jsonl("x.jsonl").len(), 5);
    assert_eq!(mode(&dir, "x.jsonl"), 0o600);
}

/// `run_job` with `extra`, refused before anything is written or sent: exit 1, `message` in the
/// error, every file as it was, no request at the server.
fn refused_with_files_unchanged(dir: &Dir, extra: &[&str], message: &str) {
    let mock = Mock::start(&[]);
    let before = snapshot(dir);
    let out = run(run_job(dir, &mock).args(extra));
    assert_eq!(out.code(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(message),
        "expected `{message}` in: {}",
        out.stderr
    );
    assert_eq!(snapshot(dir), before, "no file was created, changed or removed");
    assert_eq!(mock.stats()["requests"], 0, "nothing was sent");
}

/// Every file in the directory, with its bytes.
fn snapshot(dir: &Dir) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir.root())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let bytes = std::fs::read(e.path()).unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn a_summary_that_is_the_input_is_refused() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    refused_with_files_unchanged(
        &dir,
        &["--summary", "./p.jsonl"],
        "--summary: is the input file (./p.jsonl); it would be overwritten",
    );
}

#[test]
fn a_summary_that_is_the_checkpoint_is_refused() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    let mock = Mock::start(&[]);
    let first = run(&mut run_job(&dir, &mock));
    assert_eq!(first.code(), 0, "{}", first.stderr);
    refused_with_files_unchanged(
        &dir,
        &["--summary", "out.jsonl.promptmill.db"],
        "--summary: is the same file as --db (out.jsonl.promptmill.db and ",
    );
    let resume = run(promptmill(&dir).args([
        "resume",
        "out.jsonl.promptmill.db",
        "--summary",
        "out.jsonl.promptmill.db",
    ]));
    assert_eq!(resume.code(), 1, "{}", resume.stderr);
    assert!(
        resume
            .stderr
            .contains("--summary: is the same file as the checkpoint"),
        "{}",
        resume.stderr
    );
}

#[test]
fn a_summary_that_is_the_output_is_refused() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    refused_with_files_unchanged(
        &dir,
        &["--summary", "out.jsonl"],
        "--summary: is the same file as --output (out.jsonl and ",
    );
}

#[test]
fn a_hard_link_of_the_input_as_the_output_is_refused() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    std::fs::hard_link(dir.path("p.jsonl"), dir.path("out.jsonl")).unwrap();
    refused_with_files_unchanged(&dir, &[], "--output: is the input file (");
    // `export` checks its target the same way.
    std::fs::remove_file(dir.path("out.jsonl")).unwrap();
    let mock = Mock::start(&[]);
    assert_eq!(run(&mut run_job(&dir, &mock)).code(), 0);
    std::fs::hard_link(dir.path("p.jsonl"), dir.path("copy.jsonl")).unwrap();
    let before = dir.read("p.jsonl");
    for (target, message) in [
        ("copy.jsonl", "--output: is the input file ("),
        (
            "out.jsonl.promptmill.db",
            "--output: is the same file as the checkpoint (",
        ),
    ] {
        let export = run(promptmill(&dir).args([
            "export",
            "out.jsonl.promptmill.db",
            "-o",
            target,
            "--format",
            "jsonl",
        ]));
        assert_eq!(export.code(), 1, "{}", export.stderr);
        assert!(export.stderr.contains(message), "{}", export.stderr);
    }
    assert_eq!(dir.read("p.jsonl"), before);
}

const NOT_OURS: &str =
    "exists and was not written by this job; pass --overwrite to replace it (or choose another -o)";

#[test]
fn an_existing_output_no_checkpoint_wrote_is_refused_unless_overwrite() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    dir.write("out.jsonl", PRECIOUS);
    refused_with_files_unchanged(&dir, &[], &format!("out.jsonl {NOT_OURS}"));
    assert!(
        !dir.exists("out.jsonl.promptmill.db"),
        "no checkpoint is left behind"
    );
    let mock = Mock::start(&[]);
    let out = run(run_job(&dir, &mock).arg("--overwrite"));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(dir.jsonl("out.jsonl").len(), 3);
    // The job wrote it now: running the same command again needs no flag.
    let again = run(&mut run_job(&dir, &mock));
    assert_eq!(again.code(), 0, "{}", again.stderr);
}

#[test]
fn restart_may_replace_an_existing_output() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    dir.write("out.jsonl", PRECIOUS);
    let mock = Mock::start(&[]);
    let out = run(run_job(&dir, &mock).arg("--restart"));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(dir.jsonl("out.jsonl").len(), 3);
}

#[test]
fn an_output_the_checkpoint_does_not_record_is_refused_on_resume() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    let mock = Mock::start(&[]);
    let first = run(run_job(&dir, &mock).args(["--db", "job.db"]));
    assert_eq!(first.code(), 0, "{}", first.stderr);
    dir.write("other.jsonl", PRECIOUS);
    let resume = run(promptmill(&dir).args(["resume", "job.db", "-o", "other.jsonl"]));
    assert_eq!(resume.code(), 1, "{}", resume.stderr);
    assert!(
        resume.stderr.contains(&format!("other.jsonl {NOT_OURS}")),
        "{}",
        resume.stderr
    );
    assert_eq!(dir.read("other.jsonl"), PRECIOUS);
    // The job's own output, replaced behind its back by another file, is not the job's either.
    std::fs::remove_file(dir.path("out.jsonl")).unwrap();
    dir.write("out.jsonl", PRECIOUS);
    let resume = run(promptmill(&dir).args(["resume", "job.db"]));
    assert_eq!(resume.code(), 1, "{}", resume.stderr);
    assert_eq!(dir.read("out.jsonl"), PRECIOUS);
    let resume = run(promptmill(&dir).args(["resume", "job.db", "--overwrite"]));
    assert_eq!(resume.code(), 0, "{}", resume.stderr);
    assert_eq!(dir.jsonl("out.jsonl").len(), 3);
    assert_eq!(
        dir.read("other.jsonl"),
        PRECIOUS,
        "the refused -o was not recorded"
    );
}

#[test]
fn export_replaces_only_its_own_exports_unless_overwrite() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    let mock = Mock::start(&[]);
    assert_eq!(run(&mut run_job(&dir, &mock)).code(), 0);
    let export = |extra: &[&str]| {
        run(promptmill(&dir)
            .args(["export", "out.jsonl.promptmill.db", "-o", "x.jsonl"])
            .args(extra))
    };
    dir.write("x.jsonl", PRECIOUS);
    let refused = export(&[]);
    assert_eq!(refused.code(), 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&format!("x.jsonl {NOT_OURS}")),
        "{}",
        refused.stderr
    );
    assert_eq!(dir.read("x.jsonl"), PRECIOUS);
    assert_eq!(export(&["--overwrite"]).code(), 0);
    assert_eq!(dir.jsonl("x.jsonl").len(), 3);
    let again = export(&[]);
    assert_eq!(
        again.code(),
        0,
        "an export the job wrote is replaced: {}",
        again.stderr
    );
    // The run's own output may be exported over too.
    let out = run(promptmill(&dir).args(["export", "out.jsonl.promptmill.db", "-o", "out.jsonl"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
}

#[cfg(unix)]
#[test]
fn a_link_planted_at_the_output_is_refused_and_replaced_not_followed_with_overwrite() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    dir.write("victim", PRECIOUS);
    std::os::unix::fs::symlink("victim", dir.path("out.jsonl")).unwrap();
    refused_with_files_unchanged(&dir, &[], NOT_OURS);
    let mock = Mock::start(&[]);
    let out = run(run_job(&dir, &mock).arg("--overwrite"));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(dir.read("victim"), PRECIOUS);
    assert!(!dir.path("out.jsonl").is_symlink());
    std::os::unix::fs::symlink("victim", dir.path("x.jsonl")).unwrap();
    let export = run(promptmill(&dir).args(["export", "out.jsonl.promptmill.db", "-o", "x.jsonl"]));
    assert_eq!(export.code(), 1, "{}", export.stderr);
    let export = run(promptmill(&dir).args([
        "export",
        "out.jsonl.promptmill.db",
        "-o",
        "x.jsonl",
        "--overwrite",
    ]));
    assert_eq!(export.code(), 0, "{}", export.stderr);
    assert_eq!(dir.read("victim"), PRECIOUS);
    assert_eq!(dir.jsonl("x.jsonl").len(), 3);
}
