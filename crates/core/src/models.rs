//! What promptmill knows about a model before sending to it: its context window, its output cap,
//! and its prices (live, cached input, and the Batch API's).
//!
//! Three sources, the first that knows the model wins:
//! 1. `--price-in/--price-out` (dollars per million tokens), for a model in no table;
//! 2. `--prices FILE`, a LiteLLM-format map (`model_prices_and_context_window.json`; see
//!    `models/litellm.rs` for the fields read, long-context tiers included);
//! 3. the built-in table of current OpenAI and Anthropic (Claude) models below, each part with
//!    the date it was last checked.
//!
//! A model is looked up as written, then without a provider prefix (`openai/gpt-4o`), then
//! without a date suffix (`gpt-4o-2024-08-06` → `gpt-4o`). Prices are kept per million tokens,
//! the unit providers publish them in; [`price`] turns them into dollars. An unknown model has
//! no price: callers say so, never count it as free.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

mod litellm;
pub mod price;

pub use price::{Billed, CostSplit, Prices, Rates, Tier};

/// The day the built-in table's OpenAI models were last compared with the published prices.
pub const BUILTIN_CHECKED: &str = "2026-11-27";

/// The day the built-in table's Claude models were last compared with the published prices.
pub const CLAUDE_CHECKED: &str = "2026-12-03";

/// Where a model's facts came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Source {
    /// promptmill's table, checked on the given date.
    BuiltIn { checked: String },
    /// A `--prices` file, under this key.
    File { path: PathBuf, key: String },
    /// `--price-in/--price-out`.
    Flags,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::BuiltIn { checked } => write!(f, "built-in table, checked {checked}"),
            Source::File { path, key } => write!(f, "{} (`{key}`)", path.display()),
            Source::Flags => write!(f, "--price-in/--price-out"),
        }
    }
}

/// A model's facts, as far as they are known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub model: String,
    /// The most prompt tokens a request may have.
    pub max_input_tokens: Option<u64>,
    /// The most completion tokens a request may ask for.
    pub max_output_tokens: Option<u64>,
    pub prices: Option<Prices>,
    /// Where the prices came from (the limits come from the same source, else the table).
    pub source: Option<Source>,
}

/// Why prices could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum PriceError {
    #[error("--prices {}: {message}", path.display())]
    File { path: PathBuf, message: String },
    #[error("--prices {}: model `{key}`: {message}", path.display())]
    Entry {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("{flag}: {message}")]
    Flag { flag: &'static str, message: String },
}

/// A row of the built-in table. Dollars per million tokens; limits in tokens.
struct Known {
    model: &'static str,
    input: f64,
    output: f64,
    cached_input: Option<f64>,
    /// Input tokens written to the cache (Anthropic bills them apart); `None`: as input.
    cache_creation: Option<f64>,
    batch: Option<(f64, f64)>,
    max_input: u64,
    max_output: u64,
    /// When the row was last compared with the provider's prices.
    checked: &'static str,
}

const fn known(
    model: &'static str,
    (input, output): (f64, f64),
    cached_input: Option<f64>,
    batch: Option<(f64, f64)>,
    (max_input, max_output): (u64, u64),
) -> Known {
    Known {
        model,
        input,
        output,
        cached_input,
        cache_creation: None,
        batch,
        max_input,
        max_output,
        checked: BUILTIN_CHECKED,
    }
}

/// A Claude model's row: input, output, cache write (5-minute), cache read, and the Message
/// Batches prices (half), per million tokens.
const fn claude(
    model: &'static str,
    (input, output): (f64, f64),
    (cache_write, cache_read): (f64, f64),
    batch: (f64, f64),
    (max_input, max_output): (u64, u64),
) -> Known {
    Known {
        model,
        input,
        output,
        cached_input: Some(cache_read),
        cache_creation: Some(cache_write),
        batch: Some(batch),
        max_input,
        max_output,
        checked: CLAUDE_CHECKED,
    }
}

/// Current OpenAI models, then Claude models. Prices are the list prices (standard tier) per million tokens;
/// the Batch API's are half of them. Compared on [`BUILTIN_CHECKED`] with the published price
/// list (as mirrored in LiteLLM's map).
#[rustfmt::skip]
const BUILTIN: &[Known] = &[
    known("gpt-5",        (1.25, 10.0), Some(0.125), Some((0.625, 5.0)),  (272_000, 128_000)),
    known("gpt-5.1",      (1.25, 10.0), Some(0.125), Some((0.625, 5.0)),  (272_000, 128_000)),
    known("gpt-5-mini",   (0.25, 2.0),  Some(0.025), Some((0.125, 1.0)),  (272_000, 128_000)),
    known("gpt-5-nano",   (0.05, 0.4),  Some(0.005), Some((0.025, 0.2)),  (272_000, 128_000)),
    known("gpt-4.1",      (2.0, 8.0),   Some(0.5),   Some((1.0, 4.0)),    (1_047_576, 32_768)),
    known("gpt-4.1-mini", (0.4, 1.6),   Some(0.1),   Some((0.2, 0.8)),    (1_047_576, 32_768)),
    known("gpt-4.1-nano", (0.1, 0.4),   Some(0.025), Some((0.05, 0.2)),   (1_047_576, 32_768)),
    known("gpt-4o",       (2.5, 10.0),  Some(1.25),  Some((1.25, 5.0)),   (128_000, 16_384)),
    known("gpt-4o-mini",  (0.15, 0.6),  Some(0.075), Some((0.075, 0.3)),  (128_000, 16_384)),
    known("o1",           (15.0, 60.0), Some(7.5),   Some((7.5, 30.0)),   (200_000, 100_000)),
    known("o3",           (2.0, 8.0),   Some(0.5),   Some((1.0, 4.0)),    (200_000, 100_000)),
    known("o3-mini",      (1.1, 4.4),   Some(0.55),  Some((0.55, 2.2)),   (200_000, 100_000)),
    known("o4-mini",      (1.1, 4.4),   Some(0.275), Some((0.55, 2.2)),   (200_000, 100_000)),
    known("gpt-4-turbo",  (10.0, 30.0), None,        Some((5.0, 15.0)),   (128_000, 4_096)),
    known("gpt-4",        (30.0, 60.0), None,        Some((15.0, 30.0)),  (8_192, 4_096)),
    known("gpt-3.5-turbo", (0.5, 1.5),  None,        Some((0.25, 0.75)),  (16_385, 4_096)),
    known("gpt-3.5-turbo-instruct", (1.5, 2.0), None, None,               (4_096, 4_096)),
    known("davinci-002",  (2.0, 2.0),   None,        Some((1.0, 1.0)),    (16_384, 4_096)),
    known("babbage-002",  (0.4, 0.4),   None,        Some((0.2, 0.2)),    (16_384, 4_096)),
    // Embedding models: input tokens only (no output is generated), 8,191 tokens per input.
    known("text-embedding-3-small", (0.02, 0.0), None,   Some((0.01, 0.0)),   (8_191, 0)),
    known("text-embedding-3-large", (0.13, 0.0), None,   Some((0.065, 0.0)),  (8_191, 0)),
    known("text-embedding-ada-002", (0.10, 0.0), None,   Some((0.05, 0.0)),   (8_191, 0)),
    // Anthropic's Claude models (`--provider anthropic`), compared on [`CLAUDE_CHECKED`] with
    // Anthropic's price list as mirrored in LiteLLM's map. Prompt tokens for them are always
    // approximate: Anthropic's tokenizer is not public.
    claude("claude-haiku-4-5",  (1.0, 5.0),   (1.25, 0.1),  (0.5, 2.5),   (200_000, 64_000)),
    claude("claude-sonnet-4-5", (3.0, 15.0),  (3.75, 0.3),  (1.5, 7.5),   (200_000, 64_000)),
    claude("claude-sonnet-4-6", (3.0, 15.0),  (3.75, 0.3),  (1.5, 7.5),   (1_000_000, 128_000)),
    claude("claude-opus-4-5",   (5.0, 25.0),  (6.25, 0.5),  (2.5, 12.5),  (200_000, 64_000)),
    claude("claude-opus-4-6",   (5.0, 25.0),  (6.25, 0.5),  (2.5, 12.5),  (1_000_000, 128_000)),
    claude("claude-opus-4-7",   (5.0, 25.0),  (6.25, 0.5),  (2.5, 12.5),  (1_000_000, 128_000)),
    claude("claude-opus-4-8",   (5.0, 25.0),  (6.25, 0.5),  (2.5, 12.5),  (1_000_000, 128_000)),
    claude("claude-sonnet-5",   (2.0, 10.0),  (2.5, 0.2),   (1.0, 5.0),   (1_000_000, 128_000)),
    claude("claude-opus-5",     (5.0, 25.0),  (6.25, 0.5),  (2.5, 12.5),  (1_000_000, 128_000)),
    claude("claude-haiku-5-5",  (0.1, 0.5),   (0.125, 0.01), (0.05, 0.25), (1_000_000, 128_000)),
    claude("claude-sonnet-5-5", (2.0, 10.0),  (2.5, 0.1),   (1.0, 5.0),   (1_000_000, 128_000)),
    claude("claude-opus-5-5",   (4.0, 20.0),  (5.0, 0.2),   (2.0, 10.0),  (1_000_000, 128_000)),
];

/// The names a model is looked up under, most specific first.
fn candidates(model: &str) -> Vec<&str> {
    let mut names = vec![model];
    let bare = model.rsplit('/').next().unwrap_or(model);
    if bare != model {
        names.push(bare);
    }
    if let Some(undated) = strip_date(bare) {
        names.push(undated);
    }
    names
}

/// `gpt-4o-2024-08-06` → `gpt-4o`; `gpt-4-0613` → `gpt-4`.
fn strip_date(name: &str) -> Option<&str> {
    let is_digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = name.rsplitn(4, '-').collect();
    if parts.len() == 4 && is_digits(parts[0], 2) && is_digits(parts[1], 2) && is_digits(parts[2], 4) {
        return Some(parts[3]);
    }
    // `gpt-4-0613`; Anthropic's `claude-haiku-4-5-20251001`.
    let (head, tail) = name.rsplit_once('-')?;
    (is_digits(tail, 4) || is_digits(tail, 8)).then_some(head)
}

fn builtin(model: &str) -> Option<&'static Known> {
    candidates(model)
        .into_iter()
        .find_map(|name| BUILTIN.iter().find(|k| k.model == name))
}

/// Every source of model facts a command was given.
#[derive(Debug, Default)]
pub struct PriceBook {
    file: Option<(PathBuf, serde_json::Map<String, Value>)>,
    flags: Option<(f64, f64)>,
}

impl PriceBook {
    /// Reads `--prices` (when given) and checks `--price-in/--price-out`.
    pub fn new(
        file: Option<&Path>,
        price_in: Option<f64>,
        price_out: Option<f64>,
    ) -> Result<PriceBook, PriceError> {
        let flags = match (price_in, price_out) {
            (None, None) => None,
            (Some(i), Some(o)) => {
                for (flag, v) in [("--price-in", i), ("--price-out", o)] {
                    if !(v.is_finite() && v >= 0.0) {
                        return Err(PriceError::Flag {
                            flag,
                            message: format!("`{v}` is not a price (dollars per million tokens, ≥ 0)"),
                        });
                    }
                }
                Some((i, o))
            }
            (Some(_), None) => {
                return Err(PriceError::Flag {
                    flag: "--price-out",
                    message: "is needed with --price-in (dollars per million output tokens)".into(),
                })
            }
            (None, Some(_)) => {
                return Err(PriceError::Flag {
                    flag: "--price-in",
                    message: "is needed with --price-out (dollars per million input tokens)".into(),
                })
            }
        };
        let file = match file {
            None => None,
            Some(path) => Some((path.to_path_buf(), read_price_file(path)?)),
        };
        Ok(PriceBook { file, flags })
    }

    /// What is known of `model`. Errors only when the `--prices` entry for it is malformed.
    pub fn lookup(&self, model: &str) -> Result<ModelInfo, PriceError> {
        let table = builtin(model);
        let mut info = ModelInfo {
            model: model.to_string(),
            max_input_tokens: table.map(|k| k.max_input),
            max_output_tokens: table.map(|k| k.max_output),
            prices: table.map(|k| Prices {
                input: k.input,
                output: k.output,
                cached_input: k.cached_input,
                cache_creation: k.cache_creation,
                batch_input: k.batch.map(|b| b.0),
                batch_output: k.batch.map(|b| b.1),
                ..Prices::default()
            }),
            source: table.map(|k| Source::BuiltIn {
                checked: k.checked.to_string(),
            }),
        };
        if let Some((path, map)) = &self.file {
            if let Some((key, value)) = candidates(model)
                .into_iter()
                .find_map(|name| map.get_key_value(name))
            {
                let read = litellm::read(value).map_err(|message| PriceError::Entry {
                    path: path.clone(),
                    key: key.clone(),
                    message,
                })?;
                if let Some(prices) = read.prices {
                    info.prices = Some(prices);
                    info.source = Some(Source::File {
                        path: path.clone(),
                        key: key.clone(),
                    });
                }
                info.max_input_tokens = read.max_input_tokens.or(info.max_input_tokens);
                info.max_output_tokens = read.max_output_tokens.or(info.max_output_tokens);
            }
        }
        if let Some((input, output)) = self.flags {
            // The Batch API costs half the live price at OpenAI, for every model.
            info.prices = Some(Prices {
                input,
                output,
                batch_input: Some(input / 2.0),
                batch_output: Some(output / 2.0),
                ..Prices::default()
            });
            info.source = Some(Source::Flags);
        }
        Ok(info)
    }
}

fn read_price_file(path: &Path) -> Result<serde_json::Map<String, Value>, PriceError> {
    let fail = |message: String| PriceError::File {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(fail(
            "is not a LiteLLM price map (a JSON object of model name → prices)".into(),
        )),
        Err(e) => Err(fail(format!("is not valid JSON: {e}"))),
    }
}

/// The table model that `model` is most likely a misspelling of: a name in no table, within a
/// small edit distance (transpositions count once) of a model in the built-in table. A dated or
/// prefixed name of a known model (`gpt-4o-mini-2024-07-18`, `openai/gpt-4o`) is known, not a
/// misspelling.
pub fn did_you_mean(model: &str) -> Option<&'static str> {
    if builtin(model).is_some() {
        return None;
    }
    let bare = model.rsplit('/').next().unwrap_or(model);
    // One edit in a short name, two in a longer one: more would suggest unrelated models.
    let most = if bare.chars().count() < 8 { 1 } else { 2 };
    BUILTIN
        .iter()
        .map(|k| (strsim::damerau_levenshtein(bare, k.model), k.model))
        .filter(|&(d, _)| d > 0 && d <= most)
        .min_by_key(|&(d, _)| d)
        .map(|(_, name)| name)
}

/// What to tell the user before counting or sending for `model`, when its tokens are only
/// approximated or it has no price: "unknown model `gpt-4o-mnii` (did you mean gpt-4o-mini?):
/// tokens approximated with o200k_base, no price — pass --price-in/--price-out". `None` when
/// the model is known and priced.
pub fn unknown_model_note(model: &str, encoding: &str, exact_tokens: bool, priced: bool) -> Option<String> {
    if exact_tokens && priced {
        return None;
    }
    let head = match (builtin(model).is_some(), did_you_mean(model)) {
        (true, _) => format!("model `{model}`"),
        (false, Some(near)) => format!("unknown model `{model}` (did you mean {near}?)"),
        (false, None) => format!("unknown model `{model}`"),
    };
    let mut parts = Vec::new();
    if !exact_tokens {
        parts.push(format!("tokens approximated with {encoding}"));
    }
    if !priced {
        parts.push("no price — pass --price-in/--price-out".to_string());
    }
    Some(format!("{head}: {}", parts.join(", ")))
}

/// The message for a model with no known price.
pub fn unknown_price(model: &str) -> String {
    format!(
        "no price is known for model `{model}`: give --price-in and --price-out (dollars per million tokens), or --prices FILE (a LiteLLM price map)"
    )
}

#[cfg(test)]
mod tests;
