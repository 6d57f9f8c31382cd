//! A deterministic instance of a JSON Schema: what a structured-output answer holds. The value
//! is a pure function of the schema and a seed (the prompt's hash), so the same request always
//! gets the same JSON, live or in a batch. Supported, loosely: `type` (a string, or an array of
//! which the first non-null is taken), `const`, `enum`, `object` (every property of
//! `properties` in the schema's order, then any other `required` name), `array` (`items`,
//! `prefixItems`, `minItems`/`maxItems`, 2 items by default), `string` (words of the prompt,
//! `minLength`/`maxLength`, a few `format`s), `integer`/`number` (`minimum`/`maximum`, their
//! exclusive forms, `multipleOf`), `boolean`, `null`, `anyOf`/`oneOf` (the first branch),
//! `allOf` (the parts' objects joined) and local `$ref`s (`#`, `#/$defs/…`, `#/definitions/…`).
//!
//! The work is bounded whatever the schema: values nest at most [`MAX_DEPTH`] deep, arrays
//! hold at most [`MAX_ITEMS`], strings at most [`MAX_STRING`] characters, and a whole instance
//! at most about [`MAX_NODES`] values; past [`LEAN_DEPTH`] only what the schema requires is
//! made (arrays at `minItems`, optional properties left out, `null` branches preferred), so a
//! recursive schema ends in a valid instance. Rendering the value as text, and spoiling it on
//! purpose, is `structured`'s job; the scalars (strings, numbers) are `instance/scalars.rs`'s.

use serde_json::{Map, Value};

mod scalars;

/// Deepest nesting of objects and arrays; deeper values are empty.
pub(crate) const MAX_DEPTH: u32 = 8;
/// From this nesting on, only what the schema requires is made.
const LEAN_DEPTH: u32 = 5;
/// Most recursive steps (nesting, `$ref`, `anyOf`, `allOf`) of one value: bounds the stack.
const MAX_LEVEL: u32 = 32;
/// Most items of an array, whatever its `minItems`.
pub(crate) const MAX_ITEMS: u64 = 16;
/// Items of an array whose schema does not say.
const DEFAULT_ITEMS: u64 = 2;
/// Values made before the rest of the instance is made lean, then empty.
pub(crate) const MAX_NODES: u32 = 2_000;
/// Longest string made, whatever its `minLength`.
pub(crate) const MAX_STRING: usize = 256;
/// Most `$ref` hops followed to reach a schema that is not a reference.
const MAX_HOPS: u32 = 16;

/// An instance of `schema`, deterministic in `schema` and `prompt`.
pub(crate) fn instance(schema: &Value, prompt: &str) -> Value {
    let words = words(prompt);
    let mut generator = Generator {
        root: schema,
        words: &words,
        nodes: 0,
    };
    generator.value(
        schema,
        Place {
            depth: 0,
            level: 0,
            seed: hash(prompt.as_bytes()),
        },
    )
}

/// The schema a `$ref` (or a chain of them) points to; `None` when it points nowhere.
pub(crate) fn resolve<'r>(root: &'r Value, mut schema: &'r Value) -> Option<&'r Value> {
    for _ in 0..MAX_HOPS {
        let Some(reference) = schema.get("$ref").and_then(Value::as_str) else {
            return Some(schema);
        };
        let pointer = reference.strip_prefix('#')?;
        schema = if pointer.is_empty() {
            root
        } else {
            root.pointer(pointer)?
        };
    }
    None
}

/// The prompt's words, without its directives and punctuation: what strings are made of.
fn words(prompt: &str) -> Vec<&str> {
    prompt
        .split_whitespace()
        .filter(|w| !w.contains("[[mock:") && !w.contains("]]"))
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty())
        .take(64)
        .collect()
}

/// FNV-1a, then a SplitMix64 finish: stable across builds and platforms.
fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Where a value is made: its nesting, its recursion and its own seed.
#[derive(Clone, Copy)]
struct Place {
    depth: u32,
    level: u32,
    seed: u64,
}

impl Place {
    /// A value nested under this one, under `key` (a property name or an index).
    fn child(self, key: &[u8]) -> Place {
        Place {
            depth: self.depth + 1,
            level: self.level + 1,
            seed: mix(self.seed ^ hash(key)),
        }
    }

    /// The same value, one recursive step on (a `$ref`, a branch, a merge).
    fn step(self) -> Place {
        Place {
            level: self.level + 1,
            ..self
        }
    }
}

struct Generator<'a> {
    root: &'a Value,
    words: &'a [&'a str],
    /// Values made so far (see [`MAX_NODES`]).
    nodes: u32,
}

impl<'a> Generator<'a> {
    fn value<'r>(&mut self, schema: &'r Value, at: Place) -> Value
    where
        'a: 'r,
    {
        self.spend(1);
        if at.level >= MAX_LEVEL {
            return Value::Null;
        }
        let Some(schema) = resolve(self.root, schema) else {
            return Value::Null;
        };
        let map = match schema {
            Value::Object(map) => map,
            Value::Bool(false) => return Value::Null,
            _ => return scalars::string(&Map::new(), at.seed, self.words),
        };
        if let Some(constant) = map.get("const") {
            return self.copy(constant);
        }
        if let Some(choices) = map
            .get("enum")
            .and_then(Value::as_array)
            .filter(|e| !e.is_empty())
        {
            return self.copy(&choices[(at.seed % choices.len() as u64) as usize]);
        }
        if let Some(parts) = map
            .get("allOf")
            .and_then(Value::as_array)
            .filter(|p| !p.is_empty())
        {
            return self.all_of(map, parts, at);
        }
        self.plain(map, at)
    }

    /// A value of `schema`, its `allOf` aside.
    fn plain<'r>(&mut self, map: &'r Map<String, Value>, at: Place) -> Value
    where
        'a: 'r,
    {
        let branches = map.get("anyOf").or_else(|| map.get("oneOf"));
        if let Some(branches) = branches.and_then(Value::as_array).filter(|b| !b.is_empty()) {
            let branch = self.branch(branches, self.lean(at));
            return self.value(branch, at.step());
        }
        match kind(map, self.lean(at)) {
            "object" => self.object(map, at),
            "array" => self.array(map, at),
            "integer" => scalars::integer(map, at.seed),
            "number" => scalars::number(map, at.seed),
            "boolean" => Value::Bool(at.seed & 1 == 0),
            "null" => Value::Null,
            _ => scalars::string(map, at.seed, self.words),
        }
    }

    /// `allOf`: a value of each part (and of the schema itself when it has a type or
    /// properties of its own), objects joined key by key; otherwise the first value.
    fn all_of<'r>(&mut self, map: &'r Map<String, Value>, parts: &'r [Value], at: Place) -> Value
    where
        'a: 'r,
    {
        let own = ["type", "properties", "anyOf", "oneOf"]
            .iter()
            .any(|k| map.contains_key(*k));
        let mut joined = own.then(|| self.plain(map, at.step()));
        for part in parts {
            let value = self.value(part, at.step());
            match (&mut joined, value) {
                (None, value) => joined = Some(value),
                (Some(Value::Object(have)), Value::Object(more)) => {
                    for (key, value) in more {
                        have.entry(key).or_insert(value);
                    }
                }
                (Some(_), _) => {}
            }
        }
        joined.unwrap_or(Value::Null)
    }

    /// Counts `units` of work (a value, or 64 bytes of a copied name or constant).
    fn spend(&mut self, units: usize) {
        self.nodes = self
            .nodes
            .saturating_add(u32::try_from(units).unwrap_or(u32::MAX));
    }

    /// Whether the instance is as large as it may get: no more values are added.
    fn full(&self) -> bool {
        self.nodes >= MAX_NODES.saturating_mul(2)
    }

    /// A copy of a `const` or `enum` value, paid for; `null` once too large to copy.
    fn copy(&mut self, value: &Value) -> Value {
        let mut room = i64::from(MAX_NODES);
        weigh(value, &mut room);
        if room < 0 {
            return Value::Null;
        }
        self.spend((i64::from(MAX_NODES) - room) as usize);
        value.clone()
    }

    /// Whether only what is required is made here.
    fn lean(&self, at: Place) -> bool {
        at.depth >= LEAN_DEPTH || self.nodes >= MAX_NODES
    }

    /// The first branch; when lean, the first that is `null` or no object or array.
    fn branch<'r>(&self, branches: &'r [Value], lean: bool) -> &'r Value
    where
        'a: 'r,
    {
        let cheap = |b: &&'r Value| {
            let kind = resolve(self.root, b)
                .and_then(Value::as_object)
                .map_or("string", |m| kind(m, true));
            !matches!(kind, "object" | "array")
        };
        let first = &branches[0];
        if lean {
            let null = branches
                .iter()
                .find(|b| resolve(self.root, b).and_then(|s| s.get("type")) == Some(&Value::from("null")));
            null.or_else(|| branches.iter().find(cheap)).unwrap_or(first)
        } else {
            first
        }
    }

    fn object(&mut self, schema: &Map<String, Value>, at: Place) -> Value {
        let mut out = Map::new();
        if at.depth >= MAX_DEPTH || self.full() {
            return Value::Object(out);
        }
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let empty = Map::new();
        let properties = schema
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        for (name, sub) in properties {
            if self.full() {
                break;
            }
            if self.lean(at) && !required.contains(&name.as_str()) {
                continue;
            }
            self.spend(name.len() / 64);
            let value = self.value(sub, at.child(name.as_bytes()));
            out.insert(name.clone(), value);
        }
        for name in required {
            if !out.contains_key(name) && !self.full() {
                self.spend(1 + name.len() / 64);
                let value = scalars::string(&Map::new(), at.child(name.as_bytes()).seed, self.words);
                out.insert(name.to_string(), value);
            }
        }
        Value::Object(out)
    }

    fn array(&mut self, schema: &Map<String, Value>, at: Place) -> Value {
        if at.depth >= MAX_DEPTH || self.full() {
            return Value::Array(Vec::new());
        }
        let count = |key: &str| schema.get(key).and_then(Value::as_u64);
        let min = count("minItems").unwrap_or(0);
        let max = count("maxItems").unwrap_or(u64::MAX);
        let wanted = if self.lean(at) {
            min
        } else {
            DEFAULT_ITEMS.max(min)
        };
        let prefix = schema.get("prefixItems").and_then(Value::as_array);
        let items = schema.get("items");
        let n = match (items, prefix) {
            // `items: false` after `prefixItems`: no item beyond the prefix.
            (Some(Value::Bool(false)), Some(prefix)) => wanted.min(prefix.len() as u64),
            _ => wanted,
        };
        let n = n.min(max).min(MAX_ITEMS);
        let any = Value::Bool(true);
        let mut out = Vec::with_capacity(n as usize);
        for i in 0..n as usize {
            let sub = match (prefix.and_then(|p| p.get(i)), items) {
                (Some(sub), _) => sub,
                // Draft 4's tuple form: `items` as an array.
                (None, Some(Value::Array(tuple))) => tuple.get(i).unwrap_or(&any),
                (None, Some(sub)) => sub,
                (None, None) => &any,
            };
            out.push(self.value(sub, at.child(&(i as u64).to_le_bytes())));
        }
        Value::Array(out)
    }
}

/// Takes `value`'s size (a unit a value, one per 64 bytes of text) from `room`, stopping once
/// it is below zero.
fn weigh(value: &Value, room: &mut i64) {
    *room -= 1;
    match value {
        Value::String(s) => *room -= (s.len() / 64) as i64,
        Value::Array(items) => {
            for item in items {
                if *room < 0 {
                    return;
                }
                weigh(item, room);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                if *room < 0 {
                    return;
                }
                *room -= (key.len() / 64) as i64;
                weigh(item, room);
            }
        }
        _ => {}
    }
}

/// The type a value is made as: `type` (when an array, its first non-null, or `null` when
/// lean), else what the keywords suggest, else `string`.
fn kind(schema: &Map<String, Value>, lean: bool) -> &str {
    match schema.get("type") {
        Some(Value::String(kind)) => kind,
        Some(Value::Array(kinds)) => {
            let kinds: Vec<&str> = kinds.iter().filter_map(Value::as_str).collect();
            if lean && kinds.contains(&"null") {
                return "null";
            }
            kinds
                .iter()
                .find(|k| **k != "null")
                .or(kinds.first())
                .copied()
                .unwrap_or("string")
        }
        _ => {
            let has = |keys: &[&str]| keys.iter().any(|k| schema.contains_key(*k));
            if has(&["properties", "required", "additionalProperties"]) {
                "object"
            } else if has(&["items", "prefixItems", "minItems", "maxItems"]) {
                "array"
            } else if has(&[
                "minimum",
                "maximum",
                "exclusiveMinimum",
                "exclusiveMaximum",
                "multipleOf",
            ]) {
                "number"
            } else {
                "string"
            }
        }
    }
}

#[cfg(test)]
#[path = "tests_instance.rs"]
mod tests;
