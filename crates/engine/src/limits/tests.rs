//! The limiter on tokio's paused clock: waits are exact and instant.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock;
use tokio::time::Instant;

use super::*;
use promptmill_core::family::ratelimit::{Gauge, RateHeaders};

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

fn rpm(limit: Option<u64>, remaining: Option<u64>) -> RateHeaders {
    headers((limit, remaining), (None, None))
}

fn tpm(limit: Option<u64>, remaining: Option<u64>) -> RateHeaders {
    headers((None, None), (limit, remaining))
}

fn within(waited: Duration, from_ms: u64) -> bool {
    waited >= Duration::from_millis(from_ms) && waited < Duration::from_millis(from_ms + 2)
}

#[tokio::test(start_paused = true)]
async fn a_raised_limit_learned_mid_run_starts_with_the_level_the_old_one_had() {
    let limits = Limits::new(None, None);
    limits.observe(&rpm(Some(120), None)); // a burst of 2
    assert!(time_of(&limits, 2, 0).await < Duration::from_millis(1));
    // 6000/min holds 100 when full, but the spent bucket stays spent: one per 10 ms from here.
    assert!(limits.observe(&rpm(Some(6000), None)));
    let waited = time_of(&limits, 3, 0).await;
    assert!(within(waited, 30), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn a_lowered_limit_learned_mid_run_holds_at_most_its_new_capacity() {
    let limits = Limits::new(None, None);
    limits.observe(&rpm(Some(6000), None)); // full: 100
    limits.observe(&rpm(Some(120), None)); // now holds 2, one per 500 ms
    assert!(time_of(&limits, 2, 0).await < Duration::from_millis(1));
    let waited = time_of(&limits, 1, 0).await;
    assert!(within(waited, 500), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn a_new_limit_keeps_whole_cells_of_the_old_level() {
    let limits = Limits::new(None, None);
    limits.observe(&rpm(Some(60), None)); // holds 1, one a second
    limits.admit(0).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await; // half a request back
                                                          // At 600/min the half is rounded down: the next request is a full 100 ms away, not 50.
    limits.observe(&rpm(Some(600), None));
    let waited = time_of(&limits, 1, 0).await;
    assert!(within(waited, 100), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn remaining_lowers_a_partly_refilled_bucket_to_exactly_that() {
    let limits = Limits::new(NonZeroU32::new(600), None); // holds 10, one per 100 ms
    time_of(&limits, 10, 0).await;
    tokio::time::sleep(Duration::from_millis(250)).await; // 2.5 back
    limits.observe(&rpm(None, Some(2)));
    assert!(time_of(&limits, 2, 0).await < Duration::from_millis(1));
    let waited = time_of(&limits, 1, 0).await;
    assert!(within(waited, 100), "the half refilled is gone too: {waited:?}");
    tokio::time::sleep(Duration::from_millis(250)).await; // 2.5 back again
    limits.observe(&rpm(None, Some(3))); // more than it holds: no change
    assert!(time_of(&limits, 2, 0).await < Duration::from_millis(1));
    let waited = time_of(&limits, 1, 0).await;
    assert!(within(waited, 50), "the half refilled is kept: {waited:?}");
}

#[tokio::test(start_paused = true)]
async fn a_server_tpm_smaller_than_one_request_is_not_believed() {
    let limits = Limits::new(None, None);
    limits.observe(&tpm(Some(1000), None));
    assert_eq!(limits.admit(1001).await, Ok(()), "the row is sent, not failed");
    assert_eq!(
        limits.in_force().1,
        RateInForce::default(),
        "no token limit from the server"
    );
    assert!(!limits.counts_tokens());
    limits.observe(&tpm(Some(1000), Some(0)));
    assert_eq!(
        limits.in_force().1,
        RateInForce::default(),
        "a limit below a request already let through stays disbelieved"
    );
    assert!(
        time_of(&limits, 3, 1001).await < Duration::from_millis(1),
        "nothing holds the requests"
    );
    limits.observe(&tpm(Some(50_000), None));
    assert_eq!(
        limits.in_force().1,
        RateInForce {
            limit: Some(50_000),
            source: Source::Server
        },
        "a plausible limit is learned again"
    );
}

#[tokio::test(start_paused = true)]
async fn a_learned_tpm_of_one_token_never_fails_a_request() {
    let limits = Limits::new(None, None);
    limits.observe(&tpm(Some(1), Some(1)));
    for _ in 0..20 {
        assert_eq!(limits.admit(20).await, Ok(()));
        limits.observe(&tpm(Some(1), Some(1)));
    }
}

#[tokio::test(start_paused = true)]
async fn only_the_users_tpm_makes_a_request_too_large() {
    let limits = Limits::new(None, NonZeroU32::new(10));
    limits.observe(&tpm(Some(1_000_000), None));
    assert_eq!(
        limits.admit(11).await,
        Err(TooLarge {
            needed: 11,
            capacity: 10
        })
    );
}

#[tokio::test(start_paused = true)]
async fn a_waiting_request_is_let_through_when_the_server_lowers_its_tpm_below_it() {
    let limits = Arc::new(Limits::new(None, None));
    limits.observe(&tpm(Some(1000), Some(0)));
    let waiting = tokio::spawn({
        let l = Arc::clone(&limits);
        async move { l.admit(800).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    limits.observe(&tpm(Some(500), None));
    assert_eq!(waiting.await.unwrap(), Ok(()));
    assert_eq!(limits.in_force().1.limit, None);
}

#[tokio::test(start_paused = true)]
async fn a_request_waiting_for_a_request_slot_takes_no_tokens_meanwhile() {
    let limits = Limits::new(NonZeroU32::new(60), NonZeroU32::new(600)); // 1 a second, 10 tokens a second
    let start = Instant::now();
    limits.admit(1).await.unwrap();
    // Dropped while it waits for the next request slot (1 s away): it took none of the tokens.
    let gave_up = tokio::time::timeout(Duration::from_millis(500), limits.admit(599)).await;
    assert!(gave_up.is_err());
    limits.admit(599).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_request_waiting_for_tokens_leaves_the_request_slot_to_others() {
    let limits = Arc::new(Limits::new(NonZeroU32::new(60), NonZeroU32::new(600)));
    let start = Instant::now();
    limits.admit(600).await.unwrap(); // both buckets empty
    let admitted_after = |tokens| {
        let l = Arc::clone(&limits);
        tokio::spawn(async move {
            l.admit(tokens).await.unwrap();
            start.elapsed()
        })
    };
    let big = admitted_after(600);
    tokio::task::yield_now().await; // the big one waits first
    let small = admitted_after(10);
    // The small one goes when the next request slot and its 10 tokens are back, 1 s in; the
    // big one needs a full minute of tokens after that.
    assert_eq!(small.await.unwrap(), Duration::from_secs(1));
    assert_eq!(big.await.unwrap(), Duration::from_secs(61));
}

#[test]
fn reading_a_bucket_takes_nothing_from_it() {
    use super::bucket::{Bucket, Shape, TokioClock};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let clock = TokioClock::new();
        let mut bucket = Bucket::new(Shape::Tokens, NonZeroU32::new(600).unwrap(), clock);
        let n = |n| NonZeroU32::new(n).unwrap();
        for _ in 0..3 {
            assert_eq!(
                bucket.ready_at(n(600)),
                clock.now(),
                "full, and stays full when read"
            );
        }
        bucket.take(n(550)).unwrap();
        for _ in 0..3 {
            // 50 left; 100 more arrive 5 s from now (10 a second).
            assert_eq!(bucket.ready_at(n(100)), clock.now() + Duration::from_secs(5));
        }
        bucket.take(n(50)).unwrap();
        assert_eq!(bucket.take(n(1)), Err(clock.now() + Duration::from_millis(100)));
    });
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
