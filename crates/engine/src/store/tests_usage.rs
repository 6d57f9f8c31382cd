//! Specifications of the usage sums a job is priced from: the details the server reported are
//! kept per row, and the sums fall into the bands the price tiers cut.

use super::record::record_outcome;
use super::tests::store_with;
use super::writer::{Outcome, OutcomeKind};
use super::*;
use promptmill_core::family::{Completion, Usage};

fn done(seq: i64, usage: Usage) -> Outcome {
    Outcome {
        seq,
        attempts: 1,
        kind: OutcomeKind::Done(Completion {
            text: Some("answer".into()),
            finish_reason: Some("stop".into()),
            refusal: None,
            usage,
            model: None,
            id: None,
            raw: "{}".into(),
            embeddings: Vec::new(),
        }),
        tries: Vec::new(),
    }
}

fn usage(prompt: u64, cached: Option<u64>, completion: u64, reasoning: Option<u64>) -> Usage {
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        cached_tokens: cached,
        cache_creation_tokens: None,
        reasoning_tokens: reasoning,
    }
}

#[test]
fn details_are_kept_per_row_and_sums_split_at_the_tier_thresholds() {
    let store = store_with(4);
    record_outcome(&store.conn, done(1, usage(300_000, Some(100_000), 10, Some(4)))).unwrap();
    record_outcome(&store.conn, done(2, usage(250_000, None, 20, None))).unwrap();
    record_outcome(&store.conn, done(3, usage(1_000, Some(5_000), 30, Some(99)))).unwrap();
    let mut rows = Vec::new();
    store
        .for_each_row(|r| {
            rows.push(r);
            Ok(())
        })
        .unwrap();
    assert_eq!(
        (rows[0].cached_tokens, rows[0].reasoning_tokens),
        (Some(100_000), Some(4))
    );
    assert_eq!(
        (rows[1].cached_tokens, rows[1].cache_creation_tokens),
        (None, None)
    );
    assert!(!rows[0].via_batch && rows[3].cost.is_none());
    let usage = store.usage_by_model(Some("m"), &[200_000]).unwrap();
    let mut groups = usage.groups.clone();
    groups.sort_by_key(|g| g.least_prompt);
    assert_eq!(groups.len(), 2, "{groups:?}");
    // Below the threshold; the cached and reasoning tokens a server over-reported are clamped
    // to the prompt and completion, as one request's cost clamps them.
    assert_eq!(groups[0].least_prompt, 1_000);
    assert_eq!(
        groups[0].sums,
        UsageSums {
            prompt: 1_000,
            cached: 1_000,
            cache_creation: 0,
            completion: 30,
            reasoning: 30,
        }
    );
    // Above it: both long rows, priced at the tier of the shorter.
    assert_eq!(groups[1].least_prompt, 250_000);
    assert_eq!((groups[1].sums.prompt, groups[1].sums.cached), (550_000, 100_000));
    assert_eq!(usage.of("m", false).prompt, 551_000);
    assert_eq!(store.usage_by_model(Some("m"), &[]).unwrap().groups.len(), 1);
}
