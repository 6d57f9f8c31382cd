//! The parsers of flag values clap has no parser for: sizes with units and durations.

use std::time::Duration;

/// A size in bytes: a number, optionally with a unit (KB, MB, GB: powers of 1000; KiB, MiB,
/// GiB: powers of 1024).
pub(super) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a size (examples: 1000000, 100MB, 64MiB)"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1_000,
        "mb" | "m" => 1_000_000,
        "gb" | "g" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        other => {
            return Err(format!(
                "`{other}` is not a unit of size (B, KB, MB, GB, KiB, MiB, GiB)"
            ))
        }
    };
    match n.checked_mul(scale) {
        Some(0) => Err("must be more than zero".into()),
        Some(v) => Ok(v),
        None => Err(format!("`{s}` is too large")),
    }
}

pub(super) fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 90s, 10m, 1h30m)"))?;
    if d.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("200MB"), Ok(200_000_000));
        assert_eq!(parse_size("64 MiB"), Ok(64 << 20));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12 parsecs").unwrap_err().contains("parsecs"));
        assert!(parse_size("MB").is_err());
    }
}
