//! The flags of `run` (and of `estimate`, which takes them): the input, the request, the
//! provider, the profile, the output and checkpoint, the dry run's own flags. How requests are
//! sent is `send_args.rs`'s, flattened in.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::choices;
use super::values::parse_duration;
use super::{SendArgs, CHECKPOINT, ESTIMATE, INPUT, OUTPUT, PROVIDER, REQUEST};
use promptmill_core::input::InputFormat;
use promptmill_core::job::settings::OutputFormat;
use promptmill_core::job::Endpoint;
use promptmill_core::provider::ProviderKind;

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// The prompts file (.csv with a header row, .jsonl, .parquet); `-`: stdin.
    ///
    /// `-` reads the rows from standard input. With `-`, --format is required, and so is --db when the output is `-` too.
    #[arg(help_heading = INPUT)]
    pub input: PathBuf,

    /// csv, jsonl or parquet, when the input's extension does not say.
    #[arg(long, value_parser = choices::parser::<InputFormat>(), hide_possible_values = true, help_heading = INPUT)]
    pub format: Option<InputFormat>,

    /// The field holding each row's id.
    ///
    /// Default: `id` or `custom_id` when present, else the row number.
    #[arg(long, value_name = "NAME", help_heading = INPUT)]
    pub id_column: Option<String>,

    /// Record invalid rows as failed and send the rest.
    ///
    /// Without it, an invalid row stops the run before anything is sent. With it, each invalid
    /// row is recorded as failed (with the reason).
    #[arg(long, help_heading = INPUT)]
    pub skip_invalid: bool,

    /// Send only the first N rows.
    ///
    /// Every row is still read and checked. Running again without it, or with a larger N, sends the rest; rows done are not sent
    /// again.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), help_heading = INPUT)]
    pub limit: Option<u64>,

    /// The model (overrides `body.model` of Batch input lines).
    #[arg(long, help_heading = REQUEST)]
    pub model: Option<String>,

    /// Prompt template, e.g. 'Summarize: {text}'.
    ///
    /// `{field}` is replaced by the row's field, `{{` and `}}` are literal braces.
    #[arg(long, conflicts_with = "template_file", help_heading = REQUEST)]
    pub template: Option<String>,

    /// Read the prompt template from a file.
    #[arg(long, value_name = "PATH", help_heading = REQUEST)]
    pub template_file: Option<PathBuf>,

    /// System message (a template too) sent before each prompt.
    #[arg(long, conflicts_with = "system_file", help_heading = REQUEST)]
    pub system: Option<String>,

    /// Read the system message from a file.
    #[arg(long, value_name = "PATH", help_heading = REQUEST)]
    pub system_file: Option<PathBuf>,

    /// Maximum completion tokens per request.
    ///
    /// Sent as `max_completion_tokens` to OpenAI's reasoning models, `max_tokens` otherwise.
    #[arg(long, value_name = "N", help_heading = REQUEST)]
    pub max_tokens: Option<u32>,

    /// Sampling temperature (0 to 2).
    #[arg(long, help_heading = REQUEST)]
    pub temperature: Option<f64>,

    /// JSON Schema the answers must fit: a file, or inline JSON.
    ///
    /// Sent as the family asks for structured output (chat: `response_format` json_schema,
    /// `strict` when every object closes and requires its properties; responses:
    /// `text.format`; Anthropic: `output_config.format`), and each answer is validated here:
    /// valid, invalid (with the validator's paths), truncated (cut by the token limit) or
    /// refused. Part of the job: a changed schema is a changed job.
    #[arg(long, value_name = "FILE|JSON", conflicts_with = "fields", help_heading = REQUEST)]
    pub schema: Option<String>,

    /// Short form of --schema, e.g. 'title, price: number'.
    ///
    /// Comma-separated `name` or `name: type`; types: str (the default), int, number, bool,
    /// list[T], enum(a|b|c), and T? for "may be null". Every field is required, no other is
    /// allowed (so it is sent `strict`).
    #[arg(long, value_name = "SPEC", help_heading = REQUEST)]
    pub fields: Option<String>,

    /// Any other body parameter, e.g. top_p=0.9. Repeatable.
    ///
    /// E.g. `--param top_p=0.9 --param 'stop=["\n"]'`; the value is parsed as JSON when it
    /// parses, else taken as a string.
    #[arg(long = "param", value_name = "KEY=VALUE", help_heading = REQUEST)]
    pub params: Vec<String>,

    /// chat, responses, or completions (legacy).
    ///
    /// chat: /chat/completions; responses: the Responses API (/responses, `input` and
    /// `instructions`, sent with `store: false` unless --param store=true); completions: the
    /// legacy /completions; messages: Anthropic's /v1/messages (with --provider anthropic).
    /// Default: chat (messages with --provider anthropic), or what the Batch input lines' `url`
    /// says.
    #[arg(long, value_parser = endpoint_parser(), hide_possible_values = true, help_heading = REQUEST)]
    pub endpoint: Option<Endpoint>,

    /// openai, azure, anthropic, groq, together, gemini or mistral.
    ///
    /// `openai`: the OpenAI API and compatible servers; `azure`: Azure OpenAI (deployment URLs,
    /// the key in an `api-key` header); `anthropic`: Anthropic's Messages API (/v1/messages, the
    /// key in `x-api-key`, --max-tokens required); `groq`, `together`, `gemini`: those providers'
    /// OpenAI-compatible APIs at their own address and key variable (GROQ_API_KEY, …);
    /// `mistral`: Mistral's API (chat and embeddings, a Bearer key from MISTRAL_API_KEY, its own
    /// Batch API) [default: openai, or azure when --base-url is a deployment URL].
    #[arg(long, value_parser = choices::parser::<ProviderKind>(), value_name = "KIND", hide_possible_values = true, help_heading = PROVIDER)]
    pub provider: Option<ProviderKind>,

    /// The API's base URL [env: OPENAI_BASE_URL].
    ///
    /// Default: https://api.openai.com/v1. With --provider azure: the resource endpoint, e.g.
    /// https://NAME.openai.azure.com, or a deployment URL
    /// (…/openai/deployments/NAME[?api-version=V]) [env: AZURE_OPENAI_ENDPOINT]. With --provider
    /// anthropic: default https://api.anthropic.com [env: ANTHROPIC_BASE_URL]. With groq, together
    /// or gemini: their API's address [env: GROQ_BASE_URL, TOGETHER_BASE_URL, GEMINI_BASE_URL].
    /// With --provider mistral: default https://api.mistral.ai/v1 [env: MISTRAL_BASE_URL].
    #[arg(long, value_name = "URL", help_heading = PROVIDER)]
    pub base_url: Option<String>,

    /// Azure OpenAI: the deployment to send to.
    ///
    /// Default: --model, or the one in --base-url.
    #[arg(long, value_name = "NAME", help_heading = PROVIDER)]
    pub deployment: Option<String>,

    /// The API version to send (Azure, Anthropic)
    ///
    /// Azure: the `api-version` query parameter [env: OPENAI_API_VERSION]; default: 2024-10-21.
    /// Anthropic: the `anthropic-version` header; default: 2023-06-01.
    #[arg(long, value_name = "VERSION", help_heading = PROVIDER)]
    pub api_version: Option<String>,

    /// The environment variable that holds the API key.
    ///
    /// Default: OPENAI_API_KEY, AZURE_OPENAI_API_KEY with --provider azure, ANTHROPIC_API_KEY
    /// with --provider anthropic.
    #[arg(long, value_name = "NAME", help_heading = PROVIDER)]
    pub api_key_env: Option<String>,

    #[command(flatten)]
    pub profile: ProfileArgs,

    /// Where to write the results (.jsonl, .csv or .parquet; `-`: stdout).
    ///
    /// The format comes from the extension, or --output-format. `-` writes the results to
    /// standard output at the end of the run (JSONL unless --output-format says otherwise); the
    /// checkpoint then needs --db. Required, except for a dry run.
    #[arg(short, long, value_name = "PATH", help_heading = OUTPUT)]
    pub output: Option<PathBuf>,

    /// jsonl, csv, parquet or openai-batch, when the extension does not say.
    ///
    /// `openai-batch` writes OpenAI Batch output lines.
    #[arg(long, value_parser = choices::parser::<OutputFormat>(), value_name = "FORMAT", hide_possible_values = true, help_heading = OUTPUT)]
    pub output_format: Option<OutputFormat>,

    /// The checkpoint database [default: OUTPUT.promptmill.db].
    ///
    /// Required when the output is `-`.
    #[arg(long, value_name = "PATH", help_heading = CHECKPOINT)]
    pub db: Option<PathBuf>,

    /// Discard an existing checkpoint for this output and start over.
    #[arg(long, help_heading = CHECKPOINT)]
    pub restart: bool,

    #[command(flatten)]
    pub estimate: EstimateArgs,

    #[command(flatten)]
    pub send: SendArgs,
}

/// Profiles: named settings in a TOML file (see `profile.rs`).
#[derive(Debug, Args, Clone, Default)]
pub struct ProfileArgs {
    /// Use the settings of this profile of the config file.
    ///
    /// A flag given on the command line wins over the profile, and the profile over what the
    /// job stored. The file is read only when --profile is given.
    #[arg(long, value_name = "NAME", help_heading = PROVIDER)]
    pub profile: Option<String>,

    /// The config file of --profile.
    ///
    /// Default: $XDG_CONFIG_HOME/promptmill/config.toml, else ~/.config/promptmill/config.toml.
    #[arg(long, value_name = "FILE", requires = "profile", help_heading = PROVIDER)]
    pub config: Option<PathBuf>,
}

/// The dry run's flags (`promptmill estimate`, or `run --dry-run`).
#[derive(Debug, Args, Clone, Default)]
pub struct EstimateArgs {
    /// Estimate instead of sending (the same as `promptmill estimate`).
    ///
    /// Read and validate the input, count tokens, price the job; nothing is sent.
    #[arg(long, help_heading = ESTIMATE)]
    pub dry_run: bool,

    /// Print the estimate as JSON on stdout instead of a table on stderr.
    #[arg(long, help_heading = ESTIMATE)]
    pub json: bool,

    /// The completion tokens a row is expected to produce.
    ///
    /// For a point estimate of the cost (the upper bound always uses max_tokens).
    #[arg(long, value_name = "N", help_heading = ESTIMATE)]
    pub expect_output_tokens: Option<u64>,

    /// How long one request takes, for the time estimate.
    ///
    /// Used when concurrency is the binding limit.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "2s", help_heading = ESTIMATE)]
    pub expect_latency: Duration,

    /// Calibrate: send N random rows for real and estimate from them.
    ///
    /// Their completion tokens are measured. They are checkpointed (--output or --db), so the
    /// full run that follows does not send or pay for them again.
    #[arg(long, value_name = "N", help_heading = ESTIMATE)]
    pub sample: Option<u64>,
}

/// `--endpoint`'s values: the names of the registered API families (`promptmill_core::family`).
fn endpoint_parser() -> impl clap::builder::TypedValueParser<Value = Endpoint> {
    use clap::builder::TypedValueParser;
    let names: Vec<&'static str> = promptmill_core::family::FAMILIES
        .iter()
        .map(|f| f.name())
        .collect();
    clap::builder::PossibleValuesParser::new(names)
        .try_map(|name: String| Endpoint::from_name(&name).ok_or("not an API family"))
}
