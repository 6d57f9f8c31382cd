//! Whether a schema may be sent with `strict: true`. OpenAI's strict mode demands that every
//! object lists all its properties in `required` and sets `additionalProperties: false`; a
//! schema that does not is still sent (and checked here), only without `strict`.

use serde_json::Value;

/// Deepest nesting looked at; a deeper schema is sent without `strict`.
const MAX_DEPTH: usize = 32;

/// Whether every object of the schema closes its properties and requires them all.
pub(super) fn allowed(schema: &Value) -> bool {
    closed(schema, 0)
}

fn closed(node: &Value, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    let Some(map) = node.as_object() else {
        // `true`/`false` schemas, and anything else, have no objects in them.
        return true;
    };
    if let Some(props) = map.get("properties").and_then(Value::as_object) {
        if map.get("additionalProperties") != Some(&Value::Bool(false)) {
            return false;
        }
        let required: Vec<&str> = map
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !props.keys().all(|k| required.contains(&k.as_str())) {
            return false;
        }
        if !props.values().all(|p| closed(p, depth + 1)) {
            return false;
        }
    } else if is_object_type(map.get("type")) && map.get("additionalProperties") != Some(&Value::Bool(false))
    {
        return false;
    }
    let children = ["items", "not"].iter().filter_map(|k| map.get(*k));
    let lists = ["anyOf", "allOf", "oneOf", "prefixItems"]
        .iter()
        .filter_map(|k| map.get(*k).and_then(Value::as_array))
        .flatten();
    let defs = ["$defs", "definitions"]
        .iter()
        .filter_map(|k| map.get(*k).and_then(Value::as_object))
        .flat_map(|d| d.values());
    children.chain(lists).chain(defs).all(|c| closed(c, depth + 1))
}

fn is_object_type(t: Option<&Value>) -> bool {
    match t {
        Some(Value::String(s)) => s == "object",
        Some(Value::Array(a)) => a.iter().any(|t| t == "object"),
        _ => false,
    }
}
