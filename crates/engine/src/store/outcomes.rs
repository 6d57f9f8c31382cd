//! A `--schema` job's rows by outcome, for `status` and the summary: valid (the done rows),
//! invalid, truncated and refused (failed rows whose last answer broke the schema, see
//! migration 15), and the rows sent back to a follow-up batch at least once.

use serde::Serialize;

use super::Store;

/// A schema job's rows by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SchemaCounts {
    pub valid: u64,
    pub invalid: u64,
    pub truncated: u64,
    pub refused: u64,
    /// Rows whose Batch API answer broke the schema and that went into a follow-up batch.
    pub follow_up_rows: u64,
}

impl Store {
    /// The job's rows by schema outcome (meaningful for a `--schema` job only).
    pub fn schema_counts(&self) -> anyhow::Result<SchemaCounts> {
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        let counts = self.conn.query_row(
            "SELECT coalesce(sum(state = 'done'), 0),
                    coalesce(sum(state = 'failed' AND schema = 'invalid'), 0),
                    coalesce(sum(state = 'failed' AND schema = 'truncated'), 0),
                    coalesce(sum(state = 'failed' AND schema = 'refused'), 0),
                    coalesce(sum(reasked > 0), 0)
               FROM rows WHERE invalid = 0",
            [],
            |r| {
                Ok(SchemaCounts {
                    valid: n(r.get(0)?),
                    invalid: n(r.get(1)?),
                    truncated: n(r.get(2)?),
                    refused: n(r.get(3)?),
                    follow_up_rows: n(r.get(4)?),
                })
            },
        )?;
        Ok(counts)
    }
}
