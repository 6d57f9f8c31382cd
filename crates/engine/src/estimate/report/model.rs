//! One model's part of the estimate: its prompt tokens (counted, or scaled by the calibration
//! sample when its tokenizer is not known), the completion tokens its rows may produce, and what
//! they cost live and through the Batch API, by the one cost formula (`models::price`). The
//! whole job's sums and its time are `report.rs`'s; the text is `text.rs`'s.

use crate::estimate::calibrate::PromptRatio;
use crate::estimate::ModelTally;
use promptmill_core::models::{unknown_price, Billed, ModelInfo, Prices};
use promptmill_core::tokens::Tokenizer;

use super::{CompletionTokens, Cost, Expectation, ModelReport, PromptSample, PromptTokens};

pub(crate) fn model_report(
    model: &str,
    tally: &ModelTally,
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
    let prompt = expected_prompt(tally.prompt_tokens as f64, sample.as_ref());
    let completion = completion_tokens(tally, info, expectation);
    let prices = info.prices.clone();
    let cost_live = prices
        .as_ref()
        .map(|p| model_cost(tally, p, false, &prompt, &completion));
    let cost_batch = prices
        .as_ref()
        .filter(|p| p.batch_input.is_some() && p.batch_output.is_some())
        .map(|p| model_cost(tally, p, true, &prompt, &completion));
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
            expected: prompt.expected,
            expected_low: prompt.low,
            expected_high: prompt.high,
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
                promptmill_core::models::unknown_model_note(
                    model,
                    tokenizer.encoding(),
                    tokenizer.exact(),
                    priced,
                )
            })
            .flatten(),
        did_you_mean: promptmill_core::models::did_you_mean(model),
        cost_live,
        cost_batch,
    }
}

/// The prompt tokens the costs are computed from, with the sample's interval when it scaled them.
struct ExpectedPrompt {
    expected: f64,
    low: Option<f64>,
    high: Option<f64>,
}

/// The counted prompt tokens, scaled by the sample's billed / counted ratio when the sample
/// says the tokenizer is not known exactly.
fn expected_prompt(counted: f64, sample: Option<&PromptSample>) -> ExpectedPrompt {
    match sample.filter(|s| s.scaled) {
        Some(s) => ExpectedPrompt {
            expected: counted * s.ratio.ratio,
            low: s.ratio.interval.map(|(lo, _)| counted * lo),
            high: s.ratio.interval.map(|(_, hi)| counted * hi),
        },
        None => ExpectedPrompt {
            expected: counted,
            low: None,
            high: None,
        },
    }
}

/// The most the rows can produce, and what the expectation (if any) makes of them.
fn completion_tokens(
    tally: &ModelTally,
    info: &ModelInfo,
    expectation: Option<&Expectation>,
) -> CompletionTokens {
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
    CompletionTokens {
        max,
        rows_without_max_tokens: tally.unbounded_rows,
        expected: expectation.map(|e| expected(e.per_request)),
        expected_low: expectation.and_then(|e| e.interval).map(|(lo, _)| expected(lo)),
        expected_high: expectation.and_then(|e| e.interval).map(|(_, hi)| expected(hi)),
    }
}

/// The one cost formula, with no cached input assumed. Long-context tiers: the expectations
/// price each band of prompt sizes at its tier (completions shared out by rows); the maximum
/// prices everything at the longest prompt's tier. The low and high ends take both intervals
/// at their ends: wider than a joint 95 %.
fn model_cost(
    tally: &ModelTally,
    p: &Prices,
    batch: bool,
    prompt: &ExpectedPrompt,
    completion: &CompletionTokens,
) -> Cost {
    let (low, high) = (
        prompt.low.unwrap_or(prompt.expected),
        prompt.high.unwrap_or(prompt.expected),
    );
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
        prompt: at(prompt.expected, 0.0),
        max: completion.max.map(|m| longest(high, m as f64)),
        expected: completion.expected.map(|e| at(prompt.expected, e)),
        expected_low: completion.expected_low.map(|e| at(low, e)),
        expected_high: completion.expected_high.map(|e| at(high, e)),
    }
}
