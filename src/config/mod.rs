//! Validated configuration: the flags, checked once and turned into what the program uses.
//!
//! Every check that can fail without touching the network or the input's rows happens here, and
//! its error names the flag. After this point nothing sees clap's types. This file holds `run`'s
//! whole configuration and puts the parts together; each part is checked in its own file:
//! the input and the request settings (`input`), how requests are sent and under which limits
//! (`send`), where they go and with which key (`target`), the output and checkpoint paths
//! (`outputs`), the dry run (`estimate`), and the `--profile` laid under the flags
//! (`with_profile`).

use std::path::PathBuf;

use crate::cli::RunArgs;
use crate::profile::ProfileUse;
use promptmill_core::error::ConfigError;
use promptmill_core::input::InputFormat;
use promptmill_core::job::JobSpec;
use promptmill_core::provider::Provider;
use promptmill_engine::output::OutputSpec;
use promptmill_engine::prepare::RequestSettings;

mod cache;
mod estimate;
mod input;
mod outputs;
mod send;
mod target;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_scan;
mod with_profile;

pub use cache::{default_path as default_cache_path, side_files, CacheChoice};
pub use estimate::EstimateConfig;
pub use input::{input_config, InputConfig};
pub use outputs::{check_paths, default_db_path, output_spec};
pub use send::{
    is_secret_header, BatchSettings, SendConfig, SendLimits, BATCH_MAX_BYTES, BATCH_MAX_ROWS,
    DEFAULT_MAX_RESPONSE_SIZE, DEFAULT_POLL_INTERVAL,
};
pub use target::{
    check_base_url, check_key_env, check_key_present, check_plain_http, is_loopback, resume_base_url,
    DEFAULT_BASE_URL,
};

use target::Target;

/// What `--provider` implies for the other flags: Anthropic's only family is Messages, so it is
/// the endpoint unless `--endpoint` names another (which is then refused by the provider).
pub(crate) fn provider_defaults(args: &mut RunArgs) -> Result<(), ConfigError> {
    use promptmill_core::provider::ProviderKind;
    if args.provider != Some(ProviderKind::Anthropic) {
        return Ok(());
    }
    args.endpoint
        .get_or_insert(promptmill_core::family::Endpoint::Messages);
    Ok(())
}
use with_profile::apply_profile;

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

impl RunConfig {
    pub fn from_args(mut args: RunArgs) -> Result<RunConfig, anyhow::Error> {
        let profile = apply_profile(&mut args)?;
        provider_defaults(&mut args)?;
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
        } = input::input_config(&args)?;
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
        let cache = CacheChoice::from_args(&args.send);
        check_paths(
            &input,
            &db,
            &output.path,
            args.send.summary.as_deref(),
            &side_files(args.send.report.as_deref(), &cache),
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
