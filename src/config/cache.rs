//! The response cache as this command line asks for it: off (`--no-cache`), or a file
//! (`--cache PATH`, else the XDG cache location) and whether answers are stored in it
//! (`--cache-read-only`). Opening it is the run's (`commands/execute.rs`); what it holds is
//! `promptmill_engine::cache`'s.

use std::path::{Path, PathBuf};

use crate::cli::SendArgs;

/// Whether and where a run uses the response cache.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CacheChoice {
    /// No `--cache PATH`, or `--no-cache`.
    #[default]
    Off,
    On {
        path: PathBuf,
        read_only: bool,
    },
}

impl CacheChoice {
    /// Off unless `--cache PATH` is given: with the cache on, a 1M-row zero-latency chat job
    /// sends at a third of its rate (measured: docs/CACHE.md), so it is not on by default yet.
    pub fn from_args(args: &SendArgs) -> CacheChoice {
        match (&args.cache, args.no_cache) {
            (Some(path), false) => CacheChoice::On {
                path: path.clone(),
                read_only: args.cache_read_only,
            },
            _ => CacheChoice::Off,
        }
    }
}

/// Where the `cache` commands look without `--cache`: `$XDG_CACHE_HOME/promptmill/cache.db`,
/// else `$HOME/.cache/promptmill/cache.db` (a relative value of either is ignored, as the XDG
/// spec says), the place to give `run --cache` for a cache of one's own.
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
