//! Structured output: the format a request asks its answer to have ([`Format`], read from
//! chat's `response_format`, the Responses API's `text.format` and Anthropic's
//! `output_config.format` or forced tool), and the text the model "says" for it ([`say`]): the
//! JSON of an instance of the schema (made by `instance`), `{"answer": …}` for `json_object`, or
//! the normal text when no format is asked. [`Spoiled`] answers are the ways a structured answer
//! goes wrong, asked by a directive (`reply=invalid-json`, …) or a rate (`--rate-cut`, …): prose
//! around a fragment, JSON that breaks the schema, a text cut at the token limit, a refusal.
//! How each family puts the text on the wire (a `refusal` field, a `tool_use` block, …) is that
//! family's module's.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::instance::{self, resolve};
use super::reply::{self, Completion};
use super::wire::{self, BadRequest, Prompted};

/// What a refusing model says.
pub(crate) const REFUSAL: &str = "I'm sorry, I can't help with that.";

/// The form a request asks its answer to take.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Format {
    /// `json_object`: any JSON object.
    Object,
    /// `json_schema` (or a forced tool's `input_schema`): an instance of this schema.
    Schema(Box<Value>),
}

/// A successful answer gone wrong on purpose, in any text family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spoiled {
    /// `reply=invalid-json`: prose and a fragment of the JSON.
    InvalidJson,
    /// `reply=schema-break`: valid JSON that does not fit the schema.
    SchemaBreak,
    /// `reply=cut`: the text stops in the middle, on the token limit.
    Cut,
    /// `reply=refusal`: the model declines.
    Refusal,
}

/// `{"type": …, "json_schema": {"name": …, "schema": …}}` (chat) or the same flattened,
/// `{"type": …, "name": …, "schema": …}` (Responses, Anthropic).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct FormatSpec {
    #[serde(rename = "type")]
    kind: Option<String>,
    json_schema: Option<Named>,
    name: Option<String>,
    schema: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Named {
    name: Option<String>,
    schema: Option<Value>,
}

impl FormatSpec {
    /// Chat's `response_format`.
    pub fn chat(self) -> Result<Option<Format>, BadRequest> {
        const PARAM: &str = "response_format";
        if self.kind.as_deref() != Some("json_schema") {
            return self.kind_only(PARAM);
        }
        let named = self
            .json_schema
            .ok_or_else(|| missing("response_format.json_schema", PARAM))?;
        named
            .name
            .ok_or_else(|| missing("response_format.json_schema.name", PARAM))?;
        schema_format(named.schema, PARAM)
    }

    /// The Responses API's `text.format`.
    pub fn responses(self) -> Result<Option<Format>, BadRequest> {
        const PARAM: &str = "text.format";
        if self.kind.as_deref() != Some("json_schema") {
            return self.kind_only(PARAM);
        }
        self.name.ok_or_else(|| missing("text.format.name", PARAM))?;
        schema_format(self.schema, PARAM)
    }

    /// Anthropic's `output_config.format` (only `json_schema`, and no name).
    pub fn anthropic(self) -> Result<Option<Format>, BadRequest> {
        const PARAM: &str = "output_config";
        match self.kind.as_deref() {
            Some("json_schema") => schema_format(self.schema, PARAM),
            _ => Err(BadRequest::new(
                "output_config.format.type: Input should be 'json_schema'",
                Some(PARAM),
            )),
        }
    }

    /// A format without a schema: `text` (none) or `json_object`.
    fn kind_only(&self, param: &'static str) -> Result<Option<Format>, BadRequest> {
        match self.kind.as_deref() {
            Some("text") => Ok(None),
            Some("json_object") => Ok(Some(Format::Object)),
            None => Err(missing(&format!("{param}.type"), param)),
            Some(other) => Err(BadRequest::new(
                format!(
                    "Invalid value: '{other}'. Supported values are: 'text', 'json_object', and 'json_schema'."
                ),
                Some(param),
            )),
        }
    }
}

fn missing(what: &str, param: &'static str) -> BadRequest {
    BadRequest::new(format!("Missing required parameter: '{what}'."), Some(param))
}

/// A schema, which must be an object or a boolean; none is any JSON object.
pub(crate) fn schema_format(
    schema: Option<Value>,
    param: &'static str,
) -> Result<Option<Format>, BadRequest> {
    match schema {
        None => Ok(Some(Format::Object)),
        Some(schema @ (Value::Object(_) | Value::Bool(_))) => Ok(Some(Format::Schema(Box::new(schema)))),
        Some(_) => Err(BadRequest::new(
            format!("Invalid type for '{param}' schema: expected an object."),
            Some(param),
        )),
    }
}

/// The value a format asks for: an instance of the schema, or `{"answer": <the normal text>}`.
pub(crate) fn fitting(format: &Format, prompt: &str) -> Value {
    match format {
        Format::Object => {
            let text = reply::complete(prompt, None).text;
            Value::Object(Map::from_iter([("answer".to_string(), Value::String(text))]))
        }
        Format::Schema(schema) => instance::instance(schema, prompt),
    }
}

/// A value that does not fit `format` and that a validator reports: the first number or
/// integer property written as a string, else the first required property left out, else the
/// first typed property of another type, else the whole value of another type. Without a
/// schema: `{}`, an object with nothing in it.
pub(crate) fn misfit(format: Option<&Format>, prompt: &str) -> Value {
    let Some(Format::Schema(schema)) = format else {
        return Value::Object(Map::new());
    };
    let mut value = instance::instance(schema, prompt);
    let Some(root) = resolve(schema, schema).and_then(Value::as_object) else {
        return value;
    };
    let properties = root.get("properties").and_then(Value::as_object);
    if let (Some(properties), Value::Object(object)) = (properties, &mut value) {
        let numeric = properties.iter().find(|(name, sub)| {
            let kinds = resolve(schema, sub)
                .and_then(Value::as_object)
                .map(types)
                .unwrap_or_default();
            object.get(*name).is_some_and(Value::is_number)
                && kinds.iter().any(|k| matches!(*k, "number" | "integer"))
                && !kinds.contains(&"string")
        });
        if let Some((name, _)) = numeric {
            let text = object[name].to_string();
            object[name] = Value::String(text);
            return value;
        }
        let required = root.get("required").and_then(Value::as_array);
        let first = required.and_then(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .find(|n| object.contains_key(*n))
        });
        if let Some(name) = first {
            object.shift_remove(name);
            return value;
        }
        for (name, sub) in properties {
            let wrong = resolve(schema, sub)
                .and_then(Value::as_object)
                .and_then(other_type);
            if let (Some(wrong), Some(slot)) = (wrong, object.get_mut(name)) {
                *slot = wrong;
                return value;
            }
        }
    }
    other_type(root).unwrap_or(value)
}

/// The types a schema names (`type` as a string or an array).
fn types(schema: &Map<String, Value>) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(kind)) => vec![kind.as_str()],
        Some(Value::Array(kinds)) => kinds.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// A value of none of the types `schema` names (`None` when it names none).
fn other_type(schema: &Map<String, Value>) -> Option<Value> {
    let kinds = types(schema);
    if kinds.is_empty() {
        return None;
    }
    let candidates = [
        (Value::from(12), &["number", "integer"][..]),
        (Value::from("12"), &["string"][..]),
        (Value::Bool(true), &["boolean"][..]),
        (Value::Array(Vec::new()), &["array"][..]),
        (Value::Object(Map::new()), &["object"][..]),
        (Value::Null, &["null"][..]),
    ];
    candidates
        .into_iter()
        .find(|(_, names)| !names.iter().any(|n| kinds.contains(n)))
        .map(|(value, _)| value)
}

/// JSON as a model writes it on one line: `{"a": 1, "b": [true, null]}`. The spaces make the
/// mock's token count (words) grow with the answer.
pub(crate) fn render(value: &Value) -> String {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, Spaced);
    // Writing a `Value` into a Vec cannot fail; an empty text would be a bug here, not a panic.
    if serde::Serialize::serialize(value, &mut serializer).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

struct Spaced;

impl serde_json::ser::Formatter for Spaced {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
}

/// What the model says to `prompted`: its format's JSON (or the normal text without one), or
/// that answer spoiled. Its `words` are the usage's completion tokens.
pub(crate) fn say(prompted: &Prompted, spoil: Option<Spoiled>) -> Completion {
    let prompt = &prompted.prompt;
    let full = || match &prompted.format {
        None => reply::complete(prompt, None).text,
        Some(format) => render(&fitting(format, prompt)),
    };
    match spoil {
        None if prompted.format.is_none() => reply::complete(prompt, prompted.max_tokens),
        None => fitted(full(), prompted.max_tokens),
        Some(Spoiled::Refusal) => said(REFUSAL.to_string(), "stop", true),
        Some(Spoiled::InvalidJson) => {
            let json = match &prompted.format {
                None => render(&fitting(&Format::Object, prompt)),
                Some(_) => full(),
            };
            let fragment = head(&json, json.len() / 3);
            said(format!("Sure! Here is the JSON: {fragment}"), "stop", false)
        }
        Some(Spoiled::SchemaBreak) => said(render(&misfit(prompted.format.as_ref(), prompt)), "stop", false),
        Some(Spoiled::Cut) => {
            let text = full();
            said(head(&text, text.len() / 2).to_string(), "length", false)
        }
    }
}

/// `text` cut to `max_tokens` words when it has as many or more (a model that used its
/// whole budget was cut there, as [`reply::complete`] has it).
fn fitted(text: String, max_tokens: Option<u64>) -> Completion {
    let words = wire::word_count(&text);
    match max_tokens {
        Some(max) if words >= max => {
            let keep = usize::try_from(max).unwrap_or(usize::MAX);
            let end = text
                .split_whitespace()
                .take(keep)
                .last()
                .map_or(0, |w| w.as_ptr() as usize - text.as_ptr() as usize + w.len());
            said(text[..end].to_string(), "length", false)
        }
        _ => said(text, "stop", false),
    }
}

/// The first `at` bytes of `text` (fewer, to end on a character; at least one when it has any).
fn head(text: &str, at: usize) -> &str {
    let mut end = at.max(1).min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn said(text: String, finish_reason: &'static str, refused: bool) -> Completion {
    Completion {
        words: wire::word_count(&text),
        text,
        finish_reason,
        refused,
    }
}
