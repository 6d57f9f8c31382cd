//! The scalar values of an instance (`instance.rs` makes the objects, arrays and references
//! around them): strings of the prompt's words or of a known `format` within `minLength` and
//! `maxLength`, and numbers within their bounds and `multipleOf`. Each is a pure function of
//! its schema and a seed.

use serde_json::{Map, Number, Value};

use super::{mix, MAX_STRING};

/// A string of `schema`: a `format`'s, or words of the prompt, within its lengths.
pub(super) fn string(schema: &Map<String, Value>, seed: u64, words: &[&str]) -> Value {
    let text = match schema.get("format").and_then(Value::as_str) {
        Some(format) => formatted(format, seed, words),
        None => phrase(words, seed),
    };
    let length = |key: &str| {
        schema
            .get(key)
            .and_then(Value::as_u64)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    };
    let min = length("minLength").unwrap_or(0).min(MAX_STRING);
    let max = length("maxLength").unwrap_or(MAX_STRING).min(MAX_STRING);
    let mut text: String = text.chars().take(max).collect();
    let have = text.chars().count();
    text.extend(std::iter::repeat_n('x', min.saturating_sub(have)));
    Value::String(text)
}

/// One or two words of the prompt, chosen by `seed`; `mock` for a prompt without words.
fn phrase(words: &[&str], seed: u64) -> String {
    match words.len() {
        0 => "mock".to_string(),
        1 => words[0].to_string(),
        n => {
            let first = (seed % n as u64) as usize;
            let second = (first + 1 + (seed >> 32) as usize % (n - 1)) % n;
            format!("{} {}", words[first], words[second])
        }
    }
}

/// A string of a known `format`, else the prompt's words.
fn formatted(format: &str, seed: u64, words: &[&str]) -> String {
    let word = words
        .get((seed % words.len().max(1) as u64) as usize)
        .map_or("mock".to_string(), |w| w.to_ascii_lowercase());
    let word: String = word.chars().filter(char::is_ascii_alphanumeric).collect();
    let word = if word.is_empty() { "mock".to_string() } else { word };
    let (month, day, hour, minute) = (
        1 + seed % 12,
        1 + (seed >> 8) % 28,
        (seed >> 16) % 24,
        (seed >> 24) % 60,
    );
    match format {
        "date" => format!("2024-{month:02}-{day:02}"),
        "date-time" => format!("2024-{month:02}-{day:02}T{hour:02}:{minute:02}:00Z"),
        "time" => format!("{hour:02}:{minute:02}:00Z"),
        "email" => format!("{word}@example.com"),
        "hostname" => format!("{word}.example.com"),
        "uri" | "url" | "iri" => format!("https://example.com/{word}"),
        "uuid" => {
            let (a, b) = (mix(seed), mix(seed ^ 1));
            format!(
                "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
                a >> 32,
                (a >> 16) & 0xffff,
                a & 0xfff,
                b >> 52,
                b & 0xffff_ffff_ffff
            )
        }
        "ipv4" => format!("192.0.2.{}", seed % 256),
        "ipv6" => format!("2001:db8::{:x}", seed % 0xffff),
        _ => word,
    }
}

/// The bounds of a number: `(low, high)`, each inclusive, exclusive bounds moved in by `step`.
fn bounds(schema: &Map<String, Value>, step: f64) -> (Option<f64>, Option<f64>) {
    let get = |key: &str| schema.get(key).and_then(Value::as_f64).filter(|x| x.is_finite());
    let flag = |key: &str| schema.get(key).and_then(Value::as_bool) == Some(true);
    let mut low = get("minimum");
    let mut high = get("maximum");
    if let Some(x) = get("exclusiveMinimum") {
        low = Some(low.map_or(x + step, |l| l.max(x + step)));
    } else if flag("exclusiveMinimum") {
        low = low.map(|l| l + step);
    }
    if let Some(x) = get("exclusiveMaximum") {
        high = Some(high.map_or(x - step, |h| h.min(x - step)));
    } else if flag("exclusiveMaximum") {
        high = high.map(|h| h - step);
    }
    (low, high)
}

pub(super) fn integer(schema: &Map<String, Value>, seed: u64) -> Value {
    let (low, high) = bounds(schema, 1.0);
    let clamp = |x: f64| x.clamp(i64::MIN as f64, i64::MAX as f64) as i128;
    let (low, high) = match (low.map(|l| clamp(l.ceil())), high.map(|h| clamp(h.floor()))) {
        (Some(l), Some(h)) => (l, h.max(l)),
        (Some(l), None) => (l, l + 100),
        (None, Some(h)) => (h - 100, h),
        (None, None) => (0, 100),
    };
    let step = schema
        .get("multipleOf")
        .and_then(Value::as_f64)
        .filter(|m| *m >= 1.0 && m.fract() == 0.0 && *m < 1e15)
        .map_or(1, |m| m as i128);
    let first = low.div_euclid(step) * step + if low.rem_euclid(step) == 0 { 0 } else { step };
    let choices = ((high - first) / step + 1).max(1);
    let value = first + (i128::from(seed) % choices) * step;
    let value = i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX });
    Value::Number(Number::from(value))
}

pub(super) fn number(schema: &Map<String, Value>, seed: u64) -> Value {
    if schema.get("multipleOf").is_some() {
        return integer(schema, seed);
    }
    let (low, high) = bounds(schema, 0.01);
    let (low, high) = match (low, high) {
        (Some(l), Some(h)) => (l, h.max(l)),
        (Some(l), None) => (l, l + 100.0),
        (None, Some(h)) => (h - 100.0, h),
        (None, None) => (0.0, 100.0),
    };
    let fraction = (seed % 1000) as f64 / 1000.0;
    let value = ((low + (high - low) * fraction) * 100.0).round() / 100.0;
    let value = value.clamp(low, high);
    Number::from_f64(value).map_or(Value::Null, Value::Number)
}
