//! A part's requests, rebuilt from its rows in input order: one line a row, or, for a family
//! that joins rows (embeddings), one line per group of `--rows-per-request` rows, grouped as the
//! live path groups them (`pipeline::group`), its `custom_id` naming the rows (`grouped.rs`).

use bytes::Bytes;

use super::*;
use crate::batch::grouped::group_id;
use crate::pipeline::group::{Group, Grouper};
use crate::store::writer::Claimed;

/// A part's encoded requests.
pub(super) struct Content {
    pub bytes: Bytes,
    /// Lines (requests) in it.
    pub requests: u64,
}

impl<'a, S: BatchService> Driver<'a, S> {
    /// Rows per line for the job's family: 1 unless it joins rows.
    pub(super) fn rows_per_line(&self) -> usize {
        let most = self.job.endpoint.family().max_rows_per_request();
        if most <= 1 {
            return 1;
        }
        self.job.send.rows_per_request.clamp(1, most)
    }

    /// The part's requests, rebuilt from its rows. Lines of one row each must come to the bytes
    /// planned; joined lines are smaller (they name the settings once), and their size is
    /// recorded when the part is uploaded.
    pub(super) fn content_of(&self, part: &PartRecord) -> Step<Content> {
        let per = self.rows_per_line();
        let content = if per == 1 {
            self.single_lines(part.part)?
        } else {
            self.joined_lines(part.part, per)?
        };
        if per == 1 && content.bytes.len() as u64 != part.bytes {
            return Err(Failure::Other(anyhow::anyhow!(
                "batch {}: its file is {} bytes where {} were planned; the checkpoint does not match its rows",
                part.part,
                content.bytes.len(),
                part.bytes
            )));
        }
        Ok(content)
    }

    fn single_lines(&self, part: i64) -> anyhow::Result<Content> {
        let endpoint = self.job.endpoint;
        let (mut out, mut requests) = (Vec::new(), 0);
        self.store.part_rows_seq(part, |seq, id, request| {
            out.extend(
                self.service
                    .encode(&self.line_id(id, seq), request, endpoint)
                    .map_err(anyhow::Error::msg)?,
            );
            requests += 1;
            Ok(())
        })?;
        Ok(Content {
            bytes: Bytes::from(out),
            requests,
        })
    }

    fn joined_lines(&self, part: i64, per: usize) -> anyhow::Result<Content> {
        let family = self.job.endpoint.family();
        let mut grouper = Grouper::new(family, per);
        let (mut out, mut requests) = (Vec::new(), 0);
        let mut emit = |group: Group| -> anyhow::Result<()> {
            requests += 1;
            let line = if group.rest.is_empty() {
                let row = &group.first;
                self.service
                    .encode(&self.line_id(&row.id, row.seq), &row.body, self.job.endpoint)
            } else {
                let last = group.rest.last().map_or(group.first.seq, |r| r.seq);
                let mut bodies = vec![group.first.body.as_str()];
                bodies.extend(group.rest.iter().map(|r| r.body.as_str()));
                family.join(&bodies).and_then(|joined| {
                    self.service
                        .encode(&group_id(group.first.seq, last), &joined, self.job.endpoint)
                })
            };
            out.extend(line.map_err(|e| anyhow::anyhow!("batch {part}: {e}"))?);
            Ok(())
        };
        self.store.part_rows_seq(part, |seq, id, request| {
            let row = Claimed {
                seq,
                id: id.to_string(),
                body: request.to_string(),
                tokens: None,
                digest: None,
            };
            match grouper.push(row) {
                Some(group) => emit(group),
                None => Ok(()),
            }
        })?;
        if let Some(group) = grouper.take() {
            emit(group)?;
        }
        Ok(Content {
            bytes: Bytes::from(out),
            requests,
        })
    }
}
