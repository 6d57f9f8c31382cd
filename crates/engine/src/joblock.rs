//! One job, one process. Two processes sending the same job would each take the other's
//! in-flight rows for a dead run's leftovers and send them again: paid twice. A run therefore
//! holds two locks, from before it sends anything until it has written everything:
//!
//! - an exclusive `flock` on the checkpoint database file itself, so that every path reaching
//!   that file (the same path, a symlink, a hard link) meets the same lock. On Linux `flock`
//!   locks are independent of the POSIX (`fcntl`) locks SQLite takes; the one rule is that this
//!   descriptor stays open until the process's SQLite connections to the file are closed,
//!   because closing *any* descriptor of a file drops the process's POSIX locks on it (the
//!   `RunLock` is therefore dropped after the `Store`). On NFS, where `flock` is emulated with
//!   POSIX locks, keep checkpoints on a local disk.
//! - a lock file beside the output, `.NAME.promptmill-lock` in the output's canonical
//!   directory, holding the pid and start time of its holder and `flock`ed by it: a copy of the
//!   checkpoint that writes the same output meets it. It is created exclusively (see `files`)
//!   and renamed into place without replacing another; a stale one (its holder died) is told by
//!   its lock being free, not by its existence, and replaced. It is removed on a clean exit.
//!
//! `status` and `export` only read and take no lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use promptmill_core::files;
use promptmill_core::paths;

/// Held for as long as the run lasts; dropping it releases both locks and removes the output's
/// lock file.
#[derive(Debug)]
pub struct RunLock {
    _db: File,
    db: PathBuf,
    output: Option<OutputLock>,
}

#[derive(Debug)]
struct OutputLock {
    file: File,
    path: PathBuf,
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Removed while still locked, and only if the name is still ours.
        if same_inode(&self.file, &self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Takes the run lock of the checkpoint at `db` (creating an empty database file, mode 0600,
/// when there is none yet), or says who holds it.
pub fn lock_run(db: &Path) -> anyhow::Result<RunLock> {
    let file = open_db(db)?;
    match file.try_lock() {
        Ok(()) => Ok(RunLock {
            _db: file,
            db: db.to_path_buf(),
            output: None,
        }),
        Err(TryLockError::WouldBlock) => Err(Busy::new(db, flock_holder(&file)).into()),
        Err(TryLockError::Error(e)) => anyhow::bail!("{}: cannot lock the checkpoint: {e}", db.display()),
    }
}

impl RunLock {
    /// Locks the checkpoint file again after `--restart` replaced it with a new one.
    pub fn renew(&mut self) -> anyhow::Result<()> {
        let output = self.output.take();
        let mut fresh = lock_run(&self.db)?;
        fresh.output = output;
        *self = fresh;
        Ok(())
    }

    /// Locks the output the run writes (releasing the lock of one locked before).
    pub fn lock_output(&mut self, output: &Path) -> anyhow::Result<()> {
        // Standard output (`-o -`) is no file: nothing another process could share.
        if output == Path::new(crate::output::OutputSpec::STDOUT) {
            return Ok(());
        }
        self.output = None;
        self.output = Some(lock_output(output)?);
        Ok(())
    }
}

/// Another process runs the job: found at `path` (the checkpoint, or the output it writes);
/// `holder` is "pid N, started T" when known.
#[derive(Debug, thiserror::Error)]
#[error("{}: {} is running this job; wait for it to finish (or stop it) before running it again", .path.display(), who(.holder.as_deref()))]
pub struct Busy {
    pub path: PathBuf,
    pub holder: Option<String>,
}

impl Busy {
    fn new(path: &Path, holder: Option<String>) -> Busy {
        Busy {
            path: path.to_path_buf(),
            holder,
        }
    }
}

fn who(holder: Option<&str>) -> String {
    match holder {
        Some(h) => format!("another promptmill ({h})"),
        None => "another promptmill".to_string(),
    }
}

fn open_db(db: &Path) -> anyhow::Result<File> {
    let cannot = |e: std::io::Error| {
        anyhow::anyhow!(
            "{}: cannot create the checkpoint ({e}); check that its directory exists and is writable",
            db.display()
        )
    };
    // Twice at most: a second `AlreadyExists` after `NotFound` is a link to nowhere, not a race.
    for _ in 0..2 {
        match File::open(db) {
            Ok(file) => return Ok(file),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => return Err(cannot(e)),
            Err(e) => anyhow::bail!("{}: cannot open the checkpoint: {e}", db.display()),
        }
        let mut options = OpenOptions::new();
        options.read(true).write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(db) {
            Ok(file) => return Ok(file),
            // Another process made it meanwhile: open theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(cannot(e)),
        }
    }
    anyhow::bail!(
        "{}: is a symbolic link to a file that does not exist; remove it or give --db another path",
        db.display()
    )
}

/// Where the lock file of `output` is: beside it, in its canonical directory.
pub fn lock_file_of(output: &Path) -> PathBuf {
    let canonical = paths::canonical(output);
    let name = canonical
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    canonical.with_file_name(format!(".{name}.promptmill-lock"))
}

/// The suffix of a lock file being made, before it is renamed into place.
const LOCK_TMP_SUFFIX: &str = ".promptmill-lock-tmp";

fn lock_output(output: &Path) -> anyhow::Result<OutputLock> {
    let path = lock_file_of(output);
    let not_writable = |e: std::io::Error| {
        anyhow::anyhow!(
            "{}: cannot write the output there ({e}); nothing was sent. Make its directory writable, or give --output another path",
            output.display()
        )
    };
    files::remove_stale(&path, LOCK_TMP_SUFFIX);
    let started = humantime::format_rfc3339_seconds(own_start());
    // A few rounds at most: each one loses only to a process that took or dropped the lock
    // in between.
    for _ in 0..5 {
        let mut mine = files::create_beside(&path, LOCK_TMP_SUFFIX).map_err(not_writable)?;
        writeln!(mine, "pid {}, started {started}", std::process::id()).map_err(not_writable)?;
        mine.as_file()
            .try_lock()
            .map_err(|e| anyhow::anyhow!("{}: cannot lock: {e}", path.display()))?;
        let mine = match mine.persist_noclobber(&path) {
            Ok(file) => return Ok(OutputLock { file, path }),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => e.file,
            Err(e) => return Err(not_writable(e.error)),
        };
        let theirs = match files::open_no_follow(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => anyhow::bail!("{}: cannot read the run lock: {e}", path.display()),
        };
        match theirs.try_lock() {
            Err(TryLockError::WouldBlock) => {
                let holder = read_holder(theirs);
                return Err(Busy::new(output, holder).into());
            }
            Err(TryLockError::Error(e)) => anyhow::bail!("{}: cannot lock: {e}", path.display()),
            // Its holder is gone. Replace it, unless another process did so first.
            Ok(()) if same_inode(&theirs, &path) => {
                let file = files::persist(mine, &path)?;
                return Ok(OutputLock { file, path });
            }
            Ok(()) => continue,
        }
    }
    Err(Busy::new(output, None).into())
}

fn read_holder(mut file: File) -> Option<String> {
    let mut text = String::new();
    (&mut file).take(200).read_to_string(&mut text).ok()?;
    let line = text.lines().next()?.trim();
    (line.starts_with("pid ")).then(|| line.to_string())
}

/// Who holds the `flock` on `file`: "pid N, started T", from the kernel's table of locks
/// (Linux; elsewhere unknown). The checkpoint cannot tell: read through a hard link, its
/// newest pages are in the other name's WAL.
#[cfg(target_os = "linux")]
fn flock_holder(file: &File) -> Option<String> {
    let pid = flock_pid(&file.metadata().ok()?).ok()??;
    Some(match process_start(pid) {
        Some(t) => format!("pid {pid}, started {}", humantime::format_rfc3339_seconds(t)),
        None => format!("pid {pid}"),
    })
}

/// The pid holding an exclusive `flock` on the file `meta` describes, from the kernel's table of
/// locks: `Ok(None)` when nobody holds one, `Err` when the table cannot be read.
#[cfg(target_os = "linux")]
fn flock_pid(meta: &std::fs::Metadata) -> std::io::Result<Option<u32>> {
    use std::os::unix::fs::MetadataExt;
    let dev = meta.dev();
    let id = format!("{:02x}:{:02x}:{}", libc::major(dev), libc::minor(dev), meta.ino());
    let locks = std::fs::read_to_string("/proc/locks")?;
    // `1: FLOCK  ADVISORY  WRITE 15186 fe:00:5816331 0 EOF`; waiters' lines carry `->`.
    Ok(locks.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.len() >= 6 && f[1] == "FLOCK" && f[3] == "WRITE" && f[5] == id)
            .then(|| f[4].parse().ok())
            .flatten()
    }))
}

/// Whether a process is running the job of the checkpoint at `db` now (holds its lock). Used by
/// `status` to tell rows a live run has in flight from rows a dead run left claimed (which the
/// next run sends again). Takes no lock where the kernel's table of locks can be read (Linux),
/// so it can never make a starting run see a holder; elsewhere it takes a shared lock for an
/// instant. Opens the file only there: call it before opening the checkpoint with SQLite, since
/// closing any descriptor of a file drops the process's POSIX locks on it.
pub fn run_is_live(db: &Path) -> bool {
    #[cfg(target_os = "linux")]
    if let Ok(meta) = std::fs::metadata(db) {
        if let Ok(pid) = flock_pid(&meta) {
            return pid.is_some();
        }
    }
    let Ok(file) = File::open(db) else {
        return false;
    };
    match file.try_lock_shared() {
        Ok(()) => false, // released when `file` drops, at the end of this function
        Err(TryLockError::WouldBlock) => true,
        Err(TryLockError::Error(_)) => false,
    }
}

/// When this process started (when its lock was taken, where that cannot be read).
fn own_start() -> std::time::SystemTime {
    #[cfg(target_os = "linux")]
    if let Some(t) = process_start(std::process::id()) {
        return t;
    }
    std::time::SystemTime::now()
}

#[cfg(not(target_os = "linux"))]
fn flock_holder(_file: &File) -> Option<String> {
    None
}

/// When process `pid` started: boot time plus its start in clock ticks (`/proc/PID/stat`).
#[cfg(target_os = "linux")]
fn process_start(pid: u32) -> Option<std::time::SystemTime> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces, hence the last `)`): field 22 of
    // the whole line, `starttime`, is the 20th.
    let ticks: u64 = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()?;
    let boot: u64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())?;
    // SAFETY: sysconf has no preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .ok()
        .filter(|&h| h > 0)?;
    let secs = boot.checked_add(ticks / hz)?;
    std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(secs))
}

fn same_inode(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::symlink_metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}

/// Whether a process with this id exists (`status` asks it of a run's recorded pid).
#[cfg(unix)]
pub fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 checks that the process exists and sends nothing.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(not(unix))]
pub fn process_alive(_pid: u32) -> bool {
    true // cannot tell: take it as running
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
        assert!(err.contains("another promptmill"), "{err}");
        drop(first);
        lock_run(&db).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_run_is_live_only_while_its_lock_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        assert!(!run_is_live(&db), "no checkpoint, no run");
        let held = lock_run(&db).unwrap();
        assert!(run_is_live(&db));
        drop(held);
        assert!(!run_is_live(&db));
        lock_run(&db).expect("asking took no lock");
    }

    #[test]
    fn a_dangling_link_at_the_checkpoint_is_an_error_not_a_loop() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &db).unwrap();
        let err = lock_run(&db).unwrap_err().to_string();
        assert!(
            err.contains("is a symbolic link to a file that does not exist"),
            "{err}"
        );
        assert!(!dir.path().join("nowhere").exists(), "the link was not followed");
    }

    #[test]
    fn a_hard_link_to_the_checkpoint_meets_the_same_lock() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        let _first = lock_run(&db).unwrap();
        let link = dir.path().join("link.db");
        std::fs::hard_link(&db, &link).unwrap();
        assert!(lock_run(&link).is_err());
    }

    #[test]
    fn the_output_lock_names_its_holder_and_leaves_no_file_behind() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.jsonl");
        let mut first = lock_run(&dir.path().join("a.db")).unwrap();
        first.lock_output(&out).unwrap();
        let mut second = lock_run(&dir.path().join("b.db")).unwrap();
        let err = second.lock_output(&out).unwrap_err().to_string();
        let me = format!("another promptmill (pid {}, started ", std::process::id());
        assert!(err.contains(&me), "{err}");
        assert!(err.contains("is running this job"), "{err}");
        drop(first);
        assert!(!lock_file_of(&out).exists(), "a clean exit leaves no lock file");
        second.lock_output(&out).unwrap();
    }

    #[test]
    fn a_stale_lock_file_of_a_dead_process_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.jsonl");
        std::fs::write(lock_file_of(&out), "pid 1, started 2000-01-01T00:00:00Z\n").unwrap();
        let mut lock = lock_run(&dir.path().join("a.db")).unwrap();
        lock.lock_output(&out).unwrap();
        let text = std::fs::read_to_string(lock_file_of(&out)).unwrap();
        assert!(
            text.starts_with(&format!("pid {}, ", std::process::id())),
            "{text}"
        );
    }
}
