//! Successful answers: the deterministic completion text, the usage arithmetic and the
//! real-shaped `chat.completion`, `text_completion` and model-list bodies. Everything here
//! is a pure function of the parsed request (plus a [`Stamp`] for `id` and `created`), so the
//! same prompt always gets the same text, live or in a batch. The Responses API's and the
//! embeddings' bodies are built by `responses` and `embeddings` (the former from the same
//! [`complete`] text). Deciding *whether* to answer successfully is `service`'s job.

use std::fmt;
use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;

use super::structured;
use super::wire::Prompted;

/// How many prompt words the reply echoes.
const ECHO_WORDS: usize = 12;
const FINGERPRINT: &str = "fp_promptmill_mock";
/// Ids listed by `GET /v1/models`; any model name is accepted by every endpoint.
const MODELS: [&str; 7] = [
    "mock-model",
    "gpt-4o-mini",
    "gpt-4o",
    "gpt-3.5-turbo-instruct",
    "text-embedding-3-small",
    "text-embedding-3-large",
    "text-embedding-ada-002",
];

/// Token counts as OpenAI reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

/// A serialized successful answer and the usage it reports (for `/mock/stats`).
pub(crate) struct Reply {
    pub body: Bytes,
    pub usage: Usage,
}

/// The completion for a prompt: `Mock reply: <first 12 words>`, cut to `max_tokens` words.
pub(crate) struct Completion {
    pub text: String,
    pub words: u64,
    pub finish_reason: &'static str,
    /// The text is a refusal (chat's `message.refusal`, the Responses API's `refusal` part).
    pub refused: bool,
}

pub(crate) fn complete(prompt: &str, max_tokens: Option<u64>) -> Completion {
    let echo: Vec<&str> = prompt.split_whitespace().take(ECHO_WORDS).collect();
    let tail: &[&str] = if echo.is_empty() {
        &["(empty", "prompt)"]
    } else {
        &echo
    };
    let all = ["Mock", "reply:"].iter().chain(tail);
    let full_words = 2 + tail.len() as u64;
    let keep = max_tokens.map_or(full_words, |max| max.min(full_words));
    let mut text = String::with_capacity(prompt.len().min(256) + 16);
    for (i, word) in all.take(usize::try_from(keep).unwrap_or(usize::MAX)).enumerate() {
        if i > 0 {
            text.push(' ');
        }
        text.push_str(word);
    }
    // Like a model, a reply that used all of max_tokens was cut there, even when the mock's
    // whole answer happens to be exactly that long.
    let finish_reason = match max_tokens {
        Some(max) if keep >= max => "length",
        _ => "stop",
    };
    Completion {
        text,
        words: keep,
        finish_reason,
        refused: false,
    }
}

fn usage(prompted: &Prompted, completion: &Completion) -> Usage {
    let completion_tokens = completion.words * u64::from(prompted.n);
    Usage {
        prompt_tokens: prompted.prompt_tokens,
        completion_tokens,
        total_tokens: prompted.prompt_tokens + completion_tokens,
    }
}

/// What makes an answer's `id` and `created` its own: a live request's arrival index and the
/// clock, or a batch line's place (batch number, line number) and its batch's creation time,
/// so that a batch's output is the same whenever it is produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stamp {
    Live { seq: u64 },
    Batch { batch: u64, line: u64, created: u64 },
}

impl Stamp {
    pub(crate) fn created(self) -> u64 {
        match self {
            Stamp::Live { .. } => unix_now(),
            Stamp::Batch { created, .. } => created,
        }
    }
}

/// The part of an answer's `id` after its prefix: `17` live, `b2-17` for line 17 of batch 2.
impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stamp::Live { seq } => write!(f, "{seq}"),
            Stamp::Batch { batch, line, .. } => write!(f, "b{batch}-{line}"),
        }
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[derive(Serialize)]
struct ChatCompletion<'a> {
    id: String,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<ChatChoice<'a>>,
    usage: Usage,
    system_fingerprint: &'static str,
}

#[derive(Serialize)]
struct ChatChoice<'a> {
    index: u32,
    message: AssistantMessage<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct AssistantMessage<'a> {
    role: &'static str,
    content: Option<&'a str>,
    refusal: Option<&'a str>,
}

/// The `chat.completion` answer to `prompted`; `stamp` makes the id unique.
pub(crate) fn chat(prompted: &Prompted, stamp: Stamp) -> Reply {
    chat_saying(prompted, stamp, &structured::say(prompted, None))
}

/// The `chat.completion` answer whose every choice says `completion` (a refusal: `content`
/// null and the text as `refusal`).
pub(crate) fn chat_saying(prompted: &Prompted, stamp: Stamp, completion: &Completion) -> Reply {
    let usage = usage(prompted, completion);
    let text = completion.text.as_str();
    let (content, refusal) = if completion.refused {
        (None, Some(text))
    } else {
        (Some(text), None)
    };
    let choices = (0..prompted.n)
        .map(|index| ChatChoice {
            index,
            message: AssistantMessage {
                role: "assistant",
                content,
                refusal,
            },
            logprobs: None,
            finish_reason: completion.finish_reason,
        })
        .collect();
    let body = ChatCompletion {
        id: format!("chatcmpl-mock-{stamp}"),
        object: "chat.completion",
        created: stamp.created(),
        model: &prompted.model,
        choices,
        usage,
        system_fingerprint: FINGERPRINT,
    };
    Reply {
        body: to_bytes(&body),
        usage,
    }
}

#[derive(Serialize)]
struct TextCompletion<'a> {
    id: String,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<TextChoice<'a>>,
    usage: Usage,
    system_fingerprint: &'static str,
}

#[derive(Serialize)]
struct TextChoice<'a> {
    text: &'a str,
    index: u32,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

/// The legacy `text_completion` answer to `prompted`.
pub(crate) fn text(prompted: &Prompted, stamp: Stamp) -> Reply {
    text_saying(prompted, stamp, &complete(&prompted.prompt, prompted.max_tokens))
}

/// The legacy `text_completion` answer whose every choice says `completion`.
pub(crate) fn text_saying(prompted: &Prompted, stamp: Stamp, completion: &Completion) -> Reply {
    let usage = usage(prompted, completion);
    let choices = (0..prompted.n)
        .map(|index| TextChoice {
            text: &completion.text,
            index,
            logprobs: None,
            finish_reason: completion.finish_reason,
        })
        .collect();
    let body = TextCompletion {
        id: format!("cmpl-mock-{stamp}"),
        object: "text_completion",
        created: stamp.created(),
        model: &prompted.model,
        choices,
        usage,
        system_fingerprint: FINGERPRINT,
    };
    Reply {
        body: to_bytes(&body),
        usage,
    }
}

/// The `GET /v1/models` list; built once, it never changes.
pub(crate) fn models() -> Bytes {
    static BODY: LazyLock<Bytes> = LazyLock::new(|| {
        let data: Vec<_> = MODELS
            .iter()
            .map(|id| {
                serde_json::json!({"id": id, "object": "model", "created": 1_700_000_000, "owned_by": "promptmill-mock"})
            })
            .collect();
        to_bytes(&serde_json::json!({"object": "list", "data": data}))
    });
    BODY.clone()
}

/// Serializes a body. These structs hold only strings and integers, for which serde_json
/// cannot fail; a failure would be a bug here, answered with an empty object, not a panic.
pub(crate) fn to_bytes(value: &impl Serialize) -> Bytes {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .unwrap_or_else(|_| Bytes::from_static(b"{}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn prompted(prompt: &str, max_tokens: Option<u64>, n: u32) -> Prompted<'_> {
        Prompted {
            model: Cow::Borrowed("m"),
            prompt: Cow::Borrowed(prompt),
            prompt_tokens: 7,
            max_tokens,
            n,
            format: None,
        }
    }

    #[test]
    fn reply_echoes_the_first_twelve_words() {
        let c = complete("a b c d e f g h i j k l m n", None);
        assert_eq!(c.text, "Mock reply: a b c d e f g h i j k l");
        assert_eq!((c.words, c.finish_reason), (14, "stop"));
    }

    #[test]
    fn max_tokens_truncates_to_words_with_finish_reason_length() {
        let c = complete("one two three", Some(3));
        assert_eq!(
            (c.text.as_str(), c.words, c.finish_reason),
            ("Mock reply: one", 3, "length")
        );
        // A reply that used every token allowed was cut at max_tokens.
        let exact = complete("one two three", Some(5));
        assert_eq!((exact.words, exact.finish_reason), (5, "length"));
        let room = complete("one two three", Some(6));
        assert_eq!((room.words, room.finish_reason), (5, "stop"));
    }

    #[test]
    fn usage_multiplies_completion_tokens_by_n() {
        let reply = chat(&prompted("hi there", None, 3), Stamp::Live { seq: 1 });
        assert_eq!(
            reply.usage,
            Usage {
                prompt_tokens: 7,
                completion_tokens: 12,
                total_tokens: 19
            }
        );
        let json: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(json["choices"].as_array().unwrap().len(), 3);
        assert_eq!(json["choices"][2]["index"], 2);
        assert_eq!(json["choices"][0]["message"]["content"], "Mock reply: hi there");
    }

    #[test]
    fn text_completion_has_the_legacy_shape() {
        let json: serde_json::Value =
            serde_json::from_slice(&text(&prompted("x", None, 1), Stamp::Live { seq: 5 }).body).unwrap();
        assert_eq!(json["object"], "text_completion");
        assert_eq!(json["id"], "cmpl-mock-5");
        assert_eq!(json["choices"][0]["text"], "Mock reply: x");
        assert!(json["choices"][0]["logprobs"].is_null());
    }

    #[test]
    fn a_batch_stamp_gives_the_same_body_every_time() {
        let stamp = Stamp::Batch {
            batch: 2,
            line: 17,
            created: 1_700_000_000,
        };
        let first = chat(&prompted("x", None, 1), stamp).body;
        assert_eq!(first, chat(&prompted("x", None, 1), stamp).body);
        let json: serde_json::Value = serde_json::from_slice(&first).unwrap();
        assert_eq!(
            (&json["id"], &json["created"]),
            (&"chatcmpl-mock-b2-17".into(), &1_700_000_000.into())
        );
    }
}
