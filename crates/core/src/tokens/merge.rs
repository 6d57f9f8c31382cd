//! The count of one piece: `bpe`'s backtracking merge, with its tables laid out for counting.
//!
//! `bpe` 0.2.3's `BytePairEncoding::count` runs its backtracking encoder: at each position take
//! the longest token the text starts with (an Aho-Corasick automaton), keep it if BPE would put
//! a boundary there (`is_valid_token_pair`: walk the two tokens' merge trees, asking at each
//! step whether the pair across the boundary merges first), else try the next shorter prefix,
//! else step back. A profile of the dry run on hard text puts 28 % of its CPU in that pair
//! check, whose map hashes each `(u32, u32)` with byte-wise FNV, and 12 % more in a set
//! lookup that hashes a whole piece byte by byte just to see if it is one token. This module is
//! the same algorithm, step for step (so the same tokens and counts), over the same tables
//! (the slim vocabulary's automaton, split table and prefix table: `tokens/vocab.rs`), with:
//! the pair map keyed by one `u64`, hashed by `foldhash`, behind a bit filter of the merging
//! pairs small enough to stay in cache; the one-token case answered by the first automaton
//! match covering the piece; and the stack and bit field reused per thread instead of allocated
//! per piece. `tokens/pieces.rs`'s tests hold it to `bpe-openai`'s own count.

use std::cell::RefCell;
use std::collections::HashMap;

use aneubeck_daachorse::DoubleArrayAhoCorasick;
use foldhash::fast::FixedState;

/// One vocabulary's tables for counting.
pub struct Merge {
    /// Leftmost-longest automaton over every token's bytes; a match's value is the token id.
    longest: DoubleArrayAhoCorasick<u32>,
    /// Each token's length in bytes (none is longer than 255: `build.rs` checks).
    len: Vec<u8>,
    /// The longest token that is a proper prefix of each token (`u32::MAX`: none).
    next_prefix: Vec<u32>,
    /// The two tokens each token was merged from; a base token names itself twice.
    split: Vec<(u32, u32)>,
    /// The merged token of a pair, keyed `left << 32 | right`.
    pairs: HashMap<u64, u32, FixedState>,
    /// One bit per hash of a pair's key, set for every pair in `pairs`: most pairs asked about
    /// do not merge, and this 256 KiB filter stays in cache where the 3 MB map does not.
    filter: Vec<u64>,
}

/// Bits of a key's hash that pick its filter bit: 2^21 bits, about ten a pair.
const FILTER_BITS: u32 = 21;

fn filter_bit(key: u64) -> usize {
    (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - FILTER_BITS)) as usize
}

/// The backtracking state, kept per thread so that a piece allocates nothing.
#[derive(Default)]
struct Scratch {
    tokens: Vec<u32>,
    /// One bit per byte boundary of the piece: cleared where no valid encoding can end.
    bits: Vec<u64>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

fn key(left: u32, right: u32) -> u64 {
    (u64::from(left) << 32) | u64::from(right)
}

impl Merge {
    /// The tables of a slim vocabulary: `longest` is the serialized automaton `bpe` wrote for
    /// its tokens, `len` their lengths, `split` and `next_prefix` as in `bpe`.
    ///
    /// # Safety
    /// `longest` must be bytes `DoubleArrayAhoCorasick::<u32>::serialize` of the same
    /// `aneubeck-daachorse` version wrote: `build.rs` writes them in this build from
    /// `bpe-openai`'s own tables, and they are embedded in the binary, never read from a user.
    pub unsafe fn new(longest: &[u8], len: Vec<u8>, split: Vec<(u32, u32)>, next_prefix: Vec<u32>) -> Merge {
        // SAFETY: the caller's promise above; `bpe` deserializes the same bytes the same way.
        let (longest, _) = unsafe { DoubleArrayAhoCorasick::<u32>::deserialize_unchecked(longest) };
        let mut pairs = HashMap::with_capacity_and_hasher(split.len(), FixedState::default());
        let mut filter = vec![0u64; (1 << FILTER_BITS) / 64];
        for (id, &(left, right)) in split.iter().enumerate() {
            if (left, right) != (id as u32, id as u32) {
                let key = key(left, right);
                pairs.insert(key, id as u32);
                let bit = filter_bit(key);
                filter[bit / 64] |= 1 << (bit % 64);
            }
        }
        Merge {
            longest,
            len,
            next_prefix,
            split,
            pairs,
            filter,
        }
    }

    /// The token `left` and `right` merge into, if they do.
    fn merged(&self, left: u32, right: u32) -> Option<u32> {
        let key = key(left, right);
        if !is_set(&self.filter, filter_bit(key)) {
            return None;
        }
        self.pairs.get(&key).copied()
    }

    /// Tokens of one piece of the split, as `bpe`'s `count` (and tiktoken) counts them.
    pub fn count(&self, piece: &[u8]) -> usize {
        let Some(first) = self.next_match(piece) else {
            return 0;
        };
        // A piece that is a token is that one token (`bpe` checks every token encodes to itself).
        if self.token_len(first) == piece.len() {
            return 1;
        }
        SCRATCH.with(|scratch| self.backtrack(piece, first, &mut scratch.borrow_mut()))
    }

    fn backtrack(&self, text: &[u8], first: u32, s: &mut Scratch) -> usize {
        s.tokens.clear();
        s.bits.clear();
        s.bits.resize((text.len() + 1).div_ceil(64), u64::MAX);
        let mut next = Some(first);
        let mut pos = 0;
        while let Some(mut token) = next {
            let last = s.tokens.last().copied();
            loop {
                let end = pos + self.token_len(token);
                if is_set(&s.bits, end) && last.is_none_or(|l| self.is_valid_pair(l, token)) {
                    s.tokens.push(token);
                    pos = end;
                    next = self.next_match(&text[end..]);
                    break;
                } else if let Some(shorter) = self.next_prefix(token) {
                    token = shorter;
                } else {
                    clear(&mut s.bits, pos);
                    s.tokens.pop();
                    pos -= last.map_or(0, |t| self.token_len(t));
                    next = last;
                    break;
                }
            }
        }
        s.tokens.len()
    }

    fn token_len(&self, token: u32) -> usize {
        usize::from(self.len[token as usize])
    }

    fn next_match(&self, text: &[u8]) -> Option<u32> {
        self.longest.leftmost_find_iter(text).next().map(|m| m.value())
    }

    fn next_prefix(&self, token: u32) -> Option<u32> {
        let prefix = self.next_prefix[token as usize];
        (prefix != u32::MAX).then_some(prefix)
    }

    /// Whether BPE puts a boundary between `left` and `right`: `bpe`'s `is_valid_token_pair`.
    fn is_valid_pair(&self, mut left: u32, mut right: u32) -> bool {
        // The highest token that may still be chosen across the boundary.
        let mut limit = u32::MAX;
        loop {
            if let Some(merged) = self.merged(left, right) {
                if merged < limit {
                    return false;
                }
            }
            // Undo the later of the two merges.
            if left > right {
                limit = left;
                left = self.split[left as usize].1;
                if left == limit {
                    limit = right + 1;
                    right = self.split[right as usize].0;
                    if right + 1 == limit {
                        return true;
                    }
                }
            } else {
                limit = right + 1;
                right = self.split[right as usize].0;
                if right + 1 == limit {
                    limit = left;
                    left = self.split[left as usize].1;
                    if left == limit {
                        return true;
                    }
                }
            }
        }
    }
}

fn is_set(bits: &[u64], bit: usize) -> bool {
    bits[bit / 64] & (1 << (bit % 64)) != 0
}

fn clear(bits: &mut [u64], bit: usize) {
    bits[bit / 64] &= !(1 << (bit % 64));
}
