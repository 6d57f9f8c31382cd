//! One entry of a LiteLLM price map (`model_prices_and_context_window.json`) read into
//! [`Prices`] and limits: dollars per token in `input_cost_per_token`, `output_cost_per_token`,
//! `cache_read_input_token_cost`, `cache_creation_input_token_cost`, their `_batches` forms,
//! and long-context tiers `<price>_above_<N>k_tokens` (and `..._tokens_batches`).
//!
//! An embedding model's entry (`"mode": "embedding"`) may give no output price: it is 0.
//!
//! Prices for other service tiers (`_priority`, `_flex`), audio or image tokens, and the
//! one-hour cache (`_above_1hr`) are not read: promptmill sends text at the standard tier.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::price::{Prices, Tier};

/// The fields of an entry read by name (dollars per token).
#[derive(Debug, Deserialize)]
struct Entry {
    input_cost_per_token: Option<f64>,
    output_cost_per_token: Option<f64>,
    cache_read_input_token_cost: Option<f64>,
    cache_creation_input_token_cost: Option<f64>,
    input_cost_per_token_batches: Option<f64>,
    output_cost_per_token_batches: Option<f64>,
    cache_read_input_token_cost_batches: Option<f64>,
    max_input_tokens: Option<u64>,
    max_output_tokens: Option<u64>,
    /// `embedding` for an embedding model, whose entries may give no output price.
    mode: Option<String>,
}

/// What an entry says: prices (when it gives both input and output ones) and limits.
pub(super) struct Read {
    pub prices: Option<Prices>,
    pub max_input_tokens: Option<u64>,
    pub max_output_tokens: Option<u64>,
}

/// Reads an entry; the message says which field is wrong.
pub(super) fn read(value: &Value) -> Result<Read, String> {
    let entry: Entry = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    let per_million = |v: Option<f64>| v.map(|v| v * 1e6);
    let output = match entry.output_cost_per_token {
        None if entry.mode.as_deref() == Some("embedding") => Some(0.0),
        output => output,
    };
    let prices = match (entry.input_cost_per_token, output) {
        (Some(input), Some(output)) => Some(Prices {
            input: input * 1e6,
            output: output * 1e6,
            cached_input: per_million(entry.cache_read_input_token_cost),
            cache_creation: per_million(entry.cache_creation_input_token_cost),
            batch_input: per_million(entry.input_cost_per_token_batches),
            batch_output: per_million(entry.output_cost_per_token_batches),
            batch_cached_input: per_million(entry.cache_read_input_token_cost_batches),
            tiers: match value {
                Value::Object(map) => tiers(map)?,
                _ => Vec::new(),
            },
        }),
        _ => None,
    };
    Ok(Read {
        prices,
        max_input_tokens: entry.max_input_tokens,
        max_output_tokens: entry.max_output_tokens,
    })
}

/// The long-context tiers of an entry, by ascending threshold.
fn tiers(map: &Map<String, Value>) -> Result<Vec<Tier>, String> {
    let mut tiers: Vec<Tier> = Vec::new();
    for (key, value) in map {
        let Some((price, above, batch)) = tier_key(key) else {
            continue;
        };
        let per_token = value
            .as_f64()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("`{key}` is {value}, not a price (dollars per token, ≥ 0)"))?;
        let i = match tiers.iter().position(|t| t.above == above) {
            Some(i) => i,
            None => {
                tiers.push(Tier {
                    above,
                    ..Tier::default()
                });
                tiers.len() - 1
            }
        };
        let tier = &mut tiers[i];
        let slot = match (price, batch) {
            ("input_cost_per_token", false) => &mut tier.input,
            ("input_cost_per_token", true) => &mut tier.batch_input,
            ("output_cost_per_token", false) => &mut tier.output,
            ("output_cost_per_token", true) => &mut tier.batch_output,
            ("cache_read_input_token_cost", false) => &mut tier.cached_input,
            ("cache_read_input_token_cost", true) => &mut tier.batch_cached_input,
            ("cache_creation_input_token_cost", false) => &mut tier.cache_creation,
            _ => continue,
        };
        *slot = Some(per_token * 1e6);
    }
    tiers.sort_by_key(|t| t.above);
    Ok(tiers)
}

/// `input_cost_per_token_above_200k_tokens` → (`input_cost_per_token`, 200,000, live);
/// `..._tokens_batches` → Batch. Other suffixes (`_priority`, `_flex`) are not tiers we use.
fn tier_key(key: &str) -> Option<(&str, u64, bool)> {
    let (price, rest) = key.split_once("_above_")?;
    let (thousands, suffix) = rest.split_once("k_tokens")?;
    let batch = match suffix {
        "" => false,
        "_batches" => true,
        _ => return None,
    };
    let n: u64 = thousands.parse().ok()?;
    Some((price, n.checked_mul(1000)?, batch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tier_keys_name_a_price_a_threshold_and_a_route() {
        assert_eq!(
            tier_key("input_cost_per_token_above_200k_tokens"),
            Some(("input_cost_per_token", 200_000, false))
        );
        assert_eq!(
            tier_key("cache_read_input_token_cost_above_272k_tokens_batches"),
            Some(("cache_read_input_token_cost", 272_000, true))
        );
        assert_eq!(tier_key("input_cost_per_token_above_272k_tokens_priority"), None);
        assert_eq!(tier_key("cache_creation_input_token_cost_above_1hr"), None);
        assert_eq!(tier_key("input_cost_per_token"), None);
    }

    #[test]
    fn an_entry_gives_its_tiers_in_order_and_a_bad_tier_price_is_named() {
        let v: Value = serde_json::from_str(
            r#"{"input_cost_per_token": 1e-6, "output_cost_per_token": 4e-6,
                "input_cost_per_token_above_200k_tokens": 2e-6,
                "output_cost_per_token_above_200k_tokens": 8e-6,
                "input_cost_per_token_above_128k_tokens": 1.5e-6,
                "input_cost_per_token_above_200k_tokens_priority": 9e-6}"#,
        )
        .unwrap();
        let p = read(&v).unwrap().prices.unwrap();
        let above: Vec<u64> = p.thresholds().collect();
        assert_eq!(above, [128_000, 200_000]);
        assert_eq!(p.tiers[1].input, Some(2.0));
        assert_eq!(p.tiers[1].output, Some(8.0));
        assert_eq!(p.tiers[0].output, None);
        let bad: Value = serde_json::from_str(
            r#"{"input_cost_per_token": 1e-6, "output_cost_per_token": 4e-6,
                "input_cost_per_token_above_200k_tokens": "dear"}"#,
        )
        .unwrap();
        let err = read(&bad).err().unwrap();
        assert!(
            err.starts_with("`input_cost_per_token_above_200k_tokens` is \"dear\", not a price"),
            "{err}"
        );
    }
}
