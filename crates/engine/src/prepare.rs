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

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

use promptmill_core::error::InputError;
pub use promptmill_core::family::max_tokens_key;
use promptmill_core::family::{check_messages, message, Endpoint, Refusal};
use promptmill_core::input::{json_type_name, RawRow};
use promptmill_core::models::PriceBook;
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
}

/// A row ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub id: String,
    /// The request body, serialized once here and sent as these bytes.
    pub body: String,
}

/// Prepares rows of one input file; remembers the endpoint Batch lines settled on.
pub struct Preparer {
    file: PathBuf,
    settings: RequestSettings,
    /// The endpoint in force and the line that decided it (0 when a flag or the default did).
    resolved: Option<(Endpoint, u64)>,
    /// Context windows to hold prompts to, when checked (see [`Preparer::check_context`]).
    context: Option<ContextWindows>,
}

/// The context windows of the models rows name, looked up once per model.
struct ContextWindows {
    book: PriceBook,
    known: HashMap<String, Option<u64>>,
}

impl ContextWindows {
    fn of(&mut self, model: &str) -> Option<u64> {
        if let Some(&known) = self.known.get(model) {
            return known;
        }
        // A malformed `--prices` entry is reported when the job is priced; here it only means
        // the window is unknown.
        let window = self.book.lookup(model).ok().and_then(|m| m.max_input_tokens);
        self.known.insert(model.to_string(), window);
        window
    }
}

impl Preparer {
    pub fn new(file: PathBuf, settings: RequestSettings) -> Preparer {
        let resolved = settings.endpoint.map(|e| (e, 0));
        Preparer {
            file,
            settings,
            resolved,
            context: None,
        }
    }

    /// Refuses rows whose prompt has more tokens than their model's context window, as the
    /// models in `book` (and the built-in table) know them: such a request can only fail.
    /// Prompts are counted only when their request is longer in bytes than the window in tokens
    /// (a token is at least one byte), so ordinary rows cost nothing here.
    pub fn check_context(mut self, book: PriceBook) -> Preparer {
        self.context = Some(ContextWindows {
            book,
            known: HashMap::new(),
        });
        self
    }

    /// The endpoint in force: decided by `--endpoint`, by the first Batch line, or chat.
    pub fn endpoint(&self) -> Endpoint {
        self.resolved.map(|(e, _)| e).unwrap_or(Endpoint::Chat)
    }

    /// Checks a CSV header against the template and `--id-column` before any row is read, so a
    /// misspelt field is one error at line 1, not one per row.
    pub fn check_columns(&self, columns: &[String]) -> Result<(), InputError> {
        let has = |name: &str| columns.iter().any(|c| c == name);
        let list = columns.join(", ");
        let mut needed: Vec<(&str, &str)> = Vec::new();
        if let Some(t) = &self.settings.template {
            needed.extend(t.fields().into_iter().map(|f| (f, "the template uses it")));
        }
        if let Some(t) = &self.settings.system {
            needed.extend(t.fields().into_iter().map(|f| (f, "the system template uses it")));
        }
        if let Some(c) = &self.settings.id_column {
            needed.push((c, "--id-column names it"));
        }
        let text_fields = self.endpoint().family().text_fields();
        if self.settings.template.is_none() && !text_fields.iter().any(|f| has(f)) {
            let names: Vec<String> = text_fields.iter().map(|f| format!("`{f}`")).collect();
            return Err(InputError::new(
                &self.file,
                1,
                format!(
                    "no --template was given and the header has no {} column (columns: {list})",
                    names.join(" or ")
                ),
            ));
        }
        for (field, why) in needed {
            if !has(field) {
                return Err(InputError::new(
                    &self.file,
                    1,
                    format!("the header has no such column, but {why} (columns: {list})"),
                )
                .field(field));
            }
        }
        Ok(())
    }

    /// Refuses a row whose own messages clash with a flag: `--template` would replace them, and
    /// `--system` cannot be added beside the row's own system message. These are settings that
    /// cannot apply to the input, not a bad row, so the caller refuses the whole file.
    pub fn check_flags_fit(&self, row: &RawRow) -> Result<(), String> {
        let Some(messages) = row.fields.get("messages") else {
            return Ok(());
        };
        let at = format!("{}:{}", self.file.display(), row.line);
        if self.settings.template.is_some() {
            return Err(format!(
                "--template renders a prompt from fields, but {at} has its own `messages`; \
                 drop --template or the messages field"
            ));
        }
        let has_system = messages.as_array().is_some_and(|m| {
            m.iter()
                .any(|m| m.get("role").and_then(Value::as_str) == Some("system"))
        });
        if self.settings.system.is_some() && has_system {
            return Err(format!(
                "--system adds a system message, but {at} has its own in `messages`; \
                 drop --system or the row's system message"
            ));
        }
        Ok(())
    }

    /// For an input without a header: the first template field that no row had, as a message
    /// that lists the fields the rows do have (`columns`, every field seen). One error for the
    /// file instead of one per row.
    pub fn absent_field(&self, columns: &[String]) -> Option<String> {
        let has = |name: &str| columns.iter().any(|c| c == name);
        let templates = [
            (&self.settings.template, "the template"),
            (&self.settings.system, "the system template"),
        ];
        for (template, which) in templates {
            let Some(t) = template else { continue };
            if let Some(field) = t.fields().into_iter().find(|f| !has(f)) {
                return Some(format!(
                    "{}: no row has the field `{field}` ({which} uses {{{field}}}); the rows have the fields: {}",
                    self.file.display(),
                    columns.join(", ")
                ));
            }
        }
        None
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
        let (body, field) = if self.settings.template.is_some() {
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
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let body = serde_json::to_string(&Value::Object(body))
            .map_err(|e| self.err(row, format!("cannot encode the request: {e}")))?;
        self.fits_context(row, &model, &body, field)?;
        Ok(Prepared { id, body })
    }

    fn fits_context(
        &mut self,
        row: &RawRow,
        model: &str,
        body: &str,
        field: Option<&str>,
    ) -> Result<(), InputError> {
        let Some(context) = &mut self.context else {
            return Ok(());
        };
        let Some(window) = context.of(model) else {
            return Ok(());
        };
        if body.len() as u64 <= window {
            return Ok(());
        }
        let tokens = self
            .endpoint()
            .family()
            .measure(body)
            .map_err(|e| self.err(row, format!("cannot count the request's tokens: {e}")))?
            .0
            .prompt_tokens;
        if tokens <= window {
            return Ok(());
        }
        let err = self.err(
            row,
            format!("the prompt is {tokens} tokens, more than {model}'s context window of {window} tokens"),
        );
        Err(match field {
            Some(f) => err.field(f),
            None => err,
        })
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

    /// Template rows and ready `prompt` rows: one text, sent as a user message or a prompt.
    /// `field`: the row field that holds the text when there is no template.
    fn text_body(&mut self, row: &RawRow, field: &str) -> Result<Map<String, Value>, InputError> {
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
    fn messages_body(&mut self, row: &RawRow) -> Result<Map<String, Value>, InputError> {
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
    fn batch_body(&mut self, row: &RawRow) -> Result<Map<String, Value>, InputError> {
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
