//! The count of a split text, piece by piece: the split is `tokens/split.rs`'s (`bpe-openai`'s
//! regex and its look-ahead give-back), the merge `tokens/merge.rs`'s (`bpe`'s backtracking
//! algorithm over tables laid out for counting).
//!
//! The merge is slowest, about 0.8 µs a byte, on long runs of one character (`----…`, `====…`),
//! where it backtracks at nearly every token; their counts are remembered per thread (bounded).
//! A piece that is one token (four in five: a word, a space, a punctuation mark) is answered by
//! the merge's first automaton match. The tests below check every count against `bpe-openai`'s
//! own.

use std::cell::RefCell;

use fnv::FnvHashMap;

use super::merge::Merge;
use super::split::Split;

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

/// An encoding's split and the counting tables of its vocabulary.
pub struct Pieces {
    split: Split,
    merge: Merge,
}

impl Pieces {
    pub fn new(split: Split, merge: Merge) -> Pieces {
        Pieces { split, merge }
    }

    /// Tokens of `text`, as `bpe_openai::Tokenizer::count` (and tiktoken) counts them.
    pub fn count(&self, text: &str) -> usize {
        let mut n = 0;
        self.split.each(text, |piece| n += self.count_piece(piece));
        n
    }

    fn count_piece(&self, piece: &str) -> usize {
        let bytes = piece.as_bytes();
        if (RUN_MIN_BYTES..=RUN_MAX_BYTES).contains(&bytes.len()) && is_run(piece) {
            return self.count_run(bytes);
        }
        self.merge.count(bytes)
    }

    fn count_run(&self, bytes: &[u8]) -> usize {
        let key = (self as *const Pieces as usize, Box::<[u8]>::from(bytes));
        RUNS.with(|memo| {
            let mut memo = memo.borrow_mut();
            if let Some(&n) = memo.get(&key) {
                return n;
            }
            let n = self.merge.count(bytes);
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

    use super::super::vocab;

    /// `bpe-openai`'s own tokenizers (its full tables, not the binary's slim ones) beside ours.
    fn both() -> [(&'static bpe_openai::Tokenizer, &'static Pieces); 2] {
        [
            (bpe_openai::o200k_base(), vocab::o200k_pieces()),
            (bpe_openai::cl100k_base(), vocab::cl100k_pieces()),
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

    /// Every token's own bytes are one token (one id in seven, across the whole vocabulary),
    /// as the merge's first-match shortcut takes them to be.
    #[test]
    fn every_token_alone_counts_one() {
        for (full, pieces) in both() {
            for id in (0..full.bpe.num_tokens() as u32).step_by(7) {
                if let Ok(text) = std::str::from_utf8(full.bpe.token_bytes(id)) {
                    if full.split(text).count() == 1 {
                        assert_eq!(full.count(text), 1, "{text:?}");
                        assert_eq!(pieces.count(text), 1, "{text:?}");
                    }
                }
            }
        }
    }

    /// Text of long, hard pieces (letters without a break, CJK, scripts and emoji run together,
    /// digits, punctuation and spaces, mixed by a fixed pseudo-random walk), counted by the
    /// merge exactly as `bpe`'s own backtracking encoder counts it.
    #[test]
    fn hard_text_counts_as_bpe_openai_does() {
        let pool: Vec<char> = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/=-_.,;:!?'\"(){}[]<>#*&%$@ \n\t人工智能正在改变世界東京タワーひらがな안녕하세요Приветγειάمرحباשלוםनमस्तेสวัสดี😂🙃🍕👋🏻\u{200d}\u{fe0f}\u{20e3}éüñ"
            .chars()
            .collect();
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |n: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize % n
        };
        for (full, pieces) in both() {
            for _ in 0..400 {
                let len = 1 + next(600);
                // A narrow alphabet makes long pieces (and long merges) likely.
                let (start, width) = match next(4) {
                    0 => (0, 26),
                    1 => (next(pool.len()), 1 + next(6)),
                    2 => (next(pool.len() - 20), 20),
                    _ => (0, pool.len()),
                };
                let text: String = (0..len)
                    .map(|_| pool[(start + next(width)) % pool.len()])
                    .collect();
                assert_eq!(pieces.count(&text), full.count(&text), "{text:?}");
            }
        }
    }
}
