//! Submitting: planning a part from the pending rows, then taking it through its stages — for a
//! service that takes files, `planned` → `uploading` → `uploaded` → `creating` → `submitted`; for
//! one that takes the requests inline, `planned` → `creating` → `submitted` — each stage recorded
//! before its call is made, and a stage that may have happened without its answer recorded looked
//! up at the provider before it is tried again (never twice).

use bytes::Bytes;

use super::content::Content;
use super::*;
use crate::batch::calls::MAX_TRIES;
use crate::batch::service::{Create, Found, Input, Intake};
use crate::store::{Candidate, Measured, PartLimits};
use promptmill_core::retry::Backoff;

impl<'a, S: BatchService> Driver<'a, S> {
    /// Plans the next part if rows are pending and the queue and the budget have room for at
    /// least one.
    pub(super) fn plan(&mut self) -> Step<Option<PartRecord>> {
        self.drained = false;
        let Some(room) = self.queue_room()? else {
            return Ok(None);
        };
        let money = self.budget_room()?;
        if money.is_some_and(|m| m <= 0.0) {
            return Ok(None);
        }
        let endpoint = self.job.endpoint;
        let max_bytes = self.settings.batch.max_bytes;
        let tag = self.settings.tag.clone();
        let costing = self.costing.filter(|_| money.is_some());
        let fixed = self.job.spec.model.clone();
        let service = self.service;
        let by_seq = service.ids_by_seq();
        // A part of one row a line keeps the lines its plan encoded, for its upload (see
        // `planned_content`); joined lines are encoded again, a group at a time.
        let keep = self.rows_per_line() == 1;
        let mut kept = PlannedLines::default();
        // What the measure said: rows that fitted (were chosen, or stay pending for the next
        // part) and rows refused (failed by the plan).
        let (mut fitted, mut refused) = (0u64, 0u64);
        // A row's own line bounds its share of a joined line (which names the settings once).
        let mut measure_row = |c: &Candidate<'_>| -> Result<Measured, String> {
            let line = service.encode(&candidate_id(by_seq, c), c.request, endpoint)?;
            let size = line.len() as u64;
            if size > max_bytes {
                return Err(format!(
                    "its Batch input line is {size} bytes, more than --batch-max-bytes ({max_bytes})"
                ));
            }
            let mut m = Measured {
                size,
                ..Measured::default()
            };
            if room.is_some() || costing.is_some() {
                let (cost, model) = endpoint
                    .family()
                    .measure(c.request)
                    .map_err(|e| format!("the request does not parse: {e}"))?;
                m.tokens = cost.prompt_tokens;
                if let Some(costing) = costing {
                    let model = fixed.as_deref().or(model.as_deref()).unwrap_or("");
                    m.cost = costing.batch_worst(model, &cost);
                }
            }
            if keep {
                kept.lines.extend_from_slice(&line);
                kept.ends.push((c.seq, kept.lines.len()));
            }
            Ok(m)
        };
        let mut measure = |c: &Candidate<'_>| {
            let m = measure_row(c);
            match m {
                Ok(_) => fitted += 1,
                Err(_) => refused += 1,
            }
            m
        };
        let limits = PartLimits {
            max_rows: self.settings.batch.max_rows,
            max_bytes,
            max_tokens: room.map(|(r, _)| r),
            alone_may_exceed: room.is_none_or(|(_, empty)| empty),
            max_cost: money,
        };
        let part = self.store.plan_part(
            limits,
            &mut self.plan_after,
            |n| format!("promptmill-{tag}-part{n:04}.jsonl"),
            &mut measure,
        )?;
        self.planned_part(&part, (fitted, refused), keep.then_some(kept));
        Ok(part)
    }

    /// Prompt tokens the provider's queue has room for under `--batch-max-enqueued-tokens`, and
    /// whether it is empty (`Some(None)` without the flag; `None`: it is full).
    fn queue_room(&self) -> Step<Option<Option<(u64, bool)>>> {
        let Some(cap) = self.settings.batch.max_enqueued_tokens else {
            return Ok(Some(None));
        };
        let enqueued = self.enqueued()?;
        Ok((enqueued < cap).then_some(Some((cap - enqueued, enqueued == 0))))
    }

    /// What a plan leaves behind: the rows it refused counted as failed, whether any row is
    /// still pending, and the lines it encoded (`kept`), for the part's upload.
    fn planned_part(
        &mut self,
        part: &Option<PartRecord>,
        (fitted, refused): (u64, u64),
        kept: Option<PlannedLines>,
    ) {
        if let Some((_, failed, _)) = &mut self.settled {
            *failed += refused;
        }
        // No part, and no row that fitted: none is pending (a pending row is measured, and
        // either fits or is refused).
        self.drained = part.is_none() && fitted == 0;
        self.planned = part.as_ref().zip(kept).map(|(p, kept)| (p.part, kept));
    }

    /// The file of `part` as its plan encoded it, when this run planned it and its rows are the
    /// first lines the plan kept (a row measured on a try that made no part, or refused, makes
    /// them differ: then `None`, and the file is built again from the rows).
    fn planned_content(&mut self, part: &PartRecord) -> Step<Option<Content>> {
        let Some((planned, mut kept)) = self.planned.take() else {
            return Ok(None);
        };
        if planned != part.part {
            return Ok(None);
        }
        let seqs = self.store.part_seqs(part.part)?;
        let n = seqs.len();
        let same = n as u64 == part.rows
            && n <= kept.ends.len()
            && kept.ends[..n]
                .iter()
                .map(|&(seq, _)| seq)
                .eq(seqs.iter().copied());
        let end = match (same, n.checked_sub(1).map(|i| kept.ends[i].1)) {
            (true, Some(end)) if end as u64 == part.bytes => end,
            _ => return Ok(None),
        };
        kept.lines.truncate(end);
        Ok(Some(Content {
            bytes: Bytes::from(kept.lines),
            requests: n as u64,
        }))
    }

    /// Takes a part from wherever it stands to `submitted`, one recorded stage at a time. A
    /// stage that failed without an answer is looked up at the provider before it is tried again.
    pub(super) async fn submit(&mut self, part: i64) -> Step<()> {
        let mut tries = 0;
        loop {
            let p = self.store.part(part)?;
            let step = match (p.stage.as_str(), self.service.intake()) {
                (stage::UPLOADING, _) => self.find_upload(&p).await,
                (stage::PLANNED, Intake::Upload) => self.upload(&p).await,
                (stage::CREATING, _) => self.find_batch(&p).await,
                (stage::UPLOADED, _) | (stage::PLANNED, Intake::Inline) => self.create(&p).await,
                _ => return Ok(()),
            };
            match step {
                Ok(()) => tries = 0,
                Err(e) if e.is_transient() && tries + 1 < MAX_TRIES => {
                    tries += 1;
                    let wait = Backoff::default().delay(tries, e.retry_after(), false, &mut rand::rng());
                    if let Failure::Other(e) = &e {
                        tracing::info!("{e:#}; looking and trying again in {wait:?}");
                    }
                    self.calls.sleep(wait).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Settles a part that is not submitted without submitting it: if its batch turns out to
    /// exist it is kept (and collected like any other); else its upload, if any, is deleted and
    /// its rows go back to pending.
    pub(super) async fn unsubmit(&mut self, part: i64) -> Step<()> {
        let mut p = self.store.part(part)?;
        if p.stage == stage::CREATING {
            self.find_batch(&p).await?;
            p = self.store.part(part)?;
        }
        if p.stage == stage::UPLOADING {
            self.find_upload(&p).await?;
            p = self.store.part(part)?;
        }
        match p.stage.as_str() {
            stage::SUBMITTED => return Ok(()),
            stage::UPLOADED => {
                if let Some(id) = &p.file_id {
                    match self.calls.retried(|| self.service.delete_upload(id)).await {
                        Ok(()) => {}
                        // The file name is never used again, so a leftover upload is only clutter.
                        Err(Failure::Other(e)) => self.say(format!(
                            "batch {part}: could not delete its unused upload {id}: {e:#}"
                        )),
                        Err(other) => return Err(other),
                    }
                }
            }
            _ => {}
        }
        let rows = self.store.release(part)?;
        self.say(format!(
            "batch {part}: never submitted; its {rows} rows are pending again"
        ));
        Ok(())
    }

    /// `planned` → `uploading` → `uploaded`. A refusal (4xx) puts the part back to `planned`;
    /// no answer, a 5xx or an unreadable success leaves it `uploading`, to be looked for.
    pub(super) async fn upload(&mut self, part: &PartRecord) -> Step<()> {
        let content = match self.planned_content(part)? {
            Some(content) => content,
            None => self.content_of(part)?,
        };
        let size = content.bytes.len() as u64;
        self.store.set_uploading(part.part, size)?;
        let answer = self
            .calls
            .once(self.service.upload(&part.filename, content.bytes))
            .await?;
        match answer {
            Ok(file_id) => {
                self.store.record_file(part.part, &file_id)?;
                self.say(format!(
                    "batch {}: uploaded {} ({} rows, {}) as {file_id}",
                    part.part,
                    part.filename,
                    part.rows,
                    crate::estimate::report::bytes(size),
                ));
                Ok(())
            }
            Err(e) if e.may_have_taken_effect() => Err(e.into()),
            Err(e) => {
                self.store.set_stage(part.part, stage::PLANNED)?;
                Err(e.into())
            }
        }
    }

    /// The create call of a part: from its upload, or with its requests inline.
    fn create_request(&self, part: &PartRecord) -> Step<Create> {
        let (input, requests) = match self.service.intake() {
            Intake::Upload => (Input::File(part.file_id.clone().unwrap_or_default()), part.rows),
            Intake::Inline => {
                let content = self.content_of(part)?;
                (Input::Inline(content.bytes), content.requests)
            }
        };
        let known = match self.service.intake() {
            Intake::Upload => Vec::new(),
            Intake::Inline => self
                .store
                .parts()?
                .into_iter()
                .filter(|p| p.part != part.part)
                .filter_map(|p| p.batch_id)
                .collect(),
        };
        Ok(Create {
            known,
            part: part.part,
            tag: self.settings.tag.clone(),
            model: part.model.clone(),
            endpoint: self.job.endpoint,
            input,
            requests,
            planned_at: part.created_at,
        })
    }

    /// (`uploaded` or, inline, `planned`) → `creating` → `submitted`. A refusal (4xx) puts the
    /// part back where it was (or to `planned` when its file is gone); no answer, a 5xx or an
    /// unreadable success leaves it `creating`, to be looked for: a batch created twice is paid
    /// for twice.
    pub(super) async fn create(&mut self, part: &PartRecord) -> Step<()> {
        let request = self.create_request(part)?;
        let before = part.stage.clone();
        self.store.set_stage(part.part, stage::CREATING)?;
        let answer = self.calls.once(self.service.create(&request)).await?;
        match answer {
            Ok(batch) => {
                self.store.record_batch(part.part, &batch.seen())?;
                let model = if part.model.is_empty() {
                    "(none)"
                } else {
                    part.model.as_str()
                };
                self.say(format!(
                    "batch {}: submitted as {} ({} rows, model {model})",
                    part.part, batch.id, part.rows
                ));
                Ok(())
            }
            Err(e) if e.may_have_taken_effect() => Err(e.into()),
            Err(e) if e.status() == Some(404) && matches!(request.input, Input::File(_)) => {
                // The upload is gone (deleted or expired at the provider): upload it again.
                self.say(format!(
                    "batch {}: its file {} is gone; uploading it again",
                    part.part,
                    part.file_id.as_deref().unwrap_or("")
                ));
                self.store.forget_file(part.part)?;
                Ok(())
            }
            Err(e) => {
                self.store.set_stage(part.part, &before)?;
                Err(e.into())
            }
        }
    }

    /// After an upload that got no recorded answer: an upload under the part's file name is
    /// reused when it is complete, and deleted when not; the part is `uploaded` or `planned`.
    pub(super) async fn find_upload(&mut self, part: &PartRecord) -> Step<()> {
        let found = self
            .service
            .find_upload(&self.calls, &part.filename, part.bytes)
            .await?;
        for id in &found.deleted {
            self.say(format!(
                "batch {}: deleted an incomplete earlier upload {id}",
                part.part
            ));
        }
        match found.keep {
            Some(id) => {
                self.say(format!(
                    "batch {}: reusing the upload {id} an earlier run made",
                    part.part
                ));
                self.store.record_file(part.part, &id)?;
            }
            None => self.store.forget_file(part.part)?,
        }
        Ok(())
    }

    /// After a batch creation that got no recorded answer: the provider's batch of the part is
    /// recorded if it made one; else the part goes back to where the create started (`uploaded`,
    /// or `planned` inline). A service that cannot tell stops the run.
    pub(super) async fn find_batch(&mut self, part: &PartRecord) -> Step<()> {
        let request = self.create_request(part)?;
        match self.service.find_created(&self.calls, &request).await? {
            Found::Batch(b) => {
                self.store.record_batch(part.part, &b.seen())?;
                self.say(format!(
                    "batch {}: found {}, created by an earlier attempt",
                    part.part, b.id
                ));
            }
            Found::Nothing => {
                let back = match self.service.intake() {
                    Intake::Upload => stage::UPLOADED,
                    Intake::Inline => stage::PLANNED,
                };
                self.store.set_stage(part.part, back)?;
            }
            Found::Ambiguous(why) => {
                return Err(Failure::Other(anyhow::anyhow!(
                    "batch {}: its creation got no answer, and the provider's batches do not say whether it was made: {why}",
                    part.part
                )))
            }
        }
        Ok(())
    }
}

/// The `custom_id` a candidate row is measured under: its id, or (a service that names rows by
/// their place, see `Driver::line_id`) its seq's.
fn candidate_id<'c>(by_seq: bool, c: &Candidate<'c>) -> std::borrow::Cow<'c, str> {
    if by_seq {
        crate::batch::grouped::group_id(c.seq, c.seq).into()
    } else {
        std::borrow::Cow::Borrowed(c.id)
    }
}
