//! Turning input rows into API requests.
//!
//! Three row shapes become a request body (the JSON sent as it is to the endpoint):
//! 1. fields + `--template` (and optionally `--system`): the rendered text is the user message
//!    (or the legacy completion's `prompt`);
//! 2. a ready prompt: a `prompt` field, or (JSON Lines) a `messages` array of `{role, content}`;
//! 3. an OpenAI Batch input line (`custom_id`, `method`, `url`, `body`): the body is sent as it is,
//!    except that `--model`, `--max-tokens`, `--temperature` and `--param` override its fields
//!    when they are given.
//!
//! This module also decides each row's id and validates what it can without the network: empty
//! prompts, unknown roles, a Batch line whose `url` is not the job's endpoint. It owns nothing
//! about files (see `input`) or sending (see `api`).
//!
//! This file owns the settings, a row's id, which shape it has, the job's endpoint and the
//! flags applied to a body; the bodies of each shape are `prepare/bodies.rs`'s, the checks of a
//! file before its rows `prepare/checks.rs`'s, and the context-window check
//! `prepare/context.rs`'s.

mod bodies;
mod checks;
mod context;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

use self::context::ContextWindows;
use crate::cache::key::Digest;
use promptmill_core::error::InputError;
pub use promptmill_core::family::max_tokens_key;
use promptmill_core::family::{Endpoint, Refusal};
use promptmill_core::input::{json_type_name, RawRow};
use promptmill_core::schema::Schema;
use promptmill_core::template::Template;

/// Request-shaping settings, validated by `config`.
#[derive(Debug, Clone, Default)]
pub struct RequestSettings {
    pub template: Option<Template>,
    pub system: Option<Template>,
    pub id_column: Option<String>,
    /// `--endpoint` when given; otherwise the first Batch line's `url`, or chat.
    pub endpoint: Option<Endpoint>,
    pub model: Option<String>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub params: BTreeMap<String, Value>,
    /// `--schema` / `--fields`: put into every body the way the family asks for it.
    pub schema: Option<Schema>,
}

/// A row ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub id: String,
    /// The request body, serialized once here and sent as these bytes.
    pub body: String,
    /// The body's digest for the response cache, taken from the body before it was written
    /// out; `None` unless the preparer was made [`Preparer::with_digests`].
    pub digest: Option<Digest>,
}

/// Prepares rows of one input file; remembers the endpoint Batch lines settled on.
pub struct Preparer {
    file: PathBuf,
    settings: RequestSettings,
    /// The endpoint in force and the line that decided it (0 when a flag or the default did).
    resolved: Option<(Endpoint, u64)>,
    /// Context windows to hold prompts to, when checked (see [`Preparer::check_context`]).
    context: Option<ContextWindows>,
    /// Whether each row's cache digest is taken (a run; not an estimate).
    digests: bool,
}

impl Preparer {
    pub fn new(file: PathBuf, settings: RequestSettings) -> Preparer {
        let resolved = settings.endpoint.map(|e| (e, 0));
        Preparer {
            file,
            settings,
            resolved,
            context: None,
            digests: false,
        }
    }

    /// Takes each prepared row's digest for the response cache ([`Prepared::digest`]).
    pub fn with_digests(mut self) -> Preparer {
        self.digests = true;
        self
    }

    /// Whether [`Preparer::with_digests`] was asked for.
    pub fn takes_digests(&self) -> bool {
        self.digests
    }

    /// The endpoint in force: decided by `--endpoint`, by the first Batch line, or chat.
    pub fn endpoint(&self) -> Endpoint {
        self.resolved.map(|(e, _)| e).unwrap_or(Endpoint::Chat)
    }

    /// The row's id, as far as it can be known even for a row that cannot be prepared.
    pub fn fallback_id(&self, row: &RawRow) -> String {
        self.row_id(row).unwrap_or_else(|_| row.number.to_string())
    }

    /// The field a row's id comes from: `--id-column`, else `id` or `custom_id` when present;
    /// `None` when the id is the row number.
    pub fn id_field<'a>(&'a self, row: &RawRow) -> Option<&'a str> {
        match &self.settings.id_column {
            Some(c) => Some(c),
            None if row.fields.contains_key("id") => Some("id"),
            None if row.fields.contains_key("custom_id") => Some("custom_id"),
            None => None,
        }
    }

    /// Turns one row into a request.
    pub fn prepare(&mut self, row: &RawRow) -> Result<Prepared, InputError> {
        let id = self.row_id(row)?;
        // The field that holds the prompt, for errors about it (none for a template's text).
        let text_field = (self.endpoint().family().text_fields().iter())
            .find(|f| row.fields.contains_key(**f))
            .copied();
        let (mut body, field) = if self.settings.template.is_some() {
            (self.text_body(row, "prompt")?, None)
        } else if row.fields.contains_key("body") && row.fields.contains_key("url") {
            (self.batch_body(row)?, Some("body"))
        } else if row.fields.contains_key("messages") {
            (self.messages_body(row)?, Some("messages"))
        } else if let Some(f) = text_field {
            (self.text_body(row, f)?, Some(f))
        } else {
            return Err(self.err(
                row,
                "no --template was given and the row has no `prompt`, `messages`, or Batch `body` field",
            ));
        };
        if let Some(schema) = &self.settings.schema {
            let family = self.endpoint().family();
            if family.schema_field().is_none() {
                return Err(self.err(
                    row,
                    format!("--schema: the {} endpoint has no structured output; chat, responses and messages have", family.name()),
                ));
            }
            family.put_schema(&mut body, schema);
        }
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let digest = self.digests.then(|| crate::cache::key::digest(&body));
        let body = serde_json::to_string(&Value::Object(body))
            .map_err(|e| self.err(row, format!("cannot encode the request: {e}")))?;
        self.fits_context(row, &model, &body, field)?;
        Ok(Prepared { id, body, digest })
    }

    fn err(&self, row: &RawRow, message: impl Into<String>) -> InputError {
        InputError::new(&self.file, row.line, message)
    }

    fn row_id(&self, row: &RawRow) -> Result<String, InputError> {
        let Some(name) = self.id_field(row) else {
            return Ok(row.number.to_string());
        };
        let id = match row.fields.get(name) {
            // Kept as written: ` a ` and `a` are two ids, and neither becomes the other.
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => {
                return Err(self
                    .err(
                        row,
                        format!(
                            "an id must be a string or a number, found {}",
                            json_type_name(other)
                        ),
                    )
                    .field(name))
            }
            _ => return Err(self.err(row, "missing (it names the row id)").field(name)),
        };
        // Only spaces is no id either, though spaces around one are part of it.
        if id.trim().is_empty() {
            return Err(self.err(row, "the row id is empty").field(name));
        }
        Ok(id)
    }

    /// Settles the job's endpoint on the first row that decides it and checks later rows agree.
    /// The endpoint this row goes to, given the job's so far; a Batch line names its own, which
    /// must agree with the job's. The job's endpoint is decided by the first row that is valid
    /// (see [`Preparer::decide_endpoint`]), so an invalid first line cannot set it.
    fn settle_endpoint(&self, row: &RawRow, batch: Option<(Endpoint, &str)>) -> Result<Endpoint, InputError> {
        match (self.resolved, batch) {
            (None, Some((e, _))) => Ok(e),
            (None, None) => Ok(Endpoint::Chat),
            (Some((e, _)), None) => Ok(e),
            (Some((e, _)), Some((mine, _))) if e == mine => Ok(e),
            (Some((e, from)), Some((_, url))) => {
                let origin = if from == 0 {
                    "set by --endpoint or by earlier rows".to_string()
                } else {
                    format!("set by line {from}")
                };
                Err(self
                    .err(row, format!("`{url}` differs from the job's endpoint {} ({origin}); one job sends to one endpoint", e.batch_url()))
                    .field("url"))
            }
        }
    }

    /// Records the endpoint of the first valid row as the job's.
    fn decide_endpoint(&mut self, row: &RawRow, endpoint: Endpoint, from_batch_line: bool) {
        if self.resolved.is_none() {
            self.resolved = Some((endpoint, if from_batch_line { row.line } else { 0 }));
        }
    }

    fn model(&self, row: &RawRow) -> Result<String, InputError> {
        self.settings
            .model
            .clone()
            .ok_or_else(|| self.err(row, "no model for this row: pass --model"))
    }

    /// Applies `--model`, `--max-tokens`, `--temperature` and `--param` to a body. For a Batch
    /// line they override the body's own fields; the model is set only when the flag is given.
    fn apply_flags(&self, body: &mut Map<String, Value>, endpoint: Endpoint, model_in_body: Option<&Value>) {
        if let Some(m) = &self.settings.model {
            body.insert("model".into(), Value::String(m.clone()));
        }
        if let Some(n) = self.settings.max_tokens {
            let model = body
                .get("model")
                .and_then(Value::as_str)
                .or(model_in_body.and_then(Value::as_str))
                .unwrap_or("");
            let key = endpoint.family().max_tokens_key(body, model);
            body.insert(key.into(), Value::from(n));
        }
        if let Some(t) = self.settings.temperature {
            body.insert("temperature".into(), Value::from(t));
        }
        for (k, v) in &self.settings.params {
            body.insert(k.clone(), v.clone());
        }
        endpoint.family().defaults(body);
    }

    /// A family's refusal as this row's error.
    fn refused(&self, row: &RawRow, refusal: Refusal) -> InputError {
        let err = self.err(row, refusal.message);
        match refusal.field {
            Some(f) => err.field(f),
            None => err,
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_errors;
#[cfg(test)]
mod tests_responses;
