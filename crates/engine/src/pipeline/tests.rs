//! The worker loop in-process, against a fake transport and an in-memory checkpoint, on tokio's
//! paused clock: waits are exact and instant.

use std::num::NonZeroU32;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::*;
use crate::api::{RateHeaders, Reply, SendError};
use crate::store::{writer, NewRow, Store};
use promptmill_core::job::JobRecord;

/// Answers by a script: call number (0-based) → reply, after `latency`. Records when each call
/// was made and how many requests were on the wire as it began (itself included).
pub(super) struct Fake {
    script: Box<dyn Fn(usize) -> Result<Reply, SendError> + Send + Sync>,
    latency: Duration,
    calls: Mutex<Vec<(Instant, usize)>>,
    on_wire: AtomicUsize,
}

impl Fake {
    pub(super) fn new(script: impl Fn(usize) -> Result<Reply, SendError> + Send + Sync + 'static) -> Fake {
        Fake::slow(Duration::ZERO, script)
    }

    pub(super) fn slow(
        latency: Duration,
        script: impl Fn(usize) -> Result<Reply, SendError> + Send + Sync + 'static,
    ) -> Fake {
        Fake {
            script: Box::new(script),
            latency,
            calls: Mutex::new(Vec::new()),
            on_wire: AtomicUsize::new(0),
        }
    }
}

impl Transport for Fake {
    async fn send(&self, _body: Bytes) -> Result<Reply, SendError> {
        let on_wire = self.on_wire.fetch_add(1, SeqCst) + 1;
        let n = {
            let mut calls = self.calls.lock().unwrap();
            calls.push((Instant::now(), on_wire));
            calls.len() - 1
        };
        tokio::time::sleep(self.latency).await;
        self.on_wire.fetch_sub(1, SeqCst);
        (self.script)(n)
    }
}

pub(super) const OK: &str = r#"{"id":"x","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}"#;

pub(super) fn reply(status: u16, retry_after: Option<Duration>, body: &str) -> Result<Reply, SendError> {
    Ok(Reply {
        status,
        retry_after,
        rate: RateHeaders::default(),
        location: None,
        body: Bytes::from(body.to_string()),
    })
}

pub(super) fn store_with_rows(n: u64, body: &str) -> Store {
    let mut store = Store::open_in_memory().unwrap();
    let mut ingest = store.begin_ingest().unwrap();
    for i in 1..=n {
        let id = format!("r{i}");
        ingest
            .add(&NewRow {
                seq: i,
                id: &id,
                line: i,
                fields: "{}",
                request: Some(body),
                error: None,
                input_tokens: None,
                digest: None,
            })
            .unwrap()
            .unwrap();
    }
    let job = JobRecord::example();
    ingest.commit(&job, n).unwrap();
    store
}

pub(super) struct Ran {
    pub store: Store,
    /// When each call was made.
    pub calls: Vec<Instant>,
    /// Requests on the wire as each call began (itself included).
    pub on_wire: Vec<usize>,
    pub control: Arc<Control>,
    pub stats: Arc<Stats>,
    /// Times the adaptive window was halved.
    pub decreases: u64,
}

pub(super) async fn run_pipeline(
    store: Store,
    fake: Fake,
    concurrency: usize,
    max_attempts: u32,
    limits: Limits,
    before: impl FnOnce(&Control),
) -> Ran {
    let stalls = promptmill_core::stall::Stalls::none();
    run_pipeline_stalling(store, fake, concurrency, max_attempts, limits, stalls, before).await
}

/// [`run_pipeline`] with a stall watch the test drives.
pub(super) async fn run_pipeline_stalling(
    store: Store,
    fake: Fake,
    concurrency: usize,
    max_attempts: u32,
    limits: Limits,
    stalls: promptmill_core::stall::Stalls,
    before: impl FnOnce(&Control),
) -> Ran {
    let stats = Arc::new(Stats::default());
    let control = Control::new();
    before(&control);
    let run = store.start_run().unwrap();
    let (handle, join) = writer::spawn(store, run, Arc::clone(&stats), control.abort.clone()).unwrap();
    let pipeline = Arc::new(Pipeline::new(
        fake,
        limits,
        PipelineSettings {
            rows_per_request: 1,
            endpoint: Endpoint::Chat,
            concurrency,
            max_attempts,
            backoff: Backoff::default(),
            drain_timeout: Duration::from_secs(30),
            hold_until_committed: false,
            first_answers: first_answers::DEFAULT,
            stalls,
            structured: None,
        },
        Arc::clone(&stats),
        Arc::clone(&control),
        Arc::new(crate::budget::Costing::none()),
    ));
    Arc::clone(&pipeline).run(handle).await;
    let store = tokio::task::spawn_blocking(move || join.join().unwrap().unwrap())
        .await
        .unwrap();
    let pipeline = Arc::into_inner(pipeline).expect("every task has finished");
    let decreases = pipeline.window.decreases();
    let (calls, on_wire) = pipeline.transport.calls.into_inner().unwrap().into_iter().unzip();
    Ran {
        store,
        calls,
        on_wire,
        control,
        stats,
        decreases,
    }
}

/// No limits given, none learned (the fakes send no headers): only the window holds requests.
pub(super) fn unlimited() -> Limits {
    Limits::new(None, None)
}

pub(super) const BODY: &str =
    r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hello world"}],"max_tokens":10}"#;

#[tokio::test(start_paused = true)]
async fn a_row_fails_after_max_attempts_with_every_attempt_counted() {
    let fake = Fake::new(|_| reply(500, None, r#"{"error":{"message":"boom"}}"#));
    let ran = run_pipeline(store_with_rows(1, BODY), fake, 1, 3, unlimited(), |_| {}).await;
    assert_eq!(ran.calls.len(), 3);
    let counts = ran.store.counts().unwrap();
    assert_eq!(counts.failed, 1);
    assert_eq!(counts.attempts, 3);
    assert_eq!(
        ran.store.top_errors(1).unwrap(),
        vec![("gave up after 3 attempts; last: HTTP 500: boom".to_string(), 1)]
    );
}

#[tokio::test(start_paused = true)]
async fn the_second_unusable_answer_fails_the_row_even_with_other_retries_between() {
    let absurd = r#"{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":-1}}"#;
    let fake = Fake::new(move |n| match n {
        1 => reply(200, None, r#"{"choices":[{"mess"#), // cut short: not counted as unusable
        _ => reply(200, None, absurd),
    });
    let ran = run_pipeline(store_with_rows(1, BODY), fake, 1, 6, unlimited(), |_| {}).await;
    assert_eq!(ran.calls.len(), 3);
    let (error, _) = ran.store.top_errors(1).unwrap().remove(0);
    assert!(
        error.starts_with("not asked again after 2 unusable answers (each billed); last: HTTP 200 with an unexpected body: `usage.prompt_tokens` is -1"),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_answer_over_the_size_cap_fails_its_row_at_once() {
    let fake = Fake::new(|_| {
        Err(SendError::TooLarge {
            status: 200,
            limit: 1 << 20,
        })
    });
    let ran = run_pipeline(store_with_rows(1, BODY), fake, 1, 6, unlimited(), |_| {}).await;
    assert_eq!(ran.calls.len(), 1);
    assert_eq!(
        ran.store.top_errors(1).unwrap(),
        vec![(
            "HTTP 200: the response is larger than --max-response-size 1 MiB".to_string(),
            1
        )]
    );
}

#[tokio::test(start_paused = true)]
async fn a_401_stops_the_run_and_leaves_rows_pending() {
    let fake = Fake::new(|_| {
        reply(
            401,
            None,
            r#"{"error":{"message":"Incorrect API key provided."}}"#,
        )
    });
    let ran = run_pipeline(store_with_rows(50, BODY), fake, 1, 6, unlimited(), |_| {}).await;
    assert_eq!(ran.calls.len(), 1, "nothing is sent after the 401");
    assert!(matches!(
        ran.control.reason(),
        Some(StopReason::Auth { status: 401, .. })
    ));
    let counts = ran.store.counts().unwrap();
    assert_eq!(counts.pending, 50);
    assert_eq!(counts.failed, 0);
}

#[tokio::test(start_paused = true)]
async fn a_stopped_run_sends_nothing_and_keeps_every_row_pending() {
    let fake = Fake::new(|_| reply(200, None, OK));
    let ran = run_pipeline(store_with_rows(10, BODY), fake, 4, 6, unlimited(), |c| {
        c.stop(StopReason::Interrupted)
    })
    .await;
    assert!(ran.calls.is_empty());
    assert_eq!(ran.store.counts().unwrap().pending, 10);
    assert_eq!(ran.store.counts().unwrap().in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn a_request_over_the_tpm_bucket_fails_without_being_sent() {
    let fake = Fake::new(|_| reply(200, None, OK));
    // "hello world" is 2 tokens + "user" 1 + 3 framing + 3 priming = 9 prompt tokens, + 10 max_tokens.
    let ran = run_pipeline(
        store_with_rows(1, BODY),
        fake,
        1,
        6,
        Limits::new(None, NonZeroU32::new(18)),
        |_| {},
    )
    .await;
    assert!(ran.calls.is_empty());
    let errors = ran.store.top_errors(1).unwrap();
    assert_eq!(
        errors[0].0,
        "the request needs 19 tokens (prompt + max_tokens), more than --tpm 18 allows in a minute"
    );
}

#[tokio::test(start_paused = true)]
async fn concurrency_bounds_requests_in_flight() {
    struct Slow {
        now: std::sync::atomic::AtomicUsize,
        peak: std::sync::atomic::AtomicUsize,
    }
    impl Transport for Slow {
        async fn send(&self, _body: Bytes) -> Result<Reply, SendError> {
            use std::sync::atomic::Ordering::SeqCst;
            let n = self.now.fetch_add(1, SeqCst) + 1;
            self.peak.fetch_max(n, SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            self.now.fetch_sub(1, SeqCst);
            reply(200, None, OK)
        }
    }
    let stats = Arc::new(Stats::default());
    let control = Control::new();
    let store = store_with_rows(100, BODY);
    let run = store.start_run().unwrap();
    let (handle, join) = writer::spawn(store, run, Arc::clone(&stats), control.abort.clone()).unwrap();
    let pipeline = Arc::new(Pipeline::new(
        Slow {
            now: Default::default(),
            peak: Default::default(),
        },
        Limits::new(NonZeroU32::new(1_000_000), NonZeroU32::new(1_000_000)),
        PipelineSettings {
            rows_per_request: 1,
            endpoint: Endpoint::Chat,
            concurrency: 7,
            max_attempts: 1,
            backoff: Backoff::default(),
            drain_timeout: Duration::from_secs(30),
            hold_until_committed: false,
            first_answers: first_answers::DEFAULT,
            stalls: promptmill_core::stall::Stalls::none(),
            structured: None,
        },
        stats,
        control,
        Arc::new(crate::budget::Costing::none()),
    ));
    let start = Instant::now();
    Arc::clone(&pipeline).run(handle).await;
    let store = tokio::task::spawn_blocking(move || join.join().unwrap().unwrap())
        .await
        .unwrap();
    assert_eq!(store.counts().unwrap().done, 100);
    assert_eq!(
        pipeline.transport.peak.load(std::sync::atomic::Ordering::SeqCst),
        7
    );
    // 100 rows, 7 at a time, 100 ms each: 15 rounds.
    assert_eq!(start.elapsed(), Duration::from_millis(1500));
}
