//! The files a command names besides its input: the output (its path and format), the
//! checkpoint beside it by default, and the check that no two of them are the same file (which
//! `paths.rs` decides).

use std::path::{Path, PathBuf};

use promptmill_core::error::ConfigError;
use promptmill_engine::output::{OutputFormat, OutputSpec};

/// Refuses paths of a command that name the same file (see `paths`): the input it reads, the
/// checkpoint, the output, the `--summary` file and the `others` (a `--report`, the response
/// cache), each with how the command names it; `output_flag` and `db_flag` are how the command
/// names the output and the checkpoint.
pub fn check_paths(
    input: &Path,
    db: &Path,
    output: &Path,
    summary: Option<&Path>,
    others: &[(&'static str, &Path)],
    output_flag: &'static str,
    db_flag: &'static str,
) -> Result<(), ConfigError> {
    use promptmill_core::paths::{check_distinct, Use, INPUT};
    let mut uses = vec![
        Use {
            flag: INPUT,
            path: input,
        },
        Use {
            flag: db_flag,
            path: db,
        },
        Use {
            flag: output_flag,
            path: output,
        },
    ];
    if let Some(path) = summary {
        uses.push(Use {
            flag: "--summary",
            path,
        });
    }
    for &(flag, path) in others {
        uses.push(Use { flag, path });
    }
    // Standard input and output (`-`) are no files: nothing to collide with.
    uses.retain(|u| u.path != Path::new(promptmill_core::input::STDIN));
    check_distinct(&uses)
}

/// The checkpoint path for an output path: `out.jsonl` → `out.jsonl.promptmill.db`.
pub fn default_db_path(output: &Path) -> PathBuf {
    let mut name = output.as_os_str().to_owned();
    name.push(".promptmill.db");
    PathBuf::from(name)
}

pub fn output_spec(
    path: &Path,
    format: Option<OutputFormat>,
    flag: &'static str,
) -> Result<OutputSpec, ConfigError> {
    if path == Path::new(OutputSpec::STDOUT) {
        return Ok(OutputSpec {
            path: path.to_path_buf(),
            format: format.unwrap_or(OutputFormat::Jsonl),
        });
    }
    let format = format.or_else(|| OutputFormat::from_path(path)).ok_or_else(|| {
        ConfigError::new(
            flag,
            format!(
                "cannot tell the format of {} from its extension; use .jsonl, .csv or .parquet, or --output-format",
                path.display()
            ),
        )
    })?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(ConfigError::new(
            flag,
            format!("the directory {} does not exist", parent.display()),
        ));
    }
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    Ok(OutputSpec { path, format })
}
