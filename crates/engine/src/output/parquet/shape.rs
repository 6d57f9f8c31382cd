//! The schema side of the nested columns (`parquet/nested.rs`): a nested column's Parquet
//! schema tree compiled into a [`Node`] tree that says which JSON shape goes where (an object
//! for a struct or a map, an array for a list) and which leaf column each value lands in, with
//! the definition and repetition levels of each leaf. Lists follow the `parquet` crate's record
//! reader (which made the JSON): the standard three-level form, the legacy two-level forms, and
//! a repeated field outside any list, which is a list of its own. Leaves may be booleans, signed
//! and unsigned integers, floats, doubles and text; another kind of leaf (a date, a decimal,
//! bytes of a fixed length …) cannot be rebuilt from its JSON exactly, so [`compile`] refuses
//! the column. Also: the recorded schema text parsed back, and a column renamed.

use std::ops::Range;

use parquet::basic::{ConvertedType, LogicalType, Repetition, Type as Physical};
use parquet::schema::types::Type;

/// A leaf column as the compiled tree lays it out: its kind and its highest levels.
pub(super) struct LeafSpec {
    pub kind: LeafKind,
    pub max_def: i16,
    pub max_rep: i16,
}

/// A node of the column's schema, as the JSON value it takes.
pub(super) struct Node {
    /// The field's name, for messages.
    pub name: String,
    /// Whether a null stops here (the field is optional): it adds one definition level.
    pub optional: bool,
    pub shape: Shape,
    /// The leaf columns under this node, in schema order.
    pub leaves: Range<usize>,
}

pub(super) enum Shape {
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
pub(super) enum LeafKind {
    Bool,
    Int32,
    UInt32,
    Int64,
    UInt64,
    Float,
    Double,
    Text,
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
pub(super) fn compile(field: &Type, def: i16, rep: i16, leaves: &mut Vec<LeafSpec>) -> Result<Node, String> {
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
    leaves: &mut Vec<LeafSpec>,
) -> Result<Node, String> {
    let name = field.name().to_string();
    let def = def + i16::from(optional);
    let start = leaves.len();
    let shape = if field.is_primitive() {
        let kind = leaf_kind(field)
            .ok_or_else(|| format!("the leaf `{name}` is of a type promptmill writes as text"))?;
        leaves.push(LeafSpec {
            kind,
            max_def: def,
            max_rep: rep,
        });
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
fn compile_list(field: &Type, def: i16, rep: i16, leaves: &mut Vec<LeafSpec>) -> Result<Shape, String> {
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
fn compile_map(field: &Type, def: i16, rep: i16, leaves: &mut Vec<LeafSpec>) -> Result<Shape, String> {
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
