//! Each exported row's `cost`: its usage priced by itself at the job's prices, through the one
//! formula ([`Prices::cost`](promptmill_core::models::Prices::cost)) the ledger and the job's totals use,
//! so the rows of a job add up to what the summary and `status` say it cost.

use std::collections::BTreeMap;

use crate::store::ExportRow;
use promptmill_core::models::{Billed, ModelInfo};

/// Prices exported rows, each by itself, at the job's prices: the `cost` of the output.
pub(super) struct RowPricer<'a> {
    models: &'a BTreeMap<String, ModelInfo>,
    /// The job's model, when it names one (then every row is priced as it).
    fixed: Option<&'a str>,
}

impl<'a> RowPricer<'a> {
    /// At the prices in `models`, by the model each row's request names, or all as `fixed`.
    pub(super) fn new(models: &'a BTreeMap<String, ModelInfo>, fixed: Option<&'a str>) -> RowPricer<'a> {
        RowPricer { models, fixed }
    }

    /// Dollars `row` cost: 0 when it was answered from the response cache, `None` when it is not done (nothing billed is known) or its model
    /// has no price.
    pub(super) fn cost(&self, row: &ExportRow) -> Option<f64> {
        // A row rejected by the job's `--schema` paid for its answers too (see store/usage.rs).
        let paid = row.state == crate::store::state::DONE || row.outcome.is_some();
        if !paid || row.total_tokens.is_none() {
            return None;
        }
        let info = match (self.fixed, self.models.len()) {
            (Some(model), _) => self.models.get(model)?,
            // One model: every row's request names it (the job's models are the ones they name).
            (None, 1) => self.models.values().next()?,
            (None, _) => self
                .models
                .get(request_model(row.request.as_deref()?)?.as_ref())?,
        };
        let prices = info.prices.as_ref()?;
        if row.cached {
            return Some(0.0);
        }
        let n = |v: Option<i64>| v.unwrap_or(0).max(0) as f64;
        let tokens = Billed {
            prompt: n(row.prompt_tokens),
            cached: n(row.cached_tokens),
            cache_creation: n(row.cache_creation_tokens),
            completion: n(row.completion_tokens),
            reasoning: n(row.reasoning_tokens),
        };
        let size = row.prompt_tokens.unwrap_or(0).max(0) as u64;
        Some(promptmill_core::models::price::round(
            prices.cost(row.via_batch, size, &tokens).total(),
        ))
    }
}

/// The model a request body names (`""` for none, as the job's models key it); `None` when the
/// body is not a JSON object.
fn request_model(request: &str) -> Option<std::borrow::Cow<'_, str>> {
    #[derive(serde::Deserialize)]
    struct Named<'a> {
        #[serde(borrow)]
        model: Option<std::borrow::Cow<'a, str>>,
    }
    let named: Named<'_> = serde_json::from_str(request).ok()?;
    Some(named.model.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_is_read_from_the_request_only_when_the_job_has_several() {
        assert_eq!(
            request_model(r#"{"model":"gpt-4o","messages":[]}"#).as_deref(),
            Some("gpt-4o")
        );
        assert_eq!(request_model(r#"{"messages":[]}"#).as_deref(), Some(""));
        assert_eq!(request_model("not json"), None);
    }
}
