//! `promptmill estimate` (also `promptmill run --dry-run`): what a job would cost and how long it
//! would take, without sending anything — or, with `--sample N`, after sending N random rows for
//! real to measure what completions cost.

use std::collections::BTreeMap;

use crate::cli::RunArgs;
use crate::commands::execute::execute;
use crate::commands::run::{open_job, Scope};
use crate::config::EstimateConfig;
use crate::config::RunConfig;
use promptmill_core::error::exit_code;
use promptmill_engine::estimate::cached::CacheProbe;
use promptmill_engine::estimate::calibrate::{prompt_ratios, PromptRatio};
use promptmill_engine::estimate::report::{Assumptions, Expectation, Report};
use promptmill_engine::estimate::{expectation_from_sample, scan};
use promptmill_engine::load::LoadError;

pub fn estimate(args: RunArgs) -> anyhow::Result<i32> {
    let cfg = EstimateConfig::from_args(args)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let show = !cfg.quiet && promptmill_engine::progress::can_redraw();
    let progress = |rows: u64| {
        if show {
            eprint!("\rpromptmill: counting tokens… {rows} rows");
        }
    };
    let cache = cfg
        .cache
        .as_ref()
        .and_then(|(path, provider, base_url)| CacheProbe::open(path, provider.clone(), base_url.clone()));
    let scanned = scan(&cfg.input, threads, cache.as_ref(), &progress);
    if show {
        eprint!("\r\x1b[2K");
    }
    let scanned = scanned.map_err(|e| match e {
        LoadError::Other(e) => e,
        other => anyhow::Error::msg(other.to_string()),
    })?;
    let mut ratios = None;
    let expectation = match (&cfg.sample, cfg.expect_output_tokens) {
        (Some((n, run)), _) => {
            let (expectation, prompts) = calibrate(*n, run)?;
            ratios = Some(prompts);
            Some(expectation)
        }
        (None, Some(n)) => Some(Expectation {
            per_request: n as f64,
            interval: None,
            source: "--expect-output-tokens".into(),
        }),
        (None, None) => None,
    };
    let report = Report::new(
        &scanned,
        &Assumptions {
            prices: &cfg.prices,
            limits: &cfg.limits,
            latency: cfg.expect_latency,
            expectation,
            prompt_ratios: ratios.as_ref(),
            skip_invalid: cfg.input.skip_invalid,
            batch: cfg.batch.as_ref(),
        },
    )?;
    if cfg.json {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let written = serde_json::to_writer_pretty(&mut out, &report)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out));
        // A reader that stops early (`| head`) is not an error of ours.
        match written {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
            _ => {}
        }
    } else {
        eprint!("{report}");
    }
    Ok(if report.run_would_refuse {
        exit_code::ERROR
    } else {
        exit_code::SUCCESS
    })
}

/// Sends the calibration sample (rows already sent for it are not sent again) and measures its
/// completions, and its prompts as billed beside as counted here (recorded in the checkpoint).
/// The rows are checkpointed like any run's, so the full run skips them.
fn calibrate(n: u64, run: &RunConfig) -> anyhow::Result<(Expectation, BTreeMap<String, PromptRatio>)> {
    let (store, job, lock) = open_job(run, Scope::Sample)?;
    let job_endpoint = job.endpoint;
    let size = store.choose_sample(n)?;
    if !run.send.quiet {
        eprintln!("promptmill: sending a calibration sample of {size} rows");
    }
    let code = execute(store, job, run.send.clone(), lock, Scope::Sample)?;
    if code == exit_code::STOPPED || code == exit_code::BUDGET || code == exit_code::ERROR {
        anyhow::bail!("the calibration sample did not finish; no estimate was made from it");
    }
    let mut store = promptmill_engine::store::Store::open(&run.db, false)?;
    let (completions, unsettled) = store.sample_completions()?;
    if completions.is_empty() {
        anyhow::bail!(
            "none of the {size} sampled rows got a completion ({unsettled} failed); see `promptmill status {}`",
            super::shell_quote(&run.db.display().to_string())
        );
    }
    Ok((
        expectation_from_sample(&completions),
        sample_prompts(&mut store, job_endpoint)?,
    ))
}

/// Counts the done sampled rows' prompts here, records the counts beside the server's, and
/// returns both by model.
fn sample_prompts(
    store: &mut promptmill_engine::store::Store,
    endpoint: promptmill_core::job::Endpoint,
) -> anyhow::Result<BTreeMap<String, PromptRatio>> {
    let mut pairs = Vec::new();
    let mut recorded = Vec::new();
    for row in store.sample_prompts()? {
        // A stored request is JSON this program serialized; one that does not parse is left out.
        let Ok((cost, model)) = endpoint.family().measure(&row.request) else {
            continue;
        };
        let model = model.as_deref().unwrap_or("").to_string();
        recorded.push((row.seq, cost.prompt_tokens));
        pairs.push((model, cost.prompt_tokens, row.server));
    }
    store.record_sample_local_counts(&recorded)?;
    Ok(prompt_ratios(&pairs))
}
