//! A model's prices and the one formula that turns tokens into dollars ([`Prices::cost`]): the
//! budget's reservations and settlements, the job's cost in the summary and `status`, each
//! row's `cost` in the output, the cost line before a job and the dry-run estimate all call it.
//!
//! How a request is priced, as the providers bill it:
//! - `prompt_tokens` include the cached ones (`prompt_tokens_details.cached_tokens`) and those
//!   written to the cache (`cache_creation_tokens`); the rest is billed at the input price, the
//!   cached ones at the cached-input price, the written ones at the cache-creation price (each
//!   the input price when the source gives none, so a cost errs high, never low).
//! - `completion_tokens` include the reasoning tokens; all are billed at the output price. The
//!   reasoning tokens' share is shown apart, within the output.
//! - Long-context tiers (LiteLLM's `*_above_200k_tokens`): a request whose prompt has more
//!   tokens than a tier's threshold pays that tier's prices for all its tokens. A price a tier
//!   leaves out is its own input price (cached, cache creation) or the base price (input, output).
//! - Through the Batch API: the Batch prices the source gives; a price it gives no Batch price
//!   for (cached input, a tier) is the live one scaled by the model's Batch discount
//!   (`batch_input / input`, `batch_output / output`). Without Batch prices, the live ones.
//!
//! Where prices come from (the table, a LiteLLM map, the flags) is `models`' business.

use serde::{Deserialize, Serialize};

/// Dollars per million tokens.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Prices {
    pub input: f64,
    pub output: f64,
    /// Cached input tokens (prompt caching); `None`: billed as input.
    pub cached_input: Option<f64>,
    /// Input tokens written to the cache, for providers that bill them; `None`: billed as input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation: Option<f64>,
    /// Batch API prices; `None`: the source does not say.
    pub batch_input: Option<f64>,
    pub batch_output: Option<f64>,
    /// Cached input through the Batch API; `None`: the cached price at the Batch discount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_cached_input: Option<f64>,
    /// Long-context tiers, by ascending threshold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<Tier>,
}

/// The prices of requests whose prompt has more than `above` tokens (dollars per million).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Tier {
    pub above: u64,
    pub input: Option<f64>,
    pub output: Option<f64>,
    pub cached_input: Option<f64>,
    pub cache_creation: Option<f64>,
    pub batch_input: Option<f64>,
    pub batch_output: Option<f64>,
    pub batch_cached_input: Option<f64>,
}

/// The prices one request pays, once its route and prompt size are known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    pub input: f64,
    pub cached_input: f64,
    pub cache_creation: f64,
    pub output: f64,
}

/// Tokens to price: one request's usage, or the sum of requests that pay the same rates.
/// Fractional for the estimate's expectations.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Billed {
    /// All prompt tokens, cached and cache-writing ones included.
    pub prompt: f64,
    pub cached: f64,
    pub cache_creation: f64,
    /// All completion tokens, reasoning ones included.
    pub completion: f64,
    pub reasoning: f64,
}

impl Billed {
    /// Prompt and completion tokens with no cache or reasoning details.
    pub fn plain(prompt: f64, completion: f64) -> Billed {
        Billed {
            prompt,
            completion,
            ..Billed::default()
        }
    }
}

/// Dollars, split the way a bill is. `output` includes `reasoning`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct CostSplit {
    /// Prompt tokens neither read from nor written to the cache.
    pub input: f64,
    pub cached_input: f64,
    pub cache_creation: f64,
    /// All completion tokens, reasoning ones included.
    pub output: f64,
    /// The reasoning tokens' part of `output`.
    pub reasoning: f64,
}

impl CostSplit {
    /// Dollars in all (`reasoning` is within `output`).
    pub fn total(&self) -> f64 {
        self.input + self.cached_input + self.cache_creation + self.output
    }

    /// Each amount to a trillionth of a dollar, far below any bill's rounding: so that JSON
    /// shows `0.0000261`, not `0.000026099999999999997`.
    pub fn rounded(&self) -> CostSplit {
        CostSplit {
            input: round(self.input),
            cached_input: round(self.cached_input),
            cache_creation: round(self.cache_creation),
            output: round(self.output),
            reasoning: round(self.reasoning),
        }
    }

    pub fn add(&mut self, other: &CostSplit) {
        self.input += other.input;
        self.cached_input += other.cached_input;
        self.cache_creation += other.cache_creation;
        self.output += other.output;
        self.reasoning += other.reasoning;
    }
}

/// Dollars to a trillionth (see [`CostSplit::rounded`]).
pub fn round(dollars: f64) -> f64 {
    (dollars * 1e12).round() / 1e12
}

impl Prices {
    /// The prices a request pays through the Batch API (`batch`) or live, when its prompt has
    /// `prompt_size` tokens (which picks its long-context tier).
    pub fn rates(&self, batch: bool, prompt_size: u64) -> Rates {
        let tier = self.tiers.iter().rev().find(|t| prompt_size > t.above);
        let input = tier.and_then(|t| t.input).unwrap_or(self.input);
        let output = tier.and_then(|t| t.output).unwrap_or(self.output);
        let cached = tier
            .map_or(self.cached_input, |t| t.cached_input)
            .unwrap_or(input);
        let creation = tier
            .map_or(self.cache_creation, |t| t.cache_creation)
            .unwrap_or(input);
        let live = Rates {
            input,
            cached_input: cached,
            cache_creation: creation,
            output,
        };
        let (Some(batch_input), Some(batch_output), true) = (self.batch_input, self.batch_output, batch)
        else {
            return live;
        };
        let ratio = |part: f64, whole: f64| if whole > 0.0 { part / whole } else { 1.0 };
        let (off_in, off_out) = (ratio(batch_input, self.input), ratio(batch_output, self.output));
        let explicit = |t: fn(&Tier) -> Option<f64>, base: Option<f64>| tier.map_or(base, t);
        Rates {
            input: explicit(|t| t.batch_input, Some(batch_input)).unwrap_or(input * off_in),
            cached_input: explicit(|t| t.batch_cached_input, self.batch_cached_input)
                .unwrap_or(cached * off_in),
            cache_creation: creation * off_in,
            output: explicit(|t| t.batch_output, Some(batch_output)).unwrap_or(output * off_out),
        }
    }

    /// The one cost formula: dollars for `tokens` of requests whose prompts have `prompt_size`
    /// tokens each (or lie in the same long-context tier), live or through the Batch API.
    pub fn cost(&self, batch: bool, prompt_size: u64, tokens: &Billed) -> CostSplit {
        let r = self.rates(batch, prompt_size);
        let cached = tokens.cached.min(tokens.prompt);
        let creation = tokens.cache_creation.min(tokens.prompt - cached);
        let uncached = (tokens.prompt - cached - creation).max(0.0);
        CostSplit {
            input: uncached * r.input / 1e6,
            cached_input: cached * r.cached_input / 1e6,
            cache_creation: creation * r.cache_creation / 1e6,
            output: tokens.completion * r.output / 1e6,
            reasoning: tokens.reasoning.min(tokens.completion) * r.output / 1e6,
        }
    }

    /// The thresholds of the long-context tiers.
    pub fn thresholds(&self) -> impl Iterator<Item = u64> + '_ {
        self.tiers.iter().map(|t| t.above)
    }
}

#[cfg(test)]
#[path = "tests_price.rs"]
mod tests;
