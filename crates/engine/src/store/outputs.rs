//! The files a job wrote (`outputs` table): each output and export, by canonical path, with the
//! device, inode, size and modification time it had when renamed into place. `output` asks
//! here whether an existing file at a target is one of the job's own, unchanged, before
//! replacing it; what counts as the same path is `paths`'s business.

use std::path::Path;

use rusqlite::{params, OptionalExtension};

use super::{now_ms, Store};

/// What tells one file from another at the same path: a file removed and another written in
/// its place may get the same inode number, but not the same size and time as well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
}

impl FileStamp {
    #[cfg(unix)]
    pub fn of(meta: &std::fs::Metadata) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        Some(FileStamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: meta
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(meta.mtime_nsec()),
        })
    }

    #[cfg(not(unix))]
    pub fn of(_meta: &std::fs::Metadata) -> Option<FileStamp> {
        None
    }

    /// As stored: SQLite integers are signed, so the bits of the unsigned ones are kept.
    fn columns(self) -> [i64; 4] {
        [self.dev as i64, self.ino as i64, self.size as i64, self.mtime_ns]
    }
}

impl Store {
    /// Records that the job wrote the file now at `path` (canonical), stamped `stamp`.
    pub fn record_output(&self, path: &Path, stamp: FileStamp) -> anyhow::Result<()> {
        let [dev, ino, size, mtime] = stamp.columns();
        self.conn.execute(
            "INSERT OR REPLACE INTO outputs (path, dev, ino, size, mtime_ns, written_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![path.to_string_lossy(), dev, ino, size, mtime, now_ms()],
        )?;
        Ok(())
    }

    /// Whether the file at `path` (canonical), stamped `stamp`, is one the job wrote, unchanged.
    pub fn wrote(&self, path: &Path, stamp: FileStamp) -> anyhow::Result<bool> {
        let found: Option<[i64; 4]> = self
            .conn
            .query_row(
                "SELECT dev, ino, size, mtime_ns FROM outputs WHERE path = ?1",
                params![path.to_string_lossy()],
                |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?]),
            )
            .optional()?;
        Ok(found == Some(stamp.columns()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_the_jobs_only_as_recorded() {
        let store = Store::open_in_memory().unwrap();
        let p = Path::new("/data/out.jsonl");
        let stamp = FileStamp {
            dev: 1,
            ino: u64::MAX,
            size: 10,
            mtime_ns: 5,
        };
        assert!(!store.wrote(p, stamp).unwrap());
        store.record_output(p, stamp).unwrap();
        assert!(store.wrote(p, stamp).unwrap());
        let changed = FileStamp { size: 11, ..stamp };
        assert!(!store.wrote(p, changed).unwrap(), "the same file, changed");
        let other = FileStamp { ino: 3, ..stamp };
        assert!(!store.wrote(p, other).unwrap(), "another file at the same path");
        assert!(!store.wrote(Path::new("/data/x.jsonl"), stamp).unwrap());
    }
}
