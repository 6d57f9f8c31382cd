//! The Parquet writer's nested columns: an input column that was a list, struct or map in a
//! Parquet input is written back with the same Parquet type, from the JSON value the row holds
//! (`input/parquet.rs` turned it into JSON: lists into arrays, structs and maps into objects).
//! This file owns the inverse: with the column's schema compiled by `parquet/shape.rs`, it
//! shreds each row's value into one buffer per leaf column with its repetition and definition
//! levels (the Dremel encoding), and writes those buffers as the leaf columns of a row group. A
//! column that `shape.rs` cannot compile is refused by [`NestedColumn::new`], and the caller
//! writes it as JSON text, as for a CSV or JSON Lines input.

use parquet::column::writer::ColumnWriter;
use parquet::data_type::ByteArray;
use parquet::file::writer::SerializedRowGroupWriter;
use parquet::schema::types::Type;
use serde_json::Value;

use super::columns::{float_of, write};
use super::shape::{compile, LeafKind, Node, Shape};
pub(super) use super::shape::{parse, renamed};

/// One top-level nested column: its compiled schema and one buffer per leaf column.
pub(super) struct NestedColumn {
    root: Node,
    leaves: Vec<Leaf>,
}

/// One leaf column's values for the row group being built, with their levels.
struct Leaf {
    values: Values,
    defs: Vec<i16>,
    reps: Vec<i16>,
    max_def: i16,
    max_rep: i16,
}

enum Values {
    Bool(Vec<bool>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Float(Vec<f32>),
    Double(Vec<f64>),
    Text(Vec<ByteArray>),
}

impl NestedColumn {
    /// The writer of a column typed `field` (a list, struct or map, or a repeated field), or
    /// why it cannot be written natively.
    pub(super) fn new(field: &Type) -> Result<NestedColumn, String> {
        let mut specs = Vec::new();
        let root = compile(field, 0, 0, &mut specs)?;
        if !matches!(
            root.shape,
            Shape::Struct(_) | Shape::List { .. } | Shape::Map { .. }
        ) {
            return Err(format!("`{}` is not a nested column", root.name));
        }
        let leaves = specs
            .into_iter()
            .map(|l| Leaf::new(l.kind, l.max_def, l.max_rep))
            .collect();
        Ok(NestedColumn { root, leaves })
    }

    /// Adds a row's value (`None` or null: no value).
    pub(super) fn push(&mut self, value: Option<&Value>) -> Result<(), String> {
        put(&self.root, value, 0, 0, &mut self.leaves)
    }

    /// Writes the buffered values as this column's leaf columns of `group`, and empties them.
    pub(super) fn write<W: std::io::Write + Send>(
        &mut self,
        group: &mut SerializedRowGroupWriter<'_, W>,
    ) -> anyhow::Result<()> {
        for leaf in &mut self.leaves {
            let Some(mut column) = group.next_column()? else {
                anyhow::bail!("the Parquet schema has fewer leaf columns than promptmill writes");
            };
            let defs = (leaf.max_def > 0).then_some(&leaf.defs[..]);
            let reps = (leaf.max_rep > 0).then_some(&leaf.reps[..]);
            match (&mut leaf.values, column.untyped()) {
                (Values::Bool(v), ColumnWriter::BoolColumnWriter(w)) => write(w, v, defs, reps),
                (Values::Int32(v), ColumnWriter::Int32ColumnWriter(w)) => write(w, v, defs, reps),
                (Values::Int64(v), ColumnWriter::Int64ColumnWriter(w)) => write(w, v, defs, reps),
                (Values::Float(v), ColumnWriter::FloatColumnWriter(w)) => write(w, v, defs, reps),
                (Values::Double(v), ColumnWriter::DoubleColumnWriter(w)) => write(w, v, defs, reps),
                (Values::Text(v), ColumnWriter::ByteArrayColumnWriter(w)) => write(w, v, defs, reps),
                _ => anyhow::bail!("a nested column's buffer does not match its type in the schema"),
            }?;
            column.close()?;
            leaf.defs.clear();
            leaf.reps.clear();
        }
        Ok(())
    }
}

impl Leaf {
    fn new(kind: LeafKind, max_def: i16, max_rep: i16) -> Leaf {
        let values = match kind {
            LeafKind::Bool => Values::Bool(Vec::new()),
            LeafKind::Int32 | LeafKind::UInt32 => Values::Int32(Vec::new()),
            LeafKind::Int64 | LeafKind::UInt64 => Values::Int64(Vec::new()),
            LeafKind::Float => Values::Float(Vec::new()),
            LeafKind::Double => Values::Double(Vec::new()),
            LeafKind::Text => Values::Text(Vec::new()),
        };
        Leaf {
            values,
            defs: Vec::new(),
            reps: Vec::new(),
            max_def,
            max_rep,
        }
    }

    fn levels(&mut self, def: i16, rep: i16) {
        if self.max_def > 0 {
            self.defs.push(def);
        }
        if self.max_rep > 0 {
            self.reps.push(rep);
        }
    }
}

/// Shreds `value` into the leaves of `node`, whose parent is defined up to level `def`; `rep` is
/// the repetition level the first value written here carries.
fn put(node: &Node, value: Option<&Value>, rep: i16, def: i16, leaves: &mut [Leaf]) -> Result<(), String> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        if !node.optional {
            return Err(format!(
                "`{}` is null, and the input's schema says it is required",
                node.name
            ));
        }
        return absent(node, rep, def, leaves);
    };
    let def = def + i16::from(node.optional);
    let wrong = |schema: &str| {
        let found = promptmill_core::input::json_type_name(value);
        format!("`{}` is {found} where the schema has {schema}", node.name)
    };
    match (&node.shape, value) {
        (Shape::Leaf(kind), _) => leaf(*kind, value, &mut leaves[node.leaves.start], rep, def)
            .ok_or_else(|| wrong(&format!("a {kind:?}"))),
        (Shape::Struct(fields), Value::Object(object)) => fields
            .iter()
            .try_for_each(|f| put(f, object.get(&f.name), rep, def, leaves)),
        (
            Shape::List {
                rep: level,
                item,
                wrapped,
            },
            Value::Array(items),
        ) => {
            let unwrapped;
            let items = if *wrapped {
                unwrapped =
                    unwrap(items).ok_or_else(|| wrong("a two-level list (read as a list of lists)"))?;
                &unwrapped
            } else {
                items
            };
            if items.is_empty() {
                return absent(node, rep, def, leaves);
            }
            items
                .iter()
                .enumerate()
                .try_for_each(|(i, v)| put(item, Some(v), if i == 0 { rep } else { *level }, def + 1, leaves))
        }
        (
            Shape::Map {
                rep: level,
                key,
                value: item,
            },
            Value::Object(entries),
        ) => {
            if entries.is_empty() {
                return absent(node, rep, def, leaves);
            }
            entries.iter().enumerate().try_for_each(|(i, (k, v))| {
                let r = if i == 0 { rep } else { *level };
                put(key, Some(&map_key(key, k)), r, def + 1, leaves)?;
                put(item, Some(v), r, def + 1, leaves)
            })
        }
        (Shape::Struct(_), _) => Err(wrong("a struct")),
        (Shape::List { .. }, _) => Err(wrong("a list")),
        (Shape::Map { .. }, _) => Err(wrong("a map")),
    }
}

/// The items of a two-level list as the reader gives them: the arrays it holds, end to end.
fn unwrap(outer: &[Value]) -> Option<Vec<Value>> {
    let mut items = Vec::new();
    for inner in outer {
        items.extend(inner.as_array()?.iter().cloned());
    }
    Some(items)
}

/// No value under `node` (null, or an empty list or map): every leaf gets the levels alone.
fn absent(node: &Node, rep: i16, def: i16, leaves: &mut [Leaf]) -> Result<(), String> {
    for leaf in &mut leaves[node.leaves.clone()] {
        leaf.levels(def, rep);
    }
    Ok(())
}

/// A map's key as the value its leaf takes: text as it is, other keys parsed from their text.
fn map_key(key: &Node, text: &str) -> Value {
    match key.shape {
        Shape::Leaf(LeafKind::Text) => Value::String(text.to_string()),
        _ => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string())),
    }
}

/// Appends one value to a leaf; `None` when the value is not of the leaf's kind.
fn leaf(kind: LeafKind, value: &Value, leaf: &mut Leaf, rep: i16, def: i16) -> Option<()> {
    match (&mut leaf.values, kind) {
        (Values::Bool(v), _) => v.push(value.as_bool()?),
        (Values::Int32(v), LeafKind::UInt32) => v.push(u32::try_from(value.as_u64()?).ok()? as i32),
        (Values::Int32(v), _) => v.push(i32::try_from(value.as_i64()?).ok()?),
        (Values::Int64(v), LeafKind::UInt64) => v.push(value.as_u64()? as i64),
        (Values::Int64(v), _) => v.push(value.as_i64()?),
        (Values::Float(v), _) => v.push(float_of(value)? as f32),
        (Values::Double(v), _) => v.push(float_of(value)?),
        (Values::Text(v), _) => v.push(ByteArray::from(value.as_str()?.as_bytes().to_vec())),
    }
    leaf.levels(def, rep);
    Some(())
}

#[cfg(test)]
#[path = "nested_tests.rs"]
mod tests;
