//! A row's request body, by the row's shape: a template's or a `prompt` field's text
//! ([`Preparer::text_body`]), a JSON Lines row's `messages` ([`Preparer::messages_body`]), or an
//! OpenAI Batch input line's `body` ([`Preparer::batch_body`]). Each validates its shape, naming
//! the field, lets the job's family place the text or messages, and applies the flags
//! (`prepare.rs`'s `apply_flags`). Which shape a row has, and its id, are decided in
//! `prepare.rs`.

use serde_json::{Map, Value};

use super::Preparer;
use promptmill_core::error::InputError;
use promptmill_core::family::{check_messages, message, Endpoint};
use promptmill_core::input::{json_type_name, RawRow};

impl Preparer {
    /// Template rows and ready `prompt` rows: one text, sent as a user message or a prompt.
    /// `field`: the row field that holds the text when there is no template.
    pub(super) fn text_body(&mut self, row: &RawRow, field: &str) -> Result<Map<String, Value>, InputError> {
        let text = match &self.settings.template {
            Some(t) => t
                .render(&row.fields)
                .map_err(|e| self.err(row, e.message).field(e.field))?,
            None => match row.fields.get(field) {
                Some(Value::String(s)) => s.clone(),
                Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
                Some(other) => {
                    return Err(self
                        .err(row, format!("must be a string, found {}", json_type_name(other)))
                        .field(field))
                }
                None => return Err(self.err(row, "missing").field(field)),
            },
        };
        if text.trim().is_empty() {
            let err = self.err(row, "the prompt is empty");
            return Err(match self.settings.template {
                Some(_) => err,
                None => err.field(field),
            });
        }
        let system = match &self.settings.system {
            Some(t) => Some(t.render(&row.fields).map_err(|e| {
                self.err(row, format!("{} (in --system)", e.message))
                    .field(e.field)
            })?),
            None => None,
        };
        let endpoint = self.settle_endpoint(row, None)?;
        let mut body = Map::new();
        body.insert("model".into(), Value::String(self.model(row)?));
        endpoint.family().put_text(&mut body, text, system);
        self.apply_flags(&mut body, endpoint, None);
        self.decide_endpoint(row, endpoint, false);
        Ok(body)
    }

    /// JSON Lines rows with a `messages` array.
    pub(super) fn messages_body(&mut self, row: &RawRow) -> Result<Map<String, Value>, InputError> {
        let endpoint = self.settle_endpoint(row, None)?;
        if !endpoint.family().takes_messages() {
            return Err(self
                .err(
                    row,
                    format!(
                        "a `messages` row needs the chat endpoint, but the job uses {}",
                        endpoint.path()
                    ),
                )
                .field("messages"));
        }
        let mut messages = match row.fields.get("messages") {
            Some(Value::Array(m)) => m.clone(),
            Some(other) => {
                return Err(self
                    .err(
                        row,
                        format!(
                            "must be an array of {{role, content}} objects, found {}",
                            json_type_name(other)
                        ),
                    )
                    .field("messages"))
            }
            None => unreachable!("messages_body is called for rows with a messages field"),
        };
        check_messages(&messages, "messages").map_err(|r| self.refused(row, r))?;
        // A row with its own system message is refused with `--system` (`check_flags_fit`).
        if let Some(t) = &self.settings.system {
            let has_system = messages
                .iter()
                .any(|m| m.get("role").and_then(Value::as_str) == Some("system"));
            if !has_system {
                let text = t.render(&row.fields).map_err(|e| {
                    self.err(row, format!("{} (in --system)", e.message))
                        .field(e.field)
                })?;
                messages.insert(0, message("system", text));
            }
        }
        let mut body = Map::new();
        body.insert("model".into(), Value::String(self.model(row)?));
        endpoint
            .family()
            .put_messages(&mut body, messages)
            .map_err(|r| self.refused(row, r))?;
        self.apply_flags(&mut body, endpoint, None);
        self.decide_endpoint(row, endpoint, false);
        Ok(body)
    }

    /// OpenAI Batch input lines: `{"custom_id", "method", "url", "body"}`.
    pub(super) fn batch_body(&mut self, row: &RawRow) -> Result<Map<String, Value>, InputError> {
        if self.settings.system.is_some() {
            return Err(self.err(
                row,
                "--system does not apply to Batch input lines (their body is sent as it is)",
            ));
        }
        if !row.fields.contains_key("custom_id") && self.settings.id_column.is_none() {
            return Err(self
                .err(row, "missing (a Batch input line needs one)")
                .field("custom_id"));
        }
        match row.fields.get("method") {
            None => {}
            Some(Value::String(m)) if m.eq_ignore_ascii_case("POST") => {}
            Some(other) => {
                return Err(self
                    .err(row, format!("must be \"POST\", found {other}"))
                    .field("method"))
            }
        }
        let url = match row.fields.get("url") {
            Some(Value::String(u)) => u.clone(),
            Some(other) => {
                return Err(self
                    .err(row, format!("must be a string, found {}", json_type_name(other)))
                    .field("url"))
            }
            None => unreachable!("batch_body is called for rows with a url field"),
        };
        let Some(endpoint) = Endpoint::from_batch_url(&url) else {
            return Err(self
                .err(
                    row,
                    format!(
                        "`{url}` is not an endpoint promptmill sends ({})",
                        Endpoint::batch_urls()
                    ),
                )
                .field("url"));
        };
        self.settle_endpoint(row, Some((endpoint, &url)))?;
        let mut body = match row.fields.get("body") {
            Some(Value::Object(b)) => b.clone(),
            Some(other) => {
                return Err(self
                    .err(
                        row,
                        format!("must be a JSON object, found {}", json_type_name(other)),
                    )
                    .field("body"))
            }
            None => unreachable!("batch_body is called for rows with a body field"),
        };
        let model_in_body = body.get("model").cloned();
        self.apply_flags(&mut body, endpoint, model_in_body.as_ref());
        match body.get("model") {
            Some(Value::String(m)) if !m.trim().is_empty() => {}
            Some(other) => {
                return Err(self
                    .err(
                        row,
                        format!("must be a model name, found {}", json_type_name(other)),
                    )
                    .field("body.model"))
            }
            None => {
                return Err(self
                    .err(row, "missing; add it to the body or pass --model")
                    .field("body.model"))
            }
        }
        endpoint
            .family()
            .check_body(&body)
            .map_err(|r| self.refused(row, r))?;
        self.decide_endpoint(row, endpoint, true);
        Ok(body)
    }
}
