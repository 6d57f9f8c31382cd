//! `POST /v1/embeddings` (OpenAI's `CreateEmbeddingRequest` → `CreateEmbeddingResponse`): the
//! body (`model`, `input` as one string or 1 to 2,048 strings, `dimensions`, `encoding_format`),
//! its validation, and the answer: one unit vector per input, a pure function of the input's text
//! (an FNV-1a hash seeds a splitmix64 stream; the first k values do not depend on the length, so a
//! shorter vector is a longer one cut and renormalized, as text-embedding-3's are). Vectors go out
//! as JSON numbers (shortest f32 text, `ryu`) or, with `encoding_format: "base64"`, as the base64
//! of their little-endian f32 bytes, which is what the OpenAI SDKs decode. The body is written by
//! hand into one buffer sized up front: the benchmark pushes a million rows through this.
//! Token-array inputs (`[[1212, 318]]`) are refused with a 400: the mock counts words, not tokens.
//! Which request gets an answer, and directives, are `service`'s and `family`'s business.

use std::borrow::Cow;
use std::fmt;

use base64::Engine;
use bytes::Bytes;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;

use super::reply::{Reply, Usage};
use super::wire::{self, BadRequest};

/// Most inputs in one request, as OpenAI.
pub(crate) const MAX_INPUTS: usize = 2048;
/// The length of a vector when the model has no default of its own, and the most `dimensions`
/// such a model may ask for (text-embedding-3-large's length, OpenAI's longest).
const OTHER_DEFAULT: usize = 1536;
const OTHER_MAX: usize = 3072;

/// A valid embeddings request.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub model: Cow<'a, str>,
    /// The texts, in order (one for a string `input`).
    pub inputs: Vec<Cow<'a, str>>,
    /// Length of every vector.
    pub dimensions: usize,
    pub base64: bool,
    /// Words over all inputs (the mock's token count, without chat framing).
    pub prompt_tokens: u64,
    /// Index of the first input holding a directive (`[[mock:`), if any.
    pub directive_input: Option<usize>,
}

impl Request<'_> {
    /// The text directives are read from, and the log shows: the first input with a directive,
    /// else the first input.
    pub fn directive_text(&self) -> &str {
        let index = self.directive_input.unwrap_or(0);
        self.inputs.get(index).map_or("", |text| text)
    }
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow, default, deserialize_with = "wire::optional_cow")]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    input: Option<Input<'a>>,
    dimensions: Option<u64>,
    #[serde(borrow, default, deserialize_with = "wire::optional_cow")]
    encoding_format: Option<Cow<'a, str>>,
}

/// `input`: strings, or token arrays (recognized only to be refused by name).
enum Input<'a> {
    Texts(Vec<Cow<'a, str>>),
    Tokens,
}

/// Parses and validates a `POST /v1/embeddings` body.
pub(crate) fn parse(body: &[u8]) -> Result<Request<'_>, BadRequest> {
    let request: Body = serde_json::from_slice(body).map_err(wire::json_error)?;
    let model = wire::require_model(request.model)?;
    let inputs = match request.input {
        None => return Err(invalid("Missing required parameter: 'input'.", "input")),
        Some(Input::Tokens) => {
            return Err(invalid(
                "mock-server: token-array input (arrays of integers) is not supported: send strings.",
                "input",
            ))
        }
        Some(Input::Texts(texts)) => texts,
    };
    if inputs.is_empty() {
        return Err(invalid(
            "Invalid 'input': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            "input",
        ));
    }
    if inputs.len() > MAX_INPUTS {
        return Err(invalid(
            format!(
                "Invalid 'input': array too long. Expected an array with maximum length {MAX_INPUTS}, but got \
                 an array with length {} instead.",
                inputs.len()
            ),
            "input",
        ));
    }
    if let Some(i) = inputs.iter().position(|text| text.is_empty()) {
        let at = if inputs.len() == 1 {
            String::new()
        } else {
            format!("[{i}]")
        };
        return Err(invalid(format!("Invalid 'input{at}': empty string."), "input"));
    }
    let base64 = match request.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(invalid(
                format!("Invalid value: '{other}'. Supported values are: 'float' and 'base64'."),
                "encoding_format",
            ))
        }
    };
    let dimensions = dimensions(&model, request.dimensions)?;
    let prompt_tokens = inputs.iter().map(|text| wire::word_count(text)).sum();
    let directive_input = inputs.iter().position(|text| text.contains("[[mock:"));
    Ok(Request {
        model,
        inputs,
        dimensions,
        base64,
        prompt_tokens,
        directive_input,
    })
}

fn invalid(message: impl Into<String>, param: &'static str) -> BadRequest {
    BadRequest::new(message, Some(param))
}

/// The vector length: `dimensions` if the model allows it, else the model's default.
fn dimensions(model: &str, asked: Option<u64>) -> Result<usize, BadRequest> {
    let (default, max) = match model {
        "text-embedding-3-small" => (1536, 1536),
        "text-embedding-3-large" => (3072, 3072),
        "text-embedding-ada-002" => (1536, 1536),
        _ => (OTHER_DEFAULT, OTHER_MAX),
    };
    let Some(asked) = asked else {
        return Ok(default);
    };
    if model == "text-embedding-ada-002" {
        return Err(invalid(
            "This model does not support specifying dimensions.",
            "dimensions",
        ));
    }
    match usize::try_from(asked) {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(invalid(
            format!("Invalid 'dimensions': {asked}. Model '{model}' takes 1 to {max}."),
            "dimensions",
        )),
    }
}

/// FNV-1a, 64 bits: a stable hash (std's is not promised to stay the same across releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Fills `out` with the unit vector of `text`.
pub(crate) fn vector(text: &str, out: &mut [f32]) {
    let mut state = fnv1a(text.as_bytes());
    let mut sum = 0f64;
    for value in out.iter_mut() {
        // splitmix64
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // 23 random bits as an odd numerator: exact in f32, in (-1, 1), never 0.
        let odd = (((z >> 41) << 1) | 1) as f32;
        let x = odd / 8_388_608.0 - 1.0;
        *value = x;
        sum += f64::from(x) * f64::from(x);
    }
    // Each value is non-zero, so for a non-empty vector the sum is positive.
    let scale = (1.0 / sum.sqrt()) as f32;
    for value in out.iter_mut() {
        *value *= scale;
    }
}

/// The `CreateEmbeddingResponse` for `request`.
pub(crate) fn reply(request: &Request) -> Reply {
    reply_with_tokens(request, request.prompt_tokens)
}

/// The answer to `request` reporting `prompt_tokens` (a `prompt-tokens=` directive).
pub(crate) fn reply_with_tokens(request: &Request, prompt_tokens: u64) -> Reply {
    let dims = request.dimensions;
    // Per vector: ~11 bytes a float as text, 4/3 of 4 bytes in base64; plus the framing.
    let per_vector = if request.base64 {
        dims * 16 / 3 + 8
    } else {
        dims * 12
    } + 48;
    let mut out = Vec::with_capacity(request.inputs.len() * per_vector + request.model.len() + 96);
    let mut values = vec![0f32; dims];
    let mut bytes = Vec::new();
    let mut float_text = ryu::Buffer::new();
    out.extend_from_slice(br#"{"object":"list","data":["#);
    for (index, text) in request.inputs.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"object":"embedding","index":"#);
        out.extend_from_slice(index.to_string().as_bytes());
        out.extend_from_slice(br#","embedding":"#);
        vector(text, &mut values);
        if request.base64 {
            bytes.clear();
            bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
            out.push(b'"');
            let start = out.len();
            out.resize(start + base64::encoded_len(bytes.len(), true).unwrap_or(0), 0);
            let written = base64::engine::general_purpose::STANDARD
                .encode_slice(&bytes, &mut out[start..])
                .unwrap_or(0);
            out.truncate(start + written);
            out.push(b'"');
        } else {
            out.push(b'[');
            for (i, value) in values.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(float_text.format_finite(*value).as_bytes());
            }
            out.push(b']');
        }
        out.push(b'}');
    }
    out.extend_from_slice(br#"],"model":"#);
    if serde_json::to_writer(&mut out, &*request.model).is_err() {
        out.extend_from_slice(b"null");
    }
    let tokens = prompt_tokens.to_string();
    out.extend_from_slice(br#","usage":{"prompt_tokens":"#);
    out.extend_from_slice(tokens.as_bytes());
    out.extend_from_slice(br#","total_tokens":"#);
    out.extend_from_slice(tokens.as_bytes());
    out.extend_from_slice(b"}}");
    Reply {
        body: Bytes::from(out),
        usage: Usage {
            prompt_tokens,
            completion_tokens: 0,
            total_tokens: prompt_tokens,
        },
    }
}

// Hand-written like `wire::Content`: it borrows the strings, and tells token arrays apart from
// strings without buffering the value.
impl<'de: 'a, 'a> Deserialize<'de> for Input<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct InputVisitor;
        impl<'de> Visitor<'de> for InputVisitor {
            type Value = Input<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Input::Texts(vec![Cow::Borrowed(v)]))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Input::Texts(vec![Cow::Owned(v.to_owned())]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut texts = Vec::with_capacity(seq.size_hint().unwrap_or(16).min(MAX_INPUTS));
                let mut tokens = false;
                while let Some(element) = seq.next_element::<Element>()? {
                    match element {
                        Element::Text(text) => texts.push(text),
                        Element::Tokens => tokens = true,
                    }
                }
                Ok(if tokens {
                    Input::Tokens
                } else {
                    Input::Texts(texts)
                })
            }
        }
        deserializer.deserialize_any(InputVisitor)
    }
}

/// One element of an `input` array: a string, or a token (an integer or an array of them).
enum Element<'a> {
    Text(Cow<'a, str>),
    Tokens,
}

impl<'de: 'a, 'a> Deserialize<'de> for Element<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ElementVisitor;
        impl<'de> Visitor<'de> for ElementVisitor {
            type Value = Element<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Element::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Element::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Element::Tokens)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Element::Tokens)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Element::Tokens)
            }
        }
        deserializer.deserialize_any(ElementVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_string_or_many_are_inputs_and_words_are_tokens() {
        let one = parse(br#"{"model":"m","input":"two words"}"#).unwrap();
        assert_eq!(
            (one.inputs.len(), one.prompt_tokens, one.dimensions),
            (1, 2, 1536)
        );
        assert!(matches!(one.inputs[0], Cow::Borrowed("two words")));
        let many = parse(br#"{"model":"m","input":["a b","c [[mock:status=500]]"]}"#).unwrap();
        assert_eq!((many.prompt_tokens, many.directive_input), (4, Some(1)));
        assert_eq!(many.directive_text(), "c [[mock:status=500]]");
    }

    #[test]
    fn token_arrays_empty_inputs_and_bad_formats_are_refused_by_param() {
        for body in [
            r#"{"model":"m","input":[1,2,3]}"#,
            r#"{"model":"m","input":[[1,2],[3]]}"#,
            r#"{"model":"m","input":[]}"#,
            r#"{"model":"m","input":""}"#,
            r#"{"model":"m","input":["a",""]}"#,
            r#"{"model":"m"}"#,
        ] {
            assert_eq!(parse(body.as_bytes()).unwrap_err().param, Some("input"), "{body}");
        }
        let format = parse(br#"{"model":"m","input":"x","encoding_format":"hex"}"#);
        assert_eq!(format.unwrap_err().param, Some("encoding_format"));
        assert_eq!(parse(br#"{"input":"x"}"#).unwrap_err().param, Some("model"));
    }

    #[test]
    fn dimensions_follow_the_model() {
        let dims = |model: &str, asked: Option<u64>| dimensions(model, asked).map_err(|e| e.param);
        assert_eq!(dims("text-embedding-3-large", None), Ok(3072));
        assert_eq!(dims("text-embedding-3-small", Some(256)), Ok(256));
        assert_eq!(
            dims("text-embedding-3-small", Some(1537)),
            Err(Some("dimensions"))
        );
        assert_eq!(
            dims("text-embedding-ada-002", Some(1536)),
            Err(Some("dimensions"))
        );
        assert_eq!(dims("mock-model", Some(0)), Err(Some("dimensions")));
        assert_eq!(dims("mock-model", Some(3072)), Ok(3072));
    }

    #[test]
    fn vectors_are_unit_length_and_a_prefix_of_a_longer_one_up_to_scale() {
        let (mut long, mut short) = (vec![0f32; 1536], vec![0f32; 256]);
        vector("hello world", &mut long);
        vector("hello world", &mut short);
        let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        assert!((norm(&long) - 1.0).abs() < 1e-5 && (norm(&short) - 1.0).abs() < 1e-5);
        let scale = norm(&long[..256]);
        for (a, b) in long[..256].iter().zip(&short) {
            assert!((f64::from(*a) / scale - f64::from(*b)).abs() < 1e-5);
        }
        let mut other = vec![0f32; 1536];
        vector("hello world!", &mut other);
        assert_ne!(long, other);
    }
}
