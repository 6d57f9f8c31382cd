//! The 200s a shape directive (`reply=`, `usage=`, `size=`, the usage details) asks of the
//! Responses API and of embeddings. Shapes that only cut or spoil bytes (`reply=truncated`,
//! `reply=lone-surrogate`, `reply=not-utf8`, `size=`) are chat's own ([`directives::shape`]),
//! since they act on any body with a `Mock reply:` text; the others name a field, which has
//! another name or does not exist in these families. An embeddings answer has no text and no
//! output tokens, so the shapes that need them are refused with a 400 rather than faked.
//! Parsing directives is `directives`' job; choosing the family, `family`'s.

use bytes::Bytes;

use super::directives::{self, Details, Shape, Shaped};
use super::embeddings;
use super::reply::Stamp;
use super::responses::{self, Tune};

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
            content_filter: false,
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
            directives::shape(shape, normal, request.prompted.prompt_tokens)
        }
    }
}

/// `shape` applied to the answer to an embeddings request, or why it cannot be.
pub(crate) fn embeddings(request: &embeddings::Request, shape: &Shape) -> Result<Shaped, String> {
    match shape {
        Shape::Truncated | Shape::PromptTokens(_) => {
            // `usage.prompt_tokens` is spelled as in chat: chat's shape fits.
            Ok(directives::shape(
                shape,
                embeddings::reply(request),
                request.prompt_tokens,
            ))
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
        Shape::LoneSurrogate | Shape::NotUtf8 | Shape::Size(_) | Shape::ContentFilter => Err(
            "mock: an embeddings answer has no text: reply=lone-surrogate, reply=not-utf8, \
             reply=content-filter and size= do not apply to /v1/embeddings"
                .into(),
        ),
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
