//! Prompt templates: `Write a product description for {name}, {color}.`
//!
//! A template is parsed once, when the flags are validated, into literal text and field
//! references; rendering a row is then a single pass with no parsing. `{field}` is replaced by the
//! row's field (surrounding spaces inside the braces are ignored), `{{` and `}}` stand for literal
//! braces. Strings are inserted as they are, numbers and booleans as their JSON text, arrays and
//! objects as compact JSON; a missing field or a `null` is an error that names the field.

use serde_json::{Map, Value};

use crate::input::json_type_name;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
    source: String,
}

/// Why a template could not be parsed; `at` is a 1-based character position.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{message} (at character {at}); write {{{{ or }}}} for a literal brace")]
pub struct TemplateError {
    pub at: usize,
    pub message: String,
}

/// Why a row could not be rendered; names the field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{message}")]
pub struct RenderError {
    pub field: String,
    pub message: String,
}

impl Template {
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = source.char_indices().peekable();
        let position = |byte: usize| source[..byte].chars().count() + 1;
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|&(_, n)| n) == Some('{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek().map(|&(_, n)| n) == Some('}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for (j, c) in chars.by_ref() {
                        match c {
                            '}' => {
                                closed = true;
                                break;
                            }
                            '{' => {
                                return Err(TemplateError {
                                    at: position(j),
                                    message: "`{` inside a field reference".into(),
                                })
                            }
                            c => name.push(c),
                        }
                    }
                    if !closed {
                        return Err(TemplateError {
                            at: position(i),
                            message: "`{` is never closed".into(),
                        });
                    }
                    let name = name.trim();
                    if name.is_empty() {
                        return Err(TemplateError {
                            at: position(i),
                            message: "empty field reference `{}`".into(),
                        });
                    }
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Field(name.to_string()));
                }
                '}' => {
                    return Err(TemplateError {
                        at: position(i),
                        message: "`}` without a matching `{`".into(),
                    })
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Template {
            pieces,
            source: source.to_string(),
        })
    }

    /// The template as the user wrote it.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The distinct field names the template refers to, in order of first use.
    pub fn fields(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for piece in &self.pieces {
            if let Piece::Field(name) = piece {
                if !out.contains(&name.as_str()) {
                    out.push(name);
                }
            }
        }
        out
    }

    pub fn render(&self, fields: &Map<String, Value>) -> Result<String, RenderError> {
        let mut out = String::with_capacity(self.source.len() + 64);
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(name) => match fields.get(name) {
                    None => {
                        return Err(RenderError {
                            field: name.clone(),
                            message: format!("missing (the template uses {{{name}}})"),
                        })
                    }
                    Some(Value::String(s)) => out.push_str(s),
                    Some(Value::Null) => {
                        return Err(RenderError {
                            field: name.clone(),
                            message: "is null, but the template needs a value".into(),
                        })
                    }
                    Some(v @ (Value::Number(_) | Value::Bool(_))) => out.push_str(&v.to_string()),
                    Some(v) => {
                        // Arrays and objects go in as compact JSON, the most useful text form
                        // of structured data in a prompt.
                        debug_assert!(
                            matches!(v, Value::Array(_) | Value::Object(_)),
                            "{}",
                            json_type_name(v)
                        );
                        out.push_str(&v.to_string())
                    }
                },
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn renders_fields_and_literal_braces() {
        let t = Template::parse("Describe {name} in {{JSON}}, color { color }.").unwrap();
        let out = t
            .render(&fields(json!({"name": "a mug", "color": "red"})))
            .unwrap();
        assert_eq!(out, "Describe a mug in {JSON}, color red.");
        assert_eq!(t.fields(), vec!["name", "color"]);
    }

    #[test]
    fn numbers_booleans_and_structures_render_as_json_text() {
        let t = Template::parse("{n} {b} {a} {o}").unwrap();
        let out = t
            .render(&fields(
                json!({"n": 3.5, "b": true, "a": [1, "x"], "o": {"k": 1}}),
            ))
            .unwrap();
        assert_eq!(out, r#"3.5 true [1,"x"] {"k":1}"#);
    }

    #[test]
    fn missing_and_null_fields_name_the_field() {
        let t = Template::parse("{name}{color}").unwrap();
        let err = t.render(&fields(json!({"name": "x"}))).unwrap_err();
        assert_eq!(err.field, "color");
        let err = t
            .render(&fields(json!({"name": null, "color": "x"})))
            .unwrap_err();
        assert_eq!(err.field, "name");
        assert!(err.message.contains("null"));
    }

    #[test]
    fn malformed_templates_say_where() {
        assert_eq!(Template::parse("ab {x").unwrap_err().at, 4);
        assert_eq!(Template::parse("ab }").unwrap_err().at, 4);
        assert_eq!(Template::parse("{}").unwrap_err().at, 1);
        assert!(Template::parse("{a{b}}").is_err());
    }

    #[test]
    fn unicode_text_is_kept() {
        let t = Template::parse("日本 {x} 👨‍👩‍👧").unwrap();
        assert_eq!(t.render(&fields(json!({"x": "語"}))).unwrap(), "日本 語 👨‍👩‍👧");
    }
}
