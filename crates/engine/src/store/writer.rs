//! The checkpoint writer: one thread that owns the database connection during a run.
//!
//! Workers send it messages through a bounded channel (so a slow disk slows dispatch instead of
//! filling memory): row outcomes to record, and claims for the next pending rows. It applies
//! whatever is waiting in one transaction and commits, so under load commits group hundreds of
//! rows while a quiet run still commits each outcome within milliseconds (see [`LINGER`]); an outcome is durable
//! (against a process kill) once its group commits. The thread ends when every [`StoreHandle`]
//! is dropped: it then commits the run's counters and hands the [`Store`] back through its join
//! handle. A database error cancels `on_error` (which stops the run) and ends the thread with
//! that error.
//!
//! A claim writes nothing: claimed rows stay `pending` in the checkpoint, and the writer keeps
//! in memory how far it has claimed (a row is never handed out twice in a run) and how many
//! claimed rows are unsettled (recorded in `runs.claimed`, for `status`). Rewriting each row's
//! page once more as it is claimed, and scanning the table at the end to put the unsettled
//! ones back, cost the checkpoint writer more than half of its time on joined requests; a
//! killed run's claimed rows are pending as they stand.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{params, Connection};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::record::record_outcome;
use super::{now_ms, Store};
use crate::stats::Stats;
use promptmill_core::family::Completion;

/// How many outcomes (or claims) one transaction applies at most, give or take one message.
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
    /// The body's response-cache digest (`rows.digest`), when it was taken as the row was read.
    pub digest: Option<[u8; 32]>,
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
    /// Done from the response cache: no request was sent (see `cache/`).
    Cached(Completion),
    Failed {
        error: String,
        status: Option<u16>,
    },
    /// A `--schema` row whose last answer was not valid (`outcome`: `invalid`, `truncated` or
    /// `refused`, see `promptmill_core::schema`), asked again as often as allowed: failed with
    /// the validator's `error`, the last answer kept, and the usage of every answer it paid for
    /// (so the bill counts them).
    Rejected {
        answer: Completion,
        outcome: &'static str,
        error: String,
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
    /// The outcomes of the rows of one request (joined rows), and who to tell once they are
    /// committed: one message, not one a row.
    FinishAll(Vec<Outcome>, Option<oneshot::Sender<()>>),
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
    /// Hands out up to `limit` pending rows after `after` (by input position) and not handed
    /// out before in this run, in input order. An empty list means no pending rows remain past
    /// `after`.
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

    /// Records the outcomes of the rows of one request, in one message; with `durable`, returns
    /// once the transaction holding them has committed.
    pub async fn finish_all(&self, outcomes: Vec<Outcome>, durable: bool) -> Result<(), WriterGone> {
        if !durable {
            return self
                .tx
                .send(Msg::FinishAll(outcomes, None))
                .await
                .map_err(|_| WriterGone);
        }
        let (done, committed) = oneshot::channel();
        self.tx
            .send(Msg::FinishAll(outcomes, Some(done)))
            .await
            .map_err(|_| WriterGone)?;
        committed.await.map_err(|_| WriterGone)
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
    let background = store.start_background_checkpoint();
    let written = write_all(&mut store, run, stats, rx);
    store.stop_background_checkpoint(background);
    match written {
        Ok(()) => Ok(store),
        Err(e) => Err(store.mark_disk_full(e)),
    }
}

/// What the writer knows of the run's claims (see the module's documentation).
struct Claims {
    /// Claim among the calibration sample's rows only.
    sample_only: bool,
    /// Never claim past this row.
    through: i64,
    /// The last row handed out: a claim starts after it.
    claimed_to: i64,
    /// Rows handed out and not settled yet.
    unsettled: u64,
}

fn write_all(store: &mut Store, run: i64, stats: &Stats, mut rx: mpsc::Receiver<Msg>) -> anyhow::Result<()> {
    let mut claims = Claims {
        sample_only: store.sample_only,
        through: store.through,
        claimed_to: 0,
        unsettled: 0,
    };
    let mut acks = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        let tx = store.conn().transaction()?;
        let mut applied = apply(&tx, run, first, &mut claims, &mut acks)?;
        while applied < MAX_GROUP {
            match rx.try_recv() {
                Ok(msg) => applied += apply(&tx, run, msg, &mut claims, &mut acks)?,
                Err(_) => break,
            }
        }
        record_counters(&tx, run, stats, claims.unsettled)?;
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
    // were sent and abandoned; either way they are pending for the next run, as they stand.
    let tx = store.conn().transaction()?;
    record_counters(&tx, run, stats, 0)?;
    tx.commit()?;
    Ok(())
}

/// Applies one message; returns how many outcomes (or claims) it counts for in a transaction.
fn apply(
    conn: &Connection,
    run: i64,
    msg: Msg,
    claims: &mut Claims,
    acks: &mut Vec<oneshot::Sender<()>>,
) -> anyhow::Result<usize> {
    match msg {
        Msg::Finish(o, ack) => {
            finish(conn, run, o, claims)?;
            acks.extend(ack);
            Ok(1)
        }
        Msg::FinishAll(outcomes, ack) => {
            let n = outcomes.len();
            for o in outcomes {
                finish(conn, run, o, claims)?;
            }
            acks.extend(ack);
            Ok(n.max(1))
        }
        Msg::Claim { after, limit, reply } => {
            let claimed = claim(conn, after.max(claims.claimed_to), limit, claims);
            if let Ok(rows) = &claimed {
                claims.claimed_to = rows.last().map_or(claims.claimed_to, |r| r.seq);
                claims.unsettled += rows.len() as u64;
            }
            let failed = claimed.as_ref().err().map(|e| anyhow::anyhow!("{e:#}"));
            // The receiver may be gone if the run is stopping; the claim then simply lapses
            // (the rows are reset to pending when the writer ends).
            let _ = reply.send(claimed);
            match failed {
                Some(e) => Err(e),
                None => Ok(1),
            }
        }
    }
}

/// Records one row's outcome and the attempts it took.
fn finish(conn: &Connection, run: i64, o: Outcome, claims: &mut Claims) -> anyhow::Result<()> {
    super::attempts::record(conn, run, o.seq, &o.tries)?;
    record_outcome(conn, o)?;
    claims.unsettled = claims.unsettled.saturating_sub(1);
    Ok(())
}

/// Up to `limit` pending rows after `after`, in input order; with `sample_only`, among the rows
/// of the calibration sample only; never past row `through`. Nothing is written (see the
/// module's documentation).
fn claim(conn: &Connection, after: i64, limit: usize, claims: &Claims) -> anyhow::Result<Vec<Claimed>> {
    let mut select = conn.prepare_cached(if claims.sample_only {
        "SELECT seq, id, request, input_tokens, digest FROM rows WHERE state = 'pending' AND seq > ?1 AND seq <= ?3
           AND seq IN (SELECT seq FROM sample) ORDER BY seq LIMIT ?2"
    } else {
        "SELECT seq, id, request, input_tokens, digest FROM rows WHERE state = 'pending' AND seq > ?1 AND seq <= ?3
           ORDER BY seq LIMIT ?2"
    })?;
    let rows: Vec<Claimed> = select
        .query_map(params![after, limit as i64, claims.through], |r| {
            Ok(Claimed {
                seq: r.get(0)?,
                id: r.get(1)?,
                body: r.get(2)?,
                tokens: r.get::<_, Option<i64>>(3)?.and_then(super::trusted_tokens),
                digest: r.get::<_, Option<Vec<u8>>>(4)?.and_then(|d| d.try_into().ok()),
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The run's counters, the limits in force (learned ones change during a run), and what is on
/// the wire now (for `status` while the run goes).
fn record_counters(conn: &Connection, run: i64, stats: &Stats, claimed: u64) -> anyhow::Result<()> {
    let s = stats.snapshot();
    let limits = serde_json::to_string(&stats.in_force())?;
    conn.prepare_cached(
        "UPDATE runs SET requests = ?1, retries = ?2, http_429 = ?3, done = ?4, failed = ?5, limits = ?6,
                on_wire = ?7, updated_at = ?8, claimed = ?10
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
        run,
        claimed as i64
    ])?;
    Ok(())
}
