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

use std::collections::HashMap;
use std::hash::Hasher;
use std::io::Read;
use std::sync::LazyLock;

use bpe::byte_pair_encoding::BytePairEncoding;
use bpe_openai::Tokenizer;
use serde::{Serialize, Serializer};

use super::pieces::Pieces;

static O200K_BASE: LazyLock<Tokenizer> = LazyLock::new(|| {
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
    Tokenizer::new_lookahead(
        load(slim),
        &[(&pat1, false), ("\\s+\\s", true), ("\\s+", false)],
        false,
    )
    .expect("bpe-openai's o200k_base regex compiles")
});

static CL100K_BASE: LazyLock<Tokenizer> = LazyLock::new(|| {
    let slim = include_bytes!(concat!(env!("OUT_DIR"), "/cl100k_base.slim.gz"));
    // The split regex of `bpe-openai` 0.3 for cl100k_base.
    let pat1 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+$";
    Tokenizer::new_lookahead(
        load(slim),
        &[(pat1, false), ("\\s+\\s", true), ("\\s+", false)],
        false,
    )
    .expect("bpe-openai's cl100k_base regex compiles")
});

/// `o200k_base` (and the ordinary text of `o200k_harmony`).
pub fn o200k_base() -> &'static Tokenizer {
    &O200K_BASE
}

/// `cl100k_base`.
pub fn cl100k_base() -> &'static Tokenizer {
    &CL100K_BASE
}

static O200K_PIECES: LazyLock<Pieces> = LazyLock::new(|| Pieces::new(o200k_base()));
static CL100K_PIECES: LazyLock<Pieces> = LazyLock::new(|| Pieces::new(cl100k_base()));

/// `o200k_base`, counted with `tokens/pieces.rs`'s shortcuts.
pub fn o200k_pieces() -> &'static Pieces {
    &O200K_PIECES
}

/// `cl100k_base`, counted with `tokens/pieces.rs`'s shortcuts.
pub fn cl100k_pieces() -> &'static Pieces {
    &CL100K_PIECES
}

/// An automaton's serialized bytes, written as MessagePack `bin` as `bpe` writes them.
struct Bin<'a>(&'a [u8]);

impl Serialize for Bin<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
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

/// `bpe` 0.2.3's `BytePairEncoding` in its serialized field order (see `build.rs`).
#[derive(Serialize)]
struct Fields<'a>(
    &'a [u8],
    Vec<u32>,
    HashMap<u32, u32>,
    Vec<(u32, u32)>,
    HashMap<(u32, u32), u32>,
    Bin<'a>,
    Bin<'a>,
    Bin<'a>,
    Vec<u32>,
    u64,
);

/// The encoding a slim vocabulary holds. The data was written by `build.rs` from `bpe-openai`'s
/// own tables in this build, so a failure here is a build fault, not an input's.
fn load(slim: &[u8]) -> BytePairEncoding {
    // The decompressed sections and the rebuilt tables are dropped before the encoding is
    // deserialized, so at most two copies of the tables are in memory at once.
    let packed = {
        let mut data = Vec::new();
        flate2::read::GzDecoder::new(slim)
            .read_to_end(&mut data)
            .expect("the embedded vocabulary decompresses");
        rmp_serde::to_vec(&fields(&data)).expect("the fields serialize")
    };
    rmp_serde::from_slice(&packed).expect("the fields are a bpe 0.2.3 BytePairEncoding")
}

/// The fields of the encoding whose slim sections `data` holds, the hash tables rebuilt.
fn fields(data: &[u8]) -> Fields<'_> {
    let mut rest = data;
    let mut section = || {
        let (len, tail) = rest.split_at(8);
        let len = u64::from_le_bytes(len.try_into().expect("8 bytes")) as usize;
        let (section, tail) = tail.split_at(len);
        rest = tail;
        section
    };
    let u32s = |b: &[u8]| -> Vec<u32> {
        unplane(b, 4)
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect()
    };
    let hash_factor = u64::from_le_bytes(section().try_into().expect("8 bytes"));
    let tokens = section();
    let starts: Vec<u32> = std::iter::once(0)
        .chain(section().iter().scan(0u32, |end, &len| {
            *end += u32::from(len);
            Some(*end)
        }))
        .collect();
    let split: Vec<(u32, u32)> = unplane(section(), 8)
        .chunks_exact(8)
        .map(|p| {
            let word = |i: usize| u32::from_le_bytes(p[i..i + 4].try_into().expect("4 bytes"));
            (word(0), word(4))
        })
        .collect();
    let next_prefix = u32s(section());
    let (longest, overlapping, overlapping_rev) = (section(), section(), section());
    // Token by the hash of its bytes, as `bpe`'s `hash_bytes` computes it.
    let by_hash: HashMap<u32, u32> = starts
        .windows(2)
        .enumerate()
        .map(|(id, w)| {
            (
                hash_bytes(&tokens[w[0] as usize..w[1] as usize], hash_factor),
                id as u32,
            )
        })
        .collect();
    // A merged token by the pair it was merged from; a base token's split names itself.
    let by_pair: HashMap<(u32, u32), u32> = split
        .iter()
        .enumerate()
        .filter(|&(id, &pair)| pair != (id as u32, id as u32))
        .map(|(id, &pair)| (pair, id as u32))
        .collect();
    Fields(
        tokens,
        starts,
        by_hash,
        split,
        by_pair,
        Bin(longest),
        Bin(overlapping),
        Bin(overlapping_rev),
        next_prefix,
        hash_factor,
    )
}

/// `bpe`'s token hash: 64-bit FNV-1a of the length (`u64`, little-endian) and the bytes, times the
/// vocabulary's factor, high 32 bits.
fn hash_bytes(bytes: &[u8], factor: u64) -> u32 {
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(&(bytes.len() as u64).to_le_bytes());
    hasher.write(bytes);
    (hasher.finish().wrapping_mul(factor) >> 32) as u32
}

#[cfg(test)]
mod tests {
    /// The slim tables give the very tokens `bpe-openai`'s full ones give, on text of every kind
    /// the fixture has (its counts are checked against tiktoken in `fixture_tests.rs`).
    #[test]
    fn slim_vocabularies_encode_as_bpe_openai_does() {
        let corpus: serde_json::Value = serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/tokens/corpus.json"
        )))
        .unwrap();
        let cases = corpus["cases"].as_array().unwrap();
        assert!(cases.len() >= 40);
        for (slim, full, name) in [
            (super::o200k_base(), bpe_openai::o200k_base(), "o200k_base"),
            (super::cl100k_base(), bpe_openai::cl100k_base(), "cl100k_base"),
        ] {
            for case in cases {
                let text = case["text"].as_str().unwrap();
                assert_eq!(slim.encode(text), full.encode(text), "{name}: {}", case["name"]);
            }
        }
    }
}
