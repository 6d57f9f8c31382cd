//! The estimate as the user reads it: a table on stderr, or JSON (`--json`) on stdout.
//!
//! Exact where it can be: prompt tokens (for models whose tokenizer is known), rows, the
//! context-window check. Ranges where it cannot: completion tokens run from what the user or a
//! calibration sample expects up to the bound `max_tokens` sets (or the model's output cap when
//! a row sets none). Costs follow the same split, live and through the Batch API, and the time
//! estimate names the limit that binds. With a calibration sample, prompt tokens of a model
//! whose tokenizer is not known are scaled by what the server billed for the sample
//! (`calibrate.rs`), and for a known one the difference is shown.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::config::SendLimits;
use crate::models::{unknown_price, Billed, ModelInfo, PriceBook, Prices};
use crate::tokens::Tokenizer;

use super::calibrate::PromptRatio;
use super::Scan;

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
    pub rows: u64,
    pub rows_to_send: u64,
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
fn batch_plan(scan: &Scan, b: &crate::config::BatchSettings) -> BatchPlan {
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
    pub batch: Option<&'a crate::config::BatchSettings>,
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
        let requests = scan.valid_rows() - over_context;
        let limiter_tokens: u64 = scan
            .models
            .values()
            .map(|t| t.prompt_tokens + t.max_output_tokens)
            .sum();
        let timing = timing(requests, limiter_tokens, a.limits, a.latency);
        Ok(Report {
            input: scan.file.display().to_string(),
            endpoint: scan.endpoint.path(),
            rows: scan.rows,
            rows_to_send: requests,
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

/// A size for people: "482 B", "11.2 MB".
pub fn bytes(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.1} GB", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1} KB", n as f64 / 1e3),
        n => format!("{n} B"),
    }
}

pub(crate) fn model_report(
    model: &str,
    tally: &super::ModelTally,
    info: &ModelInfo,
    expectation: Option<&Expectation>,
    ratio: Option<&PromptRatio>,
) -> ModelReport {
    let tokenizer = Tokenizer::for_model(model);
    let sample = ratio.map(|r| PromptSample {
        ratio: r.clone(),
        difference: i64::try_from(r.billed)
            .unwrap_or(i64::MAX)
            .saturating_sub(i64::try_from(r.counted).unwrap_or(i64::MAX)),
        scaled: !tokenizer.exact(),
    });
    let counted = tally.prompt_tokens as f64;
    let (prompt, prompt_low, prompt_high) = match sample.as_ref().filter(|s| s.scaled) {
        Some(s) => (
            counted * s.ratio.ratio,
            s.ratio.interval.map(|(lo, _)| counted * lo),
            s.ratio.interval.map(|(_, hi)| counted * hi),
        ),
        None => (counted, None, None),
    };
    // Rows without max_tokens may produce up to the model's output cap, per completion.
    let max = match (tally.unbounded_choices, info.max_output_tokens) {
        (0, _) => Some(tally.max_output_tokens),
        (n, Some(cap)) => Some(tally.max_output_tokens + n * cap),
        (_, None) => None,
    };
    let expected = |per: f64| {
        let v = per * tally.choices as f64;
        max.map_or(v, |m| v.min(m as f64))
    };
    let completion = CompletionTokens {
        max,
        rows_without_max_tokens: tally.unbounded_rows,
        expected: expectation.map(|e| expected(e.per_request)),
        expected_low: expectation.and_then(|e| e.interval).map(|(lo, _)| expected(lo)),
        expected_high: expectation.and_then(|e| e.interval).map(|(_, hi)| expected(hi)),
    };
    // The low and high ends take both intervals at their ends: wider than a joint 95 %.
    let (low, high) = (prompt_low.unwrap_or(prompt), prompt_high.unwrap_or(prompt));
    // The one cost formula, with no cached input assumed. Long-context tiers: the expectations
    // price each band of prompt sizes at its tier (completions shared out by rows); the maximum
    // prices everything at the longest prompt's tier.
    let cost = |p: &Prices, batch: bool| {
        let thresholds: Vec<u64> = p.thresholds().collect();
        let bands = tally.bands(&thresholds);
        let at = |prompt: f64, completion: f64| -> f64 {
            bands
                .iter()
                .map(|b| {
                    let tokens = Billed::plain(prompt * b.prompt, completion * b.rows);
                    p.cost(batch, b.least, &tokens).total()
                })
                .sum()
        };
        let longest = |prompt: f64, completion: f64| {
            p.cost(batch, tally.max(), &Billed::plain(prompt, completion))
                .total()
        };
        Cost {
            prompt: at(prompt, 0.0),
            max: completion.max.map(|m| longest(high, m as f64)),
            expected: completion.expected.map(|e| at(prompt, e)),
            expected_low: completion.expected_low.map(|e| at(low, e)),
            expected_high: completion.expected_high.map(|e| at(high, e)),
        }
    };
    let prices = info.prices.clone();
    let cost_live = prices.as_ref().map(|p| cost(p, false));
    let cost_batch = prices
        .as_ref()
        .filter(|p| p.batch_input.is_some() && p.batch_output.is_some())
        .map(|p| cost(p, true));
    let priced = prices.is_some();
    ModelReport {
        model: model.to_string(),
        rows: tally.rows,
        encoding: tokenizer.encoding(),
        exact_tokens: tokenizer.exact(),
        prompt_tokens: PromptTokens {
            total: tally.prompt_tokens,
            mean: tally.prompt_tokens as f64 / tally.rows.max(1) as f64,
            p50: tally.quantile(0.50),
            p95: tally.quantile(0.95),
            max: tally.max(),
            expected: prompt,
            expected_low: prompt_low,
            expected_high: prompt_high,
            sample,
        },
        max_input_tokens: info.max_input_tokens,
        rows_over_context: info.max_input_tokens.map_or(0, |limit| tally.rows_over(limit)),
        completion_tokens: completion,
        prices,
        price_source: info.source.as_ref().map(|s| s.to_string()),
        cost_unknown: (!priced).then(|| unknown_price(model)),
        unknown_model: (!model.is_empty())
            .then(|| {
                crate::models::unknown_model_note(model, tokenizer.encoding(), tokenizer.exact(), priced)
            })
            .flatten(),
        did_you_mean: crate::models::did_you_mean(model),
        cost_live,
        cost_batch,
    }
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

/// `12345678` → `12,345,678`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Dollars with the precision that matters for the amount.
pub fn dollars(v: f64) -> String {
    if v >= 100.0 {
        format!("${}", thousands(v.round() as u64))
    } else if v >= 1.0 {
        format!("${v:.2}")
    } else if v >= 0.01 {
        format!("${v:.3}")
    } else {
        format!("${v:.6}")
    }
}

/// What the calibration sample says of a model's prompt tokens: the scaled expectation, or
/// (with an exact tokenizer) how far the server's count is from ours.
fn sample_line(f: &mut fmt::Formatter<'_>, p: &PromptTokens, s: &PromptSample) -> fmt::Result {
    let r = &s.ratio;
    let measured = format!(
        "{} sampled rows billed {} prompt tokens, {} counted here",
        thousands(r.rows),
        thousands(r.billed),
        thousands(r.counted)
    );
    if !s.scaled {
        let verdict = match s.difference {
            0 => "difference 0: the encoding matches the server's".to_string(),
            d => format!("difference {d:+}: the server counts differently (a wrong encoding, or framing)"),
        };
        return writeln!(f, "    sample      {measured}; {verdict}");
    }
    let round = |v: f64| thousands(v.round() as u64);
    match (r.interval, p.expected_low, p.expected_high) {
        (Some((lo, hi)), Some(plo), Some(phi)) => writeln!(
            f,
            "    calibrated  {} prompt tokens ({} – {}): ×{:.3} (95% interval {:.3} – {:.3}); {measured}",
            round(p.expected),
            round(plo),
            round(phi),
            r.ratio,
            lo,
            hi
        ),
        _ => writeln!(
            f,
            "    calibrated  {} prompt tokens: ×{:.3}; {measured}",
            round(p.expected),
            r.ratio
        ),
    }
}

fn duration_secs(secs: f64) -> String {
    duration(Duration::from_secs_f64(secs.clamp(0.0, 1e12)))
}

/// A length of time that reads one way only: "0.009s" and "9.5s" under a minute, whole seconds
/// from the largest unit on, every unit after it shown ("1m 0s", "2h 0m 5s", "3d 4h 0m 0s").
/// (humantime's "1m 9ms" reads as 69 ms or as 1 min 9 s; it was 60.009 s.)
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 1.0 {
        return format!("{secs:.3}s");
    }
    if secs < 59.95 {
        return format!("{secs:.1}s");
    }
    let total = secs.round() as u64;
    let (d, h, m, s) = (total / 86_400, total / 3600 % 24, total / 60 % 60, total % 60);
    match (d, h) {
        (0, 0) => format!("{m}m {s}s"),
        (0, _) => format!("{h}h {m}m {s}s"),
        _ => format!("{d}d {h}h {m}m {s}s"),
    }
}

fn cost_line(c: &Cost) -> String {
    let expected = match (c.expected, c.expected_low, c.expected_high) {
        (Some(e), Some(lo), Some(hi)) => {
            format!("expected {} ({} – {}), ", dollars(e), dollars(lo), dollars(hi))
        }
        (Some(e), _, _) => format!("expected {}, ", dollars(e)),
        _ => String::new(),
    };
    let max = match c.max {
        Some(m) => format!("at most {}", dollars(m)),
        None => "no upper bound (set --max-tokens)".to_string(),
    };
    format!(
        "{expected}{max}  (prompts {}, as if none cached)",
        dollars(c.prompt)
    )
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "promptmill estimate: {} ({})", self.input, self.endpoint)?;
        write!(f, "  rows        {} to send", thousands(self.rows_to_send))?;
        if self.rows_invalid > 0 {
            write!(f, ", {} invalid", thousands(self.rows_invalid))?;
        }
        writeln!(f)?;
        for m in &self.models {
            let name = if m.model.is_empty() {
                "(no model)"
            } else {
                &m.model
            };
            let scaled = m.prompt_tokens.sample.as_ref().is_some_and(|s| s.scaled);
            let exact = if m.exact_tokens {
                format!("{}, exact", m.encoding)
            } else if scaled {
                format!(
                    "tokenizer unknown: counted with {}, scaled by the calibration sample",
                    m.encoding
                )
            } else {
                format!(
                    "tokenizer unknown: approximated with {}, expect a few % off",
                    m.encoding
                )
            };
            writeln!(f, "  model       {name}: {} rows ({exact})", thousands(m.rows))?;
            if let Some(note) = &m.unknown_model {
                writeln!(f, "    note        {note}")?;
            }
            let p = &m.prompt_tokens;
            writeln!(
                f,
                "    prompt      {} tokens; per row mean {:.1}, p50 {}, p95 {}, max {}",
                thousands(p.total),
                p.mean,
                thousands(p.p50),
                thousands(p.p95),
                thousands(p.max)
            )?;
            if let Some(s) = &p.sample {
                sample_line(f, p, s)?;
            }
            match m.max_input_tokens {
                Some(limit) if m.rows_over_context > 0 => writeln!(
                    f,
                    "    context     {} rows over the {} tokens the model takes: run refuses them as invalid (their tokens are in the totals above)",
                    thousands(m.rows_over_context),
                    thousands(limit)
                )?,
                Some(limit) => writeln!(f, "    context     every row fits ({} tokens)", thousands(limit))?,
                None => writeln!(f, "    context     unknown for this model; not checked")?,
            }
            let c = &m.completion_tokens;
            let max = match c.max {
                Some(v) if c.rows_without_max_tokens > 0 => format!(
                    "at most {} ({} rows without max_tokens, at the model's output cap)",
                    thousands(v),
                    thousands(c.rows_without_max_tokens)
                ),
                Some(v) => format!("at most {}", thousands(v)),
                None => format!(
                    "unbounded: {} rows set no max_tokens and the model's output cap is unknown",
                    thousands(c.rows_without_max_tokens)
                ),
            };
            let expected = match (c.expected, c.expected_low, c.expected_high) {
                (Some(e), Some(lo), Some(hi)) => {
                    format!("expected {:.0} ({:.0} – {:.0}), ", e, lo, hi)
                }
                (Some(e), _, _) => format!("expected {e:.0}, "),
                _ => String::new(),
            };
            writeln!(f, "    completion  {expected}{max}")?;
            match (&m.prices, &m.cost_unknown) {
                (Some(p), _) => {
                    let batch = match (p.batch_input, p.batch_output) {
                        (Some(i), Some(o)) => format!("; Batch API ${i} / ${o}"),
                        _ => "; no Batch API price known".to_string(),
                    };
                    writeln!(
                        f,
                        "    price       ${} in / ${} out per 1M tokens{batch} ({})",
                        p.input,
                        p.output,
                        m.price_source.as_deref().unwrap_or("")
                    )?;
                }
                (None, Some(why)) => writeln!(f, "    price       unknown: {why}")?,
                (None, None) => {}
            }
        }
        match &self.cost_live {
            Some(c) => writeln!(f, "  cost live   {}", cost_line(c))?,
            None => writeln!(f, "  cost        unknown (a model has no price; see above)")?,
        }
        match &self.cost_batch {
            Some(c) => writeln!(f, "  cost batch  {}", cost_line(c))?,
            None if self.cost_live.is_some() => writeln!(f, "  cost batch  unknown (no Batch API price)")?,
            None => {}
        }
        if let Some(e) = &self.expectation {
            match e.interval {
                Some((lo, hi)) => writeln!(
                    f,
                    "  expected    {:.1} completion tokens per request (95% interval {:.1} – {:.1}), from {}",
                    e.per_request, lo, hi, e.source
                )?,
                None => writeln!(
                    f,
                    "  expected    {:.0} completion tokens per request, from {}",
                    e.per_request, e.source
                )?,
            }
        } else {
            writeln!(
                f,
                "  expected    give --expect-output-tokens N, or --sample N to measure, for an expected cost"
            )?;
        }
        let t = &self.timing;
        let mut parts = vec![format!(
            "--concurrency {} at {:.1}s per request: {}",
            t.concurrency,
            t.latency,
            duration_secs(t.by_concurrency)
        )];
        if let (Some(r), Some(s)) = (t.rpm, t.by_rpm) {
            parts.push(format!("--rpm {}: {}", thousands(r.into()), duration_secs(s)));
        }
        if let (Some(r), Some(s)) = (t.tpm, t.by_tpm) {
            parts.push(format!("--tpm {}: {}", thousands(r.into()), duration_secs(s)));
        }
        writeln!(
            f,
            "  time live   about {}, bound by {} ({})",
            duration_secs(t.seconds),
            t.binding,
            parts.join("; ")
        )?;
        if let Some(b) = &self.batch {
            writeln!(
                f,
                "  time batch  within the provider's 24 h window: {} input file{} of at most {} rows and {} (about {} in all)",
                thousands(b.files),
                if b.files == 1 { "" } else { "s" },
                thousands(b.max_rows),
                bytes(b.max_bytes),
                bytes(b.bytes)
            )?;
        }
        if self.rows_invalid > 0 {
            let verdict = if self.run_would_refuse {
                "run would refuse the input as it is (fix it, or pass --skip-invalid to record these rows as failed)"
            } else {
                "these rows are recorded as failed, unsent (--skip-invalid)"
            };
            writeln!(f, "  invalid     {verdict}:")?;
            for e in &self.invalid {
                writeln!(f, "    {e}")?;
            }
            if self.rows_invalid > self.invalid.len() as u64 {
                writeln!(
                    f,
                    "    … and {} more",
                    self.rows_invalid - self.invalid.len() as u64
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod duration_tests {
    use super::*;

    #[test]
    fn durations_are_unambiguous() {
        let ms = |n| duration(Duration::from_millis(n));
        assert_eq!(ms(9), "0.009s");
        assert_eq!(ms(2_340), "2.3s");
        assert_eq!(ms(60_009), "1m 0s");
        assert_eq!(ms(69_000), "1m 9s");
        assert_eq!(ms(3_605_000), "1h 0m 5s");
        assert_eq!(ms(90_061_000), "1d 1h 1m 1s");
    }
}
