//! Specifications of the checkpoint writer thread: claims, recorded outcomes, and what happens to
//! unfinished rows when the run's handles are dropped or the database fails.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::checkpointer;
use super::tests::{invalid, job, store_with, valid};
use super::writer::{self, Claimed, Outcome, OutcomeKind, StoreHandle};
use super::*;
use crate::stats::Stats;
use promptmill_core::family::{Completion, Usage};

struct Running {
    handle: StoreHandle,
    join: std::thread::JoinHandle<anyhow::Result<Store>>,
    run: i64,
    stats: Arc<Stats>,
    on_error: CancellationToken,
}

fn start(store: Store) -> Running {
    let run = store.start_run().unwrap();
    let stats = Arc::new(Stats::default());
    let on_error = CancellationToken::new();
    let (handle, join) = writer::spawn(store, run, Arc::clone(&stats), on_error.clone()).unwrap();
    Running {
        handle,
        join,
        run,
        stats,
        on_error,
    }
}

/// Drops the handle and waits for the writer to hand the store back.
fn stop(running: Running) -> Store {
    drop(running.handle);
    running.join.join().unwrap().unwrap()
}

/// A checkpoint file (in a directory dropped with the first value) of `n` valid rows `r1..rn`,
/// for tests that read it from a second connection while the writer runs.
fn file_store_with(n: u64) -> (tempfile::TempDir, std::path::PathBuf, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.db");
    let mut store = Store::open(&path, true).unwrap();
    let mut ingest = store.begin_ingest().unwrap();
    for seq in 1..=n {
        ingest.add(&valid(seq, &format!("r{seq}"))).unwrap().unwrap();
    }
    ingest.commit(&job(), n).unwrap();
    (dir, path, store)
}

fn seqs(claimed: &[Claimed]) -> Vec<i64> {
    claimed.iter().map(|c| c.seq).collect()
}

fn done(seq: i64, attempts: u32, prompt: u64, completion: u64) -> Outcome {
    Outcome {
        seq,
        attempts,
        kind: OutcomeKind::Done(Completion {
            text: Some(format!("answer {seq}")),
            finish_reason: Some("stop".into()),
            refusal: None,
            usage: Usage {
                prompt_tokens: prompt,
                completion_tokens: completion,
                total_tokens: prompt + completion,
                ..Usage::default()
            },
            model: Some("gpt-4o-mini-2024-07-18".into()),
            id: Some(format!("chatcmpl-{seq}")),
            raw: format!("{{\"id\":\"chatcmpl-{seq}\"}}"),
            embeddings: Vec::new(),
        }),
        tries: Vec::new(),
    }
}

fn row(store: &Store, seq: i64) -> ExportRow {
    let mut found = None;
    store
        .for_each_row(|r| {
            if r.seq == seq {
                found = Some(r);
            }
            Ok(())
        })
        .unwrap();
    found.expect("row exists")
}

fn attempts(store: &mut Store, seq: i64) -> i64 {
    store
        .conn()
        .query_row("SELECT attempts FROM rows WHERE seq = ?1", [seq], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn claims_return_pending_rows_in_input_order_with_their_ids_and_bodies() {
    let w = start(store_with(5));
    let claimed = w.handle.claim(0, 3).await.unwrap();
    assert_eq!(seqs(&claimed), [1, 2, 3]);
    assert_eq!(
        (claimed[0].id.as_str(), claimed[0].body.as_str()),
        ("r1", "{\"model\":\"m\"}")
    );
    assert_eq!(seqs(&w.handle.claim(3, 10).await.unwrap()), [4, 5]);
    assert!(w.handle.claim(5, 10).await.unwrap().is_empty());
    stop(w);
}

#[tokio::test]
async fn claimed_rows_are_not_claimed_again_and_stay_pending_in_the_checkpoint() {
    let w = start(store_with(4));
    assert_eq!(seqs(&w.handle.claim(0, 2).await.unwrap()), [1, 2]);
    assert_eq!(seqs(&w.handle.claim(0, 10).await.unwrap()), [3, 4]);
    assert!(w.handle.claim(0, 10).await.unwrap().is_empty());
    // A claim writes nothing to the rows: a killed run's claimed rows are pending as they stand.
    w.handle.finish(done(1, 1, 10, 3)).await.unwrap();
    let store = stop(w);
    let c = store.counts().unwrap();
    assert_eq!((c.pending, c.in_flight, c.done), (3, 0, 1));
}

#[tokio::test]
async fn the_run_records_how_many_claimed_rows_are_unsettled() {
    let (_dir, path, store) = file_store_with(4);
    let w = start(store);
    assert_eq!(seqs(&w.handle.claim(0, 3).await.unwrap()), [1, 2, 3]);
    // Committed with the outcome: 3 claimed, 1 of them settled.
    w.handle.finish_durable(done(1, 1, 10, 3)).await.unwrap();
    let reader = Store::open(&path, false).unwrap();
    let last = reader.runs().unwrap().pop().unwrap();
    assert_eq!((last.run, last.claimed), (w.run, 2));
    let c = reader.counts().unwrap();
    assert_eq!(
        (c.pending, c.in_flight, c.done),
        (3, 0, 1),
        "claimed rows stay pending"
    );
    drop(reader);
    let store = stop(w);
    let last = store.runs().unwrap().pop().unwrap();
    assert_eq!(last.claimed, 0, "the writer's last commit holds nothing claimed");
}

#[tokio::test]
async fn every_worker_waiting_on_one_commit_is_told_and_finds_its_row_committed() {
    // Many durable finishes at once, so that commits hold several waiters.
    let (_dir, path, store) = file_store_with(64);
    let w = start(store);
    assert_eq!(w.handle.claim(0, 64).await.unwrap().len(), 64);
    let mut waiting = tokio::task::JoinSet::new();
    for seq in 1..=64 {
        let (handle, path) = (w.handle.clone(), path.clone());
        waiting.spawn(async move {
            handle.finish_durable(done(seq, 1, 10, 3)).await.unwrap();
            let reader = Store::open(&path, false).unwrap();
            let state: String = reader
                .conn
                .query_row("SELECT state FROM rows WHERE seq = ?1", [seq], |r| r.get(0))
                .unwrap();
            assert_eq!(state, "done", "row {seq} is committed once its worker is told");
        });
    }
    let told = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        let mut n = 0;
        while let Some(r) = waiting.join_next().await {
            r.unwrap();
            n += 1;
        }
        n
    })
    .await
    .expect("every waiter is told");
    assert_eq!(told, 64);
    let store = stop(w);
    assert_eq!(store.counts().unwrap().done, 64);
}

#[tokio::test]
async fn claims_pass_over_invalid_and_finished_rows() {
    let mut store = Store::open_in_memory().unwrap();
    let mut ingest = store.begin_ingest().unwrap();
    ingest.add(&valid(1, "a")).unwrap().unwrap();
    ingest.add(&invalid(2, "b", "bad")).unwrap().unwrap();
    ingest.add(&valid(3, "c")).unwrap().unwrap();
    ingest.add(&valid(4, "d")).unwrap().unwrap();
    ingest.commit(&job(), 4).unwrap();
    store
        .conn()
        .execute("UPDATE rows SET state = 'done' WHERE seq = 3", [])
        .unwrap();
    let w = start(store);
    assert_eq!(seqs(&w.handle.claim(0, 10).await.unwrap()), [1, 4]);
    stop(w);
}

#[tokio::test]
async fn done_outcome_records_the_completion_usage_and_attempts() {
    let w = start(store_with(2));
    w.handle.claim(0, 2).await.unwrap();
    w.handle.finish(done(1, 2, 10, 3)).await.unwrap();
    let mut store = stop(w);
    let r = row(&store, 1);
    assert_eq!(r.state, "done");
    assert_eq!(r.completion.as_deref(), Some("answer 1"));
    assert_eq!(r.finish_reason.as_deref(), Some("stop"));
    assert_eq!(
        (r.prompt_tokens, r.completion_tokens, r.total_tokens),
        (Some(10), Some(3), Some(13))
    );
    assert_eq!(r.model.as_deref(), Some("gpt-4o-mini-2024-07-18"));
    assert_eq!(r.response_id.as_deref(), Some("chatcmpl-1"));
    assert_eq!(r.response.as_deref(), Some("{\"id\":\"chatcmpl-1\"}"));
    assert_eq!((r.http_status, r.error), (Some(200), None));
    assert_eq!(attempts(&mut store, 1), 2);
    let c = store.counts().unwrap();
    assert_eq!((c.done, c.pending, c.total_tokens, c.attempts), (1, 1, 13, 2));
}

#[tokio::test]
async fn failed_outcome_records_the_error_and_status() {
    let w = start(store_with(1));
    w.handle.claim(0, 1).await.unwrap();
    let failed = Outcome {
        seq: 1,
        attempts: 1,
        kind: OutcomeKind::Failed {
            error: "HTTP 400: bad request".into(),
            status: Some(400),
        },
        tries: Vec::new(),
    };
    w.handle.finish(failed).await.unwrap();
    let store = stop(w);
    let r = row(&store, 1);
    assert_eq!(r.state, "failed");
    assert_eq!(
        (r.error.as_deref(), r.http_status),
        (Some("HTTP 400: bad request"), Some(400))
    );
    assert_eq!(
        store.top_errors(5).unwrap(),
        [("HTTP 400: bad request".to_string(), 1)]
    );
}

#[tokio::test]
async fn unfinished_outcome_returns_the_row_to_pending_and_counts_its_attempts() {
    let w = start(store_with(1));
    w.handle.claim(0, 1).await.unwrap();
    let unfinished = Outcome {
        seq: 1,
        attempts: 3,
        kind: OutcomeKind::Unfinished,
        tries: Vec::new(),
    };
    w.handle.finish(unfinished).await.unwrap();
    assert!(
        w.handle.claim(0, 1).await.unwrap().is_empty(),
        "never handed out twice in a run"
    );
    let mut store = stop(w);
    assert_eq!(row(&store, 1).state, "pending");
    assert_eq!(attempts(&mut store, 1), 3);
    let w = start(store);
    assert_eq!(
        seqs(&w.handle.claim(0, 1).await.unwrap()),
        [1],
        "the next run sends it"
    );
    stop(w);
}

#[tokio::test]
async fn attempts_add_up_across_outcomes_of_the_same_row() {
    let w = start(store_with(1));
    w.handle.claim(0, 1).await.unwrap();
    let unfinished = Outcome {
        seq: 1,
        attempts: 2,
        kind: OutcomeKind::Unfinished,
        tries: Vec::new(),
    };
    w.handle.finish(unfinished).await.unwrap();
    let w = start(stop(w));
    w.handle.claim(0, 1).await.unwrap();
    w.handle.finish(done(1, 1, 1, 1)).await.unwrap();
    let mut store = stop(w);
    assert_eq!(attempts(&mut store, 1), 3);
}

#[tokio::test]
async fn dropping_every_handle_ends_the_writer_and_returns_unfinished_rows_to_pending() {
    let w = start(store_with(3));
    let second = w.handle.clone();
    second.claim(0, 3).await.unwrap();
    w.handle.finish(done(2, 1, 1, 1)).await.unwrap();
    drop(second);
    let store = stop(w);
    let c = store.counts().unwrap();
    assert_eq!((c.pending, c.in_flight, c.done), (2, 0, 1));
}

#[tokio::test]
async fn the_runs_counters_are_written_with_each_commit() {
    let w = start(store_with(1));
    w.stats.requests.store(7, Ordering::Relaxed);
    w.stats.retries.store(2, Ordering::Relaxed);
    w.stats.http_429.store(1, Ordering::Relaxed);
    w.handle.finish(done(1, 3, 1, 1)).await.unwrap();
    let run = w.run;
    let store = stop(w);
    let runs = store.runs().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].run, run);
    assert_eq!((runs[0].requests, runs[0].retries, runs[0].http_429), (7, 2, 1));
}

#[tokio::test]
async fn the_limits_in_force_are_written_with_the_run() {
    use crate::limits::{InForce, RateInForce, Source, WindowInForce};
    let w = start(store_with(1));
    let learned = InForce {
        rpm: RateInForce {
            limit: Some(120),
            source: Source::Server,
        },
        tpm: RateInForce {
            limit: Some(4000),
            source: Source::Flag,
        },
        concurrency: WindowInForce { current: 3, max: 8 },
    };
    *w.stats.in_force.lock().unwrap() = learned;
    w.handle.finish(done(1, 3, 1, 1)).await.unwrap();
    let store = stop(w);
    assert_eq!(store.runs().unwrap()[0].limits, Some(learned));
}

#[tokio::test]
async fn database_error_ends_the_writer_with_it_and_cancels_the_run() {
    let mut store = store_with(2);
    // A pending row without a request cannot be handed to a worker: reading it fails.
    store
        .conn()
        .execute("UPDATE rows SET request = NULL WHERE seq = 1", [])
        .unwrap();
    let w = start(store);
    assert!(w.handle.claim(0, 2).await.is_err());
    let e = w
        .join
        .join()
        .unwrap()
        .err()
        .expect("the writer ends with the error");
    assert!(!format!("{e:#}").is_empty());
    assert!(w.on_error.is_cancelled());
    assert!(w.handle.finish(done(2, 1, 1, 1)).await.is_err());
    assert!(w.handle.claim(0, 1).await.is_err());
}

#[tokio::test]
async fn each_attempt_is_recorded_with_the_outcome_under_the_run() {
    use super::attempts::{class, Attempt, Tokens};
    let w = start(store_with(1));
    let run = w.run;
    w.handle.claim(0, 1).await.unwrap();
    let mut outcome = done(1, 2, 7, 3);
    outcome.tries = vec![
        Attempt {
            started_at: 1_000,
            latency_ms: 12,
            status: Some(429),
            class: Some(class::RATE_LIMITED),
            wait_ms: Some(500),
            paused: true,
            window: 4,
            limits: Some((Some(60), None)),
            ..Attempt::default()
        },
        Attempt {
            started_at: 1_600,
            latency_ms: 30,
            status: Some(200),
            window: 4,
            tokens: Some(Tokens {
                prompt: 7,
                completion: 3,
                cached: Some(2),
                reasoning: None,
            }),
            cost_nanos: 1_234,
            ..Attempt::default()
        },
    ];
    w.handle.finish_durable(outcome).await.unwrap();
    let store = stop(w);
    let a = store.attempts().unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!((a[0].run, a[0].seq, a[0].id.as_str()), (run, 1, "r1"));
    assert_eq!(
        (a[0].status, a[0].class.as_deref(), a[0].wait_ms, a[0].paused),
        (Some(429), Some(class::RATE_LIMITED), Some(500), true)
    );
    assert_eq!((a[0].limits_changed, a[0].rpm, a[0].tpm), (true, Some(60), None));
    assert_eq!(
        (a[1].class.as_deref(), a[1].latency_ms, a[1].window),
        (None, 30, Some(4))
    );
    assert_eq!(
        (
            a[1].prompt_tokens,
            a[1].cached_tokens,
            a[1].reasoning_tokens,
            a[1].cost_nanos
        ),
        (Some(7), Some(2), None, 1_234)
    );
    assert!(!a[1].limits_changed && !a[1].paused);
}

#[tokio::test]
async fn answers_are_copied_into_the_cache_once_and_cached_or_failed_rows_never() {
    let dir = tempfile::tempdir().unwrap();
    let w = start(super::tests::file_store_with(&dir.path().join("job.db"), 4));
    let _ = w.handle.claim(0, 4).await.unwrap();
    w.handle.finish(done(1, 1, 10, 2)).await.unwrap();
    let mut from_cache = done(2, 0, 10, 2);
    if let OutcomeKind::Done(c) = from_cache.kind {
        from_cache.kind = OutcomeKind::Cached(c);
    }
    w.handle.finish(from_cache).await.unwrap();
    let failed = Outcome {
        seq: 3,
        attempts: 1,
        kind: OutcomeKind::Failed {
            error: "no".into(),
            status: Some(400),
        },
        tries: Vec::new(),
    };
    w.handle.finish(failed).await.unwrap();
    let store = stop(w);
    let kept: Vec<i64> = KeptReader::open(store.path())
        .unwrap()
        .kept_answers(0, 0, 10)
        .unwrap()
        .iter()
        .map(|a| a.seq)
        .collect();
    assert_eq!(kept, [1], "only the row done by a request");

    let cache = Arc::new(crate::cache::Cache::open(&dir.path().join("cache.db"), false).unwrap());
    let url = url::Url::parse("http://127.0.0.1:1/v1/chat/completions").unwrap();
    let scope = crate::cache::Scope::new(promptmill_core::job::Endpoint::Chat, &url);
    assert_eq!(
        crate::cache::keep::copy_kept(&store, Arc::clone(&cache), &scope),
        1
    );
    assert_eq!(
        crate::cache::keep::copy_kept(&store, Arc::clone(&cache), &scope),
        0,
        "copied once"
    );
    // These rows have no digests (as if read by an older promptmill): keyed by their bodies.
    let key = scope.key(b"{\"model\":\"m\"}").unwrap();
    assert_eq!(cache.lookup(&key).as_deref(), Some("{\"id\":\"chatcmpl-1\"}"));

    // A later run's answer is copied by that run's end.
    std::thread::sleep(std::time::Duration::from_millis(5));
    let w = start(store);
    let _ = w.handle.claim(0, 4).await.unwrap();
    w.handle.finish(done(4, 1, 10, 2)).await.unwrap();
    let store = stop(w);
    assert_eq!(
        crate::cache::keep::copy_kept(&store, Arc::clone(&cache), &scope),
        1
    );
}

/// While a background copy runs, the connection's own commits leave the log to it (the
/// automatic checkpoint moved out to `WRITER_PAGES`), the log's pages reach the database file
/// without this connection checkpointing, and stopping gives the connection SQLite's default back.
#[test]
fn a_background_checkpoint_copies_the_log_and_gives_the_connection_its_own_back() {
    let (_dir, path, mut store) = file_store_with(2_000);
    let pages = |store: &mut Store| -> i64 {
        store
            .conn()
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(pages(&mut store), checkpointer::DEFAULT_PAGES);
    let started = store.start_background_checkpoint();
    assert!(started.is_some(), "a checkpoint file gets a background copy");
    assert_eq!(pages(&mut store), checkpointer::WRITER_PAGES);
    let before = std::fs::metadata(&path).unwrap().len();
    // About 20 MB of new pages, in one commit: more than is worth copying, less than the
    // connection's own automatic checkpoint.
    let big = "x".repeat(10_000);
    let conn = store.conn();
    let tx = conn.transaction().unwrap();
    tx.execute("UPDATE rows SET request = ?1", [&big]).unwrap();
    tx.commit().unwrap();
    let copied = (0..1_000).any(|_| {
        if std::fs::metadata(&path).unwrap().len() > before + 10_000_000 {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        false
    });
    assert!(copied, "the log reached the database file within 10 s");
    store.stop_background_checkpoint(started);
    assert_eq!(pages(&mut store), checkpointer::DEFAULT_PAGES);
    let requests: i64 = store
        .conn()
        .query_row(
            "SELECT count(*) FROM rows WHERE length(request) = 10000",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(requests, 2_000);
}
