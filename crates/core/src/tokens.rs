//! Counting prompt tokens the way OpenAI bills and rate-limits them.
//!
//! The encoding follows the model name (tiktoken's own table, via `tiktoken-rs`): `o200k_base` for
//! the gpt-4o, gpt-4.1, gpt-5 and o-series families, `cl100k_base` for gpt-4 and gpt-3.5, the
//! older encodings for legacy completion models. Special-token text such as `<|endoftext|>` inside
//! a prompt is ordinary text, as it is when OpenAI receives it.
//!
//! `o200k_base`, `o200k_harmony` (whose ordinary text is `o200k_base`'s) and `cl100k_base` are
//! counted with `bpe-openai`'s split (its regex compiled to an automaton, `regex-automata`,
//! linear in the text: `tokens/split.rs`) and `bpe`'s backtracking merge, linear in a piece's
//! length, over tables laid out for counting (`tokens/merge.rs`; the tables slimmed for the
//! binary's size: `tokens/vocab.rs`): the same pieces and the same counts as tiktoken.
//! `tiktoken-rs` splits with a backtracking regex (`fancy-regex`) and merges long pieces in
//! O(n log n), several times slower on text of long pieces (base64, runs of one character, CJK
//! without spaces, emoji). The legacy encodings (`p50k_*`, `r50k_base`: retired completion
//! models only), which `bpe-openai` does not ship, are counted by `tiktoken-rs`'s
//! `encode_ordinary`. `tests/data/tokens/` pins the counts to Python `tiktoken`.
//!
//! Chat requests add framing: every message costs 3 tokens on top of the tokens of its role and
//! content (and of its `name`, plus 1 more), and every request 3 more for priming the reply. These
//! are the rules of
//! OpenAI's cookbook, "How to count tokens with tiktoken"
//! (<https://cookbook.openai.com/examples/how_to_count_tokens_with_tiktoken>, `num_tokens_from_messages`).
//!
//! For a model whose tokenizer is unknown (a local Llama, Mistral, …) the count is an
//! approximation: `o200k_base` is used, which is within a few percent of most modern BPE
//! vocabularies on English text. So is a name that looks like a misspelling of a known model
//! (`gpt-4o-mnii`), which tiktoken's prefix match would otherwise take for one.
//! [`Tokenizer::exact`] says which case applies.

use serde::Deserialize;
use serde_json::value::RawValue;
use tiktoken_rs::tokenizer::{get_tokenizer, Tokenizer as Kind};
use tiktoken_rs::CoreBPE;

/// Per-message and per-request framing of chat requests (OpenAI cookbook).
const TOKENS_PER_MESSAGE: u64 = 3;
const TOKENS_PER_NAME: u64 = 1;
const TOKENS_REPLY_PRIMING: u64 = 3;

/// A model's tokenizer.
#[derive(Clone, Copy)]
pub struct Tokenizer {
    engine: Engine,
    name: &'static str,
    exact: bool,
}

/// Which implementation counts an encoding; both give tiktoken's counts.
#[derive(Clone, Copy)]
enum Engine {
    /// `bpe-openai`'s split and `bpe`'s merge (`tokens/pieces.rs`): linear in the text.
    Linear(&'static pieces::Pieces),
    /// `tiktoken-rs`, for the legacy encodings `bpe-openai` does not ship.
    Legacy(&'static CoreBPE),
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokenizer({}, exact: {})", self.name, self.exact)
    }
}

impl Tokenizer {
    /// The tokenizer of `model`; provider prefixes such as `openai/` are ignored.
    pub fn for_model(model: &str) -> Tokenizer {
        let bare = model.rsplit('/').next().unwrap_or(model);
        // Each arm loads only its own vocabulary (on first use in the process).
        let o200k = || Engine::Linear(vocab::o200k_pieces());
        let (engine, name, exact) = match get_tokenizer(bare) {
            Some(Kind::Cl100kBase) => (Engine::Linear(vocab::cl100k_pieces()), "cl100k_base", true),
            Some(Kind::P50kBase) => (
                Engine::Legacy(tiktoken_rs::p50k_base_singleton()),
                "p50k_base",
                true,
            ),
            Some(Kind::P50kEdit) => (
                Engine::Legacy(tiktoken_rs::p50k_edit_singleton()),
                "p50k_edit",
                true,
            ),
            Some(Kind::R50kBase | Kind::Gpt2) => (
                Engine::Legacy(tiktoken_rs::r50k_base_singleton()),
                "r50k_base",
                true,
            ),
            // o200k_harmony is o200k_base plus special tokens, which ordinary text never produces.
            Some(Kind::O200kHarmony) => (o200k(), "o200k_harmony", true),
            Some(Kind::O200kBase) => (o200k(), "o200k_base", true),
            None => (o200k(), "o200k_base", false),
        };
        // tiktoken matches by prefix, so `gpt-4o-mnii` would pass for a gpt-4o model: a name
        // that looks like a misspelling of a known model is not counted as exact.
        let exact = exact && crate::models::did_you_mean(model).is_none();
        Tokenizer { engine, name, exact }
    }

    /// The encoding's name, e.g. `o200k_base`.
    pub fn encoding(&self) -> &'static str {
        self.name
    }

    /// False when the model is unknown and counts are an approximation.
    pub fn exact(&self) -> bool {
        self.exact
    }

    /// Tokens of `text` as ordinary text (special-token text included), as tiktoken's
    /// `encode(text, disallowed_special=())` counts them.
    pub fn count(&self, text: &str) -> u64 {
        match self.engine {
            Engine::Linear(pieces) => pieces.count(text) as u64,
            Engine::Legacy(bpe) => bpe.encode_ordinary(text).len() as u64,
        }
    }
}

/// The parts of a request body that cost tokens.
#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    model: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    messages: Option<Vec<Message<'a>>>,
    #[serde(borrow)]
    prompt: Option<&'a RawValue>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    n: Option<u64>,
    /// `--schema`'s `response_format`: billed as input, counted as its JSON text.
    #[serde(borrow)]
    response_format: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    role: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    content: Option<&'a RawValue>,
    #[serde(borrow)]
    name: Option<&'a RawValue>,
    #[serde(borrow)]
    tool_calls: Option<&'a RawValue>,
}

/// What one request costs against a tokens-per-minute limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestCost {
    pub prompt_tokens: u64,
    /// `max_tokens` (or `max_completion_tokens`) × `n`; 0 when the request sets no maximum.
    pub max_output_tokens: u64,
    /// `n`: how many completions the request asks for.
    pub choices: u64,
}

impl RequestCost {
    pub fn total(&self) -> u64 {
        self.prompt_tokens + self.max_output_tokens
    }
}

/// Counts a request body's prompt tokens (with chat framing, in the encoding of the body's
/// `model`) and its output allowance.
pub fn request_cost(body: &str) -> Result<RequestCost, serde_json::Error> {
    measure(body).map(|(cost, _)| cost)
}

/// The body's `model`, without counting anything.
pub fn body_model(body: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Model<'a> {
        #[serde(borrow)]
        model: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_str::<Model<'_>>(body)
        .ok()
        .and_then(|m| m.model.map(|m| m.into_owned()))
}

/// [`request_cost`], and the body's `model` (borrowed from `body` when it can be).
pub fn measure(body: &str) -> Result<(RequestCost, Option<std::borrow::Cow<'_, str>>), serde_json::Error> {
    let body: Body<'_> = serde_json::from_str(body)?;
    let tokenizer = &Tokenizer::for_model(body.model.as_deref().unwrap_or(""));
    let mut prompt_tokens = 0;
    if let Some(messages) = &body.messages {
        for m in messages {
            prompt_tokens += message_tokens(tokenizer, m)?;
        }
        prompt_tokens += TOKENS_REPLY_PRIMING;
    }
    if let Some(prompt) = body.prompt {
        prompt_tokens += count_value(tokenizer, prompt)?;
    }
    prompt_tokens += schema_tokens(tokenizer, body.response_format);
    let per_choice = body.max_completion_tokens.or(body.max_tokens).unwrap_or(0);
    let cost = RequestCost {
        prompt_tokens,
        max_output_tokens: per_choice.saturating_mul(body.n.unwrap_or(1).max(1)),
        choices: body.n.unwrap_or(1).max(1),
    };
    Ok((cost, body.model))
}

/// One chat message's tokens: its framing, role, content, name and tool calls.
fn message_tokens(tokenizer: &Tokenizer, m: &Message<'_>) -> Result<u64, serde_json::Error> {
    let mut tokens = TOKENS_PER_MESSAGE;
    if let Some(role) = &m.role {
        tokens += tokenizer.count(role);
    }
    if let Some(content) = m.content {
        tokens += count_value(tokenizer, content)?;
    }
    if let Some(name) = m.name {
        tokens += TOKENS_PER_NAME + count_value(tokenizer, name)?;
    }
    if let Some(calls) = m.tool_calls {
        // Tool calls are billed as their JSON text; an approximation of their framing.
        tokens += tokenizer.count(calls.get());
    }
    Ok(tokens)
}

/// The parts of a Responses API body (`CreateResponse`) that cost tokens.
#[derive(Deserialize)]
struct ResponsesBody<'a> {
    #[serde(borrow)]
    model: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    instructions: Option<&'a RawValue>,
    #[serde(borrow)]
    input: Option<&'a RawValue>,
    max_output_tokens: Option<u64>,
    /// `text` (`--schema` puts `text.format` there): counted as its JSON text.
    #[serde(borrow)]
    text: Option<&'a RawValue>,
}

/// [`measure`] for a Responses API body. OpenAI publishes no framing for it; the rule applied is
/// the chat one (an approximation): `instructions` count as a system message, a string `input`
/// as one user message, each input item with a `role` as a message, any other item (a function
/// call's output, a reference) as its JSON text, and 3 tokens prime the reply.
pub fn measure_responses(
    body: &str,
) -> Result<(RequestCost, Option<std::borrow::Cow<'_, str>>), serde_json::Error> {
    let body: ResponsesBody<'_> = serde_json::from_str(body)?;
    let tokenizer = &Tokenizer::for_model(body.model.as_deref().unwrap_or(""));
    let mut prompt_tokens = TOKENS_REPLY_PRIMING;
    if let Some(instructions) = body.instructions.filter(|i| i.get() != "null") {
        prompt_tokens +=
            TOKENS_PER_MESSAGE + tokenizer.count("system") + count_value(tokenizer, instructions)?;
    }
    match body.input.map(|i| i.get().trim_start()) {
        None | Some("null") => {}
        Some(text) if text.starts_with('"') => {
            let text: std::borrow::Cow<'_, str> = serde_json::from_str(text)?;
            prompt_tokens += TOKENS_PER_MESSAGE + tokenizer.count("user") + tokenizer.count(&text);
        }
        Some(items) => {
            for item in serde_json::from_str::<Vec<&RawValue>>(items)? {
                let m: Message<'_> = serde_json::from_str(item.get())?;
                prompt_tokens += match m.role {
                    Some(_) => message_tokens(tokenizer, &m)?,
                    None => tokenizer.count(item.get()),
                };
            }
        }
    }
    prompt_tokens += schema_tokens(tokenizer, body.text);
    let cost = RequestCost {
        prompt_tokens,
        max_output_tokens: body.max_output_tokens.unwrap_or(0),
        choices: 1,
    };
    Ok((cost, body.model))
}

/// The parts of an Anthropic Messages body that cost tokens.
#[derive(Deserialize)]
struct MessagesBody<'a> {
    #[serde(borrow)]
    model: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    system: Option<&'a RawValue>,
    #[serde(borrow)]
    messages: Option<Vec<Message<'a>>>,
    max_tokens: Option<u64>,
    /// `--schema`'s `output_config`: counted as its JSON text.
    #[serde(borrow)]
    output_config: Option<&'a RawValue>,
}

/// [`measure`] for an Anthropic Messages body. Anthropic's tokenizer is not public, so this is
/// an approximation by the chat rule in the model's fallback encoding: `system` counts as a
/// system message, each message as a chat message, and 3 tokens prime the reply.
pub fn measure_messages(
    body: &str,
) -> Result<(RequestCost, Option<std::borrow::Cow<'_, str>>), serde_json::Error> {
    let body: MessagesBody<'_> = serde_json::from_str(body)?;
    let tokenizer = &Tokenizer::for_model(body.model.as_deref().unwrap_or(""));
    let mut prompt_tokens = TOKENS_REPLY_PRIMING;
    if let Some(system) = body.system.filter(|s| s.get() != "null") {
        prompt_tokens += TOKENS_PER_MESSAGE + tokenizer.count("system") + count_value(tokenizer, system)?;
    }
    for m in body.messages.iter().flatten() {
        prompt_tokens += message_tokens(tokenizer, m)?;
    }
    prompt_tokens += schema_tokens(tokenizer, body.output_config);
    let cost = RequestCost {
        prompt_tokens,
        max_output_tokens: body.max_tokens.unwrap_or(0),
        choices: 1,
    };
    Ok((cost, body.model))
}

/// The tokens of the field that carries a `--schema` (the providers bill the schema as input; how
/// they frame it is not published, so its JSON text is counted): 0 when there is none.
fn schema_tokens(tokenizer: &Tokenizer, field: Option<&RawValue>) -> u64 {
    field
        .filter(|f| f.get() != "null")
        .map_or(0, |f| tokenizer.count(f.get()))
}

/// Tokens of a JSON value that holds text: a string, an array of strings (legacy prompts), or an
/// array of content parts (`{"type":"text","text":…}`; images and audio are not counted).
fn count_value(tokenizer: &Tokenizer, raw: &RawValue) -> Result<u64, serde_json::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        One(String),
        Many(Vec<Part>),
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Part {
        Str(String),
        Obj { text: Option<String> },
        Other(serde::de::IgnoredAny),
    }
    if raw.get() == "null" {
        return Ok(0);
    }
    Ok(match serde_json::from_str::<Text>(raw.get())? {
        Text::One(s) => tokenizer.count(&s),
        Text::Many(parts) => parts
            .iter()
            .map(|p| match p {
                Part::Str(s) => tokenizer.count(s),
                Part::Obj { text: Some(t) } => tokenizer.count(t),
                _ => 0,
            })
            .sum(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_model_is_not_counted_as_exact() {
        // tiktoken's prefix match alone would call gpt-4o-mnii an exact gpt-4o count.
        assert!(!Tokenizer::for_model("gpt-4o-mnii").exact());
        assert!(Tokenizer::for_model("gpt-4o-mini-2024-07-18").exact());
    }

    #[test]
    fn model_families_pick_their_encoding() {
        assert_eq!(Tokenizer::for_model("gpt-4o-mini").encoding(), "o200k_base");
        assert_eq!(Tokenizer::for_model("gpt-4.1").encoding(), "o200k_base");
        assert_eq!(Tokenizer::for_model("o3-mini").encoding(), "o200k_base");
        assert_eq!(Tokenizer::for_model("gpt-4").encoding(), "cl100k_base");
        assert_eq!(Tokenizer::for_model("gpt-3.5-turbo").encoding(), "cl100k_base");
        assert_eq!(Tokenizer::for_model("openai/gpt-4o").encoding(), "o200k_base");
        let local = Tokenizer::for_model("SmolLM2-135M-Instruct");
        assert!(!local.exact());
        assert!(Tokenizer::for_model("gpt-4o").exact());
    }

    #[test]
    fn special_token_text_is_ordinary_text() {
        let t = Tokenizer::for_model("gpt-4o");
        // Reference: tiktoken o200k_base, encode(s, disallowed_special=()).
        assert_eq!(t.count("<|endoftext|>"), 7);
        assert_eq!(t.count("hello world"), 2);
    }

    #[test]
    fn chat_framing_adds_three_per_message_and_three_per_request() {
        let body = r#"{"model":"gpt-4o","messages":[{"role":"system","content":"hello world"},{"role":"user","content":"hello world"}],"max_tokens":10,"n":2}"#;
        let cost = request_cost(body).unwrap();
        // Per message: 3 + role (1) + content (2); per request: 3.
        assert_eq!(cost.prompt_tokens, 2 * (3 + 1 + 2) + 3);
        assert_eq!(cost.max_output_tokens, 20);
    }

    #[test]
    fn legacy_prompts_and_content_parts_are_counted() {
        let legacy = request_cost(r#"{"model":"gpt-4o","prompt":"hello world","max_tokens":5}"#).unwrap();
        assert_eq!(
            legacy,
            RequestCost {
                prompt_tokens: 2,
                max_output_tokens: 5,
                choices: 1,
            }
        );
        let parts = r#"{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text","text":"hello world"},{"type":"image_url","image_url":{"url":"x"}}]}]}"#;
        assert_eq!(request_cost(parts).unwrap().prompt_tokens, 3 + 1 + 2 + 3);
    }

    /// The example of OpenAI's cookbook "How to count tokens with tiktoken", section 6, whose
    /// `prompt_tokens` as reported by the OpenAI API are printed there: 124 for gpt-4o and
    /// gpt-4o-mini, 129 for gpt-4 and gpt-3.5-turbo.
    #[test]
    fn counts_equal_what_the_openai_api_reported_for_the_cookbook_example() {
        let messages = r#"[
            {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
            {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
            {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
            {"role": "system", "name": "example_user", "content": "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
            {"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about how to do better."},
            {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client deliverable."}
        ]"#;
        for (model, reported) in [
            ("gpt-4o", 124),
            ("gpt-4o-mini", 124),
            ("gpt-4", 129),
            ("gpt-3.5-turbo", 129),
        ] {
            let body = format!(r#"{{"model":"{model}","messages":{messages},"max_tokens":1}}"#);
            assert_eq!(request_cost(&body).unwrap().prompt_tokens, reported, "{model}");
        }
    }
}

mod merge;
mod pieces;
mod split;
mod vocab;

#[cfg(test)]
mod fixture_tests;
