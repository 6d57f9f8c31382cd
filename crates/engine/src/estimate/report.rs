//! The estimate as the user reads it: a table on stderr, or JSON (`--json`) on stdout.
//!
//! Exact where it can be: prompt tokens (for models whose tokenizer is known), rows, the
//! context-window check. Ranges where it cannot: completion tokens run from what the user or a
//! calibration sample expects up to the bound `max_tokens` sets (or the model's output cap when
//! a row sets none). Costs follow the same split, live and through the Batch API, and the time
//! estimate names the limit that binds. With a calibration sample, prompt tokens of a model
//! whose tokenizer is not known are scaled by what the server billed for the sample
//! (`calibrate.rs`), and for a known one the difference is shown.
//!
//! This file holds the report's shape and the job's sums and time; one model's part is
//! `report/model.rs`'s, the table `report/text.rs`'s, the number formats `report/units.rs`'s.

use std::time::Duration;

use serde::Serialize;

use promptmill_core::job::settings::SendLimits;
use promptmill_core::models::{PriceBook, Prices};

use super::calibrate::PromptRatio;
use super::Scan;

mod model;
mod text;
mod units;

pub(crate) use model::model_report;
pub use units::{bytes, dollars, duration, thousands};

/// What is expected of completions, and where the expectation came from.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Expectation {
    /// Completion tokens per request.
    pub per_request: f64,
    /// 95 % interval of the per-request mean, when measured.
    pub interval: Option<(f64, f64)>,
    /// `--expect-output-tokens`, or `sample of N rows`.
    pub source: String,
}

#[derive(Debug, Serialize)]
pub struct PromptTokens {
    /// As counted here (in `encoding`).
    pub total: u64,
    pub mean: f64,
    pub p50: u64,
    pub p95: u64,
    pub max: u64,
    /// The prompt tokens the costs are computed from: `total`, or, when the tokenizer is not
    /// known exactly and a calibration sample has rows of this model, `total` scaled by the
    /// sample's billed / counted ratio, with its 95 % interval.
    pub expected: f64,
    pub expected_low: Option<f64>,
    pub expected_high: Option<f64>,
    /// What the calibration sample (`--sample`) measured of this model's prompts.
    pub sample: Option<PromptSample>,
}

/// The sampled rows' prompt tokens, billed by the server beside counted here.
#[derive(Debug, Serialize)]
pub struct PromptSample {
    #[serde(flatten)]
    pub ratio: PromptRatio,
    /// billed − counted: 0 when the tokenizer is known and right.
    pub difference: i64,
    /// True when the estimate scaled `total` by the ratio (the tokenizer is not known exactly).
    pub scaled: bool,
}

#[derive(Debug, Serialize)]
pub struct CompletionTokens {
    /// The most the rows can produce; `None` when some row sets no max_tokens and the model's
    /// output cap is unknown.
    pub max: Option<u64>,
    /// Rows that set no max_tokens (bounded by the model's output cap instead).
    pub rows_without_max_tokens: u64,
    pub expected: Option<f64>,
    pub expected_low: Option<f64>,
    pub expected_high: Option<f64>,
}

/// Dollars, from the expected completions up to the bound.
#[derive(Debug, Serialize)]
pub struct Cost {
    pub prompt: f64,
    pub max: Option<f64>,
    pub expected: Option<f64>,
    pub expected_low: Option<f64>,
    pub expected_high: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct ModelReport {
    /// As the requests name it (empty when they name none).
    pub model: String,
    pub rows: u64,
    pub encoding: &'static str,
    /// False: the model's tokenizer is unknown and counts use `o200k_base` as an approximation.
    pub exact_tokens: bool,
    pub prompt_tokens: PromptTokens,
    pub max_input_tokens: Option<u64>,
    /// Rows whose prompt is longer than the model's context allows: `run` refuses them as
    /// invalid (with `--skip-invalid`, records them as failed unsent).
    pub rows_over_context: u64,
    pub completion_tokens: CompletionTokens,
    pub prices: Option<Prices>,
    pub price_source: Option<String>,
    pub cost_live: Option<Cost>,
    pub cost_batch: Option<Cost>,
    /// Why there is no cost, when there is none.
    pub cost_unknown: Option<String>,
    /// What the user should know when the model is unknown (tokens approximated, no price),
    /// with the known model it probably means.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown_model: Option<String>,
    /// The known model the name is probably a misspelling of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub did_you_mean: Option<&'static str>,
}

/// How long the live run takes under each limit; the largest binds.
#[derive(Debug, Serialize)]
pub struct Timing {
    pub requests: u64,
    pub by_rpm: Option<f64>,
    pub by_tpm: Option<f64>,
    pub by_concurrency: f64,
    /// Seconds per request assumed for the concurrency limit.
    pub latency: f64,
    pub binding: &'static str,
    pub seconds: f64,
    pub rpm: Option<u32>,
    pub tpm: Option<u32>,
    pub concurrency: usize,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub input: String,
    pub endpoint: &'static str,
    /// Whether the family generates text (false for embeddings: no completion, no expected
    /// output).
    pub generates_text: bool,
    pub rows: u64,
    pub rows_to_send: u64,
    /// Valid rows a run would answer from the response cache: not sent, not billed, and not
    /// in the token counts.
    pub rows_cached: u64,
    /// The response cache looked in (`None`: none was, with `--no-cache` or no cache file).
    pub cache: Option<String>,
    pub rows_invalid: u64,
    /// The first invalid rows, with the reason, as `run` would report them.
    pub invalid: Vec<String>,
    /// True when `run` would refuse the input as it is: invalid rows, or rows over the context
    /// window, without --skip-invalid.
    pub run_would_refuse: bool,
    pub models: Vec<ModelReport>,
    /// As counted here.
    pub prompt_tokens: u64,
    /// Σ of the models' `prompt_tokens.expected`: what the costs assume.
    pub prompt_tokens_expected: f64,
    pub cost_live: Option<Cost>,
    pub cost_batch: Option<Cost>,
    pub timing: Timing,
    /// With `--mode batch`: how the Batch API would take the job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchPlan>,
    pub expectation: Option<Expectation>,
}

/// The Batch API's side of the estimate (`--mode batch`).
#[derive(Debug, Serialize)]
pub struct BatchPlan {
    /// Input files (batches) the rows make, one model each, within the limits.
    pub files: u64,
    /// Bytes of all input lines, about (the request bodies plus each line's envelope).
    pub bytes: u64,
    pub max_rows: u64,
    pub max_bytes: u64,
}

/// Bytes a Batch input line adds to its request body: `{"custom_id":"…","method":"POST",
/// "url":"/v1/chat/completions","body":…}` and a newline, with a short id.
const LINE_ENVELOPE: u64 = 80;

/// The files the rows of `scan` make under `b`'s limits.
fn batch_plan(scan: &Scan, b: &promptmill_core::job::settings::BatchSettings) -> BatchPlan {
    let mut plan = BatchPlan {
        files: 0,
        bytes: 0,
        max_rows: b.max_rows,
        max_bytes: b.max_bytes,
    };
    for t in scan.models.values() {
        let bytes = t.request_bytes + t.rows * LINE_ENVELOPE;
        plan.bytes += bytes;
        plan.files += t.rows.div_ceil(b.max_rows).max(bytes.div_ceil(b.max_bytes));
    }
    plan
}

/// Everything a report is computed from besides the scan.
pub struct Assumptions<'a> {
    pub prices: &'a PriceBook,
    pub limits: &'a SendLimits,
    pub latency: Duration,
    pub expectation: Option<Expectation>,
    /// Prompt tokens of a calibration sample, billed beside counted, by model.
    pub prompt_ratios: Option<&'a std::collections::BTreeMap<String, PromptRatio>>,
    pub skip_invalid: bool,
    /// `--mode batch`: the Batch API's limits.
    pub batch: Option<&'a promptmill_core::job::settings::BatchSettings>,
}

impl Report {
    pub fn new(scan: &Scan, a: &Assumptions<'_>) -> anyhow::Result<Report> {
        let mut models = Vec::new();
        for (model, tally) in &scan.models {
            let info = a.prices.lookup(model)?;
            let ratio = a.prompt_ratios.and_then(|r| r.get(model));
            models.push(model_report(model, tally, &info, a.expectation.as_ref(), ratio));
        }
        let sum = |f: &dyn Fn(&ModelReport) -> Option<&Cost>| -> Option<Cost> {
            let mut total = Cost {
                prompt: 0.0,
                max: Some(0.0),
                expected: Some(0.0),
                expected_low: Some(0.0),
                expected_high: Some(0.0),
            };
            for m in &models {
                let c = f(m)?;
                total.prompt += c.prompt;
                let add = |acc: &mut Option<f64>, v: Option<f64>| *acc = acc.zip(v).map(|(a, b)| a + b);
                add(&mut total.max, c.max);
                add(&mut total.expected, c.expected);
                add(&mut total.expected_low, c.expected_low);
                add(&mut total.expected_high, c.expected_high);
            }
            Some(total)
        };
        let over_context: u64 = models.iter().map(|m| m.rows_over_context).sum();
        let cost_live = sum(&|m| m.cost_live.as_ref());
        let cost_batch = sum(&|m| m.cost_batch.as_ref());
        // Rows over the context window are refused by `run`: not sent (still in the token totals).
        let rows_to_send = scan.rows_to_send() - over_context;
        let requests = requests_needed(scan, a.limits, rows_to_send);
        let limiter_tokens: u64 = scan
            .models
            .values()
            .map(|t| t.prompt_tokens + t.max_output_tokens)
            .sum();
        let timing = timing(requests, limiter_tokens, a.limits, a.latency);
        Ok(Report {
            input: scan.file.display().to_string(),
            endpoint: scan.endpoint.path(),
            generates_text: scan.endpoint.family().generates_text(),
            rows: scan.rows,
            rows_to_send,
            rows_cached: scan.cached.as_ref().map_or(0, |c| c.rows),
            cache: scan.cached.as_ref().map(|c| c.cache.display().to_string()),
            rows_invalid: scan.invalid,
            invalid: scan.listed.iter().map(|e| e.to_string()).collect(),
            run_would_refuse: (scan.invalid > 0 || over_context > 0) && !a.skip_invalid,
            prompt_tokens: scan.models.values().map(|t| t.prompt_tokens).sum(),
            prompt_tokens_expected: models.iter().map(|m| m.prompt_tokens.expected).sum(),
            models,
            cost_live,
            cost_batch,
            timing,
            batch: a.batch.map(|b| batch_plan(scan, b)),
            expectation: a.expectation.clone(),
        })
    }
}

/// Requests the rows take: one a row, or for a family that joins rows (embeddings) each
/// model's rows in requests of `--rows-per-request` rows and at most the family's tokens a
/// request (a lower bound where rows of other models interleave, each closing a request).
fn requests_needed(scan: &Scan, limits: &SendLimits, rows_to_send: u64) -> u64 {
    let family = scan.endpoint.family();
    let most = family.max_rows_per_request();
    if most <= 1 {
        return rows_to_send;
    }
    let per_request = limits.rows_per_request.clamp(1, most) as u64;
    let max_tokens = promptmill_core::family::embeddings::MAX_REQUEST_TOKENS;
    scan.models
        .values()
        .map(|t| {
            t.rows
                .div_ceil(per_request)
                .max(t.prompt_tokens.div_ceil(max_tokens))
        })
        .sum()
}

fn timing(requests: u64, limiter_tokens: u64, limits: &SendLimits, latency: Duration) -> Timing {
    let by_rpm = limits.rpm.map(|r| requests as f64 * 60.0 / r.get() as f64);
    let by_tpm = limits.tpm.map(|t| limiter_tokens as f64 * 60.0 / t.get() as f64);
    // Requests go in waves of `concurrency`, each at least one latency long: 12 requests at a
    // concurrency of 50 still take one latency, not a fraction of it.
    let waves = requests.div_ceil(limits.concurrency.max(1) as u64);
    let by_concurrency = waves as f64 * latency.as_secs_f64();
    let mut binding = ("concurrency", by_concurrency);
    for (name, v) in [("rpm", by_rpm), ("tpm", by_tpm)] {
        if let Some(v) = v {
            if v > binding.1 {
                binding = (name, v);
            }
        }
    }
    Timing {
        requests,
        by_rpm,
        by_tpm,
        by_concurrency,
        latency: latency.as_secs_f64(),
        binding: binding.0,
        seconds: binding.1,
        rpm: limits.rpm.map(|r| r.get()),
        tpm: limits.tpm.map(|t| t.get()),
        concurrency: limits.concurrency,
    }
}
