//! The checkpoint writer: one thread that owns the database connection during a run.
//!
//! Workers send it messages through a bounded channel (so a slow disk slows dispatch instead of
//! filling memory): row outcomes to record, and claims for the next pending rows. It applies
//! whatever is waiting in one transaction and commits, so under load commits group hundreds of
//! rows while a quiet run still commits each outcome within milliseconds (see [`LINGER`]); an outcome is durable
//! (against a process kill) once its group commits. The thread ends when every [`StoreHandle`]
//! is dropped: it then puts rows that were claimed but never finished back to pending, commits,
//! and hands the [`Store`] back through its join handle. A database error cancels `on_error`
//! (which stops the run) and ends the thread with that error.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{params, Connection};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{now_ms, state, Store};
use crate::stats::Stats;
use promptmill_core::family::Completion;

/// How many messages one transaction applies at most.
const MAX_GROUP: usize = 4096;
/// After a commit that found little waiting (and that no worker awaits), the writer lets outcomes
/// gather this long before the next one. This caps small commits at a few hundred a second (each
/// costs page writes and lock calls) while an outcome is still durable within milliseconds of its
/// response.
const LINGER: Duration = Duration::from_millis(2);
/// Channel capacity: outcomes waiting to be written before senders wait.
const CAPACITY: usize = 8192;

/// A row handed to a worker.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub seq: i64,
    pub id: String,
    pub body: String,
    /// The body's prompt tokens when they were counted as the row was read (a family that
    /// joins rows: `rows.input_tokens`); `None`: count them if they are needed.
    pub tokens: Option<u64>,
}

/// How a row ended in this run.
#[derive(Debug)]
pub struct Outcome {
    pub seq: i64,
    /// Attempts made in this run (added to the stored count).
    pub attempts: u32,
    pub kind: OutcomeKind,
    /// What each of those attempts came to (for the report; empty where nothing was sent live).
    pub tries: Vec<super::attempts::Attempt>,
}

#[derive(Debug)]
pub enum OutcomeKind {
    Done(Completion),
    Failed {
        error: String,
        status: Option<u16>,
    },
    /// Sent, but the run stopped before it finished (the row goes back to pending; the attempts
    /// are still counted).
    Unfinished,
}

// Finish is by far the most frequent message: boxing it would cost an allocation per row, for
// a channel whose capacity bounds the memory anyway.
#[allow(clippy::large_enum_variant)]
enum Msg {
    /// An outcome to record, and who to tell once it is committed.
    Finish(Outcome, Option<oneshot::Sender<()>>),
    Claim {
        after: i64,
        limit: usize,
        reply: oneshot::Sender<anyhow::Result<Vec<Claimed>>>,
    },
}

/// The workers' side of the writer. Cloned freely; the writer ends when the last clone drops.
#[derive(Clone)]
pub struct StoreHandle {
    tx: mpsc::Sender<Msg>,
}

/// The writer has stopped (after a database error); nothing more can be recorded.
#[derive(Debug, thiserror::Error)]
#[error("the checkpoint writer has stopped")]
pub struct WriterGone;

impl StoreHandle {
    /// Marks up to `limit` pending rows after `after` (by input position) as in flight and
    /// returns them in input order. An empty list means no pending rows remain past `after`.
    pub async fn claim(&self, after: i64, limit: usize) -> anyhow::Result<Vec<Claimed>> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Claim { after, limit, reply })
            .await
            .map_err(|_| WriterGone)?;
        rx.await.map_err(|_| WriterGone)?
    }

    pub async fn finish(&self, outcome: Outcome) -> Result<(), WriterGone> {
        self.tx
            .send(Msg::Finish(outcome, None))
            .await
            .map_err(|_| WriterGone)
    }

    /// Records an outcome and returns once the transaction holding it has committed: from then
    /// on a kill cannot undo it.
    pub async fn finish_durable(&self, outcome: Outcome) -> Result<(), WriterGone> {
        let (done, committed) = oneshot::channel();
        self.tx
            .send(Msg::Finish(outcome, Some(done)))
            .await
            .map_err(|_| WriterGone)?;
        committed.await.map_err(|_| WriterGone)
    }
}

/// Starts the writer thread for run number `run`.
pub fn spawn(
    store: Store,
    run: i64,
    stats: Arc<Stats>,
    on_error: CancellationToken,
) -> std::io::Result<(StoreHandle, JoinHandle<anyhow::Result<Store>>)> {
    let (tx, rx) = mpsc::channel(CAPACITY);
    let handle = std::thread::Builder::new()
        .name("checkpoint-writer".into())
        .spawn(move || {
            let result = write_loop(store, run, &stats, rx);
            if result.is_err() {
                on_error.cancel();
            }
            result
        })?;
    Ok((StoreHandle { tx }, handle))
}

fn write_loop(mut store: Store, run: i64, stats: &Stats, rx: mpsc::Receiver<Msg>) -> anyhow::Result<Store> {
    match write_all(&mut store, run, stats, rx) {
        Ok(()) => Ok(store),
        Err(e) => Err(store.mark_disk_full(e)),
    }
}

fn write_all(store: &mut Store, run: i64, stats: &Stats, mut rx: mpsc::Receiver<Msg>) -> anyhow::Result<()> {
    let sample_only = store.sample_only;
    let through = store.through;
    let mut acks = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        let tx = store.conn().transaction()?;
        apply(&tx, run, first, (sample_only, through), &mut acks)?;
        let mut applied = 1;
        while applied < MAX_GROUP {
            match rx.try_recv() {
                Ok(msg) => apply(&tx, run, msg, (sample_only, through), &mut acks)?,
                Err(_) => break,
            }
            applied += 1;
        }
        record_counters(&tx, run, stats)?;
        tx.commit()?;
        // Workers waiting for their outcomes to be durable hold their places on the wire until
        // then: lingering would idle them, so the linger is only for groups nobody waits on.
        let awaited = !acks.is_empty();
        for ack in acks.drain(..) {
            // A worker that stopped waiting has nothing more to learn.
            let _ = ack.send(());
        }
        if applied < MAX_GROUP / 8 && !awaited {
            std::thread::sleep(LINGER);
        }
    }
    // Every handle is gone: the run is over. Rows claimed but never finished were not sent, or
    // were sent and abandoned; either way they are pending for the next run.
    let tx = store.conn().transaction()?;
    tx.execute("UPDATE rows SET state = 'pending' WHERE state = 'in_flight'", [])?;
    record_counters(&tx, run, stats)?;
    tx.commit()?;
    Ok(())
}

fn apply(
    conn: &Connection,
    run: i64,
    msg: Msg,
    (sample_only, through): (bool, i64),
    acks: &mut Vec<oneshot::Sender<()>>,
) -> anyhow::Result<()> {
    match msg {
        Msg::Finish(o, ack) => {
            super::attempts::record(conn, run, o.seq, &o.tries)?;
            record_outcome(conn, o)?;
            acks.extend(ack);
            Ok(())
        }
        Msg::Claim { after, limit, reply } => {
            let claimed = claim(conn, after, limit, sample_only, through);
            let failed = claimed.as_ref().err().map(|e| anyhow::anyhow!("{e:#}"));
            // The receiver may be gone if the run is stopping; the claim then simply lapses
            // (the rows are reset to pending when the writer ends).
            let _ = reply.send(claimed);
            match failed {
                Some(e) => Err(e),
                None => Ok(()),
            }
        }
    }
}

/// Marks up to `limit` pending rows after `after` as in flight and returns them in input order;
/// with `sample_only`, among the rows of the calibration sample only; never past row `through`.
fn claim(
    conn: &Connection,
    after: i64,
    limit: usize,
    sample_only: bool,
    through: i64,
) -> anyhow::Result<Vec<Claimed>> {
    let mut select = conn.prepare_cached(if sample_only {
        "SELECT seq, id, request, input_tokens FROM rows WHERE state = 'pending' AND seq > ?1 AND seq <= ?3
           AND seq IN (SELECT seq FROM sample) ORDER BY seq LIMIT ?2"
    } else {
        "SELECT seq, id, request, input_tokens FROM rows WHERE state = 'pending' AND seq > ?1 AND seq <= ?3
           ORDER BY seq LIMIT ?2"
    })?;
    let rows: Vec<Claimed> = select
        .query_map(params![after, limit as i64, through], |r| {
            Ok(Claimed {
                seq: r.get(0)?,
                id: r.get(1)?,
                body: r.get(2)?,
                tokens: r.get::<_, Option<i64>>(3)?.and_then(super::trusted_tokens),
            })
        })?
        .collect::<Result<_, _>>()?;
    if sample_only {
        // The sample is scattered: mark exactly its rows.
        let mut mark = conn.prepare_cached("UPDATE rows SET state = 'in_flight' WHERE seq = ?1")?;
        for row in &rows {
            mark.execute(params![row.seq])?;
        }
    } else if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
        conn.prepare_cached(
            "UPDATE rows SET state = 'in_flight' WHERE state = 'pending' AND seq BETWEEN ?1 AND ?2",
        )?
        .execute(params![first.seq, last.seq])?;
    }
    Ok(rows)
}

pub(crate) fn record_outcome(conn: &Connection, o: Outcome) -> anyhow::Result<()> {
    let now = now_ms();
    match o.kind {
        OutcomeKind::Done(c) => {
            conn.prepare_cached(
                "UPDATE rows SET state = ?1, attempts = attempts + ?2, response = ?3, completion = ?4,
                        finish_reason = ?5, prompt_tokens = ?6, completion_tokens = ?7, total_tokens = ?8,
                        model = ?9, response_id = ?10, http_status = 200, error = NULL, updated_at = ?11,
                        cached_tokens = ?13, cache_creation_tokens = ?14, reasoning_tokens = ?15,
                        embedding = ?16
                 WHERE seq = ?12",
            )?
            .execute(params![
                state::DONE,
                o.attempts,
                c.raw,
                c.text,
                c.finish_reason,
                super::stored_tokens(c.usage.prompt_tokens),
                super::stored_tokens(c.usage.completion_tokens),
                super::stored_tokens(c.usage.total_tokens),
                c.model,
                c.id,
                now,
                o.seq,
                c.usage.cached_tokens.map(super::stored_tokens),
                c.usage.cache_creation_tokens.map(super::stored_tokens),
                c.usage.reasoning_tokens.map(super::stored_tokens),
                c.embeddings.first().map(|e| vector_bytes(&e.vector)),
            ])?;
        }
        OutcomeKind::Failed { error, status } => {
            conn.prepare_cached(
                "UPDATE rows SET state = ?1, attempts = attempts + ?2, error = ?3, http_status = ?4, updated_at = ?5
                 WHERE seq = ?6",
            )?
            .execute(params![state::FAILED, o.attempts, error, status, now, o.seq])?;
        }
        OutcomeKind::Unfinished => {
            conn.prepare_cached(
                "UPDATE rows SET state = ?1, attempts = attempts + ?2, updated_at = ?3 WHERE seq = ?4",
            )?
            .execute(params![state::PENDING, o.attempts, now, o.seq])?;
        }
    }
    Ok(())
}

/// A vector as stored: its values' little-endian f32 bytes.
pub(crate) fn vector_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The run's counters, the limits in force (learned ones change during a run), and what is on
/// the wire now (for `status` while the run goes).
fn record_counters(conn: &Connection, run: i64, stats: &Stats) -> anyhow::Result<()> {
    let s = stats.snapshot();
    let limits = serde_json::to_string(&stats.in_force())?;
    conn.prepare_cached(
        "UPDATE runs SET requests = ?1, retries = ?2, http_429 = ?3, done = ?4, failed = ?5, limits = ?6,
                on_wire = ?7, updated_at = ?8
         WHERE run = ?9",
    )?
    .execute(params![
        s.requests as i64,
        s.retries as i64,
        s.http_429 as i64,
        s.done as i64,
        s.failed as i64,
        limits,
        s.in_flight as i64,
        now_ms(),
        run
    ])?;
    Ok(())
}
