//! Creating files: every file promptmill writes for the user (the output, `--summary`, an
//! export, the Batch API's spooled downloads, the writability probe, the run's lock file) is
//! created here, exclusively, under an unpredictable name beside its target (`.NAME.XXXXXX` +
//! a suffix saying what it is), with mode 0600, and renamed into place when it is complete. A
//! link or file planted at a predictable name is therefore never opened, let alone truncated,
//! and a reader never sees half a file. The checkpoint database itself is SQLite's (see
//! `store`); what is written into files is left to their owners.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use tempfile::NamedTempFile;

/// The suffix of a file being written that is not in place yet: leftovers of a killed process
/// are recognised by it (see [`remove_stale`]).
pub const TEMP_SUFFIX: &str = ".promptmill-tmp";

/// The directory `path` is in (`.` for a bare file name).
pub fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// The prefix of every file made beside `path`: `.NAME.`.
fn prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.")
}

/// A new, empty file beside `path` (`.NAME.XXXXXX{suffix}`), created exclusively with mode
/// 0600, removed when dropped unless persisted, and `flock`ed while this process has it open
/// (so that [`remove_stale`] in another process leaves it alone).
pub fn create_beside(path: &Path, suffix: &str) -> std::io::Result<NamedTempFile> {
    let prefix = prefix(path);
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(suffix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o600));
    }
    let tmp = builder.tempfile_in(dir_of(path))?;
    // A lock that cannot be taken only weakens the cleanup of another process's leftovers.
    let _ = tmp.as_file().try_lock();
    Ok(tmp)
}

/// A temporary file for the contents of `path` (see [`create_beside`]).
pub fn temp_for(path: &Path) -> anyhow::Result<NamedTempFile> {
    create_beside(path, TEMP_SUFFIX)
        .with_context(|| format!("could not create a temporary file beside {}", path.display()))
}

/// Renames a complete temporary file over `path` (replacing a file or link there, never writing
/// through it).
pub fn persist(tmp: NamedTempFile, path: &Path) -> anyhow::Result<File> {
    tmp.persist(path)
        .map_err(|e| anyhow::Error::from(e.error))
        .with_context(|| format!("could not move {} into place", path.display()))
}

/// Writes `bytes` to `path`: a new file, renamed over whatever was there.
pub fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut tmp = temp_for(path)?;
    tmp.write_all(bytes)
        .with_context(|| format!("could not write {}", path.display()))?;
    persist(tmp, path)?;
    Ok(())
}

/// Checks that a file can be created beside `path` by creating and removing one; `path` itself
/// is never opened.
pub fn check_creatable(path: &Path) -> std::io::Result<()> {
    create_beside(path, TEMP_SUFFIX)?.close()
}

/// Removes the files [`create_beside`] made beside `path` whose names end in `suffix` and that
/// a killed process left behind: ours (same owner), regular files, and not locked by a live
/// process.
pub fn remove_stale(path: &Path, suffix: &str) {
    let prefix = prefix(path);
    let Ok(entries) = std::fs::read_dir(dir_of(path)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !(name.starts_with(&prefix) && name.ends_with(suffix)) {
            continue;
        }
        // Then the random part: six or more plain characters (up to the suffix or a dot).
        let rest = &name[prefix.len()..];
        let random = rest.split('.').next().unwrap_or_default();
        if random.len() < 6
            || !random.bytes().all(|b| b.is_ascii_alphanumeric())
            || rest.len() < random.len() + suffix.len()
        {
            continue;
        }
        if is_stale(&entry.path()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A regular file of ours that no process holds locked.
fn is_stale(path: &Path) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if !meta.file_type().is_file() || !owned_by_us(&meta) {
        return false;
    }
    let Ok(file) = open_no_follow(path) else {
        return false;
    };
    file.try_lock().is_ok()
}

#[cfg(unix)]
fn owned_by_us(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions.
    meta.uid() == unsafe { libc::geteuid() }
}

#[cfg(not(unix))]
fn owned_by_us(_meta: &std::fs::Metadata) -> bool {
    true
}

/// Opens an existing file for reading without following a link at `path` (and without
/// blocking on a FIFO planted there).
pub fn open_no_follow(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_of_dead_writers_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.jsonl");
        let dead = dir.path().join(".out.jsonl.Ab12Cd.promptmill-tmp");
        std::fs::write(&dead, "partial").unwrap();
        let live = temp_for(&out).unwrap();
        let other = dir.path().join(".other.jsonl.Ab12Cd.promptmill-tmp");
        std::fs::write(&other, "partial").unwrap();
        remove_stale(&out, TEMP_SUFFIX);
        assert!(!dead.exists(), "a killed writer's file is removed");
        assert!(live.path().exists(), "a live writer's file is kept");
        assert!(other.exists(), "another target's files are not touched");
        let db = dir.path().join("job.db");
        let download = dir.path().join(".job.db.Xy34Zw.part2.download");
        std::fs::write(&download, "partial").unwrap();
        let live = create_beside(&db, ".part2.download").unwrap();
        remove_stale(&db, ".part1.download");
        assert!(download.exists(), "another part's download is not touched");
        remove_stale(&db, ".part2.download");
        assert!(!download.exists());
        assert!(live.path().exists());
    }

    #[cfg(unix)]
    #[test]
    fn writing_replaces_a_planted_link_and_leaves_its_target_alone() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let target = dir.path().join("s.json");
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        write(&target, b"{}").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "{}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::symlink_metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn the_writability_probe_leaves_nothing_and_never_opens_the_target() {
        let dir = tempfile::tempdir().unwrap();
        check_creatable(&dir.path().join("out.jsonl")).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(check_creatable(&dir.path().join("missing").join("out.jsonl")).is_err());
    }
}
