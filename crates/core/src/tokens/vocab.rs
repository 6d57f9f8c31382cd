//! The `o200k_base` and `cl100k_base` tokenizers, loaded from the slim vocabularies `build.rs`
//! writes (6.5 MB in the binary, where `bpe-openai`'s own tables would be 47 MB).
//!
//! A slim vocabulary keeps what `bpe`'s count needs and cannot cheaply recompute: the tokens, the
//! split table, the longest-match automaton and the prefix table. On first use of an encoding
//! this module rebuilds the two hash tables (token by hash, merged token by pair; both follow
//! from the tokens and the split table), puts the fields back together as the `bpe` 0.2.3
//! `BytePairEncoding` they came from, and adds the split regex `bpe-openai` uses for the
//! encoding. The two overlapping-match automata, which only `bpe`'s incremental encoders search,
//! are those of a one-byte vocabulary: these tokenizers count (and split), nothing else.
//! `tokens/fixture_tests.rs` pins every count to Python `tiktoken`.

use std::io::Read;
use std::sync::LazyLock;

use super::merge::Merge;
use super::pieces::Pieces;
use super::split::Split;

static O200K_PIECES: LazyLock<Pieces> = LazyLock::new(|| {
    let slim = include_bytes!(concat!(env!("OUT_DIR"), "/o200k_base.slim.gz"));
    // The split regex of `bpe-openai` 0.3 for o200k_base (tiktoken's, its look-ahead rewritten).
    let pat1 = [
        "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        "\\p{N}{1,3}",
        " ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*",
        "\\s*[\\r\\n]+",
        "\\s+$",
    ]
    .join("|");
    let split = Split::new(&[(&pat1, false), ("\\s+\\s", true), ("\\s+", false)]);
    Pieces::new(split, load(slim))
});

static CL100K_PIECES: LazyLock<Pieces> = LazyLock::new(|| {
    let slim = include_bytes!(concat!(env!("OUT_DIR"), "/cl100k_base.slim.gz"));
    // The split regex of `bpe-openai` 0.3 for cl100k_base.
    let pat1 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+$";
    let split = Split::new(&[(pat1, false), ("\\s+\\s", true), ("\\s+", false)]);
    Pieces::new(split, load(slim))
});

/// `o200k_base`, counted with `tokens/pieces.rs`'s shortcuts.
pub fn o200k_pieces() -> &'static Pieces {
    &O200K_PIECES
}

/// `cl100k_base`, counted with `tokens/pieces.rs`'s shortcuts.
pub fn cl100k_pieces() -> &'static Pieces {
    &CL100K_PIECES
}

/// Undoes `build.rs`'s `planes`: `width`-byte values stored byte plane by byte plane.
fn unplane(planes: &[u8], width: usize) -> Vec<u8> {
    let n = planes.len() / width;
    let mut bytes = vec![0; planes.len()];
    for (k, plane) in planes.chunks_exact(n.max(1)).enumerate().take(width) {
        for (i, &b) in plane.iter().enumerate() {
            bytes[i * width + k] = b;
        }
    }
    bytes
}

/// The counting tables a slim vocabulary holds. The data was written by `build.rs` from
/// `bpe-openai`'s own tables in this build, so a failure here is a build fault, not an input's.
fn load(slim: &[u8]) -> Merge {
    let mut data = Vec::new();
    flate2::read::GzDecoder::new(slim)
        .read_to_end(&mut data)
        .expect("the embedded vocabulary decompresses");
    let mut rest = data.as_slice();
    let mut section = || {
        let (len, tail) = rest.split_at(8);
        let len = u64::from_le_bytes(len.try_into().expect("8 bytes")) as usize;
        let (section, tail) = tail.split_at(len);
        rest = tail;
        section
    };
    let (_hash_factor, _tokens, lengths) = (section(), section(), section());
    let split: Vec<(u32, u32)> = unplane(section(), 8)
        .chunks_exact(8)
        .map(|p| {
            let word = |i: usize| u32::from_le_bytes(p[i..i + 4].try_into().expect("4 bytes"));
            (word(0), word(4))
        })
        .collect();
    let next_prefix: Vec<u32> = unplane(section(), 4)
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    let longest = section();
    // SAFETY: `longest` is the longest-match automaton `build.rs` serialized in this build with
    // the `aneubeck-daachorse` version `Merge` deserializes it with (pinned in Cargo.toml).
    unsafe { Merge::new(longest, lengths.to_vec(), split, next_prefix) }
}
