//! The Parquet writer's column buffers: one row group's values of one column, with their
//! definition levels (0: null, 1: a value) for the optional ones, and the conversions of a row's
//! values into them. Also the few facts a row's stored response and request give the output
//! beyond the checkpoint's columns (cached and reasoning tokens, the model asked for).

use parquet::column::writer::ColumnWriter;
use parquet::data_type::ByteArray;
use parquet::file::writer::SerializedColumnWriter;
use serde_json::Value;

/// How a column is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    RequiredText,
    RequiredInt64,
    Text,
    Bool,
    Int32,
    Int64,
    Float,
    Double,
}

/// One column's values for the row group being built.
pub(super) struct Buffer {
    required: bool,
    values: Values,
    defs: Vec<i16>,
}

enum Values {
    Text(Vec<ByteArray>),
    Bool(Vec<bool>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Float(Vec<f32>),
    Double(Vec<f64>),
}

impl Buffer {
    pub(super) fn new(kind: Kind) -> Buffer {
        let values = match kind {
            Kind::RequiredText | Kind::Text => Values::Text(Vec::new()),
            Kind::Bool => Values::Bool(Vec::new()),
            Kind::Int32 => Values::Int32(Vec::new()),
            Kind::RequiredInt64 | Kind::Int64 => Values::Int64(Vec::new()),
            Kind::Float => Values::Float(Vec::new()),
            Kind::Double => Values::Double(Vec::new()),
        };
        Buffer {
            required: matches!(kind, Kind::RequiredText | Kind::RequiredInt64),
            values,
            defs: Vec::new(),
        }
    }

    /// Records whether the row has a value; a required column always has one.
    fn def(&mut self, present: bool) -> bool {
        if !self.required {
            self.defs.push(i16::from(present));
        }
        present || self.required
    }

    pub(super) fn text(&mut self, value: Option<&str>) {
        if self.def(value.is_some()) {
            if let Values::Text(v) = &mut self.values {
                v.push(ByteArray::from(value.unwrap_or_default().as_bytes().to_vec()));
            }
        }
    }

    pub(super) fn int(&mut self, value: Option<i64>) {
        if self.def(value.is_some()) {
            if let Values::Int64(v) = &mut self.values {
                v.push(value.unwrap_or_default());
            }
        }
    }

    pub(super) fn bool(&mut self, value: Option<bool>) {
        if self.def(value.is_some()) {
            if let Values::Bool(v) = &mut self.values {
                v.push(value.unwrap_or_default());
            }
        }
    }

    pub(super) fn float(&mut self, value: Option<f64>) {
        if self.def(value.is_some()) {
            if let Values::Double(v) = &mut self.values {
                v.push(value.unwrap_or_default());
            }
        }
    }

    /// An input field, as the column's type: a value of another type than the column's (which
    /// a Parquet input does not give) is written as null rather than as a wrong value.
    pub(super) fn value(&mut self, value: Option<&Value>) {
        let value = value.filter(|v| !v.is_null());
        match &mut self.values {
            Values::Text(_) => {
                let text = value.map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
                self.text(text.as_deref());
            }
            Values::Bool(_) => self.bool(value.and_then(Value::as_bool)),
            Values::Int32(_) => {
                let n = value.and_then(Value::as_i64).and_then(|n| i32::try_from(n).ok());
                if self.def(n.is_some()) {
                    if let Values::Int32(v) = &mut self.values {
                        v.push(n.unwrap_or_default());
                    }
                }
            }
            Values::Int64(_) => self.int(value.and_then(Value::as_i64)),
            Values::Float(_) => {
                let x = value.and_then(float_of);
                if self.def(x.is_some()) {
                    if let Values::Float(v) = &mut self.values {
                        v.push(x.unwrap_or_default() as f32);
                    }
                }
            }
            Values::Double(_) => self.float(value.and_then(float_of)),
        }
    }

    /// Writes the buffered values to the row group's column and empties the buffer.
    pub(super) fn write(&mut self, column: &mut SerializedColumnWriter<'_>) -> anyhow::Result<()> {
        let defs = (!self.required).then_some(&self.defs[..]);
        match (&mut self.values, column.untyped()) {
            (Values::Text(v), ColumnWriter::ByteArrayColumnWriter(w)) => write(w, v, defs, None),
            (Values::Bool(v), ColumnWriter::BoolColumnWriter(w)) => write(w, v, defs, None),
            (Values::Int32(v), ColumnWriter::Int32ColumnWriter(w)) => write(w, v, defs, None),
            (Values::Int64(v), ColumnWriter::Int64ColumnWriter(w)) => write(w, v, defs, None),
            (Values::Float(v), ColumnWriter::FloatColumnWriter(w)) => write(w, v, defs, None),
            (Values::Double(v), ColumnWriter::DoubleColumnWriter(w)) => write(w, v, defs, None),
            _ => anyhow::bail!("a Parquet column's buffer does not match its type in the schema"),
        }?;
        self.defs.clear();
        Ok(())
    }
}

/// Writes a buffer's values with their levels (`None`: the column has none of that kind) to a
/// column of a row group, and empties the buffer.
pub(super) fn write<T: parquet::data_type::DataType>(
    w: &mut parquet::column::writer::ColumnWriterImpl<'_, T>,
    values: &mut Vec<T::T>,
    defs: Option<&[i16]>,
    reps: Option<&[i16]>,
) -> anyhow::Result<()> {
    w.write_batch(values, defs, reps)?;
    values.clear();
    Ok(())
}

/// A float from a number, or from the text a Parquet input gives NaN and the infinities as.
pub(super) fn float_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "inf" => Some(f64::INFINITY),
            "-inf" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}
