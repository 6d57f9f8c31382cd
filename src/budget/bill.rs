//! What a job's done rows cost: the whole job from its usage sums (the summary, `status`, the
//! ledger's opening balance), or each row by itself (the output's `cost`). Both price through
//! [`Prices::cost`](crate::models::Prices::cost), at the prices the job records.

use std::collections::BTreeMap;

use crate::models::{Billed, CostSplit, ModelInfo};
use crate::store::{ExportRow, JobUsage, UsageSums};

/// Dollars the job's done rows cost, at the prices the job records (see [`cost_of`]).
pub fn job_cost(store: &crate::store::Store, job: &crate::job::JobRecord) -> anyhow::Result<Option<f64>> {
    Ok(job_cost_split(store, job)?.map(|c| c.total()))
}

/// The same, split into input, cached input, cache writes and output (reasoning within it).
pub fn job_cost_split(
    store: &crate::store::Store,
    job: &crate::job::JobRecord,
) -> anyhow::Result<Option<CostSplit>> {
    let thresholds: Vec<u64> = job
        .models
        .values()
        .filter_map(|m| m.prices.as_ref())
        .flat_map(|p| p.thresholds())
        .collect();
    let usage = store.usage_by_model(job.spec.model.as_deref(), &thresholds)?;
    Ok(cost_of(&usage, &job.models))
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

/// Prices exported rows, each by itself, at the job's prices: the `cost` of the output.
pub struct RowPricer<'a> {
    models: &'a BTreeMap<String, ModelInfo>,
    /// The job's model, when it names one (then every row is priced as it).
    fixed: Option<&'a str>,
}

impl<'a> RowPricer<'a> {
    pub fn new(job: &'a crate::job::JobRecord) -> RowPricer<'a> {
        RowPricer {
            models: &job.models,
            fixed: job.spec.model.as_deref(),
        }
    }

    /// Dollars `row` cost: `None` when it is not done (nothing billed is known) or its model
    /// has no price.
    pub fn cost(&self, row: &ExportRow) -> Option<f64> {
        if row.state != crate::store::state::DONE || row.total_tokens.is_none() {
            return None;
        }
        let model = self.fixed.or(row.request_model.as_deref()).unwrap_or("");
        let prices = self.models.get(model)?.prices.as_ref()?;
        let n = |v: Option<i64>| v.unwrap_or(0).max(0) as f64;
        let tokens = Billed {
            prompt: n(row.prompt_tokens),
            cached: n(row.cached_tokens),
            cache_creation: n(row.cache_creation_tokens),
            completion: n(row.completion_tokens),
            reasoning: n(row.reasoning_tokens),
        };
        let size = row.prompt_tokens.unwrap_or(0).max(0) as u64;
        Some(prices.cost(row.via_batch, size, &tokens).total())
    }
}
