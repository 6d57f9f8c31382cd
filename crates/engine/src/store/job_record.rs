//! The `job` table: the job's record (what the command asked, stored when the input is read), when
//! it was created, the last run's summary, and whether Batch API parts are still open. What the
//! record holds is `job.rs`'s.

use rusqlite::{params, OptionalExtension};

use super::Store;
use promptmill_core::error::CheckpointError;
use promptmill_core::job::{JobRecord, JOB_RECORD_VERSION};

impl Store {
    /// The recorded job, if the input has been read into this checkpoint.
    pub fn job(&self) -> anyhow::Result<Option<JobRecord>> {
        let text: Option<String> = self
            .conn
            .query_row("SELECT record FROM job WHERE key = 1", [], |r| r.get(0))
            .optional()?;
        let Some(text) = text else {
            return Ok(None);
        };
        let not_ours = |reason: String| CheckpointError::NotACheckpoint {
            db: self.path.clone(),
            reason,
        };
        // The version first: a newer record may not parse as this build's, and must be refused
        // as newer, not as damaged.
        #[derive(serde::Deserialize)]
        struct Versioned {
            #[serde(default)]
            version: Option<u32>,
        }
        let version = serde_json::from_str::<Versioned>(&text)
            .map_err(|e| not_ours(format!("its job record does not parse: {e}")))?
            .version
            .unwrap_or(1);
        if version > JOB_RECORD_VERSION {
            return Err(CheckpointError::RecordTooNew {
                db: self.path.clone(),
                found: version,
                known: JOB_RECORD_VERSION,
            }
            .into());
        }
        let job = serde_json::from_str(&text)
            .map_err(|e| not_ours(format!("its job record does not parse: {e}")))?;
        Ok(Some(job))
    }

    /// Replaces the job record (used when a resume changes where requests go, e.g. `--base-url`).
    pub fn update_job(&self, job: &JobRecord) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE job SET record = ?1 WHERE key = 1",
            params![serde_json::to_string(&job.for_storage())?],
        )?;
        Ok(())
    }

    /// When the job was read into this checkpoint (unix ms).
    pub fn job_created_at(&self) -> anyhow::Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT created_at FROM job WHERE key = 1", [], |r| r.get(0))?)
    }

    /// The summary the last run stored, as JSON text.
    pub fn last_summary(&self) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT summary FROM job WHERE key = 1", [], |r| r.get(0))
            .optional()?
            .flatten())
    }

    /// Whether a Batch API part is submitted (or half-submitted) and not collected yet.
    pub fn has_open_parts(&self) -> anyhow::Result<bool> {
        Ok(self.conn.query_row(
            "SELECT count(*) > 0 FROM parts WHERE stage NOT IN ('collected', 'released')",
            [],
            |r| r.get(0),
        )?)
    }
}
