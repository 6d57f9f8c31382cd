//! Token counts checked against Python `tiktoken`, OpenAI's own tokenizer library.
//!
//! `tests/data/tokens/corpus.json` holds a fixed corpus of tricky text (CJK, emoji ZWJ sequences,
//! whitespace runs, special-token text inside content, code, numbers, contractions, right-to-left
//! and complex scripts, zero-width characters, long words, a 5 KB paragraph, and long pieces: 10 KB
//! of one character, a 50 KB base64 blob, 20 KB of minified JavaScript, a long URL, CJK without
//! spaces, runs of emoji ZWJ sequences) with the counts
//! tiktoken gives for `o200k_base` and `cl100k_base`, and a few chat requests with the prompt
//! tokens of the OpenAI cookbook's `num_tokens_from_messages`. `make_fixture.py` beside it made
//! the file; these tests only read it, so a `bpe-openai` or `tiktoken-rs` upgrade that drifts from the reference
//! fails here, naming every case that drifted.

use super::{request_cost, Tokenizer};
use serde::Deserialize;
use std::collections::BTreeMap;

const FIXTURE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/tokens/corpus.json"
));

/// The models whose tokenizers the fixture's two encodings stand for.
const MODEL_FOR_ENCODING: [(&str, &str); 2] = [("gpt-4o", "o200k_base"), ("gpt-4", "cl100k_base")];

#[derive(Deserialize)]
struct Fixture {
    tiktoken: String,
    cases: Vec<Case>,
    chat: Vec<Chat>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    text: String,
    o200k_base: u64,
    cl100k_base: u64,
}

impl Case {
    fn expected(&self, encoding: &str) -> u64 {
        match encoding {
            "o200k_base" => self.o200k_base,
            "cl100k_base" => self.cl100k_base,
            other => panic!("the fixture has no counts for {other}"),
        }
    }
}

#[derive(Deserialize)]
struct Chat {
    name: String,
    messages: serde_json::Value,
    /// Expected prompt tokens by model name.
    prompt_tokens: BTreeMap<String, u64>,
}

fn fixture() -> Fixture {
    serde_json::from_str(FIXTURE).expect("tests/data/tokens/corpus.json is valid")
}

#[test]
fn fixture_covers_the_corpus_it_promises() {
    let f = fixture();
    assert!(f.cases.len() >= 40, "only {} cases", f.cases.len());
    assert!(!f.tiktoken.is_empty());
    for name in [
        "empty",
        "emoji_zwj_family",
        "endoftext_alone",
        "crlf_lines",
        "paragraph_5kb",
        "long_repeated_char_10kb",
        "long_base64_50kb",
        "long_minified_js_20kb",
        "long_url",
        "long_cjk_no_spaces",
        "long_emoji_zwj_run",
    ] {
        assert!(f.cases.iter().any(|c| c.name == name), "case {name} is missing");
    }
    let paragraph = f
        .cases
        .iter()
        .find(|c| c.name == "paragraph_5kb")
        .map(|c| c.text.len());
    assert!(paragraph >= Some(5000), "paragraph_5kb is {paragraph:?} bytes");
    let base64 = f
        .cases
        .iter()
        .find(|c| c.name == "long_base64_50kb")
        .map(|c| c.text.len());
    assert!(base64 >= Some(50_000), "long_base64_50kb is {base64:?} bytes");
}

#[test]
fn string_counts_equal_tiktoken_for_every_case() {
    let f = fixture();
    let mut drifted = Vec::new();
    for (model, encoding) in MODEL_FOR_ENCODING {
        let tokenizer = Tokenizer::for_model(model);
        assert_eq!(tokenizer.encoding(), encoding);
        for case in &f.cases {
            let (got, want) = (tokenizer.count(&case.text), case.expected(encoding));
            if got != want {
                drifted.push(format!(
                    "{}/{encoding}: promptmill {got}, tiktoken {want}",
                    case.name
                ));
            }
        }
    }
    assert!(
        drifted.is_empty(),
        "counts differ from tiktoken {} in {} case(s):\n{}",
        f.tiktoken,
        drifted.len(),
        drifted.join("\n")
    );
}

#[test]
fn chat_prompt_tokens_equal_the_cookbook_rule() {
    let f = fixture();
    assert!(!f.chat.is_empty());
    let mut drifted = Vec::new();
    for chat in &f.chat {
        for (model, _) in MODEL_FOR_ENCODING {
            let want = chat.prompt_tokens[model];
            let body = serde_json::json!({"model": model, "messages": chat.messages}).to_string();
            let got = request_cost(&body).expect("fixture bodies parse").prompt_tokens;
            if got != want {
                drifted.push(format!(
                    "{}/{model}: request_cost {got}, cookbook {want}",
                    chat.name
                ));
            }
        }
    }
    assert!(
        drifted.is_empty(),
        "chat prompt tokens differ:\n{}",
        drifted.join("\n")
    );
}
