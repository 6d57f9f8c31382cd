//! Numbers for people, as the estimate, the progress line and the run report print them:
//! thousands separated, dollars to the precision that matters, sizes and lengths of time that
//! read one way only.

use std::time::Duration;

/// `12345678` → `12,345,678`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Dollars with the precision that matters for the amount.
pub fn dollars(v: f64) -> String {
    if v >= 100.0 {
        format!("${}", thousands(v.round() as u64))
    } else if v >= 1.0 {
        format!("${v:.2}")
    } else if v >= 0.01 {
        format!("${v:.3}")
    } else {
        format!("${v:.6}")
    }
}

/// A size for people: "482 B", "11.2 MB".
pub fn bytes(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.1} GB", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1} KB", n as f64 / 1e3),
        n => format!("{n} B"),
    }
}

/// A length of time that reads one way only: "0.009s" and "9.5s" under a minute, whole seconds
/// from the largest unit on, every unit after it shown ("1m 0s", "2h 0m 5s", "3d 4h 0m 0s").
/// (humantime's "1m 9ms" reads as 69 ms or as 1 min 9 s; it was 60.009 s.)
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 1.0 {
        return format!("{secs:.3}s");
    }
    if secs < 59.95 {
        return format!("{secs:.1}s");
    }
    let total = secs.round() as u64;
    let (d, h, m, s) = (total / 86_400, total / 3600 % 24, total / 60 % 60, total % 60);
    match (d, h) {
        (0, 0) => format!("{m}m {s}s"),
        (0, _) => format!("{h}h {m}m {s}s"),
        _ => format!("{d}d {h}h {m}m {s}s"),
    }
}

pub(super) fn duration_secs(secs: f64) -> String {
    duration(Duration::from_secs_f64(secs.clamp(0.0, 1e12)))
}

#[cfg(test)]
mod duration_tests {
    use super::*;

    #[test]
    fn durations_are_unambiguous() {
        let ms = |n| duration(Duration::from_millis(n));
        assert_eq!(ms(9), "0.009s");
        assert_eq!(ms(2_340), "2.3s");
        assert_eq!(ms(60_009), "1m 0s");
        assert_eq!(ms(69_000), "1m 9s");
        assert_eq!(ms(3_605_000), "1h 0m 5s");
        assert_eq!(ms(90_061_000), "1d 1h 1m 1s");
    }
}
