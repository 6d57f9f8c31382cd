//! `--schema` and `--fields`: the JSON Schema a job's answers must fit, and how an answer is
//! judged against it.
//!
//! A [`Schema`] is read once (a file, inline JSON, or the `--fields` short form of `fields.rs`),
//! compiled once with the maintained `jsonschema` crate (no network, no files: a `$ref` may only
//! point inside the schema), and shared by every row. Each family puts it into its requests in
//! its own way (`ApiFamily::put_schema`); what comes back is judged here, by one rule for every
//! family and both modes ([`Schema::judge`]): a refusal, an answer cut by the token limit, text
//! that is not JSON or JSON that breaks the schema (with the validator's paths, e.g.
//! `/price: "12" is not of type "number"`), or a valid object.

mod fields;
mod strict;

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

pub use fields::from_fields;

/// The largest schema file read: a schema is a page of JSON, not a data file.
const MAX_SCHEMA_BYTES: u64 = 1 << 20;

/// Most validation errors kept for one answer: the first ones say what is wrong.
const MAX_ERRORS: usize = 8;

/// A job's JSON Schema, compiled. Cheap to clone.
#[derive(Clone)]
pub struct Schema {
    inner: Arc<Inner>,
}

struct Inner {
    json: Value,
    name: String,
    strict: bool,
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema")
            .field("name", &self.inner.name)
            .field("strict", &self.inner.strict)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Schema {
    fn eq(&self, other: &Schema) -> bool {
        self.inner.json == other.inner.json
    }
}

/// What a run knows of a schema job: the schema, and how its bad answers are asked again (the
/// live loop and the batch collection both follow it).
#[derive(Debug, Clone)]
pub struct Structured {
    pub schema: Schema,
    /// `--schema-retries`: re-asks of an invalid or cut answer.
    pub retries: u32,
    /// `--schema-repair`: a live re-ask carries the bad answer and its errors.
    pub repair: bool,
}

/// What an answer of a schema job comes to. Only [`Judged::Valid`] is a done row.
#[derive(Debug, Clone, PartialEq)]
pub enum Judged {
    /// JSON that fits the schema: the parsed value.
    Valid(Value),
    /// The answer stopped on the token limit, so its JSON is cut.
    Truncated(String),
    /// The model declined to answer (its refusal text, or the stop reason).
    Refused(String),
    /// Not JSON, or JSON that breaks the schema: what is wrong, a line each.
    Invalid(Vec<String>),
}

impl Judged {
    /// The outcome's name, as `status`, the summary and the outputs show it.
    pub fn name(&self) -> &'static str {
        match self {
            Judged::Valid(_) => outcome::VALID,
            Judged::Truncated(_) => outcome::TRUNCATED,
            Judged::Refused(_) => outcome::REFUSED,
            Judged::Invalid(_) => outcome::INVALID,
        }
    }

    /// Whether asking again may give a valid answer (a refusal is the model's decision).
    pub fn retryable(&self) -> bool {
        matches!(self, Judged::Truncated(_) | Judged::Invalid(_))
    }

    /// What was wrong, for the row's error and the repair message.
    pub fn errors(&self) -> String {
        match self {
            Judged::Valid(_) => String::new(),
            Judged::Truncated(why) => format!("truncated: {why}"),
            Judged::Refused(why) => format!("refused: {why}"),
            Judged::Invalid(errors) => format!("invalid: {}", errors.join("; ")),
        }
    }
}

/// The names of the outcomes of a schema job's rows (stored in `rows.schema`).
pub mod outcome {
    pub const VALID: &str = "valid";
    pub const INVALID: &str = "invalid";
    pub const TRUNCATED: &str = "truncated";
    pub const REFUSED: &str = "refused";
    /// In the order `status` and the summary list them.
    pub const ALL: [&str; 4] = [VALID, INVALID, TRUNCATED, REFUSED];
}

impl Schema {
    /// `--schema ARG`: inline JSON when it starts with `{`, else the path of a JSON file.
    pub fn read(arg: &str) -> Result<Schema, String> {
        if arg.trim_start().starts_with('{') {
            let json = serde_json::from_str(arg).map_err(|e| format!("--schema: not JSON ({e})"))?;
            return Schema::new(json).map_err(|e| format!("--schema: {e}"));
        }
        let path = Path::new(arg);
        let json = read_file(path)?;
        Schema::new(json).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// A schema from its JSON: the root must describe an object (every family asks for one).
    pub fn new(json: Value) -> Result<Schema, String> {
        let Some(root) = json.as_object() else {
            return Err("a schema must be a JSON object".into());
        };
        if root.get("type").and_then(Value::as_str) != Some("object") {
            return Err(
                "the schema's root must be `\"type\": \"object\"` (the APIs answer an object)".into(),
            );
        }
        let validator = jsonschema::options()
            .build(&json)
            .map_err(|e| format!("not a usable JSON Schema: {e}"))?;
        let name = name_of(root.get("title").and_then(Value::as_str));
        let strict = strict::allowed(&json);
        Ok(Schema {
            inner: Arc::new(Inner {
                json,
                name,
                strict,
                validator,
            }),
        })
    }

    /// The schema as given.
    pub fn json(&self) -> &Value {
        &self.inner.json
    }

    /// The name sent with it (`json_schema.name`): its `title` made safe, else `output`.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Whether it may be sent with `strict: true`: every object lists all its properties as
    /// required and allows no others (what OpenAI's strict mode demands).
    pub fn strict(&self) -> bool {
        self.inner.strict
    }

    /// The top-level properties, in the schema's order: the output's `data.*` columns.
    pub fn properties(&self) -> Vec<String> {
        properties(&self.inner.json)
    }

    /// Judges an answer: its refusal (if the family read one), whether it stopped on the token
    /// limit, else its text parsed and validated.
    pub fn judge(&self, text: Option<&str>, refusal: Option<&str>, cut: bool) -> Judged {
        if let Some(why) = refusal {
            return Judged::Refused(why.to_string());
        }
        let text = text.unwrap_or("");
        let parsed = serde_json::from_str::<Value>(strip_fence(text));
        if cut {
            let why = match parsed {
                Ok(_) => "the answer stopped on the token limit".to_string(),
                Err(e) => format!("the answer stopped on the token limit; its JSON is cut ({e})"),
            };
            return Judged::Truncated(why);
        }
        let value = match parsed {
            Ok(v) => v,
            Err(e) if text.trim().is_empty() => {
                return Judged::Invalid(vec![format!("no text to parse ({e})")])
            }
            Err(e) => return Judged::Invalid(vec![format!("not JSON ({e})")]),
        };
        let errors: Vec<String> = self
            .inner
            .validator
            .iter_errors(&value)
            .take(MAX_ERRORS)
            .map(|e| {
                let path = e.instance_path().to_string();
                let path = if path.is_empty() { "/" } else { path.as_str() };
                format!("{path}: {e}")
            })
            .collect();
        if errors.is_empty() {
            Judged::Valid(value)
        } else {
            Judged::Invalid(errors)
        }
    }
}

/// The top-level properties of a schema's JSON, in its order (a stored job's schema, which the
/// exporter reads without compiling it).
pub fn properties(schema: &Value) -> Vec<String> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// The JSON value of an answer's text (inside a Markdown fence or not), if it is JSON.
pub fn parse_answer(text: &str) -> Option<Value> {
    serde_json::from_str(strip_fence(text)).ok()
}

/// A schema file's JSON, size bounded; errors name the file (and the line and column).
fn read_file(path: &Path) -> Result<Value, String> {
    use std::io::Read;
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("--schema {shown}: {e}"))?;
    let mut text = String::new();
    file.take(MAX_SCHEMA_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("--schema {shown}: {e}"))?;
    if text.len() as u64 > MAX_SCHEMA_BYTES {
        return Err(format!(
            "--schema {shown}: larger than 1 MiB; a schema is a page of JSON"
        ));
    }
    serde_json::from_str(&text).map_err(|e| format!("{shown}:{}:{}: not JSON ({e})", e.line(), e.column()))
}

/// A name the APIs take (`[A-Za-z0-9_-]`, at most 64): from the title, else `output`.
fn name_of(title: Option<&str>) -> String {
    let name: String = title
        .unwrap_or("")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let name = name.trim_matches('_').to_string();
    if name.is_empty() {
        "output".into()
    } else {
        name
    }
}

/// The JSON inside a Markdown code fence (```json … ```), which models without a strict mode
/// like to add; other text as it is.
fn strip_fence(text: &str) -> &str {
    let t = text.trim();
    let Some(rest) = t.strip_prefix("```") else {
        return t;
    };
    let Some(body) = rest.strip_suffix("```") else {
        return t;
    };
    let body = body.strip_prefix("json").unwrap_or(body);
    body.trim()
}

#[cfg(test)]
mod tests;
