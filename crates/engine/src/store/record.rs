//! How one row's outcome is written into its row: done (by a request or from the response
//! cache), failed, rejected by the job's `--schema` (failed, its answer and paid usage kept),
//! or back to pending. Shared by the checkpoint writer (`writer.rs`) and the batch collection
//! (`collect.rs`), so a row ends the same way live and in batch mode.

use rusqlite::{params, Connection};

use super::writer::{Outcome, OutcomeKind};
use super::{now_ms, state};
use promptmill_core::family::Completion;

/// Records one row's outcome in its row.
pub(crate) fn record_outcome(conn: &Connection, o: Outcome) -> anyhow::Result<()> {
    let now = now_ms();
    match o.kind {
        OutcomeKind::Done(c) => record_answer(conn, o.seq, o.attempts, c, Settled::Done, now)?,
        OutcomeKind::Cached(c) => record_answer(conn, o.seq, o.attempts, c, Settled::Cached, now)?,
        OutcomeKind::Failed { error, status } => {
            conn.prepare_cached(
                "UPDATE rows SET state = ?1, attempts = attempts + ?2, error = ?3, http_status = ?4, updated_at = ?5,
                        schema = NULL
                 WHERE seq = ?6",
            )?
            .execute(params![state::FAILED, o.attempts, error, status, now, o.seq])?;
        }
        OutcomeKind::Rejected {
            answer,
            outcome,
            error,
        } => record_answer(
            conn,
            o.seq,
            o.attempts,
            answer,
            Settled::Rejected { outcome, error },
            now,
        )?,
        OutcomeKind::Unfinished => {
            conn.prepare_cached(
                "UPDATE rows SET state = ?1, attempts = attempts + ?2, updated_at = ?3 WHERE seq = ?4",
            )?
            .execute(params![state::PENDING, o.attempts, now, o.seq])?;
        }
    }
    Ok(())
}

/// The usage columns set from `?6`, `?7`, `?8` (prompt, completion, total) and `?13`, `?14`,
/// `?15` (cached, cache creation, reasoning): the answer's own, plus what the row holds when
/// earlier answers of it were paid for and sent back to a follow-up batch (`reasked`, see
/// `store/collect.rs`).
/// (A macro, so that each statement is one constant string: the writer prepares it once and
/// finds it again by that string, a row at a time.)
macro_rules! paid_usage {
    () => {
        "
    prompt_tokens = ?6 + (CASE WHEN reasked > 0 THEN coalesce(prompt_tokens, 0) ELSE 0 END),
    completion_tokens = ?7 + (CASE WHEN reasked > 0 THEN coalesce(completion_tokens, 0) ELSE 0 END),
    total_tokens = ?8 + (CASE WHEN reasked > 0 THEN coalesce(total_tokens, 0) ELSE 0 END),
    cached_tokens = CASE WHEN reasked > 0 AND cached_tokens IS NOT NULL THEN coalesce(?13, 0) + cached_tokens ELSE ?13 END,
    cache_creation_tokens = CASE WHEN reasked > 0 AND cache_creation_tokens IS NOT NULL
        THEN coalesce(?14, 0) + cache_creation_tokens ELSE ?14 END,
    reasoning_tokens = CASE WHEN reasked > 0 AND reasoning_tokens IS NOT NULL
        THEN coalesce(?15, 0) + reasoning_tokens ELSE ?15 END"
    };
}
pub(crate) use paid_usage;

/// How a row with an answer ends.
enum Settled {
    Done,
    /// Done from the response cache, not by a request.
    Cached,
    /// Failed: the answer broke the job's `--schema`.
    Rejected {
        outcome: &'static str,
        error: String,
    },
}

/// Records a row that got an answer: done (by a request or from the cache), or rejected by the
/// schema (failed, the answer and its usage kept).
fn record_answer(
    conn: &Connection,
    seq: i64,
    attempts: u32,
    c: Completion,
    settled: Settled,
    now: i64,
) -> anyhow::Result<()> {
    let (state, cached, schema, error) = match settled {
        Settled::Done => (state::DONE, false, None, None),
        Settled::Cached => (state::DONE, true, None, None),
        Settled::Rejected { outcome, error } => (state::FAILED, false, Some(outcome), Some(error)),
    };
    conn.prepare_cached(concat!(
        "UPDATE rows SET state = ?1, attempts = attempts + ?2, response = ?3, completion = ?4,
                finish_reason = ?5, model = ?9, response_id = ?10, http_status = 200, error = ?18,
                updated_at = ?11, embedding = ?16, cached = ?17, schema = ?19, ",
        paid_usage!(),
        " WHERE seq = ?12"
    ))?
    .execute(params![
        state,
        attempts,
        c.raw,
        c.text,
        c.finish_reason,
        super::stored_tokens(c.usage.prompt_tokens),
        super::stored_tokens(c.usage.completion_tokens),
        super::stored_tokens(c.usage.total_tokens),
        c.model,
        c.id,
        now,
        seq,
        c.usage.cached_tokens.map(super::stored_tokens),
        c.usage.cache_creation_tokens.map(super::stored_tokens),
        c.usage.reasoning_tokens.map(super::stored_tokens),
        c.embeddings.first().map(|e| vector_bytes(&e.vector)),
        cached,
        error,
        schema,
    ])?;
    Ok(())
}

/// A vector as stored: its values' little-endian f32 bytes.
pub(crate) fn vector_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|v| v.to_le_bytes()).collect()
}
