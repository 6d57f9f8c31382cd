//! The cost before the money: the one line printed before a new job's first paid request (how
//! many rows go to which model, and the most they can cost). The `--confirm` question after it
//! is `confirm.rs`'s.
//!
//! The ceiling is every pending row's worst case: its prompt tokens at the input price plus its
//! `max_tokens` × `n` (or the model's output cap, when the row sets no maximum) at the output
//! price; through the Batch API, at the Batch price. It is "unbounded" when a model has no price
//! or when a row sets no maximum and its model's cap is unknown; the line says which. What is
//! actually spent is the ledger's business ([`crate::budget`]).

use std::collections::BTreeMap;

use crate::estimate::report::{dollars, thousands};
use crate::store::Store;
use promptmill_core::models::{Billed, ModelInfo};

/// What the pending rows of one model add up to.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Tally {
    rows: u64,
    prompt: u64,
    /// Completion tokens at most, over the rows that set or inherit a maximum.
    completion: u64,
    /// Rows with no maximum and no output cap for their model.
    unbounded: u64,
    /// The largest and smallest maximum a row has (to say "per row" when they are all the same).
    most: u64,
    least: u64,
    /// The longest prompt: a long-context tier is priced at it, so the ceiling errs high.
    longest: u64,
}

/// The pending rows and their ceiling.
#[derive(Debug, Clone, PartialEq)]
pub struct Ceiling {
    pub rows: u64,
    pub models: Vec<String>,
    /// Dollars at most, or why there is no bound.
    pub bound: Result<Bound, String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    pub total: f64,
    pub prompts: f64,
    pub completion_tokens: u64,
    /// Every row's completion maximum, when they are all the same.
    pub per_row: Option<u64>,
}

/// Bodies handed to a measuring thread at a time.
const CHUNK: usize = 1024;

/// Prices the job's pending rows at `models` (Batch API prices with `batch`).
///
/// Measuring a body (its JSON parsed, its prompt's tokens counted) is most of the work, so it is
/// done on a thread per core: this thread reads the bodies from the checkpoint and hands them
/// out in chunks through a bounded channel (its sender dropped when the rows are read, which
/// ends the measuring threads' loops); each thread tallies its chunks, and the tallies are added
/// up. A sum, a least and a most do not depend on the order the rows were tallied in.
pub fn of_pending(
    store: &Store,
    family: &dyn promptmill_core::family::ApiFamily,
    models: &BTreeMap<String, ModelInfo>,
    fixed: Option<&str>,
    batch: bool,
) -> anyhow::Result<Ceiling> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<String>>(2 * threads);
    let rx = std::sync::Mutex::new(rx);
    let tallies = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let rx = &rx;
                scope.spawn(move || {
                    let mut tallies = BTreeMap::new();
                    // The lock is held only to take the next chunk.
                    while let Some(chunk) = rx.lock().ok().and_then(|r| r.recv().ok()) {
                        for body in &chunk {
                            tally(&mut tallies, family, models, fixed, body);
                        }
                    }
                    tallies
                })
            })
            .collect();
        let mut chunk = Vec::with_capacity(CHUNK);
        let read = store.each_pending_request(|body| {
            chunk.push(body.to_string());
            if chunk.len() == CHUNK {
                // A send fails only if every measuring thread died, which `join` reports.
                let _ = tx.send(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)));
            }
        });
        if !chunk.is_empty() {
            let _ = tx.send(chunk);
        }
        drop(tx);
        let mut all: BTreeMap<String, Tally> = BTreeMap::new();
        for worker in workers {
            let part = worker
                .join()
                .map_err(|_| anyhow::anyhow!("measuring the pending rows panicked"))?;
            for (model, t) in part {
                all.entry(model).or_default().add(&t);
            }
        }
        read.map(|()| all)
    })?;
    Ok(price(&tallies, models, batch))
}

/// Adds one pending body to the tally of its model.
fn tally(
    tallies: &mut BTreeMap<String, Tally>,
    family: &dyn promptmill_core::family::ApiFamily,
    models: &BTreeMap<String, ModelInfo>,
    fixed: Option<&str>,
    body: &str,
) {
    // The bodies are our own JSON; one that does not parse is not counted.
    let Ok((cost, model)) = family.measure(body) else {
        return;
    };
    let model = fixed
        .map(str::to_string)
        .unwrap_or_else(|| model.map(|m| m.into_owned()).unwrap_or_default());
    let cap = models.get(&model).and_then(|m| m.max_output_tokens);
    let t = tallies.entry(model).or_default();
    let most = match (cost.max_output_tokens, cap) {
        (0, Some(cap)) => Some(cap.saturating_mul(cost.choices)),
        (0, None) => None,
        (m, _) => Some(m),
    };
    t.least = if t.rows == 0 {
        most.unwrap_or(0)
    } else {
        t.least.min(most.unwrap_or(0))
    };
    t.rows += 1;
    t.prompt += cost.prompt_tokens;
    t.longest = t.longest.max(cost.prompt_tokens);
    match most {
        Some(m) => {
            t.completion += m;
            t.most = t.most.max(m);
        }
        None => t.unbounded += 1,
    }
}

impl Tally {
    /// Adds another thread's tally of the same model.
    fn add(&mut self, o: &Tally) {
        if o.rows == 0 {
            return;
        }
        if self.rows == 0 {
            *self = *o;
            return;
        }
        self.rows += o.rows;
        self.prompt += o.prompt;
        self.completion += o.completion;
        self.unbounded += o.unbounded;
        self.most = self.most.max(o.most);
        self.least = self.least.min(o.least);
        self.longest = self.longest.max(o.longest);
    }
}

fn price(tallies: &BTreeMap<String, Tally>, models: &BTreeMap<String, ModelInfo>, batch: bool) -> Ceiling {
    let rows = tallies.values().map(|t| t.rows).sum();
    let names = tallies.keys().filter(|m| !m.is_empty()).cloned().collect();
    let mut bound = Ok(Bound {
        total: 0.0,
        prompts: 0.0,
        completion_tokens: 0,
        per_row: None,
    });
    let mut same = None;
    let mut uniform = true;
    for (model, t) in tallies {
        let Some(p) = models.get(model).and_then(|m| m.prices.as_ref()) else {
            bound = Err(format!(
                "no price is known for `{model}` (pass --price-in/--price-out)"
            ));
            break;
        };
        if t.unbounded > 0 {
            bound = Err(format!(
                "{} rows set no max_tokens and the output cap of `{model}` is unknown (pass --max-tokens)",
                thousands(t.unbounded)
            ));
            break;
        }
        // The one cost formula, with no cached input.
        let worth = |prompt: u64, completion: u64| {
            let tokens = Billed::plain(prompt as f64, completion as f64);
            p.cost(batch, t.longest, &tokens).total()
        };
        uniform &= t.least == t.most && same.is_none_or(|s| s == t.most);
        same = Some(t.most);
        if let Ok(b) = &mut bound {
            b.prompts += worth(t.prompt, 0);
            b.total += worth(t.prompt, t.completion);
            b.completion_tokens += t.completion;
        }
    }
    if let Ok(b) = &mut bound {
        b.per_row = same.filter(|_| uniform);
    }
    Ceiling {
        rows,
        models: names,
        bound,
    }
}

impl std::fmt::Display for Ceiling {
    /// "promptmill: sending 1,000 rows to gpt-4o-mini; at most $0.0721 (prompts $0.0051 + up to
    /// 120 completion tokens per row)".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rows = match self.rows {
            1 => "1 row".to_string(),
            n => format!("{} rows", thousands(n)),
        };
        let to = match self.models.as_slice() {
            [] => String::new(),
            models => format!(" to {}", models.join(", ")),
        };
        write!(f, "promptmill: sending {rows}{to}; ")?;
        match &self.bound {
            Ok(b) => {
                let completions = match b.per_row {
                    Some(n) => format!("up to {} completion tokens per row", thousands(n)),
                    None => format!(
                        "up to {} completion tokens in all",
                        thousands(b.completion_tokens)
                    ),
                };
                write!(
                    f,
                    "at most {} (prompts {} + {completions})",
                    dollars(rounded_up(b.total)),
                    dollars(b.prompts)
                )
            }
            Err(why) => write!(f, "cost unbounded: {why}"),
        }
    }
}

/// `v` rounded up to the digits [`dollars`] shows, so that "at most" never understates.
fn rounded_up(v: f64) -> f64 {
    let step = match v {
        v if v >= 100.0 => 1.0,
        v if v >= 1.0 => 0.01,
        v if v >= 0.01 => 0.001,
        _ => 1e-6,
    };
    // A hair under, so that float noise in an exact amount does not add a step.
    ((v / step) - 1e-9).ceil() * step
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptmill_core::models::PriceBook;

    fn models() -> BTreeMap<String, ModelInfo> {
        let book = PriceBook::new(None, None, None).unwrap();
        ["gpt-4o-mini", "my-llama"]
            .iter()
            .map(|n| (n.to_string(), book.lookup(n).unwrap()))
            .collect()
    }

    fn tally(rows: u64, prompt: u64, completion: u64, most: u64, least: u64) -> Tally {
        Tally {
            rows,
            prompt,
            completion,
            unbounded: 0,
            most,
            least,
            longest: prompt / rows.max(1),
        }
    }

    #[test]
    fn the_ceiling_prices_prompts_and_every_rows_most_completion() {
        let t = BTreeMap::from([("gpt-4o-mini".to_string(), tally(1000, 34_000, 120_000, 120, 120))]);
        let c = price(&t, &models(), false);
        // 34,000 × $0.15/1M + 120,000 × $0.60/1M = 0.0051 + 0.072.
        assert_eq!(
            c.to_string(),
            "promptmill: sending 1,000 rows to gpt-4o-mini; at most $0.078 (prompts $0.005100 + up to 120 completion tokens per row)"
        );
        let c = price(&t, &models(), true);
        assert!(c.to_string().contains("at most $0.039 (prompts $0.002550"), "{c}");
        let t = BTreeMap::from([("gpt-4o-mini".to_string(), tally(2, 10, 150, 100, 50))]);
        assert!(price(&t, &models(), false)
            .to_string()
            .contains("up to 150 completion tokens in all"));
    }

    #[test]
    fn tallies_of_two_threads_add_up_to_the_tally_of_one() {
        let mut one = tally(3, 30, 300, 120, 50);
        one.unbounded = 1;
        one.longest = 20;
        let mut two = tally(2, 10, 80, 60, 20);
        two.longest = 7;
        let mut sum = Tally::default();
        sum.add(&one);
        sum.add(&Tally::default());
        sum.add(&two);
        assert_eq!(
            sum,
            Tally {
                rows: 5,
                prompt: 40,
                completion: 380,
                unbounded: 1,
                most: 120,
                least: 20,
                longest: 20,
            }
        );
    }

    #[test]
    fn no_price_or_no_cap_is_unbounded_and_says_why() {
        let t = BTreeMap::from([("my-llama".to_string(), tally(1, 10, 10, 10, 10))]);
        assert_eq!(
            price(&t, &models(), false).to_string(),
            "promptmill: sending 1 row to my-llama; cost unbounded: no price is known for `my-llama` (pass --price-in/--price-out)"
        );
        let mut models = models();
        if let Some(m) = models.get_mut("my-llama") {
            m.prices = models_price();
        }
        let mut open = tally(3, 10, 0, 0, 0);
        open.unbounded = 3;
        let t = BTreeMap::from([("my-llama".to_string(), open)]);
        assert!(price(&t, &models, false)
            .to_string()
            .ends_with("cost unbounded: 3 rows set no max_tokens and the output cap of `my-llama` is unknown (pass --max-tokens)"));
    }

    fn models_price() -> Option<promptmill_core::models::Prices> {
        PriceBook::new(None, Some(1.0), Some(2.0))
            .unwrap()
            .lookup("my-llama")
            .unwrap()
            .prices
    }
}
