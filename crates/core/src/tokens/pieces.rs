//! The count of a split text, piece by piece, with two exact shortcuts before `bpe`'s merge.
//!
//! `bpe-openai`'s `count` splits a text with its regex and runs `bpe`'s backtracking encoder on
//! every piece: two allocations and an automaton search even for the four pieces in five that
//! are one token (a word, a space, a punctuation mark). A piece whose bytes are a token is one
//! token in tiktoken (it returns early for a piece in its encoder) and in `bpe` (which checks on
//! load that every token encodes to itself), so a hash-set lookup answers those. The encoder is
//! also slowest, about 0.8 µs a byte, on long runs of one character (`----…`, `====…`), where it
//! backtracks at nearly every token; their counts are remembered per thread (bounded). Everything
//! else goes to `bpe`'s count unchanged. The split itself stays `bpe-openai`'s.
//! `tokens/pieces.rs`'s tests check both shortcuts against `bpe-openai`'s own count.

use std::cell::RefCell;

use fnv::{FnvHashMap, FnvHashSet};

/// Runs shorter than this are cheap enough for the encoder; longer ones are not remembered.
const RUN_MIN_BYTES: usize = 32;
const RUN_MAX_BYTES: usize = 4096;
/// Remembered runs per thread before the memo is emptied (at most ~4 MB of keys).
const RUN_MEMO_ENTRIES: usize = 1024;

/// A remembered run: the encoding's address and the piece's bytes.
type RunKey = (usize, Box<[u8]>);

thread_local! {
    /// Counts of long one-character runs, keyed by the encoding's address and the piece. Lives
    /// as long as its thread; emptied whole when it reaches `RUN_MEMO_ENTRIES`.
    static RUNS: RefCell<FnvHashMap<RunKey, usize>> = RefCell::new(FnvHashMap::default());
}

/// A `bpe-openai` tokenizer and the set of its tokens' bytes.
pub struct Pieces {
    tokenizer: &'static bpe_openai::Tokenizer,
    tokens: FnvHashSet<&'static [u8]>,
}

impl Pieces {
    pub fn new(tokenizer: &'static bpe_openai::Tokenizer) -> Pieces {
        let bpe = &tokenizer.bpe;
        let tokens = (0..bpe.num_tokens() as u32)
            .map(|id| bpe.token_bytes(id))
            .collect();
        Pieces { tokenizer, tokens }
    }

    /// Tokens of `text`, as `bpe_openai::Tokenizer::count` (and tiktoken) counts them.
    pub fn count(&self, text: &str) -> usize {
        self.tokenizer
            .split(text)
            .map(|piece| self.count_piece(piece))
            .sum()
    }

    fn count_piece(&self, piece: &str) -> usize {
        let bytes = piece.as_bytes();
        if self.tokens.contains(bytes) {
            return 1;
        }
        if (RUN_MIN_BYTES..=RUN_MAX_BYTES).contains(&bytes.len()) && is_run(piece) {
            return self.count_run(bytes);
        }
        self.tokenizer.bpe.count(bytes)
    }

    fn count_run(&self, bytes: &[u8]) -> usize {
        let key = (self as *const Pieces as usize, Box::<[u8]>::from(bytes));
        RUNS.with(|memo| {
            let mut memo = memo.borrow_mut();
            if let Some(&n) = memo.get(&key) {
                return n;
            }
            let n = self.tokenizer.bpe.count(bytes);
            if memo.len() >= RUN_MEMO_ENTRIES {
                memo.clear();
            }
            memo.insert(key, n);
            n
        })
    }
}

/// One character repeated, after at most one leading space (the split's ` ?` prefix).
fn is_run(piece: &str) -> bool {
    let body = piece.strip_prefix(' ').unwrap_or(piece);
    let mut chars = body.chars();
    match chars.next() {
        Some(first) => chars.all(|c| c == first),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::Pieces;

    fn both() -> [(&'static bpe_openai::Tokenizer, Pieces); 2] {
        [
            (
                super::super::vocab::o200k_base(),
                Pieces::new(super::super::vocab::o200k_base()),
            ),
            (
                super::super::vocab::cl100k_base(),
                Pieces::new(super::super::vocab::cl100k_base()),
            ),
        ]
    }

    /// Every case of the tiktoken fixture corpus counts as `bpe-openai` counts it.
    #[test]
    fn shortcuts_count_the_corpus_as_bpe_openai_does() {
        let corpus: serde_json::Value = serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/tokens/corpus.json"
        )))
        .unwrap();
        for (full, pieces) in both() {
            for case in corpus["cases"].as_array().unwrap() {
                let text = case["text"].as_str().unwrap();
                assert_eq!(pieces.count(text), full.count(text), "{}", case["name"]);
            }
        }
    }

    /// Runs of one character, of every length up to past the memo's bound, with and without a
    /// leading space and after other text, counted twice (the second from the memo).
    #[test]
    fn remembered_runs_count_as_bpe_openai_does() {
        for (full, pieces) in both() {
            for c in [
                "-", "=", "*", ".", "a", "Z", "0", " ", "\n", "/", "語", "😂", "\u{200d}",
            ] {
                for n in (1..300).chain([511, 512, 1000, 1025, 2049, 4096, 4097, 5000]) {
                    for prefix in ["", " ", "x", "ab ", "\n"] {
                        let text = format!("{prefix}{}", c.repeat(n));
                        let want = full.count(text.as_str());
                        assert_eq!(pieces.count(&text), want, "{prefix:?} + {c:?} × {n}");
                        assert_eq!(pieces.count(&text), want, "again: {prefix:?} + {c:?} × {n}");
                    }
                }
            }
        }
    }

    /// Every token's own bytes are one token: the lookup's premise.
    #[test]
    fn every_token_alone_counts_one() {
        for (full, pieces) in both() {
            for &bytes in pieces.tokens.iter().take(20_000) {
                if let Ok(text) = std::str::from_utf8(bytes) {
                    if full.split(text).count() == 1 {
                        assert_eq!(full.count(text), 1, "{text:?}");
                    }
                }
            }
        }
    }
}
