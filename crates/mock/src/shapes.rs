//! The 200s a shape directive (`reply=`, `usage=`, `size=`, the usage details) asks of chat,
//! legacy completions, the Responses API and embeddings (Anthropic's are `messages`'). Shapes
//! that only cut or spoil bytes (`reply=truncated`, `reply=lone-surrogate`, `reply=not-utf8`,
//! `size=`) are chat's own ([`chat`]), since they act on any body with a `Mock reply:` text; the
//! others name a field, which has another name or does not exist in some families. The spoiled
//! structured answers (`reply=invalid-json`, `schema-break`, `cut`, `refusal`) are the normal
//! answer built around another text ([`structured::say`]). An embeddings answer has no text and
//! no output tokens, so the shapes that need them are refused with a 400 rather than faked.
//! Parsing directives is `directives`' job; choosing the family, `family`'s.

use bytes::Bytes;

use super::directives::{Details, Shape};
use super::embeddings;
use super::reply::{self, Reply, Stamp, Usage};
use super::responses::{self, Tune};
use super::structured::{self, Spoiled};
use super::wire::Prompted;

/// `shape` applied to a chat answer (`legacy`: a text completion's), or why it cannot be.
pub(crate) fn completion(p: &Prompted, shape: &Shape, stamp: Stamp, legacy: bool) -> Result<Shaped, String> {
    match shape {
        Shape::Spoiled(Spoiled::Refusal) if legacy => Err(
            "mock: a text completion has no refusal: reply=refusal does not apply to /v1/completions".into(),
        ),
        Shape::Spoiled(spoil) => {
            let said = structured::say(p, Some(*spoil));
            Ok(counted(if legacy {
                reply::text_saying(p, stamp, &said)
            } else {
                reply::chat_saying(p, stamp, &said)
            }))
        }
        _ => {
            let normal = if legacy {
                reply::text(p, stamp)
            } else {
                reply::chat(p, stamp)
            };
            Ok(chat(shape, normal, p.prompt_tokens))
        }
    }
}

/// A well-formed answer, whose usage the stats count.
pub(crate) fn counted(reply: Reply) -> Shaped {
    Shaped {
        body: reply.body,
        usage: Some(reply.usage),
    }
}

/// `shape` applied to the answer to a Responses request.
pub(crate) fn responses(request: &responses::Request, shape: &Shape, stamp: Stamp) -> Shaped {
    let tuned = |tune: Tune| {
        let reply = responses::reply(request, stamp, tune);
        Shaped {
            body: reply.body,
            usage: Some(reply.usage),
        }
    };
    match shape {
        Shape::Details(details) => tuned(Tune {
            details: *details,
            ..Tune::default()
        }),
        Shape::Spoiled(spoil) => tuned(Tune {
            spoil: Some(*spoil),
            ..Tune::default()
        }),
        Shape::ContentFilter => tuned(Tune {
            content_filter: true,
            ..Tune::default()
        }),
        Shape::NoChoices => {
            let normal = responses::reply(request, stamp, Tune::default());
            emptied(&normal.body, "output")
        }
        Shape::PromptTokens(text) => {
            let normal = responses::reply(request, stamp, Tune::default());
            let tokens = normal.usage.prompt_tokens;
            replaced(
                &normal.body,
                &format!("\"input_tokens\":{tokens}"),
                &format!("\"input_tokens\":{text}"),
            )
        }
        Shape::Truncated | Shape::LoneSurrogate | Shape::NotUtf8 | Shape::Size(_) => {
            let normal = responses::reply(request, stamp, Tune::default());
            chat(shape, normal, request.prompted.prompt_tokens)
        }
    }
}

/// `shape` applied to the answer to an embeddings request, or why it cannot be.
pub(crate) fn embeddings(request: &embeddings::Request, shape: &Shape) -> Result<Shaped, String> {
    match shape {
        Shape::Truncated | Shape::PromptTokens(_) => {
            // `usage.prompt_tokens` is spelled as in chat: chat's shape fits.
            Ok(chat(shape, embeddings::reply(request), request.prompt_tokens))
        }
        Shape::NoChoices => Ok(emptied(&embeddings::reply(request).body, "data")),
        Shape::Details(Details {
            prompt_tokens: Some(tokens),
            cached: None,
            cache_creation: None,
            reasoning: None,
        }) => {
            let reply = embeddings::reply_with_tokens(request, *tokens);
            Ok(Shaped {
                body: reply.body,
                usage: Some(reply.usage),
            })
        }
        Shape::Details(_) => Err(
            "mock: an embeddings answer reports prompt tokens only: of the usage \
                                  details, only prompt-tokens= applies to /v1/embeddings"
                .into(),
        ),
        Shape::LoneSurrogate | Shape::NotUtf8 | Shape::Size(_) | Shape::ContentFilter | Shape::Spoiled(_) => {
            Err(
                "mock: an embeddings answer has no text: reply=lone-surrogate, reply=not-utf8, \
             reply=content-filter, reply=invalid-json, reply=schema-break, reply=cut, reply=refusal \
             and size= do not apply to /v1/embeddings"
                    .into(),
            )
        }
    }
}

/// `body` with the array `key` emptied; not a usable answer, so its usage is not counted.
fn emptied(body: &[u8], key: &str) -> Shaped {
    let mut json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    json[key] = serde_json::Value::Array(Vec::new());
    Shaped {
        body: Bytes::from(serde_json::to_vec(&json).unwrap_or_default()),
        usage: None,
    }
}

/// `body` with the first `from` written as `to` (a usage number as the directive wrote it).
fn replaced(body: &[u8], from: &str, to: &str) -> Shaped {
    let text = String::from_utf8_lossy(body).replacen(from, to, 1);
    Shaped {
        body: Bytes::from(text.into_bytes()),
        usage: None,
    }
}

/// A shaped 200: its body, and its usage when the body is a well-formed completion.
pub(crate) struct Shaped {
    pub body: Bytes,
    pub usage: Option<Usage>,
}

/// Where the text of a mock reply begins, in chat and legacy bodies alike.
const TEXT_START: &[u8] = b"Mock reply:";

/// Makes `normal` (the answer the prompt would get) into `shape`. `prompt_tokens` is what
/// `normal` reports as `usage.prompt_tokens`.
pub(crate) fn chat(shape: &Shape, normal: Reply, prompt_tokens: u64) -> Shaped {
    let body = normal.body;
    let broken = |body: Vec<u8>| Shaped {
        body: Bytes::from(body),
        usage: None,
    };
    match shape {
        Shape::Truncated => broken(body.slice(..body.len() / 2).to_vec()),
        Shape::LoneSurrogate => broken(insert_before_text(&body, br"\ud800")),
        Shape::NotUtf8 => broken(insert_before_text(&body, b"\xff")),
        Shape::NoChoices => {
            let mut json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            json["choices"] = serde_json::Value::Array(Vec::new());
            broken(serde_json::to_vec(&json).unwrap_or_default())
        }
        Shape::ContentFilter => {
            let mut json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            if let Some(choices) = json["choices"].as_array_mut() {
                for choice in choices {
                    choice["finish_reason"] = "content_filter".into();
                }
            }
            Shaped {
                body: Bytes::from(serde_json::to_vec(&json).unwrap_or_default()),
                usage: Some(normal.usage),
            }
        }
        Shape::PromptTokens(text) => {
            let from = format!("\"prompt_tokens\":{prompt_tokens}");
            let to = format!("\"prompt_tokens\":{text}");
            let text = String::from_utf8_lossy(&body).replacen(&from, &to, 1);
            broken(text.into_bytes())
        }
        Shape::Details(d) => with_details(&body, normal.usage, d),
        // The families build these around another text (see [`completion`]); the normal
        // answer is what is left should one get here.
        Shape::Spoiled(_) => Shaped {
            body,
            usage: Some(normal.usage),
        },
        Shape::Size(bytes) => {
            let pad = usize::try_from(*bytes)
                .unwrap_or(usize::MAX)
                .saturating_sub(body.len());
            let body = insert_before_text(&body, &vec![b'x'; pad]);
            Shaped {
                body: Bytes::from(body),
                usage: Some(normal.usage),
            }
        }
    }
}

/// `body` (a normal answer reporting `usage`) with the usage `d` asks for: the prompt tokens
/// replaced, the reasoning tokens added to the completion tokens, and the details reported.
fn with_details(body: &[u8], usage: Usage, d: &Details) -> Shaped {
    let prompt_tokens = d.prompt_tokens.unwrap_or(usage.prompt_tokens);
    let completion_tokens = usage.completion_tokens.saturating_add(d.reasoning.unwrap_or(0));
    let usage = Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: prompt_tokens.saturating_add(completion_tokens),
    };
    let mut json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let mut prompt_details = serde_json::Map::new();
    if let Some(n) = d.cached {
        prompt_details.insert("cached_tokens".into(), n.into());
    }
    if let Some(n) = d.cache_creation {
        prompt_details.insert("cache_creation_tokens".into(), n.into());
    }
    let u = &mut json["usage"];
    u["prompt_tokens"] = usage.prompt_tokens.into();
    u["completion_tokens"] = usage.completion_tokens.into();
    u["total_tokens"] = usage.total_tokens.into();
    if !prompt_details.is_empty() {
        u["prompt_tokens_details"] = prompt_details.into();
    }
    if let Some(n) = d.reasoning {
        u["completion_tokens_details"] = serde_json::json!({ "reasoning_tokens": n });
    }
    Shaped {
        body: Bytes::from(serde_json::to_vec(&json).unwrap_or_default()),
        usage: Some(usage),
    }
}

/// `body` with `insert` placed where the reply's text begins (at the end if it has none).
fn insert_before_text(body: &[u8], insert: &[u8]) -> Vec<u8> {
    let at = memchr::memmem::find(body, TEXT_START).unwrap_or(body.len());
    let mut out = Vec::with_capacity(body.len() + insert.len());
    out.extend_from_slice(&body[..at]);
    out.extend_from_slice(insert);
    out.extend_from_slice(&body[at..]);
    out
}
