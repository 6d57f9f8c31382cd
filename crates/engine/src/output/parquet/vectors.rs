//! The Parquet writer's `embedding` column, for a job whose answers are vectors (the embeddings
//! family): each row's vector as a `list<float32>` (the three-level LIST of the Parquet spec,
//! `optional group embedding (LIST) { repeated group list { required float element; } }`), null
//! for a row without one (failed, invalid, not sent yet). This file owns that column's schema,
//! its buffer with its repetition and definition levels, and how many values one row group may
//! hold: a vector is thousands of floats, so the row group is cut by values as well as by rows
//! (`parquet.rs` asks [`VectorColumn::full`]), which keeps the writer's memory flat.

use parquet::basic::{LogicalType, Repetition, Type as Physical};
use parquet::column::writer::ColumnWriter;
use parquet::file::writer::SerializedRowGroupWriter;
use parquet::schema::types::{ColumnPath, Type};

use super::columns::write;

/// The column's name, as in the JSON Lines and CSV outputs.
pub(super) const NAME: &str = "embedding";

/// Most vector values one row group holds (16 MiB of f32): 2,730 vectors of OpenAI's 1,536
/// dimensions, 1,365 of 3,072 (plus one: the group ends at the row that fills it).
pub(super) const MAX_VALUES_PER_GROUP: usize = 4 * 1024 * 1024;

/// Definition levels of the leaf: 0 the row has no vector, 1 an empty one, 2 a value.
const NULL: i16 = 0;
const EMPTY: i16 = 1;
const VALUE: i16 = 2;

/// One row group's vectors, shredded into the leaf column's values and levels.
#[derive(Default)]
pub(super) struct VectorColumn {
    values: Vec<f32>,
    defs: Vec<i16>,
    reps: Vec<i16>,
}

/// The schema field of the column (an input column named `embedding` gives way to it, as in
/// CSV: it is written as `input.embedding`).
pub(super) fn field() -> parquet::errors::Result<Type> {
    let element = Type::primitive_type_builder("element", Physical::FLOAT)
        .with_repetition(Repetition::REQUIRED)
        .build()?;
    let list = Type::group_type_builder("list")
        .with_repetition(Repetition::REPEATED)
        .with_fields(vec![element.into()])
        .build()?;
    Type::group_type_builder(NAME)
        .with_repetition(Repetition::OPTIONAL)
        .with_logical_type(Some(LogicalType::List))
        .with_fields(vec![list.into()])
        .build()
}

/// The leaf column's path, to turn its dictionary off (floats of a vector never repeat).
pub(super) fn leaf_path() -> ColumnPath {
    ColumnPath::new(vec![NAME.into(), "list".into(), "element".into()])
}

impl VectorColumn {
    /// Adds a row's vector (`None`: null).
    pub(super) fn push(&mut self, vector: Option<&[f32]>) {
        match vector {
            None => self.level(NULL, 0),
            Some([]) => self.level(EMPTY, 0),
            Some(values) => {
                self.values.extend_from_slice(values);
                self.defs.resize(self.defs.len() + values.len(), VALUE);
                self.reps.push(0);
                self.reps.resize(self.reps.len() + values.len() - 1, 1);
            }
        }
    }

    fn level(&mut self, def: i16, rep: i16) {
        self.defs.push(def);
        self.reps.push(rep);
    }

    /// Whether the row group holds as many values as it should.
    pub(super) fn full(&self) -> bool {
        self.values.len() >= MAX_VALUES_PER_GROUP
    }

    /// Writes the buffered vectors as the next column of `group`, and empties the buffer.
    pub(super) fn write<W: std::io::Write + Send>(
        &mut self,
        group: &mut SerializedRowGroupWriter<'_, W>,
    ) -> anyhow::Result<()> {
        let Some(mut column) = group.next_column()? else {
            anyhow::bail!("the Parquet schema has no `{NAME}` column to write the vectors to");
        };
        match column.untyped() {
            ColumnWriter::FloatColumnWriter(w) => {
                write(w, &mut self.values, Some(&self.defs), Some(&self.reps))?
            }
            _ => anyhow::bail!("the Parquet `{NAME}` column is not of floats"),
        }
        column.close()?;
        self.defs.clear();
        self.reps.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_say_null_empty_and_each_value_of_a_vector() {
        let mut column = VectorColumn::default();
        column.push(Some(&[1.0, 2.0, 3.0]));
        column.push(None);
        column.push(Some(&[]));
        column.push(Some(&[4.0]));
        assert_eq!(column.values, [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(column.defs, [2, 2, 2, 0, 1, 2]);
        assert_eq!(column.reps, [0, 1, 1, 0, 0, 0]);
    }
}
