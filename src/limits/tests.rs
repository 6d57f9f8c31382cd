//! The limiter on tokio's paused clock: waits are exact and instant.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::api::ratelimit::{Gauge, RateHeaders};

fn headers(requests: (Option<u64>, Option<u64>), tokens: (Option<u64>, Option<u64>)) -> RateHeaders {
    RateHeaders {
        requests: Gauge {
            limit: requests.0,
            remaining: requests.1,
            reset: None,
        },
        tokens: Gauge {
            limit: tokens.0,
            remaining: tokens.1,
            reset: None,
        },
    }
}

/// How long `n` admissions of `tokens` each take from now.
async fn time_of(limits: &Limits, n: usize, tokens: u32) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        limits.admit(tokens).await.unwrap();
    }
    start.elapsed()
}

#[tokio::test(start_paused = true)]
async fn rpm_spaces_requests_evenly_after_a_one_second_burst() {
    let limits = Limits::new(NonZeroU32::new(120), None);
    assert!(
        time_of(&limits, 2, 0).await < Duration::from_millis(1),
        "the burst of 2 passes at once"
    );
    // 120/min is one request per 500 ms once the burst is spent.
    let waited = time_of(&limits, 4, 0).await;
    assert!(
        waited >= Duration::from_millis(2000) && waited < Duration::from_millis(2010),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn tpm_charges_tokens_and_rejects_oversized_requests() {
    let limits = Limits::new(None, NonZeroU32::new(6000));
    // 6000/min refills 100 tokens a second.
    let waited = time_of(&limits, 1, 6000).await + time_of(&limits, 1, 100).await;
    assert!(
        waited >= Duration::from_millis(1000) && waited < Duration::from_millis(1010),
        "{waited:?}"
    );
    let too_large = limits.admit(6001).await.unwrap_err();
    assert_eq!(
        too_large,
        TooLarge {
            needed: 6001,
            capacity: 6000,
            origin: Source::Flag
        }
    );
    assert!(too_large.to_string().contains("more than --tpm 6000 allows"));
}

#[tokio::test(start_paused = true)]
async fn a_pause_holds_every_caller() {
    let limits = Arc::new(Limits::new(None, None));
    limits.pause_for(Duration::from_secs(3));
    limits.pause_for(Duration::from_secs(1)); // a shorter pause does not shorten it
    let start = Instant::now();
    let callers: Vec<_> = (0..2)
        .map(|_| {
            let l = Arc::clone(&limits);
            tokio::spawn(async move { l.admit(0).await })
        })
        .collect();
    for c in callers {
        c.await.unwrap().unwrap();
    }
    assert!(start.elapsed() >= Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn limits_not_given_are_learned_from_the_headers() {
    let limits = Limits::new(None, None);
    assert!(limits.learns());
    assert_eq!(
        limits.in_force(),
        (RateInForce::default(), RateInForce::default())
    );
    assert!(!limits.counts_tokens());
    assert!(limits.observe(&headers((Some(120), Some(119)), (Some(40_000), Some(39_990)))));
    let server = |n| RateInForce {
        limit: Some(n),
        source: Source::Server,
    };
    assert_eq!(limits.in_force(), (server(120), server(40_000)));
    assert!(limits.counts_tokens(), "a learned TPM needs token counts");
    // Now 120/min is in force: 2 at once, then one per 500 ms.
    let waited = time_of(&limits, 4, 0).await;
    assert!(
        waited >= Duration::from_millis(1000) && waited < Duration::from_millis(1010),
        "{waited:?}"
    );
    // A later answer with a new limit moves it; one without headers keeps the last known.
    assert!(limits.observe(&headers((Some(600), None), (None, None))));
    assert!(!limits.observe(&RateHeaders::default()));
    assert!(!limits.observe(&headers((None, Some(500)), (None, None))));
    assert_eq!(limits.in_force(), (server(600), server(40_000)));
}

#[tokio::test(start_paused = true)]
async fn a_flag_wins_over_the_servers_limit() {
    let limits = Limits::new(NonZeroU32::new(60), None);
    assert!(limits.learns(), "the TPM is still to be learned");
    limits.observe(&headers((Some(6000), Some(5999)), (Some(1000), Some(1000))));
    let (rpm, tpm) = limits.in_force();
    assert_eq!(
        rpm,
        RateInForce {
            limit: Some(60),
            source: Source::Flag
        }
    );
    assert_eq!(tpm.source, Source::Server);
    // 60/min: one at once, then one a second, whatever the server allows.
    let waited = time_of(&limits, 3, 0).await;
    assert!(waited >= Duration::from_secs(2), "{waited:?}");
    assert!(!Limits::new(NonZeroU32::new(60), NonZeroU32::new(1000)).learns());
}

#[tokio::test(start_paused = true)]
async fn remaining_lowers_the_bucket_but_never_raises_it() {
    let limits = Limits::new(None, NonZeroU32::new(6000));
    // The server says only 100 tokens are left (another client of the key spent the rest).
    limits.observe(&headers((None, None), (Some(6000), Some(100))));
    assert!(time_of(&limits, 1, 100).await < Duration::from_millis(1));
    // Empty now: 100 more tokens take a second at 100/s.
    let waited = time_of(&limits, 1, 100).await;
    assert!(
        waited >= Duration::from_millis(1000) && waited < Duration::from_millis(1010),
        "{waited:?}"
    );
    // A stale, higher `remaining` does not give back what is spent.
    limits.observe(&headers((None, None), (Some(6000), Some(6000))));
    let waited = time_of(&limits, 1, 100).await;
    assert!(waited >= Duration::from_millis(1000), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn a_request_waiting_for_tokens_does_not_spend_a_request() {
    let limits = Limits::new(NonZeroU32::new(60), NonZeroU32::new(600));
    limits.admit(600).await.unwrap(); // spends the only request of the burst and every token
                                      // The next needs 1 request (1 s away) and 600 tokens (60 s away): it waits 60 s, and the
                                      // request slot refilled meanwhile is taken only then.
    assert_eq!(time_of(&limits, 1, 600).await, Duration::from_secs(60));
}

#[test]
fn a_429_is_spent_only_when_the_headers_say_so() {
    let limits = Limits::new(None, None);
    limits.observe(&headers((Some(120), Some(50)), (Some(60_000), Some(50_000))));
    assert_eq!(
        limits.spent(&RateHeaders::default(), 10),
        None,
        "no headers: cannot tell"
    );
    assert_eq!(
        limits.spent(&headers((Some(120), Some(3)), (Some(60_000), Some(500))), 10),
        None,
        "room left: a 429 for some other reason"
    );
    // No request left: one comes back in 60/120 s.
    assert_eq!(
        limits.spent(&headers((Some(120), Some(0)), (None, None)), 10),
        Some(Duration::from_millis(500))
    );
    // 100 tokens left, 1100 needed: 1000 tokens at 1000/s.
    assert_eq!(
        limits.spent(&headers((None, None), (Some(60_000), Some(100))), 1100),
        Some(Duration::from_secs(1))
    );
    // The server's reset time bounds the wait.
    let mut bounded = headers((Some(120), Some(0)), (None, None));
    bounded.requests.reset = Some(Duration::from_millis(20));
    assert_eq!(limits.spent(&bounded, 1), Some(Duration::from_millis(20)));
}

#[test]
fn in_force_reads_like_the_status_line() {
    let shown = InForce {
        rpm: RateInForce {
            limit: Some(120),
            source: Source::Server,
        },
        tpm: RateInForce::default(),
        concurrency: WindowInForce { current: 3, max: 50 },
    };
    assert_eq!(shown.to_string(), "rpm 120 (server), tpm none, concurrency 3/50");
    let json = serde_json::to_value(shown).unwrap();
    assert_eq!(json["rpm"]["source"], "server");
    assert_eq!(json["tpm"]["source"], "none");
}
