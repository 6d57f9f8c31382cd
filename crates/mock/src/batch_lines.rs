//! The lines of a batch input file (`{"custom_id", "method", "url", "body"}` per line, or
//! Mistral's `{"custom_id", "body"}`):
//! split, parsed once at upload, and checked the way OpenAI's batch validation does. A file
//! with bad lines still uploads; its [`LineError`]s are reported when a batch using it is
//! validated, together with the checks that need the batch ([`ParsedInput::check`]: every url
//! is the batch's endpoint, one model for the whole file, custom_ids unique). Answering the
//! lines is `batch_run`'s business.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The url of a line without one (Mistral's `{custom_id, body}`): what a Mistral job checks its
/// lines against.
pub(crate) const MISTRAL_URL: &str = "";
/// Together's longest custom_id.
pub(crate) const BODY_ONLY_MAX_ID: usize = 64;

/// Most errors listed in a failed batch's `errors.data` (OpenAI lists a sample too).
pub(crate) const MAX_ERRORS: usize = 100;

/// A line that has everything a request needs.
#[derive(Debug)]
pub(crate) struct RequestLine {
    /// 1-based line number in the file.
    pub number: u64,
    pub custom_id: Box<str>,
    pub url: Box<str>,
    /// Index into [`ParsedInput::models`], when the body names a model.
    pub model: Option<u32>,
    /// The `body` object's bytes, a slice of the file (no copy).
    pub body: Bytes,
}

/// One entry of a batch's `errors.data` (OpenAI's `BatchError`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct LineError {
    pub code: &'static str,
    pub message: String,
    pub param: Option<&'static str>,
    pub line: Option<u64>,
}

impl LineError {
    fn at(line: u64, code: &'static str, param: Option<&'static str>, message: String) -> Self {
        LineError {
            code,
            message,
            param,
            line: Some(line),
        }
    }
}

/// A batch input file, parsed.
#[derive(Debug, Default)]
pub(crate) struct ParsedInput {
    /// The valid request lines, in file order.
    pub lines: Vec<RequestLine>,
    /// The distinct models named by the bodies, in order of first appearance.
    pub models: Vec<Box<str>>,
    /// Lines that are not requests (the first [`MAX_ERRORS`]).
    pub errors: Vec<LineError>,
    /// Lines in the file, requests or not.
    pub line_count: u64,
    /// Uploaded in a dialect whose lines are `{custom_id, body}` (Together): a line without a
    /// url goes to the batch's endpoint.
    pub body_only: bool,
}

/// Lines of a file: split on `\n`, a trailing `\r` dropped, and no line after a final newline.
/// memchr finds the newlines: it is optimized even in debug builds, where a byte-by-byte split
/// of a 25 MB file costs a tenth of a second.
fn split_lines(content: &[u8]) -> impl Iterator<Item = &[u8]> {
    let content = content.strip_suffix(b"\n").unwrap_or(content);
    let ends = memchr::memchr_iter(b'\n', content).chain(std::iter::once(content.len()));
    let mut start = 0;
    ends.filter(move |_| !content.is_empty()).map(move |end| {
        let line = content.get(start..end).unwrap_or_default();
        start = end + 1;
        line.strip_suffix(b"\r").unwrap_or(line)
    })
}

/// How many lines a file has (for `/mock/batches`), by the same rule as [`ParsedInput::parse`].
pub(crate) fn count_lines(content: &[u8]) -> u64 {
    let content = content.strip_suffix(b"\n").unwrap_or(content);
    match content.is_empty() {
        true => 0,
        false => memchr::memchr_iter(b'\n', content).count() as u64 + 1,
    }
}

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow, default)]
    custom_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    url: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    body: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ModelOf<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
}

impl ParsedInput {
    /// Parses every line of `content`; bad lines become errors, never a failure. With
    /// `body_only` (Together's `{custom_id, body}` lines) `method` and `url` may be left out
    /// (the batch's endpoint is then the line's), and a custom_id is at most
    /// [`BODY_ONLY_MAX_ID`] characters.
    pub fn parse(content: &Bytes, body_only: bool) -> Self {
        let mut parsed = ParsedInput {
            body_only,
            ..ParsedInput::default()
        };
        let mut model_index: HashMap<Box<str>, u32> = HashMap::new();
        for (i, text) in split_lines(content).enumerate() {
            let number = i as u64 + 1;
            parsed.line_count = number;
            match parse_line(content, text, number, body_only) {
                Err(error) => {
                    if parsed.errors.len() < MAX_ERRORS {
                        parsed.errors.push(error);
                    }
                }
                Ok((mut line, model)) => {
                    line.model = model.map(|name| match model_index.get(name.as_ref()) {
                        Some(&index) => index,
                        None => {
                            let index = u32::try_from(parsed.models.len()).unwrap_or(u32::MAX);
                            parsed.models.push(name.as_ref().into());
                            model_index.insert(name.as_ref().into(), index);
                            index
                        }
                    });
                    parsed.lines.push(line);
                }
            }
        }
        parsed
    }

    /// Every reason a batch with this `endpoint` over this file fails validation: the line
    /// errors found at upload, then urls that are not the endpoint, bodies naming another
    /// model than the first line's (OpenAI runs a batch on one model), repeated custom_ids,
    /// an empty file. At most [`MAX_ERRORS`]; empty when the batch may run.
    pub fn check(&self, endpoint: &str) -> Vec<LineError> {
        let mut errors = self.errors.clone();
        let first_model = self.lines.iter().find_map(|l| l.model);
        let mut seen = HashSet::with_capacity(self.lines.len());
        for line in &self.lines {
            if errors.len() >= MAX_ERRORS {
                break;
            }
            // An empty url: a `{custom_id, body}` line, which goes to the batch's endpoint in a
            // dialect of such lines, or in a Mistral job (whose endpoint is checked as empty);
            // OpenAI's batches need a url on every line.
            let bare = line.url.is_empty() && (self.body_only || endpoint.is_empty());
            if !bare && *line.url != *endpoint {
                errors.push(LineError::at(
                    line.number,
                    "invalid_url",
                    Some("url"),
                    format!(
                        "The url '{}' does not match the batch's endpoint '{endpoint}'.",
                        line.url
                    ),
                ));
            }
            if let (Some(model), Some(first)) = (line.model, first_model) {
                if model != first {
                    errors.push(LineError::at(
                        line.number,
                        "mismatched_model",
                        Some("body.model"),
                        format!(
                            "All requests in a batch must use the same model: the file starts with '{}', \
                             this line uses '{}'.",
                            self.model_name(first),
                            self.model_name(model)
                        ),
                    ));
                }
            }
            if !seen.insert(&*line.custom_id) {
                errors.push(LineError::at(
                    line.number,
                    "duplicate_custom_id",
                    Some("custom_id"),
                    format!(
                        "The custom_id '{}' is used by more than one line.",
                        line.custom_id
                    ),
                ));
            }
        }
        if self.lines.is_empty() && errors.is_empty() {
            errors.push(LineError {
                code: "empty_file",
                message: "The batch input file is empty.".into(),
                param: None,
                line: None,
            });
        }
        errors.truncate(MAX_ERRORS);
        errors
    }

    /// The model the batch runs on: the first one named.
    pub fn model(&self) -> Option<&str> {
        self.models.first().map(|m| &**m)
    }

    fn model_name(&self, index: u32) -> &str {
        self.models.get(index as usize).map_or("", |m| &**m)
    }
}

/// One line into a request, or the reason it is not one.
fn parse_line<'a>(
    content: &Bytes,
    text: &'a [u8],
    number: u64,
    body_only: bool,
) -> Result<(RequestLine, Option<Cow<'a, str>>), LineError> {
    let line: Line = serde_json::from_slice(text).map_err(|err| {
        use serde_json::error::Category;
        let (code, message) = match err.classify() {
            Category::Data => (
                "invalid_request",
                format!("This line is not a valid request: {err}."),
            ),
            _ if text.iter().all(u8::is_ascii_whitespace) => {
                ("invalid_json_line", "This line is empty.".to_string())
            }
            _ => (
                "invalid_json_line",
                "This line is not parseable as valid JSON.".to_string(),
            ),
        };
        LineError::at(number, code, None, message)
    })?;
    if !text.trim_ascii_start().starts_with(b"{") {
        return Err(LineError::at(
            number,
            "invalid_request",
            None,
            "This line is not a JSON object.".into(),
        ));
    }
    let missing = |param: &'static str| {
        LineError::at(
            number,
            "missing_required_parameter",
            Some(param),
            format!("Missing required parameter: '{param}'."),
        )
    };
    let custom_id = line.custom_id.ok_or_else(|| missing("custom_id"))?;
    if body_only && custom_id.chars().count() > BODY_ONLY_MAX_ID {
        return Err(LineError::at(
            number,
            "invalid_request",
            Some("custom_id"),
            format!("custom_id must be at most {BODY_ONLY_MAX_ID} characters."),
        ));
    }
    // Mistral's and Together's lines are `{custom_id, body}`: no method and no url (the job
    // names the endpoint). Such a line's url is empty, which only their batches' check accepts.
    let (method, url) = match (line.method, line.url) {
        (None, None) => (Cow::Borrowed("POST"), Cow::Borrowed(MISTRAL_URL)),
        (method, url) => (
            method.ok_or_else(|| missing("method"))?,
            url.ok_or_else(|| missing("url"))?,
        ),
    };
    let body = line.body.ok_or_else(|| missing("body"))?;
    if method != "POST" {
        return Err(LineError::at(
            number,
            "invalid_method",
            Some("method"),
            format!("The method '{method}' is not supported: batch requests use POST."),
        ));
    }
    if !body.get().starts_with('{') {
        return Err(LineError::at(
            number,
            "invalid_request",
            Some("body"),
            "'body' must be a JSON object.".into(),
        ));
    }
    // A body whose `model` is not a string names no model; answering it will say why.
    let model = serde_json::from_str::<ModelOf>(body.get())
        .ok()
        .and_then(|m| m.model);
    let line = RequestLine {
        number,
        custom_id: custom_id.into(),
        url: url.into(),
        model: None,
        body: content.slice_ref(body.get().as_bytes()),
    };
    Ok((line, model))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: &str, model: &str) -> String {
        serde_json::json!({"custom_id": id, "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": "hi"}]}})
        .to_string()
    }

    fn parse(text: &str) -> ParsedInput {
        ParsedInput::parse(&Bytes::copy_from_slice(text.as_bytes()), false)
    }

    #[test]
    fn together_lines_need_no_method_or_url_but_a_short_custom_id() {
        let body = r#"{"model":"m","messages":[]}"#;
        let text = format!(
            "{{\"custom_id\":\"a\",\"body\":{body}}}\n{{\"custom_id\":\"{}\",\"body\":{body}}}\n",
            "x".repeat(65)
        );
        let parsed = ParsedInput::parse(&Bytes::from(text.clone()), true);
        assert_eq!(parsed.lines.len(), 1);
        assert!(parsed
            .check("/v1/chat/completions")
            .iter()
            .all(|e| e.line == Some(2)));
        assert_eq!(parsed.errors[0].param, Some("custom_id"));
        // Uploaded in OpenAI's dialect, such lines parse (a Mistral job runs them) but an
        // OpenAI batch over them is refused for its urls.
        let strict = ParsedInput::parse(&Bytes::from(text), false);
        let refused = strict.check("/v1/chat/completions");
        assert!(
            refused
                .iter()
                .any(|e| e.line == Some(1) && e.param == Some("url")),
            "OpenAI's lines need a url: {refused:?}"
        );
        assert!(strict.check(MISTRAL_URL).is_empty());
    }

    #[test]
    fn good_lines_keep_their_body_bytes_and_model() {
        let text = format!("{}\r\n{}\n", request("a", "m"), request("b", "m"));
        let parsed = parse(&text);
        assert_eq!(parsed.lines.len(), 2);
        assert!(parsed.errors.is_empty());
        assert_eq!(&*parsed.lines[1].custom_id, "b");
        assert_eq!(parsed.lines[1].number, 2);
        let body: serde_json::Value = serde_json::from_slice(&parsed.lines[0].body).unwrap();
        assert_eq!(body["model"], "m");
        assert_eq!(parsed.model(), Some("m"));
        assert!(parsed.check("/v1/chat/completions").is_empty());
        assert_eq!((count_lines(text.as_bytes()), parsed.line_count), (2, 2));
        assert_eq!(
            (count_lines(b""), count_lines(b"\n"), count_lines(b"a\n\nb")),
            (0, 0, 3)
        );
    }

    #[test]
    fn bad_lines_are_errors_with_their_line_number() {
        let text = [
            "{not json",
            "[1, 2]",
            r#"{"custom_id": "x", "method": "POST", "url": "/v1/chat/completions"}"#,
            r#"{"custom_id": "y", "method": "GET", "url": "/v1/chat/completions", "body": {}}"#,
            r#"{"custom_id": "z", "method": "POST", "url": "/v1/chat/completions", "body": "hi"}"#,
            "",
            &request("ok", "m"),
        ]
        .join("\n");
        let parsed = parse(&text);
        let found: Vec<_> = parsed.errors.iter().map(|e| (e.line, e.code, e.param)).collect();
        assert_eq!(
            found,
            [
                (Some(1), "invalid_json_line", None),
                (Some(2), "invalid_request", None),
                (Some(3), "missing_required_parameter", Some("body")),
                (Some(4), "invalid_method", Some("method")),
                (Some(5), "invalid_request", Some("body")),
                (Some(6), "invalid_json_line", None),
            ]
        );
        assert_eq!(parsed.lines.len(), 1);
        assert_eq!(parsed.lines[0].number, 7);
        assert_eq!(parsed.line_count, 7);
    }

    #[test]
    fn the_batch_checks_url_model_mix_and_repeated_ids() {
        let other_url = request("c", "m").replace("/v1/chat/completions", "/v1/completions");
        let text = [
            request("a", "m"),
            request("b", "other"),
            other_url,
            request("a", "m"),
        ]
        .join("\n");
        let errors = parse(&text).check("/v1/chat/completions");
        let found: Vec<_> = errors.iter().map(|e| (e.line, e.code)).collect();
        assert_eq!(
            found,
            [
                (Some(2), "mismatched_model"),
                (Some(3), "invalid_url"),
                (Some(4), "duplicate_custom_id")
            ]
        );
        assert_eq!(parse("").check("/v1/completions")[0].code, "empty_file");
    }

    #[test]
    fn errors_are_capped() {
        let text = vec!["nope"; MAX_ERRORS + 50].join("\n");
        let parsed = parse(&text);
        assert_eq!(parsed.errors.len(), MAX_ERRORS);
        assert_eq!(parsed.check("/v1/completions").len(), MAX_ERRORS);
    }
}
