//! Every row as exported, in input order, read in pages so memory stays flat. Its usage is as
//! stored when it can be true (see `token_counts.rs`); the formats are `output`'s.

use super::{trusted_tokens, trusted_usage, Store};

/// One row as exported.
#[derive(Debug, Clone)]
pub struct ExportRow {
    pub seq: i64,
    pub id: String,
    pub state: String,
    pub invalid: bool,
    pub fields: String,
    pub request: Option<String>,
    pub response: Option<String>,
    pub completion: Option<String>,
    pub finish_reason: Option<String>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    pub model: Option<String>,
    pub response_id: Option<String>,
    pub http_status: Option<i64>,
    pub error: Option<String>,
    /// The usage details the server reported for a done row (`None`: not reported).
    pub cached_tokens: Option<i64>,
    pub cache_creation_tokens: Option<i64>,
    pub reasoning_tokens: Option<i64>,
    /// A done embeddings row's vector (stored as its f32 values' little-endian bytes).
    pub embedding: Option<Vec<f32>>,
    /// Done through the Batch API, so priced at its prices.
    pub via_batch: bool,
    /// Done from the response cache: no request, so it cost nothing.
    pub cached: bool,
    /// A `--schema` job's outcome of the row: `valid` (set by the exporter for a done row),
    /// `invalid`, `truncated` or `refused` (stored); `None` for other jobs and unsettled rows.
    pub outcome: Option<String>,
    /// A valid row's parsed answer (set by the exporter).
    pub data: Option<serde_json::Value>,
    /// Dollars the row cost: not read from the checkpoint but priced by the exporter, at the
    /// job's prices (`None`: not done, or its model has no price).
    pub cost: Option<f64>,
}

impl Store {
    /// Calls `each` for every row in input order, reading in pages so memory stays flat.
    pub fn for_each_row(&self, mut each: impl FnMut(ExportRow) -> anyhow::Result<()>) -> anyhow::Result<()> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, id, state, invalid, fields, request, response, completion, finish_reason,
                    prompt_tokens, completion_tokens, total_tokens, model, response_id, http_status, error,
                    cached_tokens, cache_creation_tokens, reasoning_tokens, part IS NOT NULL, embedding, cached, schema
             FROM rows ORDER BY seq",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let (prompt_tokens, completion_tokens, total_tokens) =
                trusted_usage([r.get(9)?, r.get(10)?, r.get(11)?]);
            let detail = |i| -> rusqlite::Result<Option<i64>> {
                Ok(r.get::<_, Option<i64>>(i)?
                    .filter(|&v| trusted_tokens(v).is_some()))
            };
            each(ExportRow {
                seq: r.get(0)?,
                id: r.get(1)?,
                state: r.get(2)?,
                invalid: r.get(3)?,
                fields: r.get(4)?,
                request: r.get(5)?,
                response: r.get(6)?,
                completion: r.get(7)?,
                finish_reason: r.get(8)?,
                prompt_tokens,
                completion_tokens,
                total_tokens,
                model: r.get(12)?,
                response_id: r.get(13)?,
                http_status: r.get(14)?,
                error: r.get(15)?,
                cached_tokens: detail(16)?,
                cache_creation_tokens: detail(17)?,
                reasoning_tokens: detail(18)?,
                via_batch: r.get(19)?,
                embedding: r.get::<_, Option<Vec<u8>>>(20)?.map(|b| vector_values(&b)),
                cached: r.get(21)?,
                outcome: r.get(22)?,
                data: None,
                cost: None,
            })?;
        }
        Ok(())
    }
}

/// The f32 values of a stored vector (a trailing part of fewer than 4 bytes cannot be written,
/// and would be ignored).
fn vector_values(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}
