//! `promptmill cache stats | prune --older-than D | clear`: the response cache runs share,
//! outside a run. The file and its answers are `promptmill_engine::cache`'s; this picks the path
//! (`--cache`, else the XDG location, as `run` does) and prints what was done.

use std::path::PathBuf;

use crate::cli::{CacheAction, CacheArgs};
use crate::config::default_cache_path;
use promptmill_core::error::{exit_code, ConfigError};
use promptmill_engine::cache;
use promptmill_engine::estimate::report::thousands;

pub fn cache(args: CacheArgs) -> anyhow::Result<i32> {
    let path = match args.path.or_else(default_cache_path) {
        Some(p) => p,
        None => {
            return Err(ConfigError::new(
                "--cache",
                "no cache location: set $XDG_CACHE_HOME or $HOME, or pass --cache PATH",
            )
            .into())
        }
    };
    let shown = path.display();
    match args.action {
        CacheAction::Stats { json } => {
            let s = cache::stats(&path)
                .map_err(|e| e.context(format!("{shown}: cannot read the response cache")))?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&StatsJson {
                        path: &path,
                        stats: &s
                    })?
                );
            } else {
                print!("{}", describe(&path, &s));
            }
        }
        CacheAction::Prune { older_than } => {
            let n = cache::prune(&path, older_than)
                .map_err(|e| e.context(format!("{shown}: cannot prune the response cache")))?;
            eprintln!(
                "promptmill: removed {} answers older than {} from {shown}",
                thousands(n),
                humantime::format_duration(older_than)
            );
        }
        CacheAction::Clear => {
            let n = cache::clear(&path)
                .map_err(|e| e.context(format!("{shown}: cannot clear the response cache")))?;
            eprintln!("promptmill: removed {} answers from {shown}", thousands(n));
        }
    }
    Ok(exit_code::SUCCESS)
}

#[derive(serde::Serialize)]
struct StatsJson<'a> {
    path: &'a PathBuf,
    #[serde(flatten)]
    stats: &'a cache::CacheStats,
}

/// The stats as `cache stats` prints them.
fn describe(path: &std::path::Path, s: &cache::CacheStats) -> String {
    let when = |ms: Option<i64>| {
        ms.and_then(|ms| u64::try_from(ms).ok())
            .map(|ms| {
                let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
                humantime::format_rfc3339_seconds(t).to_string()
            })
            .unwrap_or_else(|| "-".into())
    };
    let mut out = format!("cache       {}\n", path.display());
    out.push_str(&format!("answers     {}\n", thousands(s.answers)));
    out.push_str(&format!("bytes       {}\n", thousands(s.bytes)));
    out.push_str(&format!("oldest      {}\n", when(s.oldest_ms)));
    out.push_str(&format!("newest      {}\n", when(s.newest_ms)));
    for (family, n) in &s.families {
        out.push_str(&format!("  {family:<9} {}\n", thousands(*n)));
    }
    out
}
