//! Tests of the ledger and of the job's cost.

use super::*;
use crate::store::{JobUsage, UsageSums};
use promptmill_core::models::PriceBook;

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
    let paid = c.settle(a, Some(Billed::plain(1e6, 1e5)));
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
    c.settle(a, Some(Billed::plain(0.0, 1e5))); // cost 0.06
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
    assert_eq!(counting.settle(r, Some(Billed::plain(5.0, 5.0))), 0.0);
}

fn group(model: &str, batch: bool, prompt: u64, completion: u64) -> crate::store::UsageGroup {
    crate::store::UsageGroup {
        model: model.to_string(),
        batch,
        least_prompt: 1,
        sums: UsageSums {
            prompt,
            completion,
            ..UsageSums::default()
        },
    }
}

#[test]
fn job_cost_is_summed_per_model() {
    let m = models(&["gpt-4o-mini", "gpt-4o", "my-llama"]);
    let usage = |batch| JobUsage {
        groups: vec![
            group("gpt-4o-mini", batch, 1_000_000, 1_000_000),
            group("gpt-4o", batch, 1_000_000, 0),
        ],
    };
    assert!((cost_of(&usage(false), &m).unwrap().total() - 3.25).abs() < 1e-9);
    // The same tokens through the Batch API cost half.
    assert!((cost_of(&usage(true), &m).unwrap().total() - 1.625).abs() < 1e-9);
    let unknown = JobUsage {
        groups: vec![group("my-llama", false, 1, 1)],
    };
    assert_eq!(cost_of(&unknown, &m), None);
}

#[test]
fn settling_prices_cached_input_and_the_split_adds_up() {
    let c = Costing::new(&models(&["gpt-4o-mini"]), None, 0.0).unwrap();
    let r = c.track("gpt-4o-mini");
    let tokens = Billed {
        prompt: 1e6,
        cached: 1e6,
        completion: 0.0,
        ..Billed::default()
    };
    // All cached: $0.075 instead of $0.15.
    assert!((c.settle(r, Some(tokens)) - 0.075).abs() < 1e-12);
    let mut usage = JobUsage {
        groups: vec![group("gpt-4o-mini", false, 1_000_000, 1_000_000)],
    };
    usage.groups[0].sums.cached = 500_000;
    usage.groups[0].sums.reasoning = 250_000;
    let split = cost_of(&usage, &models(&["gpt-4o-mini"])).unwrap();
    assert!((split.input - 0.075).abs() < 1e-12 && (split.cached_input - 0.0375).abs() < 1e-12);
    assert!((split.output - 0.6).abs() < 1e-12 && (split.reasoning - 0.15).abs() < 1e-12);
    assert!((split.total() - 0.7125).abs() < 1e-12);
}
