//! The flags that take one of a few names (`--format`, `--output-format`, `--provider`,
//! `--mode`): each domain enum's names and help live here, in the CLI, so that the enums
//! themselves (persisted in the job record, used by the engine) know nothing of clap.
//!
//! A [`Choice`] lists its values with the name the flag takes and a line of help;
//! [`parser`] turns that list into a clap value parser (possible values, completions and
//! "did you mean" included), and [`name_of`] gives a value's name back for messages such as
//! the `export` command a run prints.

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};

use crate::cli::Mode;
use promptmill_core::input::InputFormat;
use promptmill_core::job::settings::OutputFormat;
use promptmill_core::provider::ProviderKind;

/// A domain enum a flag chooses among: its values, their names and help, in the order shown.
pub trait Choice: Copy + PartialEq + Send + Sync + 'static {
    const ALL: &'static [(Self, &'static str, &'static str)];
}

/// The value parser of a flag that takes one of `T`'s names.
pub fn parser<T: Choice>() -> impl TypedValueParser<Value = T> {
    let values = T::ALL
        .iter()
        .map(|&(_, name, help)| PossibleValue::new(name).help(help));
    PossibleValuesParser::new(values).map(|name: String| {
        T::ALL
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|&(value, _, _)| value)
            // PossibleValuesParser only lets the listed names through.
            .unwrap_or(T::ALL[0].0)
    })
}

/// The name the flag takes for `value`.
pub fn name_of<T: Choice>(value: T) -> &'static str {
    T::ALL
        .iter()
        .find(|(v, _, _)| *v == value)
        .map_or("?", |&(_, name, _)| name)
}

impl Choice for InputFormat {
    const ALL: &'static [(Self, &'static str, &'static str)] = &[
        (
            InputFormat::Csv,
            "csv",
            "comma-separated values with a header row",
        ),
        (InputFormat::Jsonl, "jsonl", "one JSON object per line"),
        (
            InputFormat::Parquet,
            "parquet",
            "Apache Parquet, every column a field",
        ),
    ];
}

impl Choice for OutputFormat {
    const ALL: &'static [(Self, &'static str, &'static str)] = &[
        (
            OutputFormat::Jsonl,
            "jsonl",
            "one JSON object per row: id, input fields, completion, finish reason, usage, cost, model, error",
        ),
        (OutputFormat::Csv, "csv", "the same as CSV columns (usage split into columns)"),
        (
            OutputFormat::OpenaiBatch,
            "openai-batch",
            "OpenAI Batch output lines (BatchRequestOutput), with the full response bodies",
        ),
        (
            OutputFormat::Parquet,
            "parquet",
            "typed columns: id, row, the input fields (with their Parquet types), status, completion, usage, cost, model, error",
        ),
    ];
}

impl Choice for ProviderKind {
    const ALL: &'static [(Self, &'static str, &'static str)] = &[
        (
            ProviderKind::Openai,
            "openai",
            "the OpenAI API and every server compatible with it",
        ),
        (
            ProviderKind::Azure,
            "azure",
            "Azure OpenAI (deployment URLs, api-key header)",
        ),
        (
            ProviderKind::Anthropic,
            "anthropic",
            "Anthropic's Messages API (/v1/messages, x-api-key and anthropic-version headers)",
        ),
        (
            ProviderKind::Mistral,
            "mistral",
            "Mistral's API (chat and embeddings at api.mistral.ai/v1, Bearer key, its Batch API)",
        ),
        (
            ProviderKind::Groq,
            "groq",
            "Groq's OpenAI-compatible API (https://api.groq.com/openai/v1, GROQ_API_KEY)",
        ),
        (
            ProviderKind::Together,
            "together",
            "Together's OpenAI-compatible API (https://api.together.xyz/v1, TOGETHER_API_KEY)",
        ),
        (
            ProviderKind::Gemini,
            "gemini",
            "Gemini's OpenAI-compatible layer (…/v1beta/openai, GEMINI_API_KEY)",
        ),
    ];
}

impl Choice for Mode {
    const ALL: &'static [(Self, &'static str, &'static str)] = &[
        (
            Mode::Live,
            "live",
            "one request per row, now, under the rate limits",
        ),
        (
            Mode::Batch,
            "batch",
            "files of rows through the Batch API (/files, /batches): half the price, done within 24 hours",
        ),
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names the flags take are the names the job record stores (serde), so a name in a
    /// message, a profile or a checkpoint means the same value everywhere.
    #[test]
    fn every_choice_is_named_as_serde_names_it() {
        fn check<T: Choice + serde::Serialize>() {
            for &(value, name, _) in T::ALL {
                let stored = serde_json::to_value(value).expect("serialize");
                assert_eq!(stored, serde_json::json!(name));
                assert_eq!(name_of(value), name);
            }
        }
        check::<InputFormat>();
        check::<OutputFormat>();
        check::<Mode>();
    }

    #[test]
    fn the_parser_takes_each_name_and_refuses_others() {
        let cmd =
            clap::Command::new("t").arg(clap::Arg::new("mode").long("mode").value_parser(parser::<Mode>()));
        let m = cmd
            .clone()
            .try_get_matches_from(["t", "--mode", "batch"])
            .expect("batch parses");
        assert_eq!(m.get_one::<Mode>("mode"), Some(&Mode::Batch));
        assert!(cmd.try_get_matches_from(["t", "--mode", "later"]).is_err());
    }
}
