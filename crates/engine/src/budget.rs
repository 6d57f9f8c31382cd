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
//! Prices are per model, as the rows' requests name it; every amount here is priced by the one
//! formula, [`Prices::cost`] (cached input, cache writes, reasoning, Batch prices, long-context
//! tiers: see `models/price.rs`). A reservation's worst case assumes no cached input.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::estimate::report::dollars;
use promptmill_core::models::{Billed, ModelInfo, Prices};

mod bill;

pub use bill::{cost_of, job_cost, job_cost_split, job_saved};
use promptmill_core::tokens::RequestCost;

/// A model's prices and output cap, as a run uses them.
#[derive(Debug, Clone)]
struct Price {
    /// Shared with every reservation made at them.
    prices: Arc<Prices>,
    max_output: Option<u64>,
}

impl Price {
    /// A request's worst case: its prompt, uncached, and its most completion tokens.
    fn worst(&self, batch: bool, cost: &RequestCost) -> f64 {
        let tokens = Billed::plain(cost.prompt_tokens as f64, worst_output(self, cost) as f64);
        self.prices.cost(batch, cost.prompt_tokens, &tokens).total()
    }
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
    prices: Option<Arc<Prices>>,
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
            match &info.prices {
                Some(p) => {
                    prices.insert(
                        name.clone(),
                        Price {
                            prices: Arc::new(p.clone()),
                            max_output: info.max_output_tokens,
                        },
                    );
                }
                None if limit.is_some() => {
                    return Err(CostingError::NoPrice(promptmill_core::models::unknown_price(
                        name,
                    )))
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
        self.prices.get(model).map_or(0.0, |p| p.worst(true, cost))
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
        let price = self.prices.get(model);
        let amount = price.map_or(0.0, |p| p.worst(false, cost));
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
            prices: price.map(|p| Arc::clone(&p.prices)),
            held: true,
        })
    }

    /// Without a budget nothing needs reserving: a request is only tracked, to be priced by its
    /// usage when it settles.
    pub fn track(&self, model: &str) -> Reservation {
        Reservation {
            amount: 0.0,
            prices: self.prices.get(model).map(|p| Arc::clone(&p.prices)),
            held: false,
        }
    }

    /// What `usage` costs at `model`'s live prices, booked nowhere: what an answer from the
    /// response cache saved (0 when the model has no price).
    pub fn value_of(&self, model: &str, usage: Billed) -> f64 {
        self.prices
            .get(model)
            .map_or(0.0, |p| p.prices.cost(false, usage.prompt as u64, &usage).total())
    }

    /// The one model every request names, when the job prices exactly one.
    pub fn sole_model(&self) -> Option<&str> {
        match self.prices.len() {
            1 => self.prices.keys().next().map(String::as_str),
            _ => None,
        }
    }

    /// Replaces a reservation by the cost of the usage the API reported for one live request
    /// (`None`: nothing was billed). Returns the cost.
    pub fn settle(&self, r: Reservation, usage: Option<Billed>) -> f64 {
        let cost = match (&r.prices, usage) {
            (Some(p), Some(tokens)) => p.cost(false, tokens.prompt as u64, &tokens).total(),
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

#[cfg(test)]
mod tests;
