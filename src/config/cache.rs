//! The response cache as this command line asks for it: on by default, in a file
//! (`--cache PATH`, else the XDG cache location), off with `--no-cache`, and whether answers are stored in it
//! (`--cache-read-only`). Opening it is the run's (`commands/execute.rs`); what it holds is
//! `promptmill_engine::cache`'s.

use std::path::{Path, PathBuf};

use crate::cli::SendArgs;

/// Whether and where a run uses the response cache.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CacheChoice {
    /// `--no-cache`, or no place for it (neither `$XDG_CACHE_HOME` nor `$HOME`).
    #[default]
    Off,
    On {
        path: PathBuf,
        read_only: bool,
    },
}

impl CacheChoice {
    /// On by default, at `--cache PATH` or [`default_path`]; off with `--no-cache`.
    pub fn from_args(args: &SendArgs) -> CacheChoice {
        if args.no_cache {
            return CacheChoice::Off;
        }
        match args.cache.clone().or_else(default_path) {
            Some(path) => CacheChoice::On {
                path,
                read_only: args.cache_read_only,
            },
            None => CacheChoice::Off,
        }
    }
}

/// Where runs and the `cache` commands keep the cache without `--cache`:
/// `$XDG_CACHE_HOME/promptmill/cache.db`, else `$HOME/.cache/promptmill/cache.db` (a relative
/// value of either is ignored, as the XDG spec says).
pub fn default_path() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let base = var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|h| h.join(".cache")))?;
    Some(Path::new(&base).join("promptmill").join("cache.db"))
}

/// The files a run writes beside its output and checkpoint, as [`super::check_paths`] takes
/// them: the `--report` and the response cache (which must not be one of the job's files).
pub fn side_files<'a>(report: Option<&'a Path>, cache: &'a CacheChoice) -> Vec<(&'static str, &'a Path)> {
    let mut files = Vec::new();
    if let Some(path) = report {
        files.push(("--report", path));
    }
    if let CacheChoice::On { path, .. } = cache {
        files.push(("--cache", path.as_path()));
    }
    files
}
