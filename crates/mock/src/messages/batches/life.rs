//! A message batch's life, driven by retrieves (see `batches.rs`): its requests answered a share
//! at a time by the live Messages code, its end (`canceled` or `expired` for the requests not
//! run), and the `MessageBatch` object a retrieve, cancel or list shows. The HTTP handlers are
//! `batches.rs`'s.

use super::*;

impl MessageBatch {
    /// One retrieve: the next step of the batch's life (see the module doc).
    pub(super) fn poll(&mut self, state: &State, polls: u64) {
        if self.status == Status::Ended {
            return;
        }
        self.polls += 1;
        let total = self.requests.len();
        if self.status == Status::Canceling {
            return self.end("canceled");
        }
        let cap = match self.outcome {
            Outcome::Expired(fraction) => (total as f64 * fraction) as usize,
            Outcome::Completed | Outcome::Failed => total,
        };
        if self.polls >= polls {
            self.advance(state, cap);
            return self.end("expired");
        }
        let share = (total as u128 * u128::from(self.polls) / u128::from(polls)) as usize;
        self.advance(state, share.min(cap));
    }

    /// Answers the requests from the first unanswered one up to (not including) `upto`.
    fn advance(&mut self, state: &State, upto: usize) {
        let upto = upto.min(self.requests.len());
        for i in self.processed..upto {
            let line = self.answer(state, i);
            self.results.push(line);
        }
        self.processed = self.processed.max(upto);
    }

    fn answer(&mut self, state: &State, i: usize) -> Vec<u8> {
        let r = &self.requests[i];
        let stamp = Stamp::Batch {
            batch: self.seq,
            line: i as u64 + 1,
            created: self.created_ms / 1000,
        };
        let error = |status: StatusCode, message: &str| {
            json!({"type": "errored", "error": {"type": "error", "error": {
                "type": crate::messages::dialect::error_type(status.as_u16()), "message": message}}})
        };
        let result: Result<Bytes, Value> = match self.outcome {
            Outcome::Failed => Err(error(
                StatusCode::BAD_REQUEST,
                "mock: this batch was made to fail (X-Mock-Batch-Outcome or --batch-outcome).",
            )),
            _ => match crate::service::answer_body(state, Endpoint::Messages, &r.params, stamp) {
                Answered::Reply(reply) => Ok(reply.body),
                Answered::Shaped(shaped) => Ok(shaped.body),
                Answered::Error(_, e) => Err(error(e.status, &e.message)),
            },
        };
        let mut line = br#"{"custom_id":"#.to_vec();
        line.extend_from_slice(&to_bytes(&r.custom_id));
        match result {
            Ok(message) => {
                self.tally.succeeded += 1;
                line.extend_from_slice(br#","result":{"type":"succeeded","message":"#);
                line.extend_from_slice(&message);
                line.extend_from_slice(b"}}\n");
            }
            Err(errored) => {
                self.tally.errored += 1;
                line.extend_from_slice(br#","result":"#);
                line.extend_from_slice(&to_bytes(&errored));
                line.extend_from_slice(b"}\n");
            }
        }
        line
    }

    /// Ends the batch: every request not answered gets `rest` (`canceled` or `expired`).
    fn end(&mut self, kind: &'static str) {
        for r in self.requests.get(self.processed..).unwrap_or_default() {
            match kind {
                "canceled" => self.tally.canceled += 1,
                _ => self.tally.expired += 1,
            }
            let line = json!({"custom_id": &*r.custom_id, "result": {"type": kind}});
            let mut bytes = to_bytes(&line).to_vec();
            bytes.push(b'\n');
            self.results.push(bytes);
        }
        self.processed = self.requests.len();
        self.status = Status::Ended;
        self.ended_ms = Some(now_ms());
    }

    /// Anthropic's `MessageBatch` object as it stands.
    pub(super) fn object(&self) -> Value {
        let t = self.tally;
        let ended = self.status == Status::Ended;
        let processing = self.requests.len() as u64 - t.succeeded - t.errored - t.canceled - t.expired;
        json!({
            "id": self.id,
            "type": "message_batch",
            "processing_status": self.status.as_str(),
            "request_counts": {
                "processing": processing,
                "succeeded": t.succeeded,
                "errored": t.errored,
                "canceled": t.canceled,
                "expired": t.expired,
            },
            "ended_at": self.ended_ms.map(rfc3339),
            "created_at": rfc3339(self.created_ms),
            "expires_at": rfc3339(self.created_ms + DAY_MS),
            "archived_at": null,
            "cancel_initiated_at": self.cancel_ms.map(rfc3339),
            "results_url": ended.then(|| format!("{}/v1/messages/batches/{}/results", self.origin, self.id)),
        })
    }
}
