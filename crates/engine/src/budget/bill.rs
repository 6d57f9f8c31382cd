//! What a job's done rows cost, from its usage sums: the summary, `status`, the ledger's
//! opening balance. Priced through [`Prices::cost`](promptmill_core::models::Prices::cost), at the prices
//! the job records, as each row's `cost` in the output is (`output/cost.rs`).

use std::collections::BTreeMap;

use crate::store::{JobUsage, UsageSums};
use promptmill_core::models::{Billed, CostSplit, ModelInfo};

/// Dollars the job's done rows cost, at the prices the job records (see [`cost_of`]).
pub fn job_cost(
    store: &crate::store::Store,
    job: &promptmill_core::job::JobRecord,
) -> anyhow::Result<Option<f64>> {
    Ok(job_cost_split(store, job)?.map(|c| c.total()))
}

/// The same, split into input, cached input, cache writes and output (reasoning within it).
pub fn job_cost_split(
    store: &crate::store::Store,
    job: &promptmill_core::job::JobRecord,
) -> anyhow::Result<Option<CostSplit>> {
    let usage = store.usage_by_model(job.spec.model.as_deref(), &thresholds(job))?;
    Ok(cost_of(&usage, &job.models).map(|c| c.rounded()))
}

/// Dollars the rows done from the response cache would have cost, at the job's prices (they
/// cost nothing; `None` when a model with usage has no price): the Batch prices in a job of
/// `--mode batch`.
pub fn job_saved(
    store: &crate::store::Store,
    job: &promptmill_core::job::JobRecord,
) -> anyhow::Result<Option<f64>> {
    let mut usage = store.cached_usage_by_model(job.spec.model.as_deref(), &thresholds(job))?;
    // A Batch API job's rows would have gone into batches: they saved the Batch price.
    if job.batch.mode == promptmill_core::job::settings::Mode::Batch {
        usage.groups.iter_mut().for_each(|g| g.batch = true);
    }
    Ok(cost_of(&usage, &job.models).map(|c| c.rounded().total()))
}

/// The long-context tiers' prompt-size thresholds of the job's prices.
fn thresholds(job: &promptmill_core::job::JobRecord) -> Vec<u64> {
    job.models
        .values()
        .filter_map(|m| m.prices.as_ref())
        .flat_map(|p| p.thresholds())
        .collect()
}

fn billed(s: &UsageSums) -> Billed {
    Billed {
        prompt: s.prompt as f64,
        cached: s.cached as f64,
        cache_creation: s.cache_creation as f64,
        completion: s.completion as f64,
        reasoning: s.reasoning as f64,
    }
}

/// Dollars for the job's usage at the prices in `models`: live rows at the live prices, rows done
/// through the Batch API at the Batch prices, each group at the tier of its prompt size; `None`
/// when a model with usage has no price.
pub fn cost_of(usage: &JobUsage, models: &BTreeMap<String, ModelInfo>) -> Option<CostSplit> {
    let mut total = CostSplit::default();
    for g in &usage.groups {
        if g.sums.prompt == 0 && g.sums.completion == 0 {
            continue;
        }
        let prices = models.get(&g.model)?.prices.as_ref()?;
        total.add(&prices.cost(g.batch, g.least_prompt, &billed(&g.sums)));
    }
    Some(total)
}
