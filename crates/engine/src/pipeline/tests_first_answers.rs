//! The first-answers guard in the worker loop, on the paused clock: a run whose first answers
//! all say "wrong setting" stops with every row pending; one that has heard anything else goes on
//! as before.

use super::first_answers::{Symptom, Trip};
use super::tests::{reply, run_pipeline, store_with_rows, unlimited, Fake, BODY, OK};
use super::*;
use crate::api::{ConnectFailure, SendError};

fn not_found() -> Result<crate::api::Reply, SendError> {
    reply(404, None, r#"{"error":{"message":"Not found"}}"#)
}

fn misdirected(control: &Control) -> Option<&Trip> {
    match control.reason() {
        Some(StopReason::Misdirected(trip)) => Some(trip),
        _ => None,
    }
}

#[tokio::test(start_paused = true)]
async fn twenty_404s_in_a_row_stop_the_run_with_every_row_pending() {
    let ran = run_pipeline(
        store_with_rows(1000, BODY),
        Fake::new(|_| not_found()),
        50,
        6,
        unlimited(),
        |_| {},
    )
    .await;
    let trip = misdirected(&ran.control).expect("stopped by the guard");
    assert_eq!(trip.answers, first_answers::DEFAULT);
    assert!(matches!(trip.symptom, Symptom::NotFound { .. }));
    let counts = ran.store.counts().unwrap();
    assert_eq!((counts.pending, counts.failed, counts.in_flight), (1000, 0, 0));
    assert!(ran.calls.len() < 1000 / 10, "{} requests sent", ran.calls.len());
}

#[tokio::test(start_paused = true)]
async fn with_low_concurrency_parked_rows_let_others_bring_the_answers() {
    let ran = run_pipeline(
        store_with_rows(100, BODY),
        Fake::new(|_| not_found()),
        1,
        6,
        unlimited(),
        |_| {},
    )
    .await;
    assert_eq!(
        misdirected(&ran.control).map(|t| t.answers),
        Some(first_answers::DEFAULT)
    );
    assert_eq!(ran.store.counts().unwrap().pending, 100);
}

#[tokio::test(start_paused = true)]
async fn a_job_smaller_than_the_threshold_stops_once_every_row_has_answered() {
    let ran = run_pipeline(
        store_with_rows(3, BODY),
        Fake::new(|_| not_found()),
        50,
        6,
        unlimited(),
        |_| {},
    )
    .await;
    assert_eq!(misdirected(&ran.control).map(|t| t.answers), Some(3));
    assert_eq!(ran.store.counts().unwrap().pending, 3);
}

#[tokio::test(start_paused = true)]
async fn refused_connections_stop_the_run_without_waiting_out_the_retries() {
    let refused = |_| {
        Err(SendError::Connect {
            failure: ConnectFailure::Refused,
            detail: "connection refused".into(),
        })
    };
    let started = tokio::time::Instant::now();
    let ran = run_pipeline(
        store_with_rows(200, BODY),
        Fake::new(refused),
        50,
        6,
        unlimited(),
        |_| {},
    )
    .await;
    assert_eq!(
        misdirected(&ran.control).map(|t| t.symptom.clone()),
        Some(Symptom::Refused)
    );
    assert_eq!(ran.store.counts().unwrap().pending, 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "no backoff was waited: {:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_404_after_a_success_fails_just_its_row() {
    let script = |n| if n == 0 { reply(200, None, OK) } else { not_found() };
    let ran = run_pipeline(
        store_with_rows(30, BODY),
        Fake::new(script),
        1,
        6,
        unlimited(),
        |_| {},
    )
    .await;
    assert_eq!(ran.control.reason(), None);
    let counts = ran.store.counts().unwrap();
    assert_eq!((counts.done, counts.failed, counts.pending), (1, 29, 0));
}

#[tokio::test(start_paused = true)]
async fn a_success_among_the_first_answers_releases_the_parked_rows() {
    // Calls 0..4 get 404, then everything succeeds: the parked rows fail as 404s (they had
    // their answer), the rest are done.
    let script = |n| if n < 5 { not_found() } else { reply(200, None, OK) };
    let ran = run_pipeline(
        store_with_rows(40, BODY),
        Fake::new(script),
        1,
        6,
        unlimited(),
        |_| {},
    )
    .await;
    assert_eq!(ran.control.reason(), None);
    let counts = ran.store.counts().unwrap();
    assert_eq!((counts.done, counts.failed, counts.pending), (35, 5, 0));
}

#[tokio::test(start_paused = true)]
async fn a_row_that_ends_without_an_answer_does_not_keep_parked_rows_waiting() {
    // The first row is too large for the TPM limit and fails unsent; the other two get 404s and
    // are parked. Nothing else can be heard, so the guard decides on the two answers it has.
    let big = BODY.replace("\"max_tokens\":10", "\"max_tokens\":1000");
    let mut store = crate::store::Store::open_in_memory().unwrap();
    let mut ingest = store.begin_ingest().unwrap();
    for (seq, body) in [(1, big.as_str()), (2, BODY), (3, BODY)] {
        let id = format!("r{seq}");
        let row = crate::store::NewRow {
            seq,
            id: &id,
            line: seq,
            fields: "{}",
            request: Some(body),
            error: None,
            input_tokens: None,
            digest: None,
        };
        ingest.add(&row).unwrap().unwrap();
    }
    ingest
        .commit(&promptmill_core::job::JobRecord::example(), 3)
        .unwrap();
    let limits = crate::limits::Limits::new(None, std::num::NonZeroU32::new(100));
    let ran = run_pipeline(store, Fake::new(|_| not_found()), 4, 6, limits, |_| {}).await;
    assert_eq!(misdirected(&ran.control).map(|t| t.answers), Some(2));
    let counts = ran.store.counts().unwrap();
    assert_eq!((counts.pending, counts.failed), (2, 1));
}
