//! `--schema` in the worker loop: a row's answer is judged against the job's schema before the
//! row is done ([`Pipeline::judge_answer`]). A valid answer is done, with the usage of every
//! answer the row paid for; an invalid or cut one is asked again (a new request, through the
//! gates, the budget and the ledger like any other) up to `--schema-retries` times, with
//! `--schema-repair` carrying the bad answer and its errors back in the conversation; then,
//! and for a refusal at once, the row fails with its outcome and the validator's errors. The
//! judging itself is `promptmill_core::schema`'s; this file owns what the loop does with it.

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::api::Transport;
use crate::stats::Stats;
use crate::store::writer::OutcomeKind;
use promptmill_core::family::Completion;
use promptmill_core::schema::Judged;

use super::row::{Flow, RowRun};
use super::Pipeline;

impl<T: Transport> Pipeline<T> {
    /// A done answer judged against the job's schema: the row ends (done or rejected), or
    /// `Ok`: it is asked again at once.
    // The error is the row's outcome (`Flow`'s, as every step's), made once and moved once.
    #[allow(clippy::result_large_err)]
    pub(super) fn judge_answer<'p>(&'p self, r: &mut RowRun<'p>, mut answer: Completion) -> Flow<()> {
        let Some(s) = &self.settings.structured else {
            return Err(OutcomeKind::Done(answer));
        };
        let judged = answer.judged_by(&s.schema);
        answer.usage.add(&r.paid);
        if let Judged::Valid(_) = judged {
            return Err(OutcomeKind::Done(answer));
        }
        let error = judged.errors();
        if !judged.retryable() || r.reasked >= s.retries {
            let asked = match r.reasked {
                0 => String::new(),
                n => format!(" (after {n} re-asks)"),
            };
            return Err(OutcomeKind::Rejected {
                outcome: judged.name(),
                error: format!("{error}{asked}"),
                answer,
            });
        }
        r.reasked += 1;
        Stats::add(&self.stats.reasked, 1);
        tracing::info!(row = %r.id, "asking again ({}/{}): {error}", r.reasked, s.retries);
        r.paid = answer.usage;
        if s.repair {
            self.repair(r, answer.text.as_deref().unwrap_or(""), &error);
        }
        Ok(())
    }

    /// Puts the bad answer and what was wrong with it into the row's request, so the next
    /// attempt is asked with them; a body the family cannot extend is sent again as it is.
    fn repair<'p>(&'p self, r: &mut RowRun<'p>, answer: &str, errors: &str) {
        let family = self.settings.endpoint.family();
        let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&r.body) else {
            return;
        };
        if !append_turns(&mut body, family.schema_field(), answer, errors) {
            return;
        }
        let Ok(text) = serde_json::to_string(&Value::Object(body)) else {
            return;
        };
        r.priced = self.price(&text);
        r.tokens = None;
        r.body = Bytes::from(text);
    }
}

/// The message a repairing re-ask ends with.
fn repair_message(errors: &str) -> String {
    format!(
        "Your answer did not fit the required JSON Schema ({errors}). Answer again with only a JSON value that fits the schema."
    )
}

/// Appends the bad answer (as the assistant's turn) and the repair message (the user's) to the
/// conversation: chat and Anthropic's `messages`, or the Responses API's `input` (a string
/// becomes its first user item). False when the body has neither.
fn append_turns(
    body: &mut Map<String, Value>,
    schema_field: Option<&str>,
    answer: &str,
    errors: &str,
) -> bool {
    let turn = |role: &str, text: String| serde_json::json!({"role": role, "content": text});
    let turns = [
        turn("assistant", answer.to_string()),
        turn("user", repair_message(errors)),
    ];
    let key = if schema_field == Some("text") {
        "input"
    } else {
        "messages"
    };
    match body.get_mut(key) {
        Some(Value::Array(items)) => items.extend(turns),
        Some(Value::String(first)) if key == "input" => {
            let first = turn("user", std::mem::take(first));
            let mut items = vec![first];
            items.extend(turns);
            body.insert(key.into(), Value::Array(items));
        }
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptmill_core::family::Usage;

    #[test]
    fn repair_turns_go_after_the_conversation_of_each_family() {
        let mut chat: Map<String, Value> =
            serde_json::from_str(r#"{"messages":[{"role":"user","content":"hi"}]}"#).unwrap();
        assert!(append_turns(
            &mut chat,
            Some("response_format"),
            "{\"a\":",
            "invalid: not JSON"
        ));
        let m = chat["messages"].as_array().unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(
            m[1],
            serde_json::json!({"role": "assistant", "content": "{\"a\":"})
        );
        assert!(m[2]["content"].as_str().unwrap().contains("invalid: not JSON"));

        let mut responses: Map<String, Value> = serde_json::from_str(r#"{"input":"hi"}"#).unwrap();
        assert!(append_turns(&mut responses, Some("text"), "x", "e"));
        let items = responses["input"].as_array().unwrap();
        assert_eq!(items[0], serde_json::json!({"role": "user", "content": "hi"}));
        assert_eq!(items.len(), 3);

        let mut none: Map<String, Value> = serde_json::from_str(r#"{"prompt":"hi"}"#).unwrap();
        assert!(!append_turns(&mut none, None, "x", "e"));
    }

    #[test]
    fn paid_usage_is_added_and_details_stay_unreported_when_neither_has_them() {
        let mut u = Usage {
            prompt_tokens: 3,
            completion_tokens: 2,
            total_tokens: 5,
            ..Usage::default()
        };
        let paid = Usage {
            prompt_tokens: 3,
            completion_tokens: 4,
            total_tokens: 7,
            cached_tokens: Some(1),
            ..Usage::default()
        };
        u.add(&paid);
        assert_eq!((u.prompt_tokens, u.completion_tokens, u.total_tokens), (6, 6, 12));
        assert_eq!((u.cached_tokens, u.reasoning_tokens), (Some(1), None));
    }
}
