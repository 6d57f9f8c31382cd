//! `--fields`: a short form of a schema for quick jobs, e.g.
//! `--fields 'title, bullets: list[str], price: number, tone: enum(formal|casual), note: str?'`.
//!
//! The grammar, whitespace free between tokens:
//!
//! ```text
//! fields := field ( "," field )*
//! field  := name ( ":" type )?              a name alone is a string
//! name   := [A-Za-z_][A-Za-z0-9_]*
//! type   := base "?"?                       "?": may be null
//! base   := "str" | "string" | "int" | "integer" | "number" | "float" | "bool" | "boolean"
//!         | "list[" type "]" | "enum(" word ( "|" word )* ")"
//! ```
//!
//! Every field is required and no other is allowed, so the schema may be sent `strict`.

use serde_json::{json, Map, Value};

/// The schema `--fields SPEC` stands for.
pub fn from_fields(spec: &str) -> Result<Value, String> {
    let mut properties = Map::new();
    for (i, field) in spec.split(',').enumerate() {
        let field = field.trim();
        let place = || format!("--fields: field {} (`{field}`)", i + 1);
        if field.is_empty() {
            return Err(format!(
                "{}: empty; fields are separated by single commas",
                place()
            ));
        }
        let (name, ty) = match field.split_once(':') {
            Some((n, t)) => (n.trim(), t.trim()),
            None => (field, "str"),
        };
        if !is_name(name) {
            return Err(format!(
                "{}: `{name}` is not a name (letters, digits and `_`, not starting with a digit)",
                place()
            ));
        }
        let schema = type_schema(ty).map_err(|e| format!("{}: {e}", place()))?;
        if properties.insert(name.to_string(), schema).is_some() {
            return Err(format!("{}: `{name}` is named twice", place()));
        }
    }
    let required: Vec<Value> = properties.keys().cloned().map(Value::String).collect();
    Ok(json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    }))
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The schema of one type of the grammar.
fn type_schema(ty: &str) -> Result<Value, String> {
    if let Some(base) = ty.strip_suffix('?') {
        let mut schema = type_schema(base.trim())?;
        if let Some(t) = schema.get("type").cloned() {
            schema["type"] = json!([t, "null"]);
        }
        if let Some(values) = schema.get_mut("enum").and_then(Value::as_array_mut) {
            values.push(Value::Null);
        }
        return Ok(schema);
    }
    if let Some(inner) = ty.strip_prefix("list[").and_then(|t| t.strip_suffix(']')) {
        return Ok(json!({"type": "array", "items": type_schema(inner.trim())?}));
    }
    if let Some(words) = ty.strip_prefix("enum(").and_then(|t| t.strip_suffix(')')) {
        let values: Vec<&str> = words.split('|').map(str::trim).collect();
        if values.iter().any(|w| w.is_empty()) {
            return Err(format!("`{ty}`: an enum's values are words separated by `|`"));
        }
        return Ok(json!({"type": "string", "enum": values}));
    }
    let name = match ty {
        "str" | "string" => "string",
        "int" | "integer" => "integer",
        "number" | "float" => "number",
        "bool" | "boolean" => "boolean",
        "" => return Err("no type after `:`".into()),
        other => {
            return Err(format!(
                "`{other}` is no type; one of str, int, number, bool, list[T], enum(a|b), T?"
            ))
        }
    };
    Ok(json!({"type": name}))
}
