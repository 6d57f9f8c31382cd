//! The `Response` a Responses request gets: every field the spec requires, the text (or
//! refusal) [`structured::say`] makes of the request, `incomplete` with reason
//! `max_output_tokens` for a cut text, and `text.format` echoing the format asked for. What a
//! directive changes in it is a [`Tune`]; parsing the request is `responses.rs`'s.

use serde::Serialize;
use serde_json::value::RawValue;

use super::Request;
use crate::directives::Details;
use crate::reply::{self, Completion, Reply, Stamp, Usage};
use crate::structured::{self, Spoiled};

/// What a directive changes in an otherwise normal answer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tune {
    pub details: Details,
    /// `reply=content-filter`: `incomplete`, reason `content_filter`.
    pub content_filter: bool,
    /// `reply=invalid-json`, `schema-break`, `cut` or `refusal` (or their --rate-*).
    pub spoil: Option<Spoiled>,
}

#[derive(Serialize)]
struct ResponseBody<'a> {
    id: String,
    object: &'static str,
    created_at: u64,
    status: &'static str,
    completed_at: Option<u64>,
    error: Option<()>,
    incomplete_details: Option<Incomplete>,
    instructions: Option<&'a str>,
    max_output_tokens: Option<u64>,
    model: &'a str,
    output: [OutputMessage<'a>; 1],
    parallel_tool_calls: bool,
    previous_response_id: Option<()>,
    reasoning: Reasoning,
    store: bool,
    temperature: f64,
    text: TextConfig<'a>,
    tool_choice: &'static str,
    tools: [(); 0],
    top_p: f64,
    truncation: &'static str,
    usage: ResponseUsage,
    user: Option<()>,
    metadata: Metadata<'a>,
}

#[derive(Serialize)]
struct Incomplete {
    reason: &'static str,
}

#[derive(Serialize)]
struct OutputMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    status: &'static str,
    role: &'static str,
    content: [Part<'a>; 1],
}

/// The output message's one content part: the text, or a refusal.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Part<'a> {
    OutputText {
        text: &'a str,
        annotations: [(); 0],
        logprobs: [(); 0],
    },
    Refusal {
        refusal: &'a str,
    },
}

#[derive(Serialize)]
struct Reasoning {
    effort: Option<()>,
    summary: Option<()>,
}

#[derive(Serialize)]
struct TextConfig<'a> {
    format: Format<'a>,
}

/// `text.format`: the request's as sent, or `{"type":"text"}`.
#[derive(Serialize)]
#[serde(untagged)]
enum Format<'a> {
    Sent(&'a RawValue),
    Text {
        #[serde(rename = "type")]
        kind: &'static str,
    },
}

#[derive(Serialize)]
struct ResponseUsage {
    input_tokens: u64,
    input_tokens_details: InputDetails,
    output_tokens: u64,
    output_tokens_details: OutputDetails,
    total_tokens: u64,
}

#[derive(Serialize)]
struct InputDetails {
    cached_tokens: u64,
    cache_write_tokens: u64,
}

#[derive(Serialize)]
struct OutputDetails {
    reasoning_tokens: u64,
}

/// The request's `metadata` as sent, or `{}`.
#[derive(Serialize)]
#[serde(untagged)]
enum Metadata<'a> {
    Given(&'a RawValue),
    Empty {},
}

/// The `Response` to `request`, as normal or as `tune` asks.
pub(crate) fn reply(request: &Request, stamp: Stamp, tune: Tune) -> Reply {
    let prompted = &request.prompted;
    let completion = structured::say(prompted, tune.spoil);
    let reason = match (tune.content_filter, completion.finish_reason) {
        (true, _) => Some("content_filter"),
        (false, "length") => Some("max_output_tokens"),
        _ => None,
    };
    let (status, completed_at) = match reason {
        Some(_) => ("incomplete", None),
        None => ("completed", Some(stamp.created())),
    };
    let d = tune.details;
    let input_tokens = d.prompt_tokens.unwrap_or(prompted.prompt_tokens);
    let reasoning = d.reasoning.unwrap_or(0);
    let output_tokens = completion.words.saturating_add(reasoning);
    let total_tokens = input_tokens.saturating_add(output_tokens);
    let body = ResponseBody {
        id: format!("resp_mock_{stamp}"),
        object: "response",
        created_at: stamp.created(),
        status,
        completed_at,
        error: None,
        incomplete_details: reason.map(|reason| Incomplete { reason }),
        instructions: request.instructions.as_deref(),
        max_output_tokens: prompted.max_tokens,
        model: &prompted.model,
        output: [message(&completion, stamp, status)],
        parallel_tool_calls: true,
        previous_response_id: None,
        reasoning: Reasoning {
            effort: None,
            summary: None,
        },
        store: request.store,
        temperature: request.temperature,
        text: TextConfig {
            format: request
                .format_sent
                .map_or(Format::Text { kind: "text" }, Format::Sent),
        },
        tool_choice: "auto",
        tools: [],
        top_p: request.top_p,
        truncation: "disabled",
        usage: ResponseUsage {
            input_tokens,
            input_tokens_details: InputDetails {
                cached_tokens: d.cached.unwrap_or(0),
                cache_write_tokens: d.cache_creation.unwrap_or(0),
            },
            output_tokens,
            output_tokens_details: OutputDetails {
                reasoning_tokens: reasoning,
            },
            total_tokens,
        },
        user: None,
        metadata: request.metadata.map_or(Metadata::Empty {}, Metadata::Given),
    };
    Reply {
        body: reply::to_bytes(&body),
        usage: Usage {
            prompt_tokens: input_tokens,
            completion_tokens: output_tokens,
            total_tokens,
        },
    }
}

/// The answer's one output message: its text, or its refusal.
fn message<'a>(completion: &'a Completion, stamp: Stamp, status: &'static str) -> OutputMessage<'a> {
    OutputMessage {
        kind: "message",
        id: format!("msg_mock_{stamp}"),
        status,
        role: "assistant",
        content: [if completion.refused {
            Part::Refusal {
                refusal: &completion.text,
            }
        } else {
            Part::OutputText {
                text: &completion.text,
                annotations: [],
                logprobs: [],
            }
        }],
    }
}
