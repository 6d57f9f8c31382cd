//! Disk trouble: a checkpoint that cannot be written, is damaged, or is not a promptmill
//! database. Each is a clear error naming the file, exit code 1, and not one request sent.

use std::path::Path;
use std::process::Command;

use crate::util::*;

/// A checkpoint `out.jsonl.promptmill.db` holding 2,000 pending rows: its first run was
/// stopped by a 401 on its first request, so any run that got past the checkpoint would send
/// them.
fn pending_checkpoint(dir: &Dir, as_user: impl Fn(&mut Command) -> &mut Command) {
    prompts_jsonl(dir, "p.jsonl", 2000);
    let refusing = Mock::start(&["--unauthorized-after", "0"]);
    let out = run(as_user(&mut run_job(dir, &refusing)));
    assert_eq!(out.code(), 4, "{}", out.stderr);
    assert_eq!(dir.jsonl("out.jsonl").len(), 2000);
}

/// Runs the job's command again against a fresh mock; asserts it fails naming `file` with
/// `what`, and that the mock received nothing.
fn refused_before_sending(cmd: impl Fn(&Mock) -> Command, file: &str, what: &str) {
    let mock = Mock::start(&[]);
    let out = run(&mut cmd(&mock));
    assert_eq!(out.code(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("promptmill: error: {file}: {what}")),
        "expected `{file}: {what}` in: {}",
        out.stderr
    );
    assert_eq!(mock.stats()["requests"], 0, "nothing was sent");
}

/// Where `run_job` puts its checkpoint, as it names it in messages.
fn default_db(dir: &Dir) -> String {
    dir.path("out.jsonl.promptmill.db").display().to_string()
}

fn damage(path: &Path, at: u64, bytes: &[u8]) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(bytes).unwrap();
}

/// Bytes that look random, without an RNG: a multiplicative hash of the index.
fn noise(n: usize) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

#[test]
fn a_file_of_random_bytes_is_not_a_checkpoint() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 5);
    dir.write("out.jsonl.promptmill.db", noise(8192));
    refused_before_sending(
        |m| run_job(&dir, m),
        &default_db(&dir),
        "not a promptmill checkpoint database (file is not a database)",
    );
    assert_eq!(
        std::fs::read(dir.path("out.jsonl.promptmill.db")).unwrap(),
        noise(8192)
    );
}

#[test]
fn another_programs_sqlite_database_is_not_a_checkpoint_and_is_left_alone() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 5);
    let db = dir.path("theirs.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');")
        .unwrap();
    let before = std::fs::read(&db).unwrap();
    refused_before_sending(
        |m| {
            let mut cmd = run_job(&dir, m);
            cmd.args(["--db", "theirs.db"]);
            cmd
        },
        "theirs.db",
        "not a promptmill checkpoint database (it holds other tables)",
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "their database was not touched"
    );
}

#[test]
fn a_truncated_checkpoint_is_damaged() {
    let dir = Dir::new();
    pending_checkpoint(&dir, |c| c);
    let db = dir.path("out.jsonl.promptmill.db");
    let len = std::fs::metadata(&db).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    refused_before_sending(
        |m| run_job(&dir, m),
        &default_db(&dir),
        "the checkpoint database is damaged (database disk image is malformed)",
    );
}

#[test]
fn a_checkpoint_with_an_overwritten_page_is_damaged_for_run_and_resume() {
    let dir = Dir::new();
    pending_checkpoint(&dir, |c| c);
    let db = dir.path("out.jsonl.promptmill.db");
    // Overwrite one page of the rows table (the one holding row 1000's prompt), well past
    // the header, which still reads fine.
    let bytes = std::fs::read(&db).unwrap();
    let needle = b"Say something about item 1000.";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("row 1000 is in the file") as u64;
    damage(&db, at / 4096 * 4096, &noise(4096));
    let damaged = "the checkpoint database is damaged (database disk image is malformed)";
    refused_before_sending(|m| run_job(&dir, m), &default_db(&dir), damaged);
    refused_before_sending(
        |m| {
            let mut cmd = promptmill(&dir);
            cmd.args(["resume", "out.jsonl.promptmill.db", "--base-url", &m.url]);
            cmd
        },
        "out.jsonl.promptmill.db",
        damaged,
    );
}

#[test]
fn a_checkpoint_path_that_is_a_directory_is_refused() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 5);
    std::fs::create_dir(dir.path("out.jsonl.promptmill.db")).unwrap();
    refused_before_sending(
        |m| run_job(&dir, m),
        &default_db(&dir),
        "is a directory, not a checkpoint database",
    );
}

#[test]
fn a_checkpoint_path_under_a_regular_file_is_refused() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 5);
    dir.write("not-a-dir", "x");
    refused_before_sending(
        |m| {
            let mut cmd = run_job(&dir, m);
            cmd.args(["--db", "not-a-dir/c.db"]);
            cmd
        },
        "not-a-dir/c.db",
        "cannot create the checkpoint (Not a directory",
    );
}

/// Runs promptmill as an ordinary user: as root (CI containers) permission bits do not stop
/// writes, so the child drops to `nobody`, and the test directory is handed to it. The binary is
/// copied to a directory `nobody` can reach (the checkout may sit under a private directory).
#[cfg(unix)]
fn unprivileged(dir: &Dir) -> impl Fn(&mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    const NOBODY: u32 = 65534;
    let mut copy = None;
    if root {
        for entry in walk(dir.root()) {
            std::os::unix::fs::chown(&entry, Some(NOBODY), Some(NOBODY)).unwrap();
        }
        let place = tempfile::tempdir().unwrap();
        set_mode(place.path(), 0o755);
        let bin = place.path().join("promptmill");
        std::fs::copy(env!("CARGO_BIN_EXE_promptmill"), &bin).unwrap();
        set_mode(&bin, 0o755);
        copy = Some((place, bin));
    }
    move |cmd: &mut Command| {
        if let Some((_, bin)) = &copy {
            // The same command, with the reachable copy of the binary, as `nobody`.
            let mut same = Command::new(bin);
            same.args(cmd.get_args());
            if let Some(cwd) = cmd.get_current_dir() {
                same.current_dir(cwd);
            }
            for (key, value) in cmd.get_envs() {
                match value {
                    Some(v) => same.env(key, v),
                    None => same.env_remove(key),
                };
            }
            same.uid(NOBODY).gid(NOBODY);
            *cmd = same;
        }
        cmd
    }
}

#[cfg(unix)]
fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut all = vec![root.to_path_buf()];
    for entry in std::fs::read_dir(root).unwrap() {
        all.push(entry.unwrap().path());
    }
    all
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(unix)]
#[test]
fn a_checkpoint_in_a_read_only_directory_is_refused_before_sending() {
    let dir = Dir::new();
    let as_user = unprivileged(&dir);
    pending_checkpoint(&dir, &as_user);
    // The checkpoint was closed cleanly, so its -wal and -shm files are gone; SQLite must
    // create them again beside it, which a read-only directory forbids.
    assert!(!dir.exists("out.jsonl.promptmill.db-wal"));
    set_mode(dir.root(), 0o500);
    let cannot_write = "cannot write the checkpoint database (attempt to write a readonly database)";
    refused_before_sending(
        |m| {
            let mut cmd = run_job(&dir, m);
            as_user(&mut cmd);
            cmd
        },
        &default_db(&dir),
        cannot_write,
    );
    let db = dir.path("out.jsonl.promptmill.db");
    let db = db.to_str().unwrap();
    refused_before_sending(
        |m| {
            let mut cmd = promptmill(&dir);
            cmd.args(["resume", db, "--base-url", &m.url]);
            as_user(&mut cmd);
            cmd
        },
        db,
        cannot_write,
    );
    // A new job whose checkpoint would go there: refused at the checkpoint, the first file made.
    refused_before_sending(
        |m| {
            let mut cmd = run_job(&dir, m);
            cmd.args(["--db", "new.db"]);
            as_user(&mut cmd);
            cmd
        },
        "new.db",
        "cannot create the checkpoint (Permission denied",
    );
    set_mode(dir.root(), 0o700);
}

/// The output's directory cannot be written: the run says so before sending anything, rather
/// than after every request has been paid for.
#[cfg(unix)]
#[test]
fn an_output_directory_that_cannot_be_written_is_refused_before_sending() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 5);
    std::fs::create_dir(dir.path("results")).unwrap();
    let as_user = unprivileged(&dir);
    set_mode(&dir.path("results"), 0o500);
    refused_before_sending(
        |m| {
            let mut cmd = promptmill(&dir);
            cmd.args([
                "run",
                "p.jsonl",
                "-o",
                "results/out.jsonl",
                "--db",
                "job.db",
                "--model",
                "m",
                "--base-url",
                &m.url,
            ]);
            as_user(&mut cmd);
            cmd
        },
        &dir.path("results/out.jsonl").display().to_string(),
        "cannot write the output there (Permission denied",
    );
    set_mode(&dir.path("results"), 0o700);
}
