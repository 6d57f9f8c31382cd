//! The worker loop under limits learned from the server, 429s of both kinds, an exhausted quota
//! and the adaptive window, against the fake transport of `tests` on tokio's paused clock.

use std::num::NonZeroU32;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::tests::{reply, run_pipeline, run_pipeline_stalling, store_with_rows, unlimited, Fake, BODY, OK};
use super::*;
use crate::api::{RateHeaders, Reply, SendError};
use crate::limits::{RateInForce, Source};
use promptmill_core::family::ratelimit::Gauge;

/// A reply carrying `x-ratelimit-*` headers.
fn limited(
    status: u16,
    retry_after: Option<Duration>,
    body: &str,
    rate: RateHeaders,
) -> Result<Reply, SendError> {
    Ok(Reply {
        status,
        retry_after,
        rate,
        location: None,
        body: Bytes::from(body.to_string()),
    })
}

fn requests_gauge(limit: u64, remaining: u64) -> RateHeaders {
    RateHeaders {
        requests: Gauge {
            limit: Some(limit),
            remaining: Some(remaining),
            reset: None,
        },
        tokens: Gauge::default(),
    }
}

const SLOW_DOWN: &str = r#"{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}"#;
const MS_100: Duration = Duration::from_millis(100);

#[tokio::test(start_paused = true)]
async fn a_429_that_says_the_limit_is_spent_pauses_every_worker_for_its_retry_after() {
    let fake = Fake::new(|n| match n {
        0 => limited(
            429,
            Some(Duration::from_secs(2)),
            SLOW_DOWN,
            requests_gauge(6000, 0),
        ),
        _ => reply(200, None, OK),
    });
    let start = Instant::now();
    let ran = run_pipeline(store_with_rows(8, BODY), fake, 4, 6, unlimited(), |_| {}).await;
    assert_eq!(ran.calls.len(), 9);
    for (i, t) in ran.calls.iter().enumerate().skip(1) {
        assert!(
            *t >= start + Duration::from_secs(2),
            "call {i} went out {:?} after the 429, inside its retry-after",
            *t - start
        );
    }
    assert_eq!(ran.store.counts().unwrap().done, 8);
    assert_eq!(ran.stats.snapshot().http_429, 1);
    assert_eq!(ran.stats.snapshot().retries, 1);
    assert_eq!(
        ran.decreases, 0,
        "a spent limit is the limiter's business, not overload"
    );
}

#[tokio::test(start_paused = true)]
async fn an_occasional_429_delays_only_its_own_row() {
    let fake = Fake::slow(MS_100, |n| match n {
        0 => reply(429, Some(Duration::from_secs(2)), SLOW_DOWN),
        _ => reply(200, None, OK),
    });
    let start = Instant::now();
    let ran = run_pipeline(store_with_rows(8, BODY), fake, 4, 6, unlimited(), |_| {}).await;
    assert_eq!(ran.store.counts().unwrap().done, 8);
    assert_eq!(ran.calls.len(), 9);
    // The other seven rows went out right after the first answer, two rounds of 100 ms.
    for t in &ran.calls[1..8] {
        assert!(*t - start <= Duration::from_millis(300), "{:?}", *t - start);
    }
    // The row that got the 429 waited its retry-after.
    assert!(ran.calls[8] - start >= Duration::from_millis(2100));
    assert!(
        start.elapsed() < Duration::from_millis(2300),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn random_429s_do_not_stall_the_pool() {
    // Every tenth answer is a 429 with a one-second hint and no rate-limit headers.
    let fake = Fake::slow(MS_100, |n| match n % 10 {
        9 => reply(429, Some(Duration::from_secs(1)), SLOW_DOWN),
        _ => reply(200, None, OK),
    });
    let start = Instant::now();
    let ran = run_pipeline(store_with_rows(80, BODY), fake, 8, 6, unlimited(), |_| {}).await;
    assert_eq!(ran.store.counts().unwrap().done, 80);
    assert!(ran.stats.snapshot().http_429 >= 8);
    assert_eq!(ran.decreases, 0);
    // 80 rows, 8 at a time, 100 ms each, is 1 s; a 429 costs its own row one second more,
    // while other rows use the wire meanwhile. Were every 429 to pause the pool, this would
    // take over 8 s; were waiting rows to keep their place, near 3 s.
    assert!(
        start.elapsed() <= Duration::from_millis(2300),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn the_first_request_goes_alone_and_its_headers_set_the_limits() {
    let fake = Fake::slow(MS_100, |_| limited(200, None, OK, requests_gauge(120, 100)));
    let ran = run_pipeline(store_with_rows(6, BODY), fake, 4, 6, unlimited(), |_| {}).await;
    let start = ran.calls[0];
    assert_eq!(ran.on_wire[0], 1);
    assert!(
        ran.calls[1] - start >= MS_100,
        "the second waits for the first answer"
    );
    // Then 120/min: a burst of 2, one every 500 ms after it.
    let span = ran.calls[5] - ran.calls[1];
    assert!(
        span >= Duration::from_millis(1500) && span < Duration::from_millis(1600),
        "{span:?}"
    );
    let in_force = ran.stats.in_force();
    assert_eq!(
        in_force.rpm,
        RateInForce {
            limit: Some(120),
            source: Source::Server
        }
    );
    assert_eq!(in_force.tpm, RateInForce::default());
    assert_eq!((in_force.concurrency.current, in_force.concurrency.max), (4, 4));
}

#[tokio::test(start_paused = true)]
async fn flags_win_over_the_headers_and_need_no_probe() {
    let fake = Fake::new(|_| limited(200, None, OK, requests_gauge(6000, 5000)));
    let flags = Limits::new(NonZeroU32::new(60), NonZeroU32::new(1_000_000));
    let ran = run_pipeline(store_with_rows(3, BODY), fake, 4, 6, flags, |_| {}).await;
    assert_eq!(ran.calls[2] - ran.calls[0], Duration::from_secs(2), "60/min");
    assert_eq!(
        ran.stats.in_force().rpm,
        RateInForce {
            limit: Some(60),
            source: Source::Flag
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_tpm_learned_mid_run_charges_every_request_from_then_on() {
    // 38 tokens a minute, 19 left after the first request; each row needs 19 (9 prompt + 10).
    let rate = RateHeaders {
        requests: Gauge::default(),
        tokens: Gauge {
            limit: Some(38),
            remaining: Some(19),
            reset: None,
        },
    };
    let fake = Fake::new(move |_| limited(200, None, OK, rate));
    let ran = run_pipeline(store_with_rows(3, BODY), fake, 4, 6, unlimited(), |_| {}).await;
    assert_eq!(ran.store.counts().unwrap().done, 3);
    assert!(ran.calls[1] - ran.calls[0] < Duration::from_millis(1));
    let waited = ran.calls[2] - ran.calls[1];
    assert!(
        waited >= Duration::from_secs(30) && waited < Duration::from_millis(30_010),
        "19 tokens at 38 a minute: {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_quota_stops_the_run_and_leaves_rows_pending() {
    let fake = Fake::new(|_| {
        reply(
            429,
            None,
            r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
        )
    });
    let ran = run_pipeline(store_with_rows(20, BODY), fake, 4, 6, unlimited(), |_| {}).await;
    assert_eq!(ran.calls.len(), 1, "nothing is sent after it");
    match ran.control.reason() {
        Some(StopReason::Quota { message }) => {
            assert!(
                message.starts_with("You exceeded your current quota"),
                "{message}"
            )
        }
        other => panic!("stopped for {other:?}"),
    }
    let counts = ran.store.counts().unwrap();
    assert_eq!((counts.pending, counts.failed), (20, 0));
    assert_eq!(ran.stats.snapshot().retries, 0);
}

#[tokio::test(start_paused = true)]
async fn a_failing_server_narrows_the_window_and_recovery_widens_it() {
    // The first 60 answers are 503s, then the server recovers.
    let fake = Fake::slow(MS_100, |n| match n {
        0..60 => reply(503, None, r#"{"error":{"message":"overloaded"}}"#),
        _ => reply(200, None, OK),
    });
    let flags = Limits::new(NonZeroU32::new(1_000_000), NonZeroU32::new(1_000_000));
    let ran = run_pipeline(store_with_rows(200, BODY), fake, 16, 30, flags, |_| {}).await;
    assert_eq!(ran.store.counts().unwrap().done, 200);
    assert_eq!(ran.on_wire[0], 1);
    assert_eq!(
        *ran.on_wire[..16].iter().max().unwrap(),
        16,
        "it starts fully open"
    );
    assert!(ran.decreases >= 3, "{} decreases", ran.decreases);
    let narrowest = *ran.on_wire[16..60].iter().min().unwrap();
    assert!(narrowest <= 2, "while failing, down to {narrowest} on the wire");
    let after = &ran.on_wire[60..];
    assert!(
        after[..10].iter().all(|&n| n <= 4),
        "recovery starts narrow and widens by steps: {after:?}"
    );
    let widest = *after.iter().max().unwrap();
    assert!(widest >= 10, "200 rows later it is wide again: {widest}");
}

#[tokio::test(start_paused = true)]
async fn timeouts_while_the_process_stood_still_do_not_narrow_the_window() {
    let real = std::time::Instant::now();
    let stalls = promptmill_core::stall::Stalls::manual(real);
    let watched = stalls.clone();
    // The first 60 attempts each live through a 5 s stop of the process and time out.
    let fake = Fake::slow(MS_100, move |n| match n {
        0..60 => {
            watched.tick_at(real + Duration::from_secs(5 * (n as u64 + 1)));
            Err(SendError::Timeout(Duration::from_secs(2)))
        }
        _ => reply(200, None, OK),
    });
    let flags = Limits::new(NonZeroU32::new(1_000_000), NonZeroU32::new(1_000_000));
    let ran = run_pipeline_stalling(store_with_rows(200, BODY), fake, 16, 30, flags, stalls, |_| {}).await;
    assert_eq!(ran.store.counts().unwrap().done, 200);
    assert_eq!(ran.decreases, 0, "a stall of ours is no overload signal");
}
