//! What promptmill knows about a model before sending to it: its context window, its output cap,
//! and its prices (live, cached input, and the Batch API's).
//!
//! Three sources, the first that knows the model wins:
//! 1. `--price-in/--price-out` (dollars per million tokens), for a model in no table;
//! 2. `--prices FILE`, a LiteLLM-format map (`model_prices_and_context_window.json`: dollars per
//!    token in `input_cost_per_token`, `output_cost_per_token`, `input_cost_per_token_batches`,
//!    `output_cost_per_token_batches`, `cache_read_input_token_cost`; `max_input_tokens`,
//!    `max_output_tokens`);
//! 3. the built-in table of current OpenAI models below, with the date it was last checked.
//!
//! A model is looked up as written, then without a provider prefix (`openai/gpt-4o`), then
//! without a date suffix (`gpt-4o-2024-08-06` → `gpt-4o`). Prices are kept per million tokens,
//! the unit providers publish them in. An unknown model has no price: callers say so, never
//! count it as free.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The day the built-in table was last compared with the providers' published prices.
pub const BUILTIN_CHECKED: &str = "2026-11-27";

/// Dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prices {
    pub input: f64,
    pub output: f64,
    /// Cached input tokens (prompt caching); `None`: billed as input.
    pub cached_input: Option<f64>,
    /// Batch API prices; `None`: the source does not say.
    pub batch_input: Option<f64>,
    pub batch_output: Option<f64>,
}

impl Prices {
    /// Dollars for `prompt` input and `completion` output tokens, live.
    pub fn live(&self, prompt: u64, completion: u64) -> f64 {
        (prompt as f64 * self.input + completion as f64 * self.output) / 1e6
    }

    /// Dollars for the same tokens through the Batch API, when its prices are known.
    pub fn batch(&self, prompt: u64, completion: u64) -> Option<f64> {
        Some((prompt as f64 * self.batch_input? + completion as f64 * self.batch_output?) / 1e6)
    }
}

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
    batch: Option<(f64, f64)>,
    max_input: u64,
    max_output: u64,
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
        batch,
        max_input,
        max_output,
    }
}

/// Current OpenAI models. Prices are OpenAI's list prices (standard tier) per million tokens;
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
    let (head, tail) = name.rsplit_once('-')?;
    is_digits(tail, 4).then_some(head)
}

fn builtin(model: &str) -> Option<&'static Known> {
    candidates(model)
        .into_iter()
        .find_map(|name| BUILTIN.iter().find(|k| k.model == name))
}

/// An entry of a LiteLLM price map (dollars per token).
#[derive(Debug, Deserialize)]
struct LiteLlmEntry {
    input_cost_per_token: Option<f64>,
    output_cost_per_token: Option<f64>,
    cache_read_input_token_cost: Option<f64>,
    input_cost_per_token_batches: Option<f64>,
    output_cost_per_token_batches: Option<f64>,
    max_input_tokens: Option<u64>,
    max_output_tokens: Option<u64>,
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
                batch_input: k.batch.map(|b| b.0),
                batch_output: k.batch.map(|b| b.1),
            }),
            source: table.map(|_| Source::BuiltIn {
                checked: BUILTIN_CHECKED.to_string(),
            }),
        };
        if let Some((path, map)) = &self.file {
            if let Some((key, value)) = candidates(model)
                .into_iter()
                .find_map(|name| map.get_key_value(name))
            {
                let entry: LiteLlmEntry =
                    serde_json::from_value(value.clone()).map_err(|e| PriceError::Entry {
                        path: path.clone(),
                        key: key.clone(),
                        message: e.to_string(),
                    })?;
                let per_million = |v: Option<f64>| v.map(|v| v * 1e6);
                if let (Some(input), Some(output)) = (entry.input_cost_per_token, entry.output_cost_per_token)
                {
                    info.prices = Some(Prices {
                        input: input * 1e6,
                        output: output * 1e6,
                        cached_input: per_million(entry.cache_read_input_token_cost),
                        batch_input: per_million(entry.input_cost_per_token_batches),
                        batch_output: per_million(entry.output_cost_per_token_batches),
                    });
                    info.source = Some(Source::File {
                        path: path.clone(),
                        key: key.clone(),
                    });
                }
                info.max_input_tokens = entry.max_input_tokens.or(info.max_input_tokens);
                info.max_output_tokens = entry.max_output_tokens.or(info.max_output_tokens);
            }
        }
        if let Some((input, output)) = self.flags {
            // The Batch API costs half the live price at OpenAI, for every model.
            info.prices = Some(Prices {
                input,
                output,
                cached_input: None,
                batch_input: Some(input / 2.0),
                batch_output: Some(output / 2.0),
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
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_model_is_unknown_and_the_nearest_is_suggested() {
        assert_eq!(did_you_mean("gpt-4o-mnii"), Some("gpt-4o-mini"));
        assert_eq!(did_you_mean("gpt4o-mini"), Some("gpt-4o-mini"));
        assert_eq!(did_you_mean("openai/gtp-4o"), Some("gpt-4o"));
        for known in [
            "gpt-4o-mini",
            "gpt-4o-mini-2024-07-18",
            "openai/gpt-4o",
            "gpt-4-0613",
        ] {
            assert_eq!(did_you_mean(known), None, "{known}");
        }
        // Far from everything: unknown, but no guess.
        assert_eq!(did_you_mean("my-local-llama"), None);
        assert_eq!(did_you_mean("m"), None);
        assert_eq!(
            unknown_model_note("gpt-4o-mnii", "o200k_base", false, false).unwrap(),
            "unknown model `gpt-4o-mnii` (did you mean gpt-4o-mini?): tokens approximated with \
             o200k_base, no price — pass --price-in/--price-out"
        );
        assert_eq!(unknown_model_note("gpt-4o-mini", "o200k_base", true, true), None);
        assert_eq!(
            unknown_model_note("my-llama", "o200k_base", false, true).unwrap(),
            "unknown model `my-llama`: tokens approximated with o200k_base"
        );
    }

    #[test]
    fn table_models_are_found_under_prefixes_and_dates() {
        let book = PriceBook::default();
        let info = book.lookup("openai/gpt-4o-2024-08-06").unwrap();
        assert_eq!(info.max_input_tokens, Some(128_000));
        let p = info.prices.unwrap();
        assert_eq!((p.input, p.output), (2.5, 10.0));
        assert_eq!(book.lookup("gpt-4-0613").unwrap().max_input_tokens, Some(8_192));
        assert!(matches!(
            book.lookup("gpt-4o-mini").unwrap().source,
            Some(Source::BuiltIn { .. })
        ));
        let none = book.lookup("llama-3-8b").unwrap();
        assert_eq!((none.prices, none.max_input_tokens), (None, None));
    }

    #[test]
    fn costs_are_per_million_and_batch_is_half() {
        let p = PriceBook::default()
            .lookup("gpt-4o-mini")
            .unwrap()
            .prices
            .unwrap();
        assert!((p.live(1_000_000, 1_000_000) - 0.75).abs() < 1e-12);
        assert!((p.batch(1_000_000, 1_000_000).unwrap() - 0.375).abs() < 1e-12);
        let p = PriceBook::default()
            .lookup("gpt-3.5-turbo-instruct")
            .unwrap()
            .prices
            .unwrap();
        assert_eq!(p.batch(1, 1), None);
    }

    #[test]
    fn flags_win_and_must_come_in_pairs() {
        let book = PriceBook::new(None, Some(1.0), Some(2.0)).unwrap();
        let info = book.lookup("my-local-model").unwrap();
        assert_eq!(info.source, Some(Source::Flags));
        assert_eq!(info.prices.unwrap().batch(2_000_000, 0), Some(1.0));
        let err = PriceBook::new(None, Some(1.0), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--price-out: is needed with --price-in (dollars per million output tokens)"
        );
        let err = PriceBook::new(None, Some(-1.0), Some(1.0)).unwrap_err();
        assert!(
            err.to_string().starts_with("--price-in: `-1` is not a price"),
            "{err}"
        );
    }

    #[test]
    fn a_litellm_map_overrides_the_table_and_bad_entries_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prices.json");
        std::fs::write(
            &path,
            r#"{"sample_spec": {"max_input_tokens": "doc text"},
                "gpt-4o": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, "max_input_tokens": 1000},
                "broken": {"input_cost_per_token": "cheap"}}"#,
        )
        .unwrap();
        let book = PriceBook::new(Some(&path), None, None).unwrap();
        let info = book.lookup("gpt-4o").unwrap();
        let p = info.prices.unwrap();
        assert_eq!((p.input, p.output, p.batch_input), (1.0, 2.0, None));
        assert_eq!(info.max_input_tokens, Some(1000));
        assert_eq!(
            info.max_output_tokens,
            Some(16_384),
            "the table fills what the file leaves out"
        );
        let err = book.lookup("broken").unwrap_err().to_string();
        assert!(err.contains("prices.json: model `broken`: invalid type"), "{err}");
        std::fs::write(&path, "[1]").unwrap();
        let err = PriceBook::new(Some(&path), None, None).unwrap_err().to_string();
        assert!(err.ends_with("is not a LiteLLM price map (a JSON object of model name → prices)"));
    }

    /// The real LiteLLM map in `../shared` (absent outside this project's CI and workspace).
    #[test]
    fn the_shared_litellm_map_loads_with_batch_prices() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/litellm-prices.json");
        if !path.exists() {
            eprintln!("skipped: {} is absent", path.display());
            return;
        }
        let book = PriceBook::new(Some(&path), None, None).unwrap();
        let info = book.lookup("gpt-4o-mini").unwrap();
        let p = info.prices.unwrap();
        assert!((p.input - 0.15).abs() < 1e-9 && (p.output - 0.6).abs() < 1e-9);
        assert!((p.batch_input.unwrap() - 0.075).abs() < 1e-9);
        assert!(matches!(info.source, Some(Source::File { .. })));
        // Every built-in row agrees with the map, so the table is only as stale as the map.
        for k in BUILTIN {
            let p = book.lookup(k.model).unwrap().prices.unwrap();
            assert!((p.input - k.input).abs() < 1e-9, "{}", k.model);
            assert!((p.output - k.output).abs() < 1e-9, "{}", k.model);
        }
    }
}
