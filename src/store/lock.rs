//! One run at a time per checkpoint.
//!
//! Two processes sending the same job would each take the other's in-flight rows for a dead
//! run's leftovers and send them again: paid twice. A run therefore holds an exclusive advisory
//! lock on a sidecar file (`<db>.lock`) from before it touches the checkpoint until it exits;
//! the operating system releases it when the process dies, however it dies. The lock is on a
//! separate file, not the database: closing any descriptor of a file drops the process's POSIX
//! locks on it, which would silently undo SQLite's own locks. `status` and `export` only read
//! and take no lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// Held for as long as the run lasts; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    path: PathBuf,
}

impl RunLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Takes the run lock of the checkpoint at `db`, or says who holds it.
pub fn lock_run(db: &Path) -> anyhow::Result<RunLock> {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    let path = PathBuf::from(name);
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options
        .open(&path)
        .map_err(|e| {
            anyhow::anyhow!(
                "{}: cannot create the run lock beside the checkpoint ({e}); check that the checkpoint's directory exists and is writable",
                path.display()
            )
        })?;
    match file.try_lock() {
        Ok(()) => Ok(RunLock { _file: file, path }),
        Err(TryLockError::WouldBlock) => anyhow::bail!(
            "{}: another promptmill process is running this job; wait for it to finish (or stop it) before running it again",
            db.display()
        ),
        Err(TryLockError::Error(e)) => anyhow::bail!("{}: cannot lock: {e}", path.display()),
    }
}

/// Whether a process is running the job of the checkpoint at `db` now (holds its run lock).
/// Creates nothing: with no lock file there is no run. Used by `status` to tell rows a live run
/// has in flight from rows a dead run left claimed (which the next run sends again).
pub fn run_is_live(db: &Path) -> bool {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    let Ok(file) = OpenOptions::new().read(true).open(PathBuf::from(name)) else {
        return false;
    };
    match file.try_lock_shared() {
        Ok(()) => false, // released when `file` drops, at the end of this function
        Err(TryLockError::WouldBlock) => true,
        Err(TryLockError::Error(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_checkpoint_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        let first = lock_run(&db).unwrap();
        let err = lock_run(&db).unwrap_err().to_string();
        assert!(
            err.contains("another promptmill process is running this job"),
            "{err}"
        );
        drop(first);
        lock_run(&db).unwrap();
    }

    #[test]
    fn a_run_is_live_only_while_its_lock_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        assert!(!run_is_live(&db), "no lock file, no run");
        let held = lock_run(&db).unwrap();
        assert!(run_is_live(&db));
        drop(held);
        assert!(!run_is_live(&db));
        lock_run(&db).expect("probing did not keep the lock");
    }
}
