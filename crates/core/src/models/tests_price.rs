//! Tests of the cost formula: cached input, cache writes, reasoning, Batch, long-context tiers.

use super::*;

/// gpt-4o-mini's built-in prices: $0.15 in, $0.075 cached, $0.60 out; Batch half.
fn mini() -> Prices {
    Prices {
        input: 0.15,
        output: 0.6,
        cached_input: Some(0.075),
        batch_input: Some(0.075),
        batch_output: Some(0.3),
        ..Prices::default()
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn cached_tokens_pay_the_cached_price_and_reasoning_is_output_shown_apart() {
    let t = Billed {
        prompt: 1_000_000.0,
        cached: 400_000.0,
        completion: 500_000.0,
        reasoning: 200_000.0,
        ..Billed::default()
    };
    let c = mini().cost(false, 1000, &t);
    assert!(close(c.input, 0.6 * 0.15), "{c:?}");
    assert!(close(c.cached_input, 0.4 * 0.075), "{c:?}");
    assert!(close(c.output, 0.5 * 0.6), "{c:?}");
    assert!(close(c.reasoning, 0.2 * 0.6), "{c:?}");
    assert!(
        close(c.total(), 0.09 + 0.03 + 0.3),
        "reasoning is within output: {c:?}"
    );
}

#[test]
fn without_a_cached_price_cached_tokens_cost_as_input() {
    let p = Prices {
        cached_input: None,
        ..mini()
    };
    let t = Billed {
        prompt: 1e6,
        cached: 1e6,
        cache_creation: 0.0,
        ..Billed::default()
    };
    assert!(close(p.cost(false, 1, &t).total(), 0.15));
    // Cache writes at their own price, when there is one.
    let p = Prices {
        cache_creation: Some(0.1875),
        ..mini()
    };
    let t = Billed {
        prompt: 1e6,
        cache_creation: 1e6,
        ..Billed::default()
    };
    let c = p.cost(false, 1, &t);
    assert!(close(c.cache_creation, 0.1875) && c.input == 0.0, "{c:?}");
}

#[test]
fn batch_rows_pay_batch_prices_and_the_cached_price_at_the_batch_discount() {
    let t = Billed {
        prompt: 1e6,
        cached: 5e5,
        completion: 1e6,
        ..Billed::default()
    };
    let c = mini().cost(true, 1, &t);
    assert!(close(c.input, 0.5 * 0.075), "{c:?}");
    assert!(close(c.cached_input, 0.5 * 0.0375), "{c:?}");
    assert!(close(c.output, 0.3), "{c:?}");
}

#[test]
fn counts_beyond_the_prompt_are_not_priced_twice() {
    // A server that reports more cached tokens than prompt tokens: the prompt is all cached.
    let t = Billed {
        prompt: 100.0,
        cached: 500.0,
        completion: 10.0,
        reasoning: 50.0,
        ..Billed::default()
    };
    let c = mini().cost(false, 1, &t);
    assert!(
        close(c.cached_input, 100.0 * 0.075 / 1e6) && c.input == 0.0,
        "{c:?}"
    );
    assert!(close(c.reasoning, c.output), "{c:?}");
}

#[test]
fn a_prompt_above_a_tier_pays_that_tiers_prices_for_all_its_tokens() {
    let p = Prices {
        tiers: vec![Tier {
            above: 200_000,
            input: Some(0.3),
            output: Some(1.2),
            ..Tier::default()
        }],
        ..mini()
    };
    let t = Billed::plain(1e6, 1e6);
    assert!(
        close(p.cost(false, 200_000, &t).total(), 0.75),
        "at the threshold: base"
    );
    assert!(
        close(p.cost(false, 200_001, &t).total(), 1.5),
        "above it: the tier"
    );
    let r = p.rates(false, 250_000);
    assert_eq!(
        r.cached_input, 0.3,
        "a tier without a cached price bills cached input as its input"
    );
    // Through the Batch API, a tier without Batch prices takes the model's Batch discount.
    assert!(close(p.cost(true, 250_000, &t).total(), 0.75));
}
