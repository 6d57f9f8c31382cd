//! Writes the slim vocabularies that `crates/core/src/tokens/vocab.rs` embeds in the binary.
//!
//! `bpe-openai` embeds each encoding as a serialized `bpe::BytePairEncoding` (o200k_base 32 MB,
//! cl100k_base 15 MB): its tokens, its merge tables and three Aho-Corasick automata, two of which
//! only its incremental encoders use, never `count`. Counting (`tokens/merge.rs`) needs neither
//! those two nor the tokens' bytes, and its pair map is cheap to rebuild, so this script keeps
//! what it needs and cannot rebuild quickly (the tokens' lengths, the split table, the prefix
//! table, the longest-match automaton), and gzips it.
//!
//! The file is a sequence of little-endian sections, each a `u64` length then its bytes: the
//! tokens' lengths (one byte each: no token is longer than 255 bytes), the split table (`u32`
//! pairs), the prefix table (`u32`s) and the longest-match automaton. The two tables are
//! byte-planed (every value's first byte, then every second byte, …: [`planes`]), which gzip
//! compresses 10-25 % better than the values in turn.

use std::io::Write;
use std::path::PathBuf;

use bpe_openai::byte_pair_encoding::BytePairEncoding;
use serde::{Deserialize, Deserializer};

/// An Aho-Corasick automaton as `bpe` serializes it: opaque bytes.
struct Bin(Vec<u8>);

impl<'de> Deserialize<'de> for Bin {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Bytes;
        impl serde::de::Visitor<'_> for Bytes {
            type Value = Bin;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Bin, E> {
                Ok(Bin(v.to_vec()))
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Bin, E> {
                Ok(Bin(v))
            }
        }
        d.deserialize_bytes(Bytes)
    }
}

/// `bpe` 0.2.3's `BytePairEncoding`, field by field in its serialized order (a MessagePack
/// array): all_tokens, token_starts, bytes_hash_to_token, split_table, pair_lookup,
/// longest_searcher, overlapping_searcher, overlapping_searcher_rev, next_prefix_match,
/// hash_factor. What counting does not use (the tokens' bytes, the two maps, the overlapping
/// automata, the hash factor) is read and dropped.
#[derive(Deserialize)]
struct Fields(
    serde::de::IgnoredAny,
    Vec<u32>,
    serde::de::IgnoredAny,
    Vec<(u32, u32)>,
    serde::de::IgnoredAny,
    Bin,
    serde::de::IgnoredAny,
    serde::de::IgnoredAny,
    Vec<u32>,
    serde::de::IgnoredAny,
);

fn fields(bpe: &BytePairEncoding) -> Fields {
    let bytes = rmp_serde::to_vec(bpe).expect("bpe serializes");
    rmp_serde::from_slice(&bytes).expect("bpe 0.2.3's field layout")
}

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for (name, tokenizer) in [
        ("o200k_base", bpe_openai::o200k_base()),
        ("cl100k_base", bpe_openai::cl100k_base()),
    ] {
        let f = fields(&tokenizer.bpe);
        let u32s = |v: &[u32]| planes(&v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>(), 4);
        let lengths: Vec<u8> =
            f.1.windows(2)
                .map(|w| u8::try_from(w[1] - w[0]).expect("no token is longer than 255 bytes"))
                .collect();
        let pairs =
            f.3.iter()
                .flat_map(|(a, b)| a.to_le_bytes().into_iter().chain(b.to_le_bytes()))
                .collect::<Vec<u8>>();
        let sections: [&[u8]; 4] = [&lengths, &planes(&pairs, 8), &u32s(&f.8), &f.5 .0];
        let file = std::fs::File::create(out.join(format!("{name}.slim.gz"))).expect("create in OUT_DIR");
        let mut gz =
            flate2::write::GzEncoder::new(std::io::BufWriter::new(file), flate2::Compression::new(6));
        for s in sections {
            gz.write_all(&(s.len() as u64).to_le_bytes()).expect("write");
            gz.write_all(s).expect("write");
        }
        gz.finish().and_then(|mut w| w.flush()).expect("write");
    }
}

/// `bytes` (whose length is a multiple of `width`) as byte planes: byte 0 of every `width`-byte
/// value, then byte 1 of every value, and so on. `vocab.rs`'s `unplane` undoes it.
fn planes(bytes: &[u8], width: usize) -> Vec<u8> {
    assert_eq!(bytes.len() % width, 0, "whole values");
    (0..width)
        .flat_map(|k| bytes.iter().skip(k).step_by(width).copied())
        .collect()
}
