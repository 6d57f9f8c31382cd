//! Submitting: planning a part from the pending rows, uploading its file and creating its batch,
//! each step recorded before the next, and a step that may have happened without its answer
//! recorded looked up at the provider before it is tried again (never twice).

use super::*;

impl<'a, A: BatchApi> Driver<'a, A> {
    /// Plans the next part if rows are pending and the queue and the budget have room for at
    /// least one.
    pub(super) fn plan(&mut self) -> Step<Option<PartRecord>> {
        let cap = self.settings.batch.max_enqueued_tokens;
        let room = match cap {
            Some(cap) => {
                let enqueued = self.enqueued()?;
                if enqueued >= cap {
                    return Ok(None);
                }
                Some((cap - enqueued, enqueued == 0))
            }
            None => None,
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
        let provider = &self.job.provider;
        let mut measure = |c: &Candidate<'_>| -> Result<Measured, String> {
            let size = input_line(c.id, c.request, endpoint, provider).map(|l| l.len() as u64)?;
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
            Ok(m)
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
        Ok(part)
    }

    /// Takes a part from wherever it stands to `submitted`, one recorded stage at a time. A
    /// stage that failed without an answer is looked up at the provider before it is tried again.
    pub(super) async fn submit(&mut self, part: i64) -> Step<()> {
        let mut tries = 0;
        loop {
            let p = self.store.part(part)?;
            let step = match p.stage.as_str() {
                stage::UPLOADING => self.find_upload(&p).await,
                stage::PLANNED => self.upload(&p).await,
                stage::CREATING => self.find_batch(&p).await,
                stage::UPLOADED => self.create(&p).await,
                _ => return Ok(()),
            };
            match step {
                Ok(()) => tries = 0,
                Err(Failure::Other(e)) if is_transient(&e) && tries + 1 < MAX_TRIES => {
                    tries += 1;
                    let wait = Backoff::default().delay(tries, retry_after(&e), false, &mut rand::rng());
                    tracing::info!("{e:#}; looking and trying again in {wait:?}");
                    self.sleep(wait).await?;
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
                    if let Err(e) = self.call(|| self.api.delete_file(id)).await {
                        // The file name is never used again, so a leftover upload is only clutter.
                        let e = match e {
                            Failure::Other(e) => e,
                            other => return Err(other),
                        };
                        self.say(format!(
                            "batch {part}: could not delete its unused upload {id}: {e:#}"
                        ));
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
        let content = self.content(part.part)?;
        if content.len() as u64 != part.bytes {
            return Err(Failure::Other(anyhow::anyhow!(
                "batch {}: its file is {} bytes where {} were planned; the checkpoint does not match its rows",
                part.part,
                content.len(),
                part.bytes
            )));
        }
        self.store.set_stage(part.part, stage::UPLOADING)?;
        self.count_call(false);
        let answer = self
            .unless_stopped(self.api.upload(&part.filename, content))
            .await?;
        match answer {
            Ok(file) => {
                self.store.record_file(part.part, &file.id)?;
                self.say(format!(
                    "batch {}: uploaded {} ({} rows, {}) as {}",
                    part.part,
                    part.filename,
                    part.rows,
                    crate::estimate::report::bytes(part.bytes),
                    file.id
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

    /// `uploaded` → `creating` → `submitted`. A refusal (4xx) puts the part back to `uploaded`
    /// (or `planned` when the file is gone); no answer, a 5xx or an unreadable success leaves it
    /// `creating`, to be looked for: a batch created twice is paid for twice.
    pub(super) async fn create(&mut self, part: &PartRecord) -> Step<()> {
        let mut metadata = serde_json::Map::new();
        metadata.insert("promptmill_job".into(), self.settings.tag.clone().into());
        metadata.insert("promptmill_part".into(), part.part.to_string().into());
        let request = CreateBatch {
            input_file_id: part.file_id.clone().unwrap_or_default(),
            endpoint: self.job.provider.batch_endpoint(self.job.endpoint),
            completion_window: "24h",
            metadata,
        };
        self.store.set_stage(part.part, stage::CREATING)?;
        self.count_call(false);
        let answer = self.unless_stopped(self.api.create(&request)).await?;
        match answer {
            Ok(batch) => {
                self.store.record_batch(part.part, &batch.seen())?;
                self.say(format!(
                    "batch {}: submitted as {} ({} rows, model {})",
                    part.part,
                    batch.id,
                    part.rows,
                    if part.model.is_empty() {
                        "(none)"
                    } else {
                        &part.model
                    }
                ));
                Ok(())
            }
            Err(e) if e.may_have_taken_effect() => Err(e.into()),
            Err(e) if e.status() == Some(404) => {
                // The upload is gone (deleted or expired at the provider): upload it again.
                self.say(format!(
                    "batch {}: its file {} is gone; uploading it again",
                    part.part, request.input_file_id
                ));
                self.store.forget_file(part.part)?;
                Ok(())
            }
            Err(e) => {
                self.store.set_stage(part.part, stage::UPLOADED)?;
                Err(e.into())
            }
        }
    }

    /// The part's input file, rebuilt from its rows.
    pub(super) fn content(&self, part: i64) -> anyhow::Result<Bytes> {
        let mut out = Vec::new();
        let endpoint = self.job.endpoint;
        self.store.part_rows(part, |id, request| {
            let line = input_line(id, request, endpoint, &self.job.provider).map_err(anyhow::Error::msg)?;
            out.extend_from_slice(&line);
            Ok(())
        })?;
        Ok(Bytes::from(out))
    }

    /// After an upload that got no recorded answer: an upload under the part's file name is
    /// reused when it is complete, and deleted when not; the part is `uploaded` or `planned`.
    pub(super) async fn find_upload(&mut self, part: &PartRecord) -> Step<()> {
        let mut after: Option<String> = None;
        let mut keep: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self.call(|| self.api.list_files(after.as_deref())).await?;
            for f in &page.data {
                if f.filename.as_deref() != Some(part.filename.as_str()) {
                    continue;
                }
                if keep.is_none() && f.bytes == Some(part.bytes) {
                    keep = Some(f.id.clone());
                } else {
                    self.call(|| self.api.delete_file(&f.id)).await?;
                    self.say(format!(
                        "batch {}: deleted an incomplete earlier upload {}",
                        part.part, f.id
                    ));
                }
            }
            after = page
                .last_id
                .clone()
                .or_else(|| page.data.last().map(|f| f.id.clone()));
            if !page.has_more || page.data.is_empty() {
                break;
            }
        }
        match keep {
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

    /// After a batch creation that got no recorded answer: the provider's batch of the part's
    /// file is recorded if it made one; else the part goes back to `uploaded`.
    pub(super) async fn find_batch(&mut self, part: &PartRecord) -> Step<()> {
        let file_id = part.file_id.clone().unwrap_or_default();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self.call(|| self.api.list_batches(after.as_deref())).await?;
            if let Some(b) = page
                .data
                .iter()
                .find(|b| b.input_file_id.as_deref() == Some(file_id.as_str()))
            {
                self.store.record_batch(part.part, &b.seen())?;
                self.say(format!(
                    "batch {}: found {}, created by an earlier attempt",
                    part.part, b.id
                ));
                return Ok(());
            }
            after = page
                .last_id
                .clone()
                .or_else(|| page.data.last().map(|b| b.id.clone()));
            // Newest first: past batches made before the part was planned (less an hour for
            // clocks that disagree), it cannot be further down.
            let oldest = page.data.iter().filter_map(|b| b.created_at).min();
            let planned = part.created_at / 1000 - 3600;
            if !page.has_more || page.data.is_empty() || oldest.is_some_and(|t| t < planned) {
                break;
            }
        }
        self.store.set_stage(part.part, stage::UPLOADED)?;
        Ok(())
    }
}

/// A row's Batch input line, newline included: the stored request as it is, except that a
/// provider which runs a batch on a deployment (Azure) gets that deployment as `body.model`.
pub fn input_line(
    id: &str,
    request: &str,
    endpoint: Endpoint,
    provider: &Provider,
) -> Result<Vec<u8>, String> {
    let unreadable = |e: serde_json::Error| format!("the request does not parse: {e}");
    let rebuilt;
    let body: &serde_json::value::RawValue = match provider.batch_model() {
        None => serde_json::from_str(request).map_err(unreadable)?,
        Some(model) => {
            let mut body: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(request).map_err(unreadable)?;
            body.insert("model".into(), model.into());
            rebuilt = serde_json::value::to_raw_value(&body).map_err(|e| e.to_string())?;
            &rebuilt
        }
    };
    let mut line = serde_json::to_vec(&InputLine {
        custom_id: id,
        method: "POST",
        url: provider.batch_endpoint(endpoint),
        body,
    })
    .map_err(|e| e.to_string())?;
    line.push(b'\n');
    Ok(line)
}
