//! What a calibration sample (`estimate --sample N`) says about prompt tokens: per model, the
//! prompt tokens the server billed for the sampled rows beside the ones counted here.
//!
//! When the model's tokenizer is not known exactly (a local model: counts use `o200k_base`),
//! the job's prompt tokens are the local count scaled by the sample's ratio, Σ billed / Σ
//! counted (the ratio estimator), with a 95 % interval from its standard error and Student's t,
//! as the completion expectation has. When the tokenizer is known, the ratio is not used: the
//! difference is shown instead, which is 0 unless the encoding (or the chat framing) is wrong.
//! Completions are left to [`super::expectation_from_sample`].

use std::collections::BTreeMap;

use serde::Serialize;

use super::t_975;

/// The prompt tokens of a model's sampled rows, billed and counted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromptRatio {
    pub rows: u64,
    /// Σ prompt tokens counted here.
    pub counted: u64,
    /// Σ prompt tokens the server billed.
    pub billed: u64,
    /// billed / counted.
    pub ratio: f64,
    /// 95 % interval of the ratio; `None` with fewer than 2 rows.
    pub interval: Option<(f64, f64)>,
}

/// Per sampled row: its model, the prompt tokens counted here and those billed.
pub fn prompt_ratios(rows: &[(String, u64, u64)]) -> BTreeMap<String, PromptRatio> {
    let mut by_model: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    for (model, counted, billed) in rows {
        by_model
            .entry(model.clone())
            .or_default()
            .push((*counted, *billed));
    }
    by_model
        .into_iter()
        .filter_map(|(model, pairs)| Some((model, ratio_of(&pairs)?)))
        .collect()
}

/// The ratio estimator of `(counted, billed)` pairs; `None` when nothing was counted.
fn ratio_of(pairs: &[(u64, u64)]) -> Option<PromptRatio> {
    let counted: u64 = pairs.iter().map(|p| p.0).sum();
    let billed: u64 = pairs.iter().map(|p| p.1).sum();
    if counted == 0 {
        return None;
    }
    let ratio = billed as f64 / counted as f64;
    let n = pairs.len() as f64;
    let interval = (pairs.len() > 1).then(|| {
        // Var(R) ≈ Σ (y − R·x)² / (n − 1) / (n · x̄²).
        let residuals = pairs
            .iter()
            .map(|&(x, y)| (y as f64 - ratio * x as f64).powi(2))
            .sum::<f64>()
            / (n - 1.0);
        let mean_x = counted as f64 / n;
        let half = t_975(pairs.len() - 1) * (residuals / n).sqrt() / mean_x;
        ((ratio - half).max(0.0), ratio + half)
    });
    Some(PromptRatio {
        rows: pairs.len() as u64,
        counted,
        billed,
        ratio,
        interval,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constant_ratio_has_no_spread() {
        let r = &prompt_ratios(&[("m".into(), 10, 20), ("m".into(), 30, 60)])["m"];
        assert_eq!((r.rows, r.counted, r.billed), (2, 40, 80));
        assert_eq!(r.ratio, 2.0);
        assert_eq!(r.interval, Some((2.0, 2.0)));
    }

    #[test]
    fn the_interval_widens_with_the_spread_and_uses_students_t() {
        let r = &prompt_ratios(&[("m".into(), 10, 10), ("m".into(), 10, 30)])["m"];
        assert_eq!(r.ratio, 2.0);
        // residuals 10² and 10², over n − 1 = 1: 200; se = sqrt(200 / 2) / 10 = 1; t(1) = 12.706.
        let (lo, hi) = r.interval.unwrap();
        assert_eq!(lo, 0.0);
        assert!((hi - (2.0 + 12.706)).abs() < 1e-9, "{hi}");
    }

    #[test]
    fn models_are_kept_apart_and_one_row_has_no_interval() {
        let r = prompt_ratios(&[("a".into(), 10, 15), ("b".into(), 0, 5), ("c".into(), 4, 4)]);
        assert_eq!(r["a"].ratio, 1.5);
        assert!(!r.contains_key("b"), "nothing counted: no ratio");
        assert_eq!(r["c"].interval, None);
    }
}
