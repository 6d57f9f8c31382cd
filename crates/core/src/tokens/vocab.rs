//! The `o200k_base` and `cl100k_base` counters: each encoding's split regex (`tokens/split.rs`)
//! and counting tables (`tokens/merge.rs`), the tables loaded from the slim vocabularies
//! `build.rs` writes (a few MB in the binary, where `bpe-openai`'s own tables would be 47 MB).
//!
//! A slim vocabulary keeps what the merge needs and cannot cheaply recompute: the tokens'
//! lengths, the split table, the prefix table and the longest-match automaton; the pair map is
//! rebuilt from the split table when an encoding is first used. The tests in `tokens/pieces.rs`
//! hold every count to `bpe-openai`'s own, full tables, and `tokens/fixture_tests.rs` to Python
//! `tiktoken`.

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
    let lengths = section();
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
