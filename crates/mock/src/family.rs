//! The API families the mock answers — chat, legacy completions, the Responses API,
//! embeddings and Anthropic's Messages — as one [`Endpoint`] each, and a request body of any of them once parsed
//! ([`Parsed`]): the one place that knows which parser, which answer and which directive shapes
//! go with which family. `service` asks a [`Parsed`] for its directive text, its token cost, its
//! answer and its shaped answers, and never matches on the family itself. The bodies are each
//! family's module's: `wire` and `reply` (chat, completions), `responses`, `embeddings`, `messages`.

use super::directives::Shape;
use super::reply::{self, Reply, Stamp};
use super::shapes::Shaped;
use super::wire::{self, BadRequest, Prompted};
use super::{embeddings, messages, responses, shapes};

/// An endpoint the mock answers, live or as a batch's `endpoint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Chat,
    Completions,
    Responses,
    Embeddings,
    /// Anthropic's `/v1/messages` (live only: not among [`Endpoint::ALL`], which a batch may
    /// name).
    Messages,
}

impl Endpoint {
    /// Every endpoint, in the order messages list them.
    pub const ALL: [Endpoint; 4] = [
        Endpoint::Chat,
        Endpoint::Completions,
        Endpoint::Responses,
        Endpoint::Embeddings,
    ];

    /// The OpenAI path, as a batch names it.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Chat => "/v1/chat/completions",
            Endpoint::Completions => "/v1/completions",
            Endpoint::Responses => "/v1/responses",
            Endpoint::Embeddings => "/v1/embeddings",
            Endpoint::Messages => messages::dialect::PATH,
        }
    }
}

/// A valid request body of one family.
#[derive(Debug)]
pub(crate) enum Parsed<'a> {
    Chat(Prompted<'a>),
    Completions(Prompted<'a>),
    Responses(responses::Request<'a>),
    Embeddings(embeddings::Request<'a>),
    Messages(messages::Request<'a>),
}

impl<'a> Parsed<'a> {
    /// Parses and validates a body sent to `endpoint`.
    pub fn parse(endpoint: Endpoint, body: &'a [u8]) -> Result<Self, BadRequest> {
        Ok(match endpoint {
            Endpoint::Chat => Parsed::Chat(wire::parse_chat(body)?),
            Endpoint::Completions => Parsed::Completions(wire::parse_completion(body)?),
            Endpoint::Responses => Parsed::Responses(responses::parse(body)?),
            Endpoint::Embeddings => Parsed::Embeddings(embeddings::parse(body)?),
            Endpoint::Messages => Parsed::Messages(messages::parse(body)?),
        })
    }

    /// The text a directive is looked for in (and --fail-times counts by, and the log shows):
    /// the prompt; for Responses the instructions and every input; for embeddings the first
    /// input holding a directive, so that the request as a whole takes its fault.
    pub fn directive_text(&self) -> &str {
        match self {
            Parsed::Chat(p) | Parsed::Completions(p) => &p.prompt,
            Parsed::Responses(r) => &r.scan,
            Parsed::Embeddings(e) => e.directive_text(),
            Parsed::Messages(m) => &m.prompted.prompt,
        }
    }

    /// Tokens charged against --tpm: the prompt plus the output budget (none for embeddings).
    pub fn token_cost(&self) -> u64 {
        match self {
            Parsed::Chat(p) | Parsed::Completions(p) => p.token_cost(),
            Parsed::Responses(r) => r.prompted.token_cost(),
            Parsed::Embeddings(e) => e.prompt_tokens,
            Parsed::Messages(m) => m.prompted.token_cost(),
        }
    }

    /// The normal answer.
    pub fn reply(&self, stamp: Stamp) -> Reply {
        match self {
            Parsed::Chat(p) => reply::chat(p, stamp),
            Parsed::Completions(p) => reply::text(p, stamp),
            Parsed::Responses(r) => responses::reply(r, stamp, responses::Tune::default()),
            Parsed::Embeddings(e) => embeddings::reply(e),
            Parsed::Messages(m) => messages::reply(m, stamp),
        }
    }

    /// The 200 a shape directive asks for, or why this family has no such answer (a 400).
    pub fn shape(&self, shape: &Shape, stamp: Stamp) -> Result<Shaped, String> {
        match self {
            Parsed::Chat(p) => shapes::completion(p, shape, stamp, false),
            Parsed::Completions(p) => shapes::completion(p, shape, stamp, true),
            Parsed::Responses(r) => Ok(shapes::responses(r, shape, stamp)),
            Parsed::Embeddings(e) => shapes::embeddings(e, shape),
            Parsed::Messages(m) => messages::shape(m, shape, stamp),
        }
    }
}
