//! The pre-tokenizer split: tiktoken's regex, run as `bpe-openai` 0.3 runs it, with a search
//! cache of the calling thread's own.
//!
//! `bpe-openai` compiles an encoding's split to a `regex-automata` meta regex of several
//! patterns, some of which stand in for tiktoken's look-ahead (`\s+(?!\S)`) by matching one
//! character more and giving it back. Its iterator calls `Regex::find`, which takes a search
//! cache from the regex's pool for every piece: the dry run's profile put 3.5 % of the CPU in
//! the pool, most of it on the slow path that every thread but the pool's first takes. Here
//! the same patterns and the same give-back run with `search_with` and a cache per thread.
//! `tokens/pieces.rs`'s tests hold the pieces (through the counts) to `bpe-openai`'s.

use std::cell::RefCell;

use regex_automata::meta::{Cache, Regex};
use regex_automata::{Anchored, Input};

/// An encoding's split regex.
pub struct Split {
    regex: Regex,
    /// Per pattern: true when its match ends with one character of look-ahead, not kept.
    lookahead: Vec<bool>,
}

thread_local! {
    /// Each split regex's search cache on this thread, by the regex's address.
    static CACHES: RefCell<Vec<(usize, Cache)>> = const { RefCell::new(Vec::new()) };
}

impl Split {
    /// The patterns, tried in order; `true` marks a look-ahead pattern (its last character is
    /// given back). They are compiled in this build's code, so a failure is a build fault.
    pub fn new(patterns: &[(&str, bool)]) -> Split {
        let (patterns, lookahead): (Vec<&str>, Vec<bool>) = patterns.iter().copied().unzip();
        let regex = Regex::new_many(&patterns).expect("the split patterns compile");
        Split { regex, lookahead }
    }

    /// Calls `piece` with each piece of `text`, in order; the pieces cover `text` exactly.
    pub fn each(&self, text: &str, mut piece: impl FnMut(&str)) {
        let id = self as *const Split as usize;
        CACHES.with(|caches| {
            let mut caches = caches.borrow_mut();
            let at = match caches.iter().position(|(owner, _)| *owner == id) {
                Some(at) => at,
                None => {
                    caches.push((id, self.regex.create_cache()));
                    caches.len() - 1
                }
            };
            let cache = &mut caches[at].1;
            let mut last = 0;
            while let Some(end) = self.next_end(text, last, cache) {
                piece(&text[last..end]);
                last = end;
            }
        })
    }

    /// The end of the piece that starts at `start`, or `None` at the end of the text.
    fn next_end(&self, text: &str, start: usize, cache: &mut Cache) -> Option<usize> {
        let rest = &text[start..];
        let m = self
            .regex
            .search_with(cache, &Input::new(rest).anchored(Anchored::Yes))?;
        let mut end = start + m.end();
        if self.lookahead[m.pattern().as_usize()] {
            // The pattern matched one character of look-ahead past the piece.
            let given_back = text[start..end].chars().next_back().map_or(0, char::len_utf8);
            end -= given_back;
        }
        // A match always consumes a character (as `bpe-openai` asserts); an empty one would
        // loop, so it ends the split instead.
        (end > start).then_some(end)
    }
}
