//! The Parquet writer's nested columns: an input column that was a list, struct or map in a
//! Parquet input is written back with the same Parquet type, from the JSON value the row holds
//! (`input/parquet.rs` turned it into JSON: lists into arrays, structs and maps into objects).
//! This file owns the inverse: it compiles the column's schema tree into a [`Node`] tree that
//! says which JSON shape goes where, then shreds each row's value into one buffer per leaf column
//! with its repetition and definition levels (the Dremel encoding), and writes those buffers as
//! the leaf columns of a row group. Lists follow the reader's rules (the standard three-level
//! form, the legacy two-level forms, and a repeated field outside any list, which is a list of
//! its own). Leaves may be booleans, signed and unsigned integers, floats, doubles and text; a
//! column with another kind of leaf (a date, a decimal, bytes of a fixed length …) cannot be
//! rebuilt from its JSON exactly, so [`NestedColumn::new`] refuses it and the caller writes it
//! as JSON text, as for a CSV or JSON Lines input.

use std::ops::Range;

use parquet::basic::{ConvertedType, LogicalType, Repetition, Type as Physical};
use parquet::column::writer::ColumnWriter;
use parquet::data_type::ByteArray;
use parquet::file::writer::SerializedRowGroupWriter;
use parquet::schema::types::Type;
use serde_json::Value;

use super::columns::{float_of, write};

/// One top-level nested column: its compiled schema and one buffer per leaf column.
pub(super) struct NestedColumn {
    root: Node,
    leaves: Vec<Leaf>,
}

/// A node of the column's schema, as the JSON value it takes.
struct Node {
    /// The field's name, for messages.
    name: String,
    /// Whether a null stops here (the field is optional): it adds one definition level.
    optional: bool,
    shape: Shape,
    /// The leaf columns under this node, in schema order.
    leaves: Range<usize>,
}

enum Shape {
    Leaf(LeafKind),
    /// A JSON object: each field by name.
    Struct(Vec<Node>),
    /// A JSON array: the repeated level (which adds a definition level and a repetition level,
    /// `rep`), and the node each item goes to. `wrapped`: the `parquet` crate's record reader
    /// gives a legacy two-level list (whose repeated field is the item) as an array holding one
    /// array of the items (`[[1, 2]]`, and `[]` when empty), so that is what the row holds.
    List {
        rep: i16,
        item: Box<Node>,
        wrapped: bool,
    },
    /// A JSON object of the entries of a repeated key-value group; keys are the object's keys.
    Map {
        rep: i16,
        key: Box<Node>,
        value: Box<Node>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeafKind {
    Bool,
    Int32,
    UInt32,
    Int64,
    UInt64,
    Float,
    Double,
    Text,
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
        let mut leaves = Vec::new();
        let root = compile(field, 0, 0, &mut leaves)?;
        if !matches!(
            root.shape,
            Shape::Struct(_) | Shape::List { .. } | Shape::Map { .. }
        ) {
            return Err(format!("`{}` is not a nested column", root.name));
        }
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

/// `field` renamed: the output may prefix an input column's name (`input.`).
pub(super) fn renamed(field: &Type, name: &str) -> parquet::errors::Result<Type> {
    let info = field.get_basic_info();
    let logical = info.logical_type_ref().cloned();
    let id = info.has_id().then(|| info.id());
    if field.is_primitive() {
        return Type::primitive_type_builder(name, field.get_physical_type())
            .with_repetition(info.repetition())
            .with_converted_type(info.converted_type())
            .with_logical_type(logical)
            .with_id(id)
            .build();
    }
    Type::group_type_builder(name)
        .with_repetition(info.repetition())
        .with_converted_type(info.converted_type())
        .with_logical_type(logical)
        .with_fields(field.get_fields().to_vec())
        .with_id(id)
        .build()
}

/// The schema text `input/parquet.rs` records, parsed back into the column's field.
pub(super) fn parse(text: &str) -> Result<Type, String> {
    let message = parquet::schema::parser::parse_message_type(text).map_err(|e| e.to_string())?;
    match message.get_fields() {
        [field] => Ok(field.as_ref().clone()),
        _ => Err("the recorded schema does not hold exactly one column".into()),
    }
}

/// Compiles `field`, whose parent is at definition level `def` and repetition level `rep`.
fn compile(field: &Type, def: i16, rep: i16, leaves: &mut Vec<Leaf>) -> Result<Node, String> {
    let info = field.get_basic_info();
    let name = field.name().to_string();
    let repetition = if info.has_repetition() {
        info.repetition()
    } else {
        Repetition::REQUIRED
    };
    if repetition == Repetition::REPEATED {
        // A repeated field outside a list: a required list of required items of its own type.
        let start = leaves.len();
        let item = compile_as(field, false, def + 1, rep + 1, leaves)?;
        let range = start..leaves.len();
        return Ok(Node {
            name,
            optional: false,
            shape: Shape::List {
                rep: rep + 1,
                item: Box::new(item),
                wrapped: false,
            },
            leaves: range,
        });
    }
    compile_as(field, repetition == Repetition::OPTIONAL, def, rep, leaves)
}

/// Compiles `field` as a node that is `optional` or not, whatever its own repetition says.
fn compile_as(
    field: &Type,
    optional: bool,
    def: i16,
    rep: i16,
    leaves: &mut Vec<Leaf>,
) -> Result<Node, String> {
    let name = field.name().to_string();
    let def = def + i16::from(optional);
    let start = leaves.len();
    let shape = if field.is_primitive() {
        let kind = leaf_kind(field)
            .ok_or_else(|| format!("the leaf `{name}` is of a type promptmill writes as text"))?;
        leaves.push(Leaf::new(kind, def, rep));
        Shape::Leaf(kind)
    } else {
        match field.get_basic_info().converted_type() {
            ConvertedType::LIST => compile_list(field, def, rep, leaves)?,
            ConvertedType::MAP | ConvertedType::MAP_KEY_VALUE => compile_map(field, def, rep, leaves)?,
            _ => {
                let fields = field
                    .get_fields()
                    .iter()
                    .map(|f| compile(f, def, rep, leaves))
                    .collect::<Result<_, _>>()?;
                Shape::Struct(fields)
            }
        }
    };
    Ok(Node {
        name,
        optional,
        shape,
        leaves: start..leaves.len(),
    })
}

/// A LIST group: its one repeated child is the item itself (the legacy two-level forms), or
/// holds the item as its one field (the standard form), by the reader's rules.
fn compile_list(field: &Type, def: i16, rep: i16, leaves: &mut Vec<Leaf>) -> Result<Shape, String> {
    let [repeated] = field.get_fields() else {
        return Err(format!("the list `{}` does not have one field", field.name()));
    };
    if repeated.get_basic_info().repetition() != Repetition::REPEATED {
        return Err(format!("the list `{}` has no repeated field", field.name()));
    }
    let (def, rep) = (def + 1, rep + 1);
    let wrapped = is_item(repeated);
    let item = if wrapped {
        compile_as(repeated, false, def, rep, leaves)?
    } else {
        compile(&repeated.get_fields()[0], def, rep, leaves)?
    };
    Ok(Shape::List {
        rep,
        item: Box::new(item),
        wrapped,
    })
}

/// Whether a list's repeated field is the item itself (see the Parquet format's
/// backward-compatibility rules, as the `parquet` crate's record reader applies them).
fn is_item(repeated: &Type) -> bool {
    let is_list = repeated.is_group() && repeated.get_basic_info().converted_type() == ConvertedType::LIST;
    let single_repeated = repeated.is_group()
        && matches!(repeated.get_fields(), [f] if f.get_basic_info().repetition() == Repetition::REPEATED);
    if is_list || single_repeated {
        return false;
    }
    repeated.is_primitive()
        || repeated.get_fields().len() > 1
        || repeated.name() == "array"
        || repeated.name().ends_with("_tuple")
}

/// A MAP group: one repeated group of a key and a value.
fn compile_map(field: &Type, def: i16, rep: i16, leaves: &mut Vec<Leaf>) -> Result<Shape, String> {
    let entries = match field.get_fields() {
        [kv] if kv.is_group() && kv.get_basic_info().repetition() == Repetition::REPEATED => kv,
        _ => {
            return Err(format!(
                "the map `{}` has no repeated key-value group",
                field.name()
            ))
        }
    };
    let [key, value] = entries.get_fields() else {
        return Err(format!(
            "the map `{}` does not have a key and a value",
            field.name()
        ));
    };
    let (def, rep) = (def + 1, rep + 1);
    let key = compile(key, def, rep, leaves)?;
    if !matches!(key.shape, Shape::Leaf(_)) || key.optional {
        return Err(format!(
            "the map `{}` has a key that is not a required value",
            field.name()
        ));
    }
    let value = compile(value, def, rep, leaves)?;
    Ok(Shape::Map {
        rep,
        key: Box::new(key),
        value: Box::new(value),
    })
}

/// The leaf kinds whose JSON (as `input/parquet.rs` writes it) gives back the same value.
fn leaf_kind(field: &Type) -> Option<LeafKind> {
    let info = field.get_basic_info();
    let logical = info.logical_type_ref();
    let converted = info.converted_type();
    let plain = logical.is_none() && converted == ConvertedType::NONE;
    let int = |signed: bool| match logical {
        Some(LogicalType::Integer(t)) => t.is_signed == signed,
        Some(_) => false,
        None => match converted {
            ConvertedType::INT_8 | ConvertedType::INT_16 | ConvertedType::INT_32 | ConvertedType::INT_64 => {
                signed
            }
            ConvertedType::UINT_8
            | ConvertedType::UINT_16
            | ConvertedType::UINT_32
            | ConvertedType::UINT_64 => !signed,
            _ => false,
        },
    };
    let text = matches!(
        logical,
        Some(LogicalType::String | LogicalType::Enum | LogicalType::Json)
    ) || (logical.is_none()
        && matches!(
            converted,
            ConvertedType::UTF8 | ConvertedType::ENUM | ConvertedType::JSON
        ));
    Some(match field.get_physical_type() {
        Physical::BOOLEAN => LeafKind::Bool,
        Physical::INT32 if plain || int(true) => LeafKind::Int32,
        Physical::INT32 if int(false) => LeafKind::UInt32,
        Physical::INT64 if plain || int(true) => LeafKind::Int64,
        Physical::INT64 if int(false) => LeafKind::UInt64,
        Physical::FLOAT if plain => LeafKind::Float,
        Physical::DOUBLE if plain => LeafKind::Double,
        Physical::BYTE_ARRAY if plain || text => LeafKind::Text,
        _ => return None,
    })
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
        return Ok(absent(node, rep, def, leaves));
    };
    let def = def + i16::from(node.optional);
    match &node.shape {
        Shape::Leaf(kind) => leaf(*kind, value, &mut leaves[node.leaves.start], rep, def).ok_or_else(|| {
            format!(
                "`{}` is {} where the schema has a {kind:?}",
                node.name,
                crate::input::json_type_name(value)
            )
        }),
        Shape::Struct(fields) => {
            let Value::Object(object) = value else {
                return Err(format!(
                    "`{}` is {} where the schema has a struct",
                    node.name,
                    crate::input::json_type_name(value)
                ));
            };
            fields
                .iter()
                .try_for_each(|f| put(f, object.get(&f.name), rep, def, leaves))
        }
        Shape::List {
            rep: level,
            item,
            wrapped,
        } => {
            let Value::Array(items) = value else {
                return Err(format!(
                    "`{}` is {} where the schema has a list",
                    node.name,
                    crate::input::json_type_name(value)
                ));
            };
            let unwrapped;
            let items = if *wrapped {
                unwrapped = unwrap(items).ok_or_else(|| {
                    format!(
                        "`{}` is not a list of lists, as the reader gives a two-level list",
                        node.name
                    )
                })?;
                &unwrapped
            } else {
                items
            };
            if items.is_empty() {
                return Ok(absent(node, rep, def, leaves));
            }
            items
                .iter()
                .enumerate()
                .try_for_each(|(i, v)| put(item, Some(v), if i == 0 { rep } else { *level }, def + 1, leaves))
        }
        Shape::Map {
            rep: level,
            key,
            value: item,
        } => {
            let Value::Object(entries) = value else {
                return Err(format!(
                    "`{}` is {} where the schema has a map",
                    node.name,
                    crate::input::json_type_name(value)
                ));
            };
            if entries.is_empty() {
                return Ok(absent(node, rep, def, leaves));
            }
            entries.iter().enumerate().try_for_each(|(i, (k, v))| {
                let r = if i == 0 { rep } else { *level };
                put(key, Some(&map_key(key, k)), r, def + 1, leaves)?;
                put(item, Some(v), r, def + 1, leaves)
            })
        }
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
fn absent(node: &Node, rep: i16, def: i16, leaves: &mut [Leaf]) {
    for leaf in &mut leaves[node.leaves.clone()] {
        leaf.levels(def, rep);
    }
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
