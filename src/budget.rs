//! Money during a run: what each request costs, what the job has spent, and the `--max-cost`
//! budget a run keeps under.
//!
//! Reserve, then settle. Before a request goes on the wire it reserves its worst case: its prompt
//! tokens at the input price plus its `max_tokens` × `n` (or the model's output cap, when the row
//! sets no maximum) at the output price. When the answer comes, the reservation is replaced by
//! what the usage says it cost; a request that failed costs nothing. A request is sent only if
//! what the job has spent (this run and the runs before it) plus everything reserved plus its own
//! worst case stays within the budget, so the budget holds even with hundreds of requests in
//! flight: the run can end a little under the budget, never over it.
//!
//! A request whose worst case fits what is left once the requests on the wire have settled
//! waits for them to settle ([`Costing::reserve`]); the run stops only when the next request's
//! worst case does not fit what the job has left after what it has *spent*. So a run stops
//! within one request's worst case of the budget, not when many reservations happen to be out.
//! [`Spend`] is the one reading of the ledger that the progress line, the stop message and the
//! summary print.
//!
//! Prices are per model, as the rows' requests name it. Cached-input discounts are not applied
//! (the stored usage does not carry them), so costs err on the high side.

use std::collections::BTreeMap;
use std::sync::Mutex;

use tokio::sync::Notify;

use crate::estimate::report::dollars;
use crate::models::{ModelInfo, Prices};
use crate::store::JobUsage;
use crate::tokens::RequestCost;

/// A model's prices and output cap, as a run uses them.
#[derive(Debug, Clone, Copy)]
struct Price {
    prices: Prices,
    max_output: Option<u64>,
}

/// A request's most completion tokens: its max_tokens × n, else the model's cap per completion
/// (unknown caps were refused up front when a budget is set).
fn worst_output(p: &Price, cost: &RequestCost) -> u64 {
    if cost.max_output_tokens > 0 {
        cost.max_output_tokens
    } else {
        p.max_output.unwrap_or(0).saturating_mul(cost.choices)
    }
}

/// The ledger of a run.
#[derive(Debug)]
pub struct Costing {
    /// By the model the requests name.
    prices: BTreeMap<String, Price>,
    limit: Option<f64>,
    ledger: Mutex<Ledger>,
    /// Woken (all waiters) by every settlement: a request waiting in [`Costing::reserve`] for
    /// reservations to be released checks again. Lives as long as the ledger.
    settled: Notify,
}

#[derive(Debug, Default, Clone, Copy)]
struct Ledger {
    /// Spent by the job before this run.
    before: f64,
    /// Spent by this run.
    spent: f64,
    reserved: f64,
    /// Reservations not settled yet (requests on the wire): waiting for room makes sense only
    /// while there are some.
    holders: u64,
}

/// A request's reserved worst case, to settle when it is answered.
#[derive(Debug)]
#[must_use = "a reservation must be settled"]
pub struct Reservation {
    amount: f64,
    prices: Option<Prices>,
    /// Counted in the ledger's holders (a reservation, not a mere tracking).
    held: bool,
}

/// The request's worst case does not fit in what is left of the budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OverBudget {
    pub limit: f64,
    pub spent: f64,
    /// The request's worst case.
    pub needed: f64,
}

/// Why a reservation was not made now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NotNow {
    /// It would fit once the requests on the wire settle (they may cost less than reserved).
    Wait,
    /// It can never fit: the job's spending alone leaves too little.
    Over(OverBudget),
}

/// The ledger at one moment: the job's spending, the worst cases held by requests on the wire,
/// and the budget. Everything that prints money during or after a run prints this.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Spend {
    /// Spent by the job before this run.
    pub before: f64,
    /// Spent by this run.
    pub run: f64,
    /// Worst cases of the requests on the wire.
    pub reserved: f64,
    pub limit: Option<f64>,
}

impl Spend {
    /// Dollars the job has spent, this run included.
    pub fn total(&self) -> f64 {
        self.before + self.run
    }

    /// What the budget leaves after what is spent (not counting reservations), when there is one.
    pub fn remaining(&self) -> Option<f64> {
        self.limit.map(|l| (l - self.total()).max(0.0))
    }

    /// "$0.0042 spent", "$0.0042 spent of $0.01 ($0.0058 left)", with "+ $0.0011 on the wire"
    /// while requests hold reservations: the progress line and `status` print this.
    pub fn describe(&self) -> String {
        let wire = if self.reserved > 0.0 {
            format!(" + {} on the wire", dollars(self.reserved))
        } else {
            String::new()
        };
        match (self.limit, self.remaining()) {
            (Some(l), Some(left)) => format!(
                "{} spent{wire} of {} ({} left)",
                dollars(self.total()),
                dollars(l),
                dollars(left)
            ),
            _ => format!("{} spent{wire}", dollars(self.total())),
        }
    }
}

/// Why a job cannot be priced for a budget.
#[derive(Debug, thiserror::Error)]
pub enum CostingError {
    #[error("--max-cost: {0}")]
    NoPrice(String),
    #[error(
        "--max-cost: model `{0}` has no known output cap, so a request without max_tokens has no worst case; give --max-tokens"
    )]
    Unbounded(String),
}

impl Costing {
    /// A ledger for the models in `models` (all the models the job's rows name), with `before`
    /// dollars already spent by the job. Without a `limit` it only counts.
    pub fn new(
        models: &BTreeMap<String, ModelInfo>,
        limit: Option<f64>,
        before: f64,
    ) -> Result<Costing, CostingError> {
        let mut prices = BTreeMap::new();
        for (name, info) in models {
            match info.prices {
                Some(p) => {
                    prices.insert(
                        name.clone(),
                        Price {
                            prices: p,
                            max_output: info.max_output_tokens,
                        },
                    );
                }
                None if limit.is_some() => {
                    return Err(CostingError::NoPrice(crate::models::unknown_price(name)))
                }
                None => {}
            }
        }
        Ok(Costing {
            prices,
            limit,
            ledger: Mutex::new(Ledger {
                before,
                ..Ledger::default()
            }),
            settled: Notify::new(),
        })
    }

    /// Checks, before sending, that every model can be bounded when a budget is set and the
    /// requests may not set max_tokens.
    pub fn check_bounded(&self, model: &str) -> Result<(), CostingError> {
        match self.prices.get(model) {
            Some(p) if p.max_output.is_none() && self.limit.is_some() => {
                Err(CostingError::Unbounded(model.to_string()))
            }
            _ => Ok(()),
        }
    }

    /// The worst case of a request to `model` through the Batch API (at the live price when the
    /// Batch price is unknown); 0 for a model without a price.
    pub fn batch_worst(&self, model: &str, cost: &RequestCost) -> f64 {
        match self.prices.get(model) {
            None => 0.0,
            Some(p) => {
                let output = worst_output(p, cost);
                p.prices
                    .batch(cost.prompt_tokens, output)
                    .unwrap_or_else(|| p.prices.live(cost.prompt_tokens, output))
            }
        }
    }

    /// Reserves the worst case of a request to `model`, waiting while it would fit only once the
    /// requests on the wire have settled. Fails when it cannot fit whatever they cost.
    pub async fn reserve(&self, model: &str, cost: &RequestCost) -> Result<Reservation, OverBudget> {
        loop {
            // Registered before the ledger is read, so a settlement in between is not missed.
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            match self.try_reserve(model, cost) {
                Ok(r) => return Ok(r),
                Err(NotNow::Over(over)) => return Err(over),
                Err(NotNow::Wait) => settled.await,
            }
        }
    }

    /// Reserves the worst case of a request to `model` if it fits now.
    pub fn try_reserve(&self, model: &str, cost: &RequestCost) -> Result<Reservation, NotNow> {
        let price = self.prices.get(model).copied();
        let amount = match price {
            None => 0.0,
            Some(p) => p.prices.live(cost.prompt_tokens, worst_output(&p, cost)),
        };
        let mut ledger = self.lock();
        if let Some(limit) = self.limit {
            let spent = ledger.before + ledger.spent;
            if spent + amount > limit {
                return Err(NotNow::Over(OverBudget {
                    limit,
                    spent,
                    needed: amount,
                }));
            }
            // Reservations are only held by requests on the wire, which will settle.
            if spent + ledger.reserved + amount > limit && ledger.holders > 0 {
                return Err(NotNow::Wait);
            }
        }
        ledger.reserved += amount;
        ledger.holders += 1;
        Ok(Reservation {
            amount,
            prices: price.map(|p| p.prices),
            held: true,
        })
    }

    /// Without a budget nothing needs reserving: a request is only tracked, to be priced by its
    /// usage when it settles.
    pub fn track(&self, model: &str) -> Reservation {
        Reservation {
            amount: 0.0,
            prices: self.prices.get(model).map(|p| p.prices),
            held: false,
        }
    }

    /// The one model every request names, when the job prices exactly one.
    pub fn sole_model(&self) -> Option<&str> {
        match self.prices.len() {
            1 => self.prices.keys().next().map(String::as_str),
            _ => None,
        }
    }

    /// Replaces a reservation by the cost of the usage the API reported (`None`: nothing was
    /// billed). Returns the cost.
    pub fn settle(&self, r: Reservation, usage: Option<(u64, u64)>) -> f64 {
        let cost = match (r.prices, usage) {
            (Some(p), Some((prompt, completion))) => p.live(prompt, completion),
            _ => 0.0,
        };
        {
            let mut ledger = self.lock();
            if r.held {
                ledger.holders = ledger.holders.saturating_sub(1);
            }
            ledger.reserved = match ledger.holders {
                0 => 0.0, // no float crumbs once nothing is on the wire
                _ => (ledger.reserved - r.amount).max(0.0),
            };
            ledger.spent += cost;
        }
        self.settled.notify_waiters();
        cost
    }

    /// The ledger now.
    pub fn spend(&self) -> Spend {
        let l = self.lock();
        Spend {
            before: l.before,
            run: l.spent,
            reserved: l.reserved,
            limit: self.limit,
        }
    }

    /// A ledger that prices nothing (no model has a known price).
    pub fn none() -> Costing {
        Costing {
            prices: BTreeMap::new(),
            limit: None,
            ledger: Mutex::new(Ledger::default()),
            settled: Notify::new(),
        }
    }

    /// Whether any request is priced (else reserving and settling can be skipped).
    pub fn active(&self) -> bool {
        !self.prices.is_empty()
    }

    pub fn limit(&self) -> Option<f64> {
        self.limit
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        // The ledger holds plain numbers; a panic elsewhere cannot leave it half-updated.
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Dollars the job's done rows cost, at the prices the job records (see [`cost_of`]).
pub fn job_cost(store: &crate::store::Store, job: &crate::job::JobRecord) -> anyhow::Result<Option<f64>> {
    let usage = store.usage_by_model(job.spec.model.as_deref())?;
    Ok(cost_of(&usage, &job.models))
}

/// Dollars for the job's usage at the prices in `models`: live rows at the live price, rows done
/// through the Batch API at the Batch price (the live price when the source gives none, so the
/// cost errs high); `None` when a model with usage has no price.
pub fn cost_of(usage: &JobUsage, models: &BTreeMap<String, ModelInfo>) -> Option<f64> {
    let mut total = 0.0;
    for (batch, map) in [(false, &usage.live), (true, &usage.batch)] {
        for (model, &(prompt, completion)) in map {
            if prompt == 0 && completion == 0 {
                continue;
            }
            let prices = models.get(model)?.prices?;
            total += match batch {
                true => prices
                    .batch(prompt, completion)
                    .unwrap_or_else(|| prices.live(prompt, completion)),
                false => prices.live(prompt, completion),
            };
        }
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::PriceBook;

    fn models(names: &[&str]) -> BTreeMap<String, ModelInfo> {
        let book = PriceBook::new(None, None, None).unwrap();
        names
            .iter()
            .map(|n| (n.to_string(), book.lookup(n).unwrap()))
            .collect()
    }

    fn cost(prompt: u64, max: u64) -> RequestCost {
        RequestCost {
            prompt_tokens: prompt,
            max_output_tokens: max,
            choices: 1,
        }
    }

    #[test]
    fn reservations_hold_the_worst_case_and_settle_to_usage() {
        // gpt-4o-mini: $0.15 in, $0.60 out per 1M.
        let c = Costing::new(&models(&["gpt-4o-mini"]), Some(1.0), 0.25).unwrap();
        // Worst case 1M prompt + 0.5M out = 0.15 + 0.30 = 0.45.
        let a = c.try_reserve("gpt-4o-mini", &cost(1_000_000, 500_000)).unwrap();
        let b = c.try_reserve("gpt-4o-mini", &cost(1_000_000, 500_000));
        assert_eq!(
            b.unwrap_err(),
            NotNow::Wait,
            "0.25 spent + 0.45 reserved + 0.45 > 1.0, but 0.25 + 0.45 fits once `a` settles"
        );
        let paid = c.settle(a, Some((1_000_000, 100_000)));
        assert!((paid - 0.21).abs() < 1e-9);
        assert!((c.spend().total() - 0.46).abs() < 1e-9);
        let b = c.try_reserve("gpt-4o-mini", &cost(1_000_000, 500_000)).unwrap();
        assert_eq!(c.settle(b, None), 0.0, "a failed request costs nothing");
        assert!((c.spend().run - 0.21).abs() < 1e-9);
        let s = c.spend();
        assert_eq!(s.reserved, 0.0);
        assert!((s.remaining().unwrap() - 0.54).abs() < 1e-9);
        // 0.46 spent + 0.6 can never fit in 1.0, whatever settles.
        assert_eq!(
            c.try_reserve("gpt-4o-mini", &cost(0, 1_000_000)).unwrap_err(),
            NotNow::Over(OverBudget {
                limit: 1.0,
                spent: s.total(),
                needed: 0.6
            })
        );
    }

    #[tokio::test]
    async fn a_request_waits_for_the_wire_to_settle_then_fits() {
        let c = std::sync::Arc::new(Costing::new(&models(&["gpt-4o-mini"]), Some(1.0), 0.0).unwrap());
        let a = c.try_reserve("gpt-4o-mini", &cost(0, 1_000_000)).unwrap(); // 0.60
        let waiting = {
            let c = std::sync::Arc::clone(&c);
            tokio::spawn(async move { c.reserve("gpt-4o-mini", &cost(0, 1_000_000)).await.is_ok() })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "0.60 reserved + 0.60 > 1.0: it waits");
        c.settle(a, Some((0, 100_000))); // cost 0.06
        assert!(waiting.await.unwrap(), "0.06 spent + 0.60 fits");
    }

    #[test]
    fn rows_without_max_tokens_reserve_the_models_output_cap() {
        let c = Costing::new(&models(&["gpt-4o-mini"]), Some(0.01), 0.0).unwrap();
        // 16,384 output tokens × $0.60/1M ≈ $0.0098, just under $0.01.
        assert!(c.try_reserve("gpt-4o-mini", &cost(10, 0)).is_ok());
        assert!(c.try_reserve("gpt-4o-mini", &cost(10, 0)).is_err());
    }

    #[test]
    fn a_budget_needs_a_price_for_every_model() {
        let err = Costing::new(&models(&["my-llama"]), Some(1.0), 0.0).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("--max-cost: no price is known for model `my-llama`"));
        let counting = Costing::new(&models(&["my-llama"]), None, 0.0).unwrap();
        let r = counting.try_reserve("my-llama", &cost(5, 5)).unwrap();
        assert_eq!(counting.settle(r, Some((5, 5))), 0.0);
    }

    #[test]
    fn job_cost_is_summed_per_model() {
        let m = models(&["gpt-4o-mini", "gpt-4o", "my-llama"]);
        let live = BTreeMap::from([
            ("gpt-4o-mini".to_string(), (1_000_000, 1_000_000)),
            ("gpt-4o".to_string(), (1_000_000, 0)),
        ]);
        let usage = JobUsage {
            live: live.clone(),
            batch: BTreeMap::new(),
        };
        assert!((cost_of(&usage, &m).unwrap() - 3.25).abs() < 1e-9);
        // The same tokens through the Batch API cost half.
        let batch = JobUsage {
            live: BTreeMap::new(),
            batch: live,
        };
        assert!((cost_of(&batch, &m).unwrap() - 1.625).abs() < 1e-9);
        let unknown = JobUsage {
            live: BTreeMap::from([("my-llama".to_string(), (1, 1))]),
            batch: BTreeMap::new(),
        };
        assert_eq!(cost_of(&unknown, &m), None);
    }
}
