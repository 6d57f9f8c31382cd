//! Planning a Batch API part: choosing the pending rows of one model, up to the part's limits
//! (rows, bytes, prompt tokens the provider's queue has room for, worst-case dollars left of
//! `--max-cost`), and marking them `batched` in the same transaction as the part's record. The
//! stages that follow are `parts.rs`'s.

use rusqlite::{params, OptionalExtension, Transaction};

use super::{now_ms, stage, state, PartRecord, Store};

/// The limits of one part.
#[derive(Debug, Clone, Copy)]
pub struct PartLimits {
    pub max_rows: u64,
    pub max_bytes: u64,
    /// Prompt tokens the part may hold (the room left in the provider's queue).
    pub max_tokens: Option<u64>,
    /// A first row over `max_tokens` may make a part alone (when the queue is empty, it would
    /// never fit otherwise); else no part is planned.
    pub alone_may_exceed: bool,
    /// Dollars of worst case the part may hold (what is left of `--max-cost`); never exceeded.
    pub max_cost: Option<f64>,
}

/// What a row adds to a part.
#[derive(Debug, Clone, Copy, Default)]
pub struct Measured {
    /// Bytes of its input line.
    pub size: u64,
    /// Prompt tokens (0 when nobody needs them).
    pub tokens: u64,
    /// Worst-case dollars (0 without a budget).
    pub cost: f64,
}

/// A pending row, as a part is planned.
pub struct Candidate<'a> {
    pub seq: i64,
    pub id: &'a str,
    pub request: &'a str,
}

/// What [`Store::plan_part`] asks of each row; `Err` fails the row with that reason instead.
pub type Measure<'f> = dyn FnMut(&Candidate<'_>) -> Result<Measured, String> + 'f;

impl Store {
    /// Chooses the next part: pending rows in input order that name the same model as the first
    /// pending row, up to `limits`, and marks them `batched` in it, in one transaction. A row whose
    /// `measure` fails is recorded as failed with the reason. `filename` gets the part number.
    /// Returns `None` when no row is pending.
    ///
    /// `after` is a cursor: only rows past it are looked at, and it moves to the part's last row,
    /// so that planning a million rows does not read the table from the top for every part. When
    /// nothing is found past it (rows of another model were skipped, or failed rows requeued), the
    /// search starts over from the top once.
    pub fn plan_part(
        &mut self,
        limits: PartLimits,
        after: &mut i64,
        filename: impl Fn(i64) -> String,
        measure: &mut Measure<'_>,
    ) -> anyhow::Result<Option<PartRecord>> {
        let tx = self.conn.transaction()?;
        let first: Option<String> = tx
            .query_row(
                "SELECT coalesce(json_extract(request, '$.model'), '') FROM rows
                  WHERE state = 'pending' AND invalid = 0 AND seq > ?1 ORDER BY seq LIMIT 1",
                [*after],
                |r| r.get(0),
            )
            .optional()?;
        let Some(model) = first else {
            drop(tx);
            if *after > 0 {
                *after = 0;
                return self.plan_part(limits, after, filename, measure);
            }
            return Ok(None);
        };
        let part: i64 = tx.query_row("SELECT coalesce(max(part), 0) + 1 FROM parts", [], |r| r.get(0))?;
        let fill = choose_rows(&tx, &model, *after, limits, measure)?;
        let now = now_ms();
        for (seq, why) in &fill.refused {
            tx.execute(
                "UPDATE rows SET state = 'failed', error = ?1, updated_at = ?2 WHERE seq = ?3",
                params![why, now, seq],
            )?;
        }
        if fill.chosen.is_empty() {
            let none_refused = fill.refused.is_empty();
            tx.commit()?;
            if none_refused {
                // The first row does not fit in the room left in the queue or the budget.
                return Ok(None);
            }
            // Every row of this model was refused; the next model's rows may still make a part.
            return self.plan_part(limits, after, filename, measure);
        }
        if let Some(&last) = fill.chosen.last() {
            *after = last;
        }
        record_part(&tx, part, &model, &filename(part), &fill, now)?;
        tx.commit()?;
        Ok(Some(self.part(part)?))
    }
}

/// The rows one part takes, and the rows `measure` refused on the way.
#[derive(Default)]
struct Fill {
    rows: u64,
    bytes: u64,
    tokens: u64,
    cost: f64,
    chosen: Vec<i64>,
    refused: Vec<(i64, String)>,
}

/// Takes the pending rows of `model` past `after`, in input order, while the part stays within
/// `limits`.
fn choose_rows(
    tx: &Transaction<'_>,
    model: &str,
    after: i64,
    limits: PartLimits,
    measure: &mut Measure<'_>,
) -> anyhow::Result<Fill> {
    let mut fill = Fill::default();
    let mut q = tx.prepare(
        "SELECT seq, id, request FROM rows
          WHERE state = 'pending' AND invalid = 0 AND seq > ?2
            AND coalesce(json_extract(request, '$.model'), '') = ?1
          ORDER BY seq",
    )?;
    let mut found = q.query(rusqlite::params![model, after])?;
    while let Some(r) = found.next()? {
        let (seq, id, request): (i64, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
        let candidate = Candidate {
            seq,
            id: &id,
            request: &request,
        };
        let m = match measure(&candidate) {
            Err(why) => {
                fill.refused.push((seq, why));
                continue;
            }
            Ok(m) => m,
        };
        let over_tokens = limits.max_tokens.is_some_and(|max| fill.tokens + m.tokens > max);
        let over_cost = limits.max_cost.is_some_and(|max| fill.cost + m.cost > max);
        if fill.rows == 0 && ((over_tokens && !limits.alone_may_exceed) || over_cost) {
            break;
        }
        let full = fill.rows + 1 > limits.max_rows || fill.bytes + m.size > limits.max_bytes;
        if fill.rows > 0 && (full || over_tokens || over_cost) {
            break;
        }
        fill.rows += 1;
        fill.bytes += m.size;
        fill.tokens += m.tokens;
        fill.cost += m.cost;
        fill.chosen.push(seq);
    }
    Ok(fill)
}

/// Records the part as planned and marks its rows `batched` in it.
fn record_part(
    tx: &Transaction<'_>,
    part: i64,
    model: &str,
    filename: &str,
    fill: &Fill,
    now: i64,
) -> anyhow::Result<()> {
    tx.execute(
        "INSERT INTO parts (part, model, filename, rows, bytes, tokens, worst_cost, stage, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
        params![
            part,
            model,
            filename,
            fill.rows as i64,
            fill.bytes as i64,
            fill.tokens as i64,
            fill.cost,
            stage::PLANNED,
            now
        ],
    )?;
    // The usual part is a run of consecutive rows: marked by one statement over the range, not
    // one a row (the rows in it are exactly the chosen ones, so the count must match).
    if let (Some(&first), Some(&last)) = (fill.chosen.first(), fill.chosen.last()) {
        if last - first + 1 == fill.chosen.len() as i64 {
            let marked = tx.execute(
                "UPDATE rows SET state = ?1, part = ?2, updated_at = ?3 WHERE seq BETWEEN ?4 AND ?5",
                params![state::BATCHED, part, now, first, last],
            )?;
            anyhow::ensure!(
                marked == fill.chosen.len(),
                "part {part}: marked {marked} rows of {} chosen",
                fill.chosen.len()
            );
            return Ok(());
        }
    }
    let mut mark = tx.prepare("UPDATE rows SET state = ?1, part = ?2, updated_at = ?3 WHERE seq = ?4")?;
    for seq in &fill.chosen {
        mark.execute(params![state::BATCHED, part, now, seq])?;
    }
    Ok(())
}
