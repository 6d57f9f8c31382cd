//! The input and the request settings: the input file and its format, the template, the system
//! message, the model and the `--param` values, checked into an `InputConfig`. Everything a
//! dry run needs too; where the requests go and how they are sent is `target`'s and `send`'s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::cli::RunArgs;
use promptmill_core::error::ConfigError;
use promptmill_core::family::{Endpoint, FAMILIES};
use promptmill_core::input::InputFormat;
use promptmill_core::job::JobSpec;
use promptmill_core::schema::{from_fields, Schema};
use promptmill_core::template::Template;
use promptmill_engine::prepare::RequestSettings;
pub use promptmill_engine::source::InputConfig;

/// The input settings of `run`, `estimate` and the other commands that read an input.
pub fn input_config(args: &RunArgs) -> Result<InputConfig, anyhow::Error> {
    let stdin = promptmill_core::input::is_stdin(&args.input);
    let format = input_format(args, stdin)?;
    let input = open_input(args, stdin)?;
    let request = request_settings(args)?;
    let spec = JobSpec {
        input: input.clone(),
        format,
        fingerprint: String::new(),
        template: request.template.as_ref().map(|t| t.source().to_string()),
        system: request.system.as_ref().map(|t| t.source().to_string()),
        id_column: args.id_column.clone(),
        endpoint: args.endpoint,
        model: args.model.clone(),
        max_tokens: args.max_tokens,
        temperature: args.temperature,
        params: request.params.clone(),
        schema: request.schema.as_ref().map(|s| s.json().clone()),
    };
    Ok(InputConfig {
        input,
        format,
        skip_invalid: args.skip_invalid,
        request,
        spec,
    })
}

/// `--format`, or the input's extension; standard input has none, so it needs the flag.
fn input_format(args: &RunArgs, stdin: bool) -> Result<InputFormat, ConfigError> {
    match args.format.or_else(|| InputFormat::from_path(&args.input)) {
        Some(f) => Ok(f),
        None if stdin => Err(ConfigError::new(
            "--format",
            "is required when the input is standard input (`-`): pass --format csv|jsonl",
        )),
        None => Err(ConfigError::new(
            "--format",
            format!(
                "cannot tell the format of {} from its extension; name it .csv, .jsonl or .parquet, or pass --format csv|jsonl|parquet",
                args.input.display()
            ),
        )),
    }
}

/// The input's absolute path (a file, not a directory), or `-` when standard input is piped.
fn open_input(args: &RunArgs, stdin: bool) -> anyhow::Result<PathBuf> {
    if stdin {
        check_stdin_piped()?;
        return Ok(args.input.clone());
    }
    let input = std::fs::canonicalize(&args.input)
        .map_err(|e| anyhow::anyhow!("{}: cannot open the input: {e}", args.input.display()))?;
    if input.is_dir() {
        anyhow::bail!("{}: is a directory, not a prompts file", args.input.display());
    }
    Ok(input)
}

/// The template, the system message and the request's parameters, each flag checked.
fn request_settings(args: &RunArgs) -> Result<RequestSettings, ConfigError> {
    let template_text = text_flag(
        args.template.clone(),
        args.template_file.as_deref(),
        "--template-file",
    )?;
    let system_text = text_flag(args.system.clone(), args.system_file.as_deref(), "--system-file")?;
    let template = parse_template(template_text.as_deref(), "--template")?;
    let system = parse_template(system_text.as_deref(), "--system")?;
    if template.is_some() && args.model.is_none() {
        return Err(ConfigError::new("--model", "is required with --template"));
    }
    if let Some(family) = args.endpoint.map(|e| e.family()).filter(|f| !f.generates_text()) {
        let given = [
            ("--max-tokens", args.max_tokens.is_some()),
            ("--temperature", args.temperature.is_some()),
            ("--system", system.is_some()),
        ];
        if let Some((flag, _)) = given.iter().find(|(_, given)| *given) {
            return Err(ConfigError::new(
                flag,
                format!(
                    "does not apply to the {} endpoint, which generates no text",
                    family.name()
                ),
            ));
        }
    }
    if system.is_some() && args.endpoint.is_some_and(|e| !e.family().takes_messages()) {
        return Err(ConfigError::new(
            "--system",
            "the legacy completions endpoint has no system message; put it in the template instead",
        ));
    }
    let family = args.endpoint.map(|e| e.family());
    if let Some(t) = args.temperature {
        let most = family.map_or(2.0, |f| f.max_temperature());
        if !(0.0..=most).contains(&t) {
            return Err(ConfigError::new(
                "--temperature",
                format!("{t} is outside 0 to {most}"),
            ));
        }
    }
    if let Some(f) = family.filter(|f| f.needs_max_tokens() && args.max_tokens.is_none()) {
        return Err(ConfigError::new(
            "--max-tokens",
            format!(
                "is required by the {} endpoint (the API has no default for `max_tokens`): pass --max-tokens N, e.g. --max-tokens 1024",
                f.name()
            ),
        ));
    }
    if args.max_tokens == Some(0) {
        return Err(ConfigError::new("--max-tokens", "must be at least 1"));
    }
    if let Some(id) = &args.id_column {
        if id.trim().is_empty() {
            return Err(ConfigError::new("--id-column", "is empty"));
        }
    }
    let params = parse_params(&args.params)?;
    let schema = schema(args, &params)?;
    Ok(RequestSettings {
        template,
        system,
        id_column: args.id_column.clone(),
        endpoint: args.endpoint,
        model: args.model.clone(),
        max_tokens: args.max_tokens,
        temperature: args.temperature,
        params,
        schema,
    })
}

/// `--schema` or `--fields`, compiled; refused for a family without structured output, and
/// when a `--param` sets the field it goes in.
fn schema(args: &RunArgs, params: &BTreeMap<String, Value>) -> Result<Option<Schema>, ConfigError> {
    let schema = match (&args.schema, &args.fields) {
        (Some(arg), _) => Schema::read(arg).map_err(|e| ConfigError::new("--schema", e))?,
        (None, Some(spec)) => {
            let json = from_fields(spec).map_err(|e| ConfigError::new("--fields", e))?;
            Schema::new(json).map_err(|e| ConfigError::new("--fields", e))?
        }
        (None, None) => return Ok(None),
    };
    let flag = if args.schema.is_some() {
        "--schema"
    } else {
        "--fields"
    };
    let family = args.endpoint.unwrap_or(Endpoint::Chat).family();
    if args.endpoint.is_some() && family.schema_field().is_none() {
        return Err(ConfigError::new(
            flag,
            format!(
                "the {} endpoint has no structured output; chat, responses and messages have",
                family.name()
            ),
        ));
    }
    let mut taken = FAMILIES.iter().filter_map(|f| f.schema_field());
    if let Some(field) = taken.find(|f| params.contains_key(*f)) {
        return Err(ConfigError::new(
            "--param",
            format!("`{field}` is set by {flag}; give the schema there only"),
        ));
    }
    Ok(Some(schema))
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
pub(super) fn parse_params(raw: &[String]) -> Result<BTreeMap<String, Value>, ConfigError> {
    let mut params = BTreeMap::new();
    for p in raw {
        let (key, value) = p
            .split_once('=')
            .ok_or_else(|| ConfigError::new("--param", format!("`{p}` is not KEY=VALUE")))?;
        let key = key.trim();
        if key.is_empty() {
            return Err(ConfigError::new("--param", format!("`{p}` has no key")));
        }
        if let Some(setter) = set_by_flags_or_rows(key) {
            return Err(ConfigError::new(
                "--param",
                match setter.strip_prefix("--") {
                    Some(_) => format!("use {setter} instead of --param {key}"),
                    None => format!("`{key}` comes from {setter}"),
                },
            ));
        }
        match key {
            "model" => return Err(ConfigError::new("--param", "use --model to set the model")),
            "temperature" => return Err(ConfigError::new("--param", "use --temperature")),
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

/// What sets a body field that `--param` may not (a flag, or the input rows), in any family: the
/// job's family may be decided only by the rows, after the flags are read.
fn set_by_flags_or_rows(key: &str) -> Option<&'static str> {
    FAMILIES
        .iter()
        .flat_map(|f| f.set_elsewhere())
        .find(|(field, _)| *field == key)
        .map(|(_, setter)| *setter)
}
