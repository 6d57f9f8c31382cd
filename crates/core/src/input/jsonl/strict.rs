//! Parsing one JSON line without forgiving what `serde_json` forgives.
//!
//! `serde_json` keeps the last of two equal keys in an object (`{"id":"a","id":"b"}` is
//! `{"id":"b"}`), which would change a row without a word, and it refuses a number out of `f64`'s
//! range (`1e400`) even in a field no template uses. This parser builds the same [`Value`] in the
//! same single pass, but fails on a repeated key at any depth; and when a number is out of range,
//! it parses the line again field by field and keeps each field holding such a number as the text
//! it was written with (a JSON string), so the rest of the row stays usable. It knows nothing
//! about rows, lines or files: `jsonl.rs` turns what it finds into row errors.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};

/// Why a line did not parse.
#[derive(Debug)]
pub(super) enum StrictError {
    /// A key appears twice in one object (the key).
    Duplicate(String),
    /// Not valid JSON, as `serde_json` says.
    Json(serde_json::Error),
}

/// The key `serde_json` uses to pass a number's text when its `arbitrary_precision` feature is on.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Parses `text` as one JSON value, refusing repeated keys.
pub(super) fn parse(text: &str) -> Result<Value, StrictError> {
    match parse_value(text) {
        // Not an object of fields: the first error is the one to report.
        Err(StrictError::Json(e)) if is_out_of_range(&e) => {
            parse_fields_keeping_text(text).map_err(|slow| match slow {
                StrictError::Duplicate(_) => slow,
                StrictError::Json(_) => StrictError::Json(e),
            })
        }
        other => other,
    }
}

fn parse_value(text: &str) -> Result<Value, StrictError> {
    let duplicate = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = Strict {
        duplicate: &duplicate,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    match (parsed, duplicate.into_inner()) {
        (_, Some(key)) => Err(StrictError::Duplicate(key)),
        (Ok(v), None) => Ok(v),
        (Err(e), None) => Err(StrictError::Json(e)),
    }
}

fn is_out_of_range(e: &serde_json::Error) -> bool {
    e.to_string().starts_with("number out of range")
}

/// The slow path for a line holding a number out of range: an object whose fields are parsed one
/// by one; a field that holds such a number is kept as its source text.
fn parse_fields_keeping_text(text: &str) -> Result<Value, StrictError> {
    let duplicate = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let raw = RawFields {
        duplicate: &duplicate,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    let raw = match (raw, duplicate.into_inner()) {
        (_, Some(key)) => return Err(StrictError::Duplicate(key)),
        (Ok(raw), None) => raw,
        (Err(e), None) => return Err(StrictError::Json(e)),
    };
    let mut fields = Map::with_capacity(raw.len());
    for (key, value) in raw {
        let value = match parse_value(value.get()) {
            Ok(v) => v,
            Err(StrictError::Json(e)) if is_out_of_range(&e) => Value::String(value.get().to_string()),
            Err(e) => return Err(e),
        };
        fields.insert(key, value);
    }
    Ok(Value::Object(fields))
}

/// A [`Value`] whose objects may not repeat a key; the first repeated key is put in `duplicate`.
#[derive(Clone, Copy)]
struct Strict<'a> {
    duplicate: &'a RefCell<Option<String>>,
}

impl Strict<'_> {
    fn repeated<E: de::Error>(&self, key: String) -> E {
        let e = E::custom(format!("field `{key}` appears twice"));
        self.duplicate.borrow_mut().get_or_insert(key);
        e
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let Some(first) = map.next_key::<String>()? else {
            return Ok(Value::Object(Map::new()));
        };
        if first == NUMBER_TOKEN {
            // Only with `arbitrary_precision`: a number, passed as its text.
            let text: String = map.next_value()?;
            return text
                .parse::<Number>()
                .map(Value::Number)
                .map_err(de::Error::custom);
        }
        let mut object = Map::new();
        let mut key = Some(first);
        while let Some(k) = key {
            let value = map.next_value_seed(self)?;
            match object.entry(k) {
                Entry::Occupied(o) => return Err(self.repeated(o.key().clone())),
                Entry::Vacant(v) => {
                    v.insert(value);
                }
            }
            key = map.next_key::<String>()?;
        }
        Ok(Value::Object(object))
    }
}

/// A top-level object as its keys and the raw text of each value; a repeated key is refused.
struct RawFields<'a> {
    duplicate: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for RawFields<'_> {
    type Value = Vec<(String, &'de RawValue)>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RawFields<'_> {
    type Value = Vec<(String, &'de RawValue)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields: Vec<(String, &'de RawValue)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value: &'de RawValue = map.next_value()?;
            if fields.iter().any(|(k, _)| *k == key) {
                return Err(Strict {
                    duplicate: self.duplicate,
                }
                .repeated(key));
            }
            fields.push((key, value));
        }
        Ok(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn duplicate_of(text: &str) -> Option<String> {
        match parse(text) {
            Err(StrictError::Duplicate(k)) => Some(k),
            _ => None,
        }
    }

    #[test]
    fn parses_what_serde_json_parses() {
        let text = r#"{"a":1,"b":[true,null,-2,3.5,"x"],"c":{"d":"e"},"u":18446744073709551615}"#;
        assert_eq!(parse(text).unwrap(), serde_json::from_str::<Value>(text).unwrap());
    }

    #[test]
    fn keeps_the_order_of_fields() {
        let v = parse(r#"{"z":1,"a":2}"#).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["z", "a"]);
    }

    #[test]
    fn a_repeated_key_is_refused_at_any_depth() {
        assert_eq!(duplicate_of(r#"{"id":"a","id":"b"}"#).as_deref(), Some("id"));
        assert_eq!(
            duplicate_of(r#"{"messages":[{"role":"user","role":"system"}]}"#).as_deref(),
            Some("role")
        );
        assert_eq!(duplicate_of(r#"{"x":1e400,"x":2}"#).as_deref(), Some("x"));
        assert_eq!(duplicate_of(r#"{"a":{"b":1},"b":1}"#), None);
    }

    #[test]
    fn a_number_out_of_range_keeps_its_text() {
        let line = r#"{"prompt":"hi","n":1e400,"deep":{"m": -1E999}}"#;
        let v = parse(line).unwrap();
        if v["n"].is_number() {
            // serde_json with `arbitrary_precision` keeps every number as a number, with its
            // text (as serde_json writes it): none is out of range, and the line is as it parses.
            assert_eq!(v, serde_json::from_str::<Value>(line).unwrap());
        } else {
            // Otherwise each field that holds one is kept as the text written.
            assert_eq!(
                v,
                json!({"prompt": "hi", "n": "1e400", "deep": "{\"m\": -1E999}"})
            );
        }
    }

    #[test]
    fn invalid_json_stays_an_error() {
        assert!(matches!(parse(r#"{"a":1"#), Err(StrictError::Json(e)) if e.is_eof()));
        assert!(matches!(parse(r#"{"a":1} x"#), Err(StrictError::Json(_))));
        assert!(matches!(parse(r#"[1e400"#), Err(StrictError::Json(_))));
    }
}
