//! Validated configuration: the flags, checked once and turned into what the program uses.
//!
//! Every check that can fail without touching the network or the input's rows happens here, and
//! its error names the flag. After this point nothing sees clap's types.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::cli::{self, RunArgs, SendArgs};
use crate::error::ConfigError;
use crate::input::InputFormat;
use crate::job::JobSpec;
use crate::models::{PriceBook, PriceError};
use crate::output::{OutputFormat, OutputSpec};
use crate::prepare::RequestSettings;
use crate::profile::ProfileUse;
use crate::provider::{self, AzureUrl, Provider, ProviderKind};
use crate::template::Template;

mod with_profile;
use with_profile::apply_profile;

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// Everything `promptmill run` needs before it reads the input.
#[derive(Debug)]
pub struct RunConfig {
    pub input: PathBuf,
    pub format: InputFormat,
    pub skip_invalid: bool,
    pub request: RequestSettings,
    /// The job as this command describes it (the input's fingerprint is filled in once read).
    pub spec: JobSpec,
    pub output: OutputSpec,
    pub db: PathBuf,
    pub restart: bool,
    /// `--limit`: send only the rows numbered 1..=N.
    pub limit: Option<u64>,
    pub base_url: String,
    /// OpenAI-compatible, or Azure with its deployment and API version.
    pub provider: Provider,
    pub api_key_env: String,
    pub send: SendConfig,
    /// The `--profile` used, and the settings it gave.
    pub profile: Option<ProfileUse>,
}

/// How requests are sent, as this command line asks; shared by `run` and `resume`. Its `Debug`
/// redacts credential headers.
#[derive(Clone)]
pub struct SendConfig {
    pub headers: Vec<(String, String)>,
    /// The limit flags given on this command line; see [`SendConfig::limits`].
    given: LimitFlags,
    pub retry_failed: bool,
    pub summary: Option<PathBuf>,
    /// `--report`: the HTML run report, written when the run ends.
    pub report: Option<PathBuf>,
    /// `--overwrite` (or `--restart`): an existing output this job did not write may be replaced.
    pub overwrite: bool,
    pub quiet: bool,
    pub verbose: u8,
    /// `--confirm`: ask before a new job's first request (checked: stdin is a terminal).
    pub confirm: bool,
    /// `--progress-interval`: the plain progress line's period.
    pub progress_interval: Option<Duration>,
    /// `--max-cost`, in dollars.
    pub max_cost: Option<f64>,
    /// `--prices`, `--price-in`, `--price-out` as given.
    pub prices: cli::PriceArgs,
    /// The Batch API's flags as given; see [`SendConfig::batch`].
    batch_given: cli::BatchArgs,
    /// `--no-wait`: submit the batches and exit.
    pub no_wait: bool,
    /// `--finish-live`: send what remains live once the batches are collected.
    pub finish_live: bool,
    /// `--max-response-size`, in bytes: the longest body (or batch result line) read.
    pub max_response_size: u64,
    /// `--allow-http`: plain http to a host that is not this machine, for this run only.
    pub allow_http: bool,
}

/// The default `--max-response-size`: far above any real completion (16 MiB).
pub const DEFAULT_MAX_RESPONSE_SIZE: u64 = 16 << 20;

/// The Batch API's limits (OpenAI's; other providers may be smaller, hence the flags).
pub const BATCH_MAX_ROWS: u64 = 50_000;
pub const BATCH_MAX_BYTES: u64 = 200_000_000;
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(30);

/// How a job sends, kept by the job like [`SendLimits`]: a resume without `--mode batch` goes on
/// through the Batch API.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchSettings {
    pub mode: cli::Mode,
    pub max_rows: u64,
    pub max_bytes: u64,
    pub max_enqueued_tokens: Option<u64>,
    pub poll_interval: Duration,
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings {
            mode: cli::Mode::Live,
            max_rows: BATCH_MAX_ROWS,
            max_bytes: BATCH_MAX_BYTES,
            max_enqueued_tokens: None,
            poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }
}

impl std::fmt::Debug for SendConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendConfig")
            .field("headers", &crate::secret::RedactedHeaders(&self.headers))
            .field("given", &self.given)
            .field("retry_failed", &self.retry_failed)
            .field("summary", &self.summary)
            .field("report", &self.report)
            .field("overwrite", &self.overwrite)
            .field("quiet", &self.quiet)
            .field("verbose", &self.verbose)
            .finish()
    }
}

/// Limit flags as given (validated); `None` where the flag was not given.
#[derive(Debug, Clone, Default)]
struct LimitFlags {
    concurrency: Option<usize>,
    rpm: Option<u32>,
    tpm: Option<u32>,
    max_attempts: Option<u32>,
    timeout: Option<Duration>,
    drain_timeout: Option<Duration>,
}

/// The limits a run sends under. Stored in the job after every start, so that a resume (or the
/// same command without the flags) keeps the limits the job ran under: a forgotten `--rpm` must
/// not turn into an unlimited run against a paid API.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SendLimits {
    pub concurrency: usize,
    pub rpm: Option<NonZeroU32>,
    pub tpm: Option<NonZeroU32>,
    pub max_attempts: u32,
    pub timeout: Duration,
    pub drain_timeout: Duration,
}

impl Default for SendLimits {
    fn default() -> Self {
        SendLimits {
            concurrency: cli::DEFAULT_CONCURRENCY,
            rpm: None,
            tpm: None,
            max_attempts: cli::DEFAULT_MAX_ATTEMPTS,
            timeout: cli::DEFAULT_TIMEOUT,
            drain_timeout: cli::DEFAULT_DRAIN_TIMEOUT,
        }
    }
}

/// The input and what to make of it: the part of `run`'s flags that a dry run needs too.
#[derive(Debug, Clone)]
pub struct InputConfig {
    pub input: PathBuf,
    pub format: InputFormat,
    pub skip_invalid: bool,
    pub request: RequestSettings,
    /// The job as the command describes it (the input's fingerprint is filled in once read).
    pub spec: JobSpec,
}

impl InputConfig {
    pub fn from_args(args: &RunArgs) -> Result<InputConfig, anyhow::Error> {
        let stdin = crate::input::is_stdin(&args.input);
        let format = match args.format.or_else(|| InputFormat::from_path(&args.input)) {
            Some(f) => f,
            None if stdin => {
                return Err(ConfigError::new(
                    "--format",
                    "is required when the input is standard input (`-`): pass --format csv|jsonl",
                )
                .into())
            }
            None => {
                return Err(ConfigError::new(
                    "--format",
                    format!(
                        "cannot tell the format of {} from its extension; name it .csv, .jsonl or .parquet, or pass --format csv|jsonl|parquet",
                        args.input.display()
                    ),
                )
                .into())
            }
        };
        let input = if stdin {
            check_stdin_piped()?;
            args.input.clone()
        } else {
            std::fs::canonicalize(&args.input)
                .map_err(|e| anyhow::anyhow!("{}: cannot open the input: {e}", args.input.display()))?
        };
        if !stdin && input.is_dir() {
            anyhow::bail!("{}: is a directory, not a prompts file", args.input.display());
        }
        let template_text = text_flag(
            args.template.clone(),
            args.template_file.as_deref(),
            "--template-file",
        )?;
        let system_text = text_flag(args.system.clone(), args.system_file.as_deref(), "--system-file")?;
        let template = parse_template(template_text.as_deref(), "--template")?;
        let system = parse_template(system_text.as_deref(), "--system")?;
        if template.is_some() && args.model.is_none() {
            return Err(ConfigError::new("--model", "is required with --template").into());
        }
        let endpoint = args.endpoint;
        if system.is_some() && endpoint.is_some_and(|e| !e.family().takes_messages()) {
            return Err(ConfigError::new(
                "--system",
                "the legacy completions endpoint has no system message; put it in the template instead",
            )
            .into());
        }
        if let Some(t) = args.temperature {
            if !(0.0..=2.0).contains(&t) {
                return Err(ConfigError::new("--temperature", format!("{t} is outside 0 to 2")).into());
            }
        }
        if args.max_tokens == Some(0) {
            return Err(ConfigError::new("--max-tokens", "must be at least 1").into());
        }
        if let Some(id) = &args.id_column {
            if id.trim().is_empty() {
                return Err(ConfigError::new("--id-column", "is empty").into());
            }
        }
        let params = parse_params(&args.params)?;
        let spec = JobSpec {
            input: input.clone(),
            format,
            fingerprint: String::new(),
            template: template.as_ref().map(|t| t.source().to_string()),
            system: system.as_ref().map(|t| t.source().to_string()),
            id_column: args.id_column.clone(),
            endpoint,
            model: args.model.clone(),
            max_tokens: args.max_tokens,
            temperature: args.temperature,
            params: params.clone(),
        };
        let request = RequestSettings {
            template,
            system,
            id_column: args.id_column.clone(),
            endpoint,
            model: args.model.clone(),
            max_tokens: args.max_tokens,
            temperature: args.temperature,
            params,
        };
        Ok(InputConfig {
            input,
            format,
            skip_invalid: args.skip_invalid,
            request,
            spec,
        })
    }
}

impl RunConfig {
    pub fn from_args(mut args: RunArgs) -> Result<RunConfig, anyhow::Error> {
        let profile = apply_profile(&mut args)?;
        RunConfig::from_resolved(args, profile)
    }

    /// [`RunConfig::from_args`] for flags that already carry their profile's settings.
    fn from_resolved(args: RunArgs, profile: Option<ProfileUse>) -> Result<RunConfig, anyhow::Error> {
        let InputConfig {
            input,
            format,
            skip_invalid,
            request,
            spec,
        } = InputConfig::from_args(&args)?;
        let Some(output_path) = &args.output else {
            return Err(ConfigError::new("--output", "is required: the file to write the results to").into());
        };
        let output = output_spec(output_path, args.output_format, "--output")?;
        let db = match &args.db {
            Some(db) => db.clone(),
            None if output.is_stdout() => {
                return Err(ConfigError::new(
                    "--db",
                    "is required with `-o -`: the checkpoint is named after the output file, and standard output has no name",
                )
                .into())
            }
            None => default_db_path(&output.path),
        };
        check_paths(
            &input,
            &db,
            &output.path,
            args.send.summary.as_deref(),
            args.send.report.as_deref().map(|p| ("--report", p)),
            "--output",
            "--db",
        )?;
        let target = Target::from_args(&args)?;
        if let Some(endpoint) = spec.endpoint {
            // An --endpoint the provider does not serve is refused before a checkpoint exists.
            target.provider.endpoint_url(&target.base_url, endpoint)?;
        }
        let mut send = SendConfig::from_args(&args.send)?;
        // Starting over replaces the job's output whoever wrote it.
        send.overwrite |= args.restart;
        check_plain_http(&target.base_url, send.allow_http)?;
        check_key_present(&target.api_key_env, &target.base_url)?;
        Ok(RunConfig {
            input,
            format,
            skip_invalid,
            request,
            spec,
            output,
            db,
            restart: args.restart,
            limit: args.limit,
            base_url: target.base_url,
            provider: target.provider,
            api_key_env: target.api_key_env,
            send,
            profile,
        })
    }
}

/// Everything the dry run needs: the input, the limits the ETA is computed for, the prices, and
/// the run that sends the calibration sample when `--sample` is given.
#[derive(Debug)]
pub struct EstimateConfig {
    pub input: InputConfig,
    pub limits: SendLimits,
    pub prices: PriceBook,
    pub json: bool,
    pub quiet: bool,
    pub expect_output_tokens: Option<u64>,
    pub expect_latency: Duration,
    /// `--sample N` and the run that sends it.
    pub sample: Option<(u64, Box<RunConfig>)>,
    /// `--mode batch` and its limits: the estimate also says how the Batch API would take the
    /// job.
    pub batch: Option<BatchSettings>,
}

impl EstimateConfig {
    pub fn from_args(mut args: RunArgs) -> Result<EstimateConfig, anyhow::Error> {
        let profile = apply_profile(&mut args)?;
        if args.limit.is_some() {
            return Err(ConfigError::new(
                "--limit",
                "applies to `run`; the estimate covers the whole input (a limited run sends the first N rows of it)",
            )
            .into());
        }
        let input = InputConfig::from_args(&args)?;
        let send = SendConfig::from_args(&args.send)?;
        let est = args.estimate.clone();
        let sample = match est.sample {
            None => None,
            Some(0) => return Err(ConfigError::new("--sample", "must be at least 1").into()),
            Some(_) if crate::input::is_stdin(&args.input) => {
                return Err(ConfigError::new(
                    "--sample",
                    "cannot read standard input twice (once to estimate, once to send); save the rows to a file first",
                )
                .into())
            }
            Some(n) => {
                if args.output.is_none() {
                    return Err(ConfigError::new(
                        "--sample",
                        "needs --output: the sampled rows are checkpointed next to it, so the full run does not pay for them again",
                    )
                    .into());
                }
                Some((n, Box::new(RunConfig::from_resolved(args, profile)?)))
            }
        };
        Ok(EstimateConfig {
            input,
            limits: send.limits(None),
            prices: send.price_book()?,
            json: est.json,
            quiet: send.quiet,
            expect_output_tokens: est.expect_output_tokens,
            expect_latency: est.expect_latency,
            sample,
            batch: Some(send.batch(None)).filter(|b| b.mode == cli::Mode::Batch),
        })
    }
}

/// Where requests go and which variable holds the key: `--provider`, `--base-url`,
/// `--deployment`, `--api-version`, `--api-key-env` and their environment variables, resolved.
struct Target {
    provider: Provider,
    base_url: String,
    api_key_env: String,
}

impl Target {
    fn from_args(args: &RunArgs) -> Result<Target, ConfigError> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        // A deployment URL names Azure by itself (the "URL form"); otherwise OpenAI's shape.
        let kind = args.provider.unwrap_or_else(|| match &args.base_url {
            Some(url) if url.contains("/openai/deployments/") => ProviderKind::Azure,
            _ => ProviderKind::Openai,
        });
        let api_key_env = args
            .api_key_env
            .clone()
            .unwrap_or_else(|| kind.default_key_env().to_string());
        check_key_env(&api_key_env)?;
        if kind == ProviderKind::Openai {
            for (flag, given) in [
                ("--deployment", args.deployment.is_some()),
                ("--api-version", args.api_version.is_some()),
            ] {
                if given {
                    return Err(ConfigError::new(flag, "only applies with --provider azure"));
                }
            }
            let raw = args
                .base_url
                .clone()
                .or_else(|| env("OPENAI_BASE_URL"))
                .unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
            return Ok(Target {
                provider: Provider::OpenAi,
                base_url: check_base_url(&raw)?,
                api_key_env,
            });
        }
        let raw = args.base_url.clone().or_else(|| env("AZURE_OPENAI_ENDPOINT")).ok_or_else(|| {
            ConfigError::new(
                "--base-url",
                "--provider azure needs the resource endpoint: pass --base-url https://NAME.openai.azure.com or set AZURE_OPENAI_ENDPOINT",
            )
        })?;
        check_base_url(&raw)?;
        let url = AzureUrl::parse(&raw)?;
        let deployment = agree("--deployment", args.deployment.clone(), url.deployment)?
            .or_else(|| args.model.clone())
            .ok_or_else(|| {
                ConfigError::new(
                    "--deployment",
                    "--provider azure needs a deployment: pass --deployment NAME (it defaults to --model)",
                )
            })?;
        provider::check_deployment(&deployment, "--deployment")?;
        let api_version = agree("--api-version", args.api_version.clone(), url.api_version)?
            .or_else(|| env("OPENAI_API_VERSION"))
            .unwrap_or_else(|| provider::DEFAULT_AZURE_API_VERSION.to_string());
        provider::check_api_version(&api_version)?;
        Ok(Target {
            provider: Provider::Azure {
                deployment,
                api_version,
            },
            base_url: url.endpoint,
            api_key_env,
        })
    }
}

/// A setting given both as a flag and inside `--base-url`: they must agree.
fn agree(
    flag: &'static str,
    given: Option<String>,
    in_url: Option<String>,
) -> Result<Option<String>, ConfigError> {
    match (given, in_url) {
        (Some(a), Some(b)) if a != b => Err(ConfigError::new(
            flag,
            format!("`{a}` differs from `{b}` in --base-url; give one of them"),
        )),
        (a, b) => Ok(a.or(b)),
    }
}

impl SendConfig {
    pub fn from_args(args: &SendArgs) -> Result<SendConfig, ConfigError> {
        if let Some(c) = args.concurrency {
            if c == 0 || c > 100_000 {
                return Err(ConfigError::new("--concurrency", "must be from 1 to 100000"));
            }
        }
        if args.max_attempts == Some(0) {
            return Err(ConfigError::new("--max-attempts", "must be at least 1"));
        }
        if let Some(c) = args.max_cost {
            if !(c.is_finite() && c > 0.0) {
                return Err(ConfigError::new(
                    "--max-cost",
                    format!("`{c}` is not a budget (dollars, more than 0)"),
                ));
            }
        }
        let b = &args.batch;
        if let Some(n) = b.batch_max_rows {
            if n == 0 || n > BATCH_MAX_ROWS {
                return Err(ConfigError::new(
                    "--batch-max-rows",
                    format!("must be from 1 to {BATCH_MAX_ROWS} (the Batch API's limit)"),
                ));
            }
        }
        if let Some(n) = b.batch_max_bytes {
            if n > BATCH_MAX_BYTES {
                return Err(ConfigError::new(
                    "--batch-max-bytes",
                    format!("must be at most {BATCH_MAX_BYTES} (200 MB, the Batch API's limit)"),
                ));
            }
        }
        if b.batch_max_enqueued_tokens == Some(0) {
            return Err(ConfigError::new(
                "--batch-max-enqueued-tokens",
                "must be more than 0",
            ));
        }
        if args.confirm && !crate::ceiling::can_ask() {
            return Err(ConfigError::new("--confirm", crate::ceiling::NEEDS_TERMINAL));
        }
        let headers = args
            .headers
            .iter()
            .map(|h| parse_header(h))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SendConfig {
            batch_given: args.batch.clone(),
            no_wait: args.batch.no_wait,
            finish_live: args.batch.finish_live,
            allow_http: args.allow_http,
            headers,
            given: LimitFlags {
                concurrency: args.concurrency,
                rpm: args.rpm,
                tpm: args.tpm,
                max_attempts: args.max_attempts,
                timeout: args.timeout,
                drain_timeout: args.drain_timeout,
            },
            retry_failed: args.retry_failed,
            summary: args.summary.clone(),
            report: args.report.clone(),
            overwrite: args.overwrite,
            quiet: args.quiet,
            verbose: args.verbose,
            confirm: args.confirm,
            progress_interval: args.progress_interval,
            max_cost: args.max_cost,
            prices: args.prices.clone(),
            max_response_size: args.max_response_size.unwrap_or(DEFAULT_MAX_RESPONSE_SIZE),
        })
    }

    /// The price sources this command names (the built-in table is always there).
    pub fn price_book(&self) -> Result<PriceBook, PriceError> {
        PriceBook::new(
            self.prices.prices.as_deref(),
            self.prices.price_in,
            self.prices.price_out,
        )
    }

    /// The Batch API settings in force: each flag given, else what the job recorded (`stored`),
    /// else the default.
    pub fn batch(&self, stored: Option<&BatchSettings>) -> BatchSettings {
        let base = stored.cloned().unwrap_or_default();
        let g = &self.batch_given;
        BatchSettings {
            mode: g.mode.unwrap_or(base.mode),
            max_rows: g.batch_max_rows.unwrap_or(base.max_rows),
            max_bytes: g.batch_max_bytes.unwrap_or(base.max_bytes),
            max_enqueued_tokens: g.batch_max_enqueued_tokens.or(base.max_enqueued_tokens),
            poll_interval: g.poll_interval.unwrap_or(base.poll_interval),
        }
    }

    /// The limits in force: each flag given on this command line, else what the job last ran
    /// under (`stored`), else the default. `--rpm 0` / `--tpm 0` remove a stored limit.
    pub fn limits(&self, stored: Option<&SendLimits>) -> SendLimits {
        let base = stored.cloned().unwrap_or_default();
        let g = &self.given;
        SendLimits {
            concurrency: g.concurrency.unwrap_or(base.concurrency),
            rpm: g.rpm.map_or(base.rpm, NonZeroU32::new),
            tpm: g.tpm.map_or(base.tpm, NonZeroU32::new),
            max_attempts: g.max_attempts.unwrap_or(base.max_attempts),
            timeout: g.timeout.unwrap_or(base.timeout),
            drain_timeout: g.drain_timeout.unwrap_or(base.drain_timeout),
        }
    }
}

/// `-` as the input: standard input must bring the rows, not wait for a terminal's typing.
fn check_stdin_piped() -> anyhow::Result<()> {
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        anyhow::bail!(
            "the input `-` is standard input, which is a terminal here; pipe the rows in (e.g. `< prompts.jsonl`), or resume the job with `promptmill resume DB`"
        );
    }
    Ok(())
}

/// Refuses paths of a command that name the same file (see `paths`): the input it reads, the
/// checkpoint, the output, and the `--summary` file; `output_flag` and `db_flag` are how the
/// command names them.
pub fn check_paths(
    input: &Path,
    db: &Path,
    output: &Path,
    summary: Option<&Path>,
    report: Option<(&'static str, &Path)>,
    output_flag: &'static str,
    db_flag: &'static str,
) -> Result<(), ConfigError> {
    use crate::paths::{check_distinct, Use, INPUT};
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
    if let Some((flag, path)) = report {
        uses.push(Use { flag, path });
    }
    // Standard input and output (`-`) are no files: nothing to collide with.
    uses.retain(|u| u.path != Path::new(crate::input::STDIN));
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

fn text_flag(
    inline: Option<String>,
    file: Option<&Path>,
    flag: &'static str,
) -> Result<Option<String>, ConfigError> {
    match (inline, file) {
        (Some(t), _) => Ok(Some(t)),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(Some)
            .map_err(|e| ConfigError::new(flag, format!("{}: {e}", path.display()))),
        (None, None) => Ok(None),
    }
}

fn parse_template(text: Option<&str>, flag: &'static str) -> Result<Option<Template>, ConfigError> {
    match text {
        None => Ok(None),
        Some(t) if t.trim().is_empty() => Err(ConfigError::new(flag, "is empty")),
        Some(t) => Template::parse(t)
            .map(Some)
            .map_err(|e| ConfigError::new(flag, e.to_string())),
    }
}

/// `--param key=value`: the value is JSON when it parses as JSON, else a string.
fn parse_params(raw: &[String]) -> Result<BTreeMap<String, Value>, ConfigError> {
    let mut params = BTreeMap::new();
    for p in raw {
        let (key, value) = p
            .split_once('=')
            .ok_or_else(|| ConfigError::new("--param", format!("`{p}` is not KEY=VALUE")))?;
        let key = key.trim();
        if key.is_empty() {
            return Err(ConfigError::new("--param", format!("`{p}` has no key")));
        }
        match key {
            "model" => return Err(ConfigError::new("--param", "use --model to set the model")),
            "max_tokens" | "max_completion_tokens" | "max_output_tokens" => {
                return Err(ConfigError::new(
                    "--param",
                    format!("use --max-tokens instead of --param {key}"),
                ))
            }
            "temperature" => return Err(ConfigError::new("--param", "use --temperature")),
            "instructions" => {
                return Err(ConfigError::new(
                    "--param",
                    "use --system to set the instructions",
                ))
            }
            "messages" | "prompt" | "input" => {
                return Err(ConfigError::new(
                    "--param",
                    format!("`{key}` comes from the input rows"),
                ))
            }
            "background" => {
                return Err(ConfigError::new(
                    "--param",
                    "background responses are not supported: promptmill reads each answer as it comes",
                ))
            }
            "stream" => {
                return Err(ConfigError::new(
                    "--param",
                    "streaming is not supported: promptmill reads whole responses",
                ))
            }
            _ => {}
        }
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
        params.insert(key.to_string(), value);
    }
    Ok(params)
}

fn parse_header(raw: &str) -> Result<(String, String), ConfigError> {
    let (name, value) = raw
        .split_once(':')
        .ok_or_else(|| ConfigError::new("--header", "expected 'Name: value'"))?;
    let name = name.trim();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(&b))
    {
        return Err(ConfigError::new(
            "--header",
            format!("`{name}` is not a valid header name"),
        ));
    }
    if name.eq_ignore_ascii_case("authorization") {
        return Err(ConfigError::new(
            "--header",
            "the Authorization header is built from the API key in the environment (see --api-key-env)",
        ));
    }
    Ok((name.to_string(), value.trim().to_string()))
}

/// Headers whose values look like credentials: never stored, never logged.
pub fn is_secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "key",
        "token",
        "secret",
        "auth",
        "password",
        "cookie",
        "credential",
        "signature",
    ]
    .iter()
    .any(|w| n.contains(w))
}

pub fn check_base_url(raw: &str) -> Result<String, ConfigError> {
    let shown = crate::base_url::redact(raw.trim());
    let url = reqwest::Url::parse(raw.trim())
        .map_err(|e| ConfigError::new("--base-url", format!("`{shown}` is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::new(
            "--base-url",
            format!("`{shown}` is not an http(s) URL"),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::new(
            "--base-url",
            "must not contain credentials; the key comes from the environment",
        ));
    }
    if url.fragment().is_some() {
        return Err(ConfigError::new(
            "--base-url",
            format!("`{shown}` has a fragment (`#…`), which is never sent to a server; remove it"),
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// A plain `http://` base URL is refused unless it is on this machine or `--allow-http` is
/// given: the key and the `--header` values would travel in clear text. A per-run permission,
/// never stored in the job.
pub fn check_plain_http(base_url: &str, allow_http: bool) -> Result<(), ConfigError> {
    let http = reqwest::Url::parse(base_url).is_ok_and(|u| u.scheme() == "http");
    if !http || allow_http || is_loopback(base_url) {
        return Ok(());
    }
    Err(ConfigError::new(
        "--base-url",
        format!(
            "`{}` is plain http to a host that is not this machine: the API key and the --header values \
             would travel in clear text. Use https, or pass --allow-http if the network is trusted \
             (it is not stored in the job: every run and resume of it needs the flag again)",
            crate::base_url::redact(base_url)
        ),
    ))
}

/// `--api-key-env` names a variable; a value that is not a variable's name, or that looks like a
/// key itself, is refused without being shown (it may be the key).
pub fn check_key_env(name: &str) -> Result<(), ConfigError> {
    let is_name = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if is_name && !looks_like_a_key(name) {
        return Ok(());
    }
    Err(ConfigError::new(
        "--api-key-env",
        "takes the NAME of the variable that holds the key (e.g. OPENAI_API_KEY), not the key itself \
         (a name is letters, digits and `_`, and does not start with a digit)",
    ))
}

/// Whether a would-be variable name has the shape of a key: a known key prefix, or a long string
/// of mixed letters and digits (names are words joined by `_`, mostly in one case).
fn looks_like_a_key(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let prefixed = ["sk-", "sk_", "key-", "pk_", "rk_", "gsk_", "ghp_", "xoxb", "aiza"]
        .iter()
        .any(|p| lower.starts_with(p));
    let has = |f: fn(&u8) -> bool| name.as_bytes().iter().any(f);
    let digits = has(u8::is_ascii_digit);
    let letters = has(u8::is_ascii_alphabetic);
    let mixed_case = has(u8::is_ascii_lowercase) && has(u8::is_ascii_uppercase);
    let long_token = name.len() >= 32 && digits && letters && (mixed_case || !name.contains('_'));
    let random_word = name.len() >= 20 && digits && mixed_case && !name.contains('_');
    prefixed || long_token || random_word
}

/// `resume --base-url`: checked for the job's provider. For Azure it may be a deployment URL,
/// whose deployment must be the job's; an `api-version` in it replaces the stored one.
pub fn resume_base_url(raw: &str, provider: &mut Provider) -> Result<String, ConfigError> {
    let checked = check_base_url(raw)?;
    let Provider::Azure {
        deployment,
        api_version,
    } = provider
    else {
        return Ok(checked);
    };
    let url = AzureUrl::parse(&checked)?;
    if let Some(d) = url.deployment.filter(|d| d != deployment) {
        return Err(ConfigError::new(
            "--base-url",
            format!("names the deployment `{d}`, but the job sends to `{deployment}`"),
        ));
    }
    if let Some(v) = url.api_version {
        *api_version = v;
    }
    Ok(url.endpoint)
}

/// Whether requests to this base URL stay on this machine (a key is then optional).
pub fn is_loopback(base_url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(base_url) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A key is required unless the API is on loopback.
pub fn check_key_present(var: &str, base_url: &str) -> Result<(), ConfigError> {
    check_key_env(var)?;
    if crate::secret::ApiKey::from_env(var).is_none() && !is_loopback(base_url) {
        let base_url = crate::base_url::redact(base_url);
        return Err(ConfigError::new(
            "--api-key-env",
            format!("the environment variable {var} is not set, and {base_url} needs an API key; export {var}=… (or name another variable with --api-key-env)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_parse_json_or_fall_back_to_strings() {
        let p = parse_params(&["top_p=0.9".into(), "stop=[\"\\n\"]".into(), "user=alice".into()]).unwrap();
        assert_eq!(p["top_p"], serde_json::json!(0.9));
        assert_eq!(p["stop"], serde_json::json!(["\n"]));
        assert_eq!(p["user"], serde_json::json!("alice"));
        assert_eq!(parse_params(&["nokey".into()]).unwrap_err().flag, "--param");
        assert!(parse_params(&["model=x".into()]).is_err());
    }

    #[test]
    fn headers_parse_and_authorization_is_refused() {
        assert_eq!(
            parse_header("OpenAI-Organization: org-1").unwrap(),
            ("OpenAI-Organization".into(), "org-1".into())
        );
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("Authorization: Bearer x").is_err());
        assert!(is_secret_header("X-Api-Key"));
        assert!(!is_secret_header("OpenAI-Project"));
    }

    #[test]
    fn loopback_needs_no_key() {
        assert!(is_loopback("http://127.0.0.1:8080/v1"));
        assert!(is_loopback("http://localhost:1/v1"));
        assert!(is_loopback("http://[::1]:1/v1"));
        assert!(!is_loopback("https://api.openai.com/v1"));
        assert!(check_key_present("PROMPTMILL_TEST_SURELY_UNSET", "https://api.openai.com/v1").is_err());
        assert!(check_key_present("PROMPTMILL_TEST_SURELY_UNSET", "http://127.0.0.1:9/v1").is_ok());
    }

    #[test]
    fn plain_http_is_refused_off_this_machine_unless_allowed() {
        assert!(check_plain_http("http://127.0.0.1:9/v1", false).is_ok());
        assert!(check_plain_http("http://localhost:9/v1", false).is_ok());
        assert!(check_plain_http("https://gw.example/v1", false).is_ok());
        let err = check_plain_http("http://gw.example/v1?key=sk-x", false).unwrap_err();
        assert!(err.message.contains("clear text"), "{err}");
        assert!(!err.message.contains("sk-x"), "{err}");
        assert!(check_plain_http("http://gw.example/v1", true).is_ok());
    }

    #[test]
    fn api_key_env_takes_a_name_and_refuses_what_looks_like_a_key() {
        for name in [
            "OPENAI_API_KEY",
            "AZURE_OPENAI_API_KEY",
            "_K",
            "my_key_2",
            "A_VERY_LONG_ENVIRONMENT_NAME_FOR_KEY_2",
        ] {
            assert!(check_key_env(name).is_ok(), "{name}");
        }
        for value in [
            "sk-proj-abc123",
            "sk_live_abc123",
            "key-12345",
            "2OPENAI",
            "",
            "MY KEY",
            "0123456789abcdef0123456789abcdef",
            "AbCdEf1234567890GhIjKl",
        ] {
            let err = check_key_env(value).unwrap_err();
            assert!(err.message.contains("takes the NAME"), "{value}: {err}");
            assert!(
                value.is_empty() || !err.to_string().contains(value),
                "{value} echoed: {err}"
            );
        }
    }

    #[test]
    fn base_urls_are_checked() {
        assert!(check_base_url("https://gw/v1#frag").is_err());
        assert_eq!(
            check_base_url("https://gw/v1?tenant=a").unwrap(),
            "https://gw/v1?tenant=a"
        );
        assert_eq!(
            check_base_url("https://api.openai.com/v1/").unwrap(),
            "https://api.openai.com/v1"
        );
        assert!(check_base_url("ftp://x").is_err());
        assert!(check_base_url("https://user:pw@host/v1").is_err());
        assert!(check_base_url("not a url").is_err());
    }

    fn target(flags: &[&str]) -> Result<Target, ConfigError> {
        use clap::Parser;
        let argv = [
            "promptmill",
            "run",
            "in.jsonl",
            "-o",
            "out.jsonl",
            "--api-version",
            "v1",
        ];
        let cli = cli::Cli::try_parse_from(argv.iter().chain(flags)).unwrap();
        let cli::Command::Run(args) = cli.command else {
            unreachable!("parsed as run")
        };
        Target::from_args(&args)
    }

    #[test]
    fn azure_targets_a_deployment_that_defaults_to_the_model() {
        let t = target(&[
            "--provider",
            "azure",
            "--base-url",
            "https://r.openai.azure.com/",
            "--model",
            "gpt-4o",
        ])
        .unwrap();
        assert_eq!(t.base_url, "https://r.openai.azure.com");
        assert_eq!(t.api_key_env, "AZURE_OPENAI_API_KEY");
        assert_eq!(
            t.provider,
            Provider::Azure {
                deployment: "gpt-4o".into(),
                api_version: "v1".into()
            }
        );
        let err = target(&["--provider", "azure", "--base-url", "https://r"])
            .err()
            .unwrap();
        assert_eq!(err.flag, "--deployment");
    }

    #[test]
    fn a_deployment_url_names_azure_by_itself() {
        let t = target(&["--base-url", "https://r.openai.azure.com/openai/deployments/d1"]).unwrap();
        assert_eq!(t.provider.kind_name(), "azure");
        assert_eq!(t.base_url, "https://r.openai.azure.com");
        let clash = target(&[
            "--base-url",
            "https://r/openai/deployments/d1",
            "--deployment",
            "d2",
        ]);
        assert_eq!(clash.err().unwrap().flag, "--deployment");
    }

    #[test]
    fn azure_flags_are_refused_for_openai() {
        let err = target(&["--provider", "openai", "--base-url", "https://x/v1"])
            .err()
            .unwrap();
        assert_eq!(err.flag, "--api-version");
    }

    #[test]
    fn default_checkpoint_sits_beside_the_output() {
        assert_eq!(
            default_db_path(Path::new("out/x.jsonl")),
            PathBuf::from("out/x.jsonl.promptmill.db")
        );
    }
}
