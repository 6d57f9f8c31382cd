//! The checks of an input that come before its rows are prepared, so that a misspelt or
//! clashing setting is one error for the file instead of one per row: a header against the
//! template, the system template and `--id-column` ([`Preparer::check_columns`]); a row's own
//! `messages` against `--template` and `--system` ([`Preparer::check_flags_fit`]); and, for an
//! input without a header, a template field no row has ([`Preparer::absent_field`]). Turning a
//! row into a request is `bodies.rs`'s.

use serde_json::Value;

use super::Preparer;
use promptmill_core::error::InputError;
use promptmill_core::input::RawRow;

impl Preparer {
    /// Checks a CSV header against the template and `--id-column` before any row is read, so a
    /// misspelt field is one error at line 1, not one per row.
    pub fn check_columns(&self, columns: &[String]) -> Result<(), InputError> {
        let has = |name: &str| columns.iter().any(|c| c == name);
        let list = columns.join(", ");
        let mut needed: Vec<(&str, &str)> = Vec::new();
        if let Some(t) = &self.settings.template {
            needed.extend(t.fields().into_iter().map(|f| (f, "the template uses it")));
        }
        if let Some(t) = &self.settings.system {
            needed.extend(t.fields().into_iter().map(|f| (f, "the system template uses it")));
        }
        if let Some(c) = &self.settings.id_column {
            needed.push((c, "--id-column names it"));
        }
        let text_fields = self.endpoint().family().text_fields();
        if self.settings.template.is_none() && !text_fields.iter().any(|f| has(f)) {
            let names: Vec<String> = text_fields.iter().map(|f| format!("`{f}`")).collect();
            return Err(InputError::new(
                &self.file,
                1,
                format!(
                    "no --template was given and the header has no {} column (columns: {list})",
                    names.join(" or ")
                ),
            ));
        }
        for (field, why) in needed {
            if !has(field) {
                return Err(InputError::new(
                    &self.file,
                    1,
                    format!("the header has no such column, but {why} (columns: {list})"),
                )
                .field(field));
            }
        }
        Ok(())
    }

    /// Refuses a row whose own messages clash with a flag: `--template` would replace them, and
    /// `--system` cannot be added beside the row's own system message. These are settings that
    /// cannot apply to the input, not a bad row, so the caller refuses the whole file.
    pub fn check_flags_fit(&self, row: &RawRow) -> Result<(), String> {
        let Some(messages) = row.fields.get("messages") else {
            return Ok(());
        };
        let at = format!("{}:{}", self.file.display(), row.line);
        if self.settings.template.is_some() {
            return Err(format!(
                "--template renders a prompt from fields, but {at} has its own `messages`; \
                 drop --template or the messages field"
            ));
        }
        let has_system = messages.as_array().is_some_and(|m| {
            m.iter()
                .any(|m| m.get("role").and_then(Value::as_str) == Some("system"))
        });
        if self.settings.system.is_some() && has_system {
            return Err(format!(
                "--system adds a system message, but {at} has its own in `messages`; \
                 drop --system or the row's system message"
            ));
        }
        Ok(())
    }

    /// For an input without a header: the first template field that no row had, as a message
    /// that lists the fields the rows do have (`columns`, every field seen). One error for the
    /// file instead of one per row.
    pub fn absent_field(&self, columns: &[String]) -> Option<String> {
        let has = |name: &str| columns.iter().any(|c| c == name);
        let templates = [
            (&self.settings.template, "the template"),
            (&self.settings.system, "the system template"),
        ];
        for (template, which) in templates {
            let Some(t) = template else { continue };
            if let Some(field) = t.fields().into_iter().find(|f| !has(f)) {
                return Some(format!(
                    "{}: no row has the field `{field}` ({which} uses {{{field}}}); the rows have the fields: {}",
                    self.file.display(),
                    columns.join(", ")
                ));
            }
        }
        None
    }
}
