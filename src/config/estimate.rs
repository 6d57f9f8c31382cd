//! The dry run's configuration: the input, the limits and prices the estimate is computed for,
//! and the `--sample` run that calibrates it. The sample's own run is checked like any `run`
//! (`RunConfig`).

use std::time::Duration;

use crate::cli::{self, RunArgs};
use promptmill_core::error::ConfigError;
use promptmill_core::models::PriceBook;

use super::{apply_profile, BatchSettings, InputConfig, RunConfig, SendConfig, SendLimits};

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
    /// The response cache a run would look rows up in, and where its requests would go (the
    /// cache's scope); `None` with `--no-cache`, or when the target cannot be told from the
    /// flags (the estimate then counts every row).
    pub cache: Option<(std::path::PathBuf, promptmill_core::provider::Provider, String)>,
}

impl EstimateConfig {
    pub fn from_args(mut args: RunArgs) -> Result<EstimateConfig, anyhow::Error> {
        let profile = apply_profile(&mut args)?;
        super::provider_defaults(&mut args)?;
        if args.limit.is_some() {
            return Err(ConfigError::new(
                "--limit",
                "applies to `run`; the estimate covers the whole input (a limited run sends the first N rows of it)",
            )
            .into());
        }
        let input = super::input_config(&args)?;
        let send = SendConfig::from_args(&args.send)?;
        let batch = Some(batch_for(&send, args.provider)).filter(|b| b.mode == cli::Mode::Batch);
        let est = args.estimate.clone();
        let cache = match super::CacheChoice::from_args(&args.send) {
            super::CacheChoice::On { path, .. } => super::target::Target::from_args(&args)
                .ok()
                .map(|t| (path, t.provider, t.base_url)),
            super::CacheChoice::Off => None,
        };
        let sample = match est.sample {
            None => None,
            Some(0) => return Err(ConfigError::new("--sample", "must be at least 1").into()),
            Some(_) if promptmill_core::input::is_stdin(&args.input) => {
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
            batch,
            cache,
        })
    }
}

/// The Batch API settings the estimate plans with: the provider's limits (Anthropic's Message
/// Batches take more than OpenAI's files), lowered by the flags, as a run's driver does.
fn batch_for(send: &SendConfig, provider: Option<promptmill_core::provider::ProviderKind>) -> BatchSettings {
    let (rows, bytes) = provider.unwrap_or_default().batch_limits();
    let mut batch = send.batch(Some(&BatchSettings::for_limits((rows, bytes))));
    batch.max_rows = batch.max_rows.min(rows);
    batch.max_bytes = batch.max_bytes.min(bytes);
    batch
}
