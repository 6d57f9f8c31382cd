//! The dry run's cost figures for the job, for the report's cost chart: the job's stored request
//! bodies counted and priced by the estimate's own code ([`crate::estimate::ModelTally`] and
//! [`crate::estimate::report::model_report`]) at the prices the job recorded, so the line drawn
//! is what `promptmill estimate` says for these rows without a calibration sample: the prompts'
//! cost, and the most the job can cost (every completion at its `max_tokens`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::estimate::report::model_report;
use crate::estimate::ModelTally;
use crate::store::Store;
use promptmill_core::job::JobRecord;

/// What the estimate says the job's sent rows cost, in dollars.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    /// The prompts alone.
    pub prompt: f64,
    /// Every completion at its `max_tokens`; `None` when a row set no maximum and its model's
    /// output cap is unknown.
    pub max: Option<f64>,
}

/// The estimate for the job's rows; `None` when a model they name has no price.
pub fn of_job(store: &Store, job: &JobRecord) -> anyhow::Result<Option<Estimate>> {
    let mut tallies: BTreeMap<String, ModelTally> = BTreeMap::new();
    store.each_request(&mut |body| {
        // A stored request is JSON this program serialized; one that does not parse is left out.
        if let Ok((cost, model)) = job.endpoint.family().measure(body) {
            let model = model.as_deref().unwrap_or("").to_string();
            tallies.entry(model).or_default().add(&cost, body.len());
        }
    })?;
    let mut total = Estimate {
        prompt: 0.0,
        max: Some(0.0),
    };
    for (model, tally) in &tallies {
        let Some(info) = job.models.get(model) else {
            return Ok(None);
        };
        let Some(cost) = model_report(model, tally, info, None, None).cost_live else {
            return Ok(None);
        };
        total.prompt += cost.prompt;
        total.max = total.max.zip(cost.max).map(|(a, b)| a + b);
    }
    Ok((!tallies.is_empty()).then_some(total))
}
