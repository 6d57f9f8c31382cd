//! Which file a path names. Two paths name the same file when they are the same after
//! canonicalising (a file that does not exist yet: its directory canonicalised, then its name),
//! or when both exist and have the same device and inode (a hard link is the same file). A
//! command checks here, once and before it touches anything, that no two of the paths it reads
//! and writes are the same file; the run lock keys on the canonical output path.

use std::path::{Path, PathBuf};

use crate::error::ConfigError;

/// `path` made absolute with links resolved: the file itself when it exists, else its
/// directory (when that exists) and its name.
pub fn canonical(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match (absolute.parent(), absolute.file_name()) {
        (Some(dir), Some(name)) => std::fs::canonicalize(dir)
            .map(|d| d.join(name))
            .unwrap_or(absolute.clone()),
        _ => absolute,
    }
}

/// The device and inode of an existing file (following links).
#[cfg(unix)]
pub fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
pub fn file_id(_path: &Path) -> Option<(u64, u64)> {
    None
}

/// Whether `a` and `b` name the same file.
pub fn same_file(a: &Path, b: &Path) -> bool {
    if canonical(a) == canonical(b) {
        return true;
    }
    matches!((file_id(a), file_id(b)), (Some(x), Some(y)) if x == y)
}

/// One path a command uses, with the flag that gave it (`the input` for the input file).
#[derive(Debug, Clone, Copy)]
pub struct Use<'a> {
    pub flag: &'static str,
    pub path: &'a Path,
}

/// The flag name [`check_distinct`] knows the input file by.
pub const INPUT: &str = "the input";

/// Fails, naming both flags and the paths, if two of `uses` are the same file: every path a
/// command writes must differ from the input and from each other. The input, when given, comes
/// first; the error names the later of two uses.
pub fn check_distinct(uses: &[Use<'_>]) -> Result<(), ConfigError> {
    for (i, earlier) in uses.iter().enumerate() {
        for later in &uses[i + 1..] {
            if !same_file(earlier.path, later.path) {
                continue;
            }
            let message = if earlier.flag == INPUT {
                format!(
                    "is the input file ({}); it would be overwritten. Give it a path of its own",
                    later.path.display()
                )
            } else {
                format!(
                    "is the same file as {} ({} and {}); one would overwrite the other. Give each a path of its own",
                    earlier.flag,
                    later.path.display(),
                    earlier.path.display()
                )
            };
            return Err(ConfigError::new(later.flag, message));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hard_link_a_symlink_and_a_dotted_path_are_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.jsonl");
        std::fs::write(&a, "x").unwrap();
        let hard = dir.path().join("hard.jsonl");
        std::fs::hard_link(&a, &hard).unwrap();
        assert!(same_file(&a, &hard));
        #[cfg(unix)]
        {
            let soft = dir.path().join("soft.jsonl");
            std::os::unix::fs::symlink(&a, &soft).unwrap();
            assert!(same_file(&a, &soft));
        }
        let new = dir.path().join("new.json");
        let dotted = dir.path().join(".").join("new.json");
        assert!(same_file(&new, &dotted), "a file that does not exist yet");
        assert!(!same_file(&a, &new));
    }

    #[test]
    fn the_error_names_both_flags_and_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("p.jsonl");
        std::fs::write(&input, "x").unwrap();
        let err = check_distinct(&[
            Use {
                flag: INPUT,
                path: &input,
            },
            Use {
                flag: "--output",
                path: &dir.path().join("out.jsonl"),
            },
            Use {
                flag: "--summary",
                path: &input,
            },
        ])
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("--summary: is the input file ("), "{err}");
        let err = check_distinct(&[
            Use {
                flag: "--output",
                path: &input,
            },
            Use {
                flag: "--db",
                path: &dir.path().join(".").join("p.jsonl"),
            },
        ])
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("--db: is the same file as --output ("), "{err}");
    }
}
