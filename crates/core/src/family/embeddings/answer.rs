//! A request of several rows and its answer: [`join`] makes one `input` array of rows' bodies,
//! [`parse`] reads a `CreateEmbeddingResponse` (vectors as JSON floats or as the base64 of their
//! little-endian f32 bytes), and [`split`] settles each row by its vector's `index`, never by
//! position, with the request's usage shared over the rows by their token counts
//! ([`split_usage`]) so the rows' totals are the server's.

use std::borrow::Cow;

use base64::Engine;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::family::answer::{count, read_json, BadBody, Completion, Embedding, Usage};

/// Why rows' bodies do not make one request (they are our own, so this is a defect).
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("a row's request body is not JSON ({0})")]
    Json(#[from] serde_json::Error),
    #[error("a row's request body has no `input`")]
    NoInput,
    #[error("the rows of one request name different models (`{0}`, `{1}`)")]
    Models(String, String),
}

#[derive(Deserialize)]
struct Member<'a> {
    #[serde(borrow)]
    input: Option<&'a RawValue>,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
}

/// One request body for the rows' bodies (each a one-input request of the same settings): the
/// first body's fields, and `input` the array of every row's input, in order.
pub(super) fn join(bodies: &[&str]) -> Result<String, JoinError> {
    let Some(first) = bodies.first() else {
        return Err(JoinError::NoInput);
    };
    let mut rest: Map<String, Value> = serde_json::from_str(first)?;
    rest.remove("input").ok_or(JoinError::NoInput)?;
    let model = rest.get("model").and_then(Value::as_str).unwrap_or("");
    let mut out = String::with_capacity(bodies.iter().map(|b| b.len()).sum::<usize>() + 16);
    out.push_str("{\"input\":[");
    for (i, body) in bodies.iter().enumerate() {
        let m: Member<'_> = serde_json::from_str(body)?;
        if m.model.as_deref().unwrap_or("") != model {
            let other = m.model.unwrap_or_default().into_owned();
            return Err(JoinError::Models(model.to_string(), other));
        }
        if i > 0 {
            out.push(',');
        }
        out.push_str(m.input.ok_or(JoinError::NoInput)?.get());
    }
    out.push(']');
    let rest = serde_json::to_string(&rest)?;
    // `rest` is `{}` or `{"k":…}`: append its fields after the input.
    if rest.len() > 2 {
        out.push(',');
        out.push_str(&rest[1..]);
    } else {
        out.push('}');
    }
    Ok(out)
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    data: Option<Vec<Item<'a>>>,
    model: Option<String>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Item<'a> {
    index: Option<serde_json::Number>,
    #[serde(borrow)]
    embedding: Option<Vector<'a>>,
}

/// `embedding`: an array of numbers, or base64 text (borrowed from the body when it can be).
enum Vector<'a> {
    Floats(Vec<f32>),
    Base64(Cow<'a, str>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Vector<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Vector<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of numbers or a base64 string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Vector<'de>, E> {
                Ok(Vector::Base64(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Vector<'de>, E> {
                Ok(Vector::Base64(Cow::Owned(v.to_string())))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vector<'de>, A::Error> {
                let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(256));
                while let Some(v) = seq.next_element::<f32>()? {
                    values.push(v);
                }
                Ok(Vector::Floats(values))
            }
        }
        d.deserialize_any(Visit)
    }
}

#[derive(Deserialize)]
struct WireUsage {
    prompt_tokens: Option<serde_json::Number>,
    total_tokens: Option<serde_json::Number>,
}

/// Reads a `CreateEmbeddingResponse`: every vector with its `index`, and the request's usage.
pub(super) fn parse(bytes: &[u8]) -> Result<Completion, BadBody> {
    let unusable = BadBody::Unusable;
    let (_, body): (_, Body<'_>) = read_json(bytes, "an embeddings list")?;
    let data = body
        .data
        .ok_or_else(|| unusable("no `data` in the answer".into()))?;
    let mut embeddings = Vec::with_capacity(data.len());
    for (at, item) in data.into_iter().enumerate() {
        let index = item
            .index
            .and_then(|n| n.as_u64())
            .ok_or_else(|| unusable(format!("`data[{at}].index` is missing or not a whole number")))?;
        let vector = match item.embedding {
            Some(Vector::Floats(v)) => v,
            Some(Vector::Base64(text)) => {
                decode(&text).map_err(|e| unusable(format!("`data[{at}].embedding`: {e}")))?
            }
            None => return Err(unusable(format!("`data[{at}].embedding` is missing"))),
        };
        embeddings.push(Embedding { index, vector });
    }
    let usage = match &body.usage {
        Some(u) => {
            let prompt_tokens = count("prompt_tokens", u.prompt_tokens.as_ref())?;
            let total = count("total_tokens", u.total_tokens.as_ref())?;
            Usage {
                prompt_tokens,
                total_tokens: if total == 0 { prompt_tokens } else { total },
                ..Usage::default()
            }
        }
        None => Usage::default(),
    };
    Ok(Completion {
        text: None,
        finish_reason: None,
        refusal: None,
        usage,
        model: body.model,
        id: None,
        // The rows keep their own vectors; the whole body is not kept a second time.
        raw: String::new(),
        embeddings,
    })
}

/// The f32 values of base64 text holding their little-endian bytes.
pub fn decode(text: &str) -> Result<Vec<f32>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("not base64 ({e})"))?;
    if bytes.len() % 4 != 0 {
        return Err(format!(
            "{} bytes of base64, not a whole number of 4-byte floats",
            bytes.len()
        ));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// The answer of a request of `tokens.len()` rows, one result per row in order: its vector
/// (the one whose `index` is the row's place in the request) and its share of the usage, or why
/// it has none (no vector with its index, or two).
pub(super) fn split(answer: Completion, tokens: &[u64]) -> Vec<Result<Completion, String>> {
    let n = tokens.len();
    let mut slots: Vec<Option<Vec<f32>>> = (0..n).map(|_| None).collect();
    let mut twice = vec![false; n];
    let mut outside = Vec::new();
    for e in answer.embeddings {
        match usize::try_from(e.index).ok().filter(|&i| i < n) {
            Some(i) if slots[i].is_some() => twice[i] = true,
            Some(i) => slots[i] = Some(e.vector),
            None => outside.push(e.index),
        }
    }
    let prompt = split_usage(answer.usage.prompt_tokens, tokens);
    let total = split_usage(answer.usage.total_tokens, tokens);
    let beyond = match outside.first() {
        Some(i) => format!(" (it has `index` {i}, outside 0 to {})", n.saturating_sub(1)),
        None => String::new(),
    };
    slots
        .into_iter()
        .enumerate()
        .map(|(i, slot)| match slot {
            _ if twice[i] => Err(format!(
                "the answer has two embeddings with `index` {i}: neither is trusted"
            )),
            None => Err(format!("the answer has no embedding with `index` {i}{beyond}")),
            Some(vector) => Ok(Completion {
                text: None,
                finish_reason: None,
                refusal: None,
                usage: Usage {
                    prompt_tokens: prompt[i],
                    total_tokens: total[i],
                    ..Usage::default()
                },
                model: answer.model.clone(),
                id: None,
                raw: format!("{{\"object\":\"embedding\",\"index\":{i}}}"),
                embeddings: vec![Embedding {
                    index: i as u64,
                    vector,
                }],
            }),
        })
        .collect()
}

/// `total` shared over rows in proportion to `weights` (evenly when they are all 0), in whole
/// tokens that sum to `total`: each row gets its share rounded down, and the tokens left go one
/// each to the rows with the largest remainders (the earlier row on a tie).
pub fn split_usage(total: u64, weights: &[u64]) -> Vec<u64> {
    let n = weights.len() as u128;
    if n == 0 {
        return Vec::new();
    }
    let sum: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    let (weights, sum): (Vec<u128>, u128) = if sum == 0 {
        (vec![1; weights.len()], n)
    } else {
        (weights.iter().map(|&w| u128::from(w)).collect(), sum)
    };
    let total = u128::from(total);
    let mut shares: Vec<u64> = weights.iter().map(|w| (total * w / sum) as u64).collect();
    let given: u128 = shares.iter().map(|&s| u128::from(s)).sum();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(total * weights[i] % sum));
    for &i in order.iter().take((total - given) as usize) {
        shares[i] += 1;
    }
    shares
}
