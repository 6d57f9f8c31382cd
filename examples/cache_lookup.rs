//! What the response cache costs a row, measured in-process on the engine's own `Cache`, over
//! N realistic chat requests: the digest taken at load (the body written canonically,
//! SHA-256), the key taken from it when sending, a page of lookups in one read for misses (an
//! empty cache) and hits, and storing as a run's end does (pages of 10,000 in key order, one
//! transaction each) into an empty cache and into one that holds N answers already.
//! Run with:
//!
//! ```text
//! cargo run --release --example cache_lookup                 # 100,000 rows
//! cargo run --example cache_lookup -- 20000                  # a debug build, fewer rows
//! ```

use std::time::{Duration, Instant};

use promptmill_core::job::Endpoint;
use serde_json::{Map, Value};

use promptmill_engine::cache::key::digest;
use promptmill_engine::cache::{Cache, Key, Scope};

fn main() -> anyhow::Result<()> {
    let rows: usize = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 100_000,
    };
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("cache.db");
    let url = url::Url::parse("https://api.openai.com/v1/chat/completions")?;
    let scope = Scope::new(Endpoint::Chat, &url);
    let bodies: Vec<Map<String, Value>> = (0..2 * rows)
        .map(|i| serde_json::from_str(&body(i)))
        .collect::<Result<_, _>>()?;
    let answer = answer();

    let (digesting, digests) = time(|| bodies.iter().map(digest).collect::<Vec<_>>());
    let (keying, keys) = time(|| digests.iter().map(|d| Some(scope.key_of(d))).collect::<Vec<_>>());
    let (first, second) = keys.split_at(rows);

    let cache = Cache::open(&path, false)?;
    let (miss, misses) = time(|| look_up(&cache, first));
    assert_eq!(misses, 0);
    let store_empty = time(|| store(&cache, first, &answer)).0;
    let store_full = time(|| store(&cache, second, &answer)).0;
    let (hit, hits) = time(|| look_up(&cache, first));
    assert_eq!(hits, rows);

    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "response cache, {rows} chat requests of ~{} bytes, {build} build",
        body(0).len()
    );
    let line = |what: &str, d: Duration| println!("  {what:<44} {:>7.2} µs/row", per_row(d, rows));
    line("digest at load (canonical JSON, SHA-256)", digesting / 2);
    line("key (scope + digest, SHA-256)", keying / 2);
    line("lookup, miss (empty cache, pages of 256)", miss);
    line("lookup, hit (pages of 256)", hit);
    line("store into an empty cache", store_empty);
    line(&format!("store into a cache of {rows}"), store_full);
    Ok(())
}

/// Looks `keys` up a page at a time, as the pipeline does; how many were found.
fn look_up(cache: &Cache, keys: &[Option<Key>]) -> usize {
    keys.chunks(256)
        .map(|page| cache.lookup_many(page).iter().filter(|a| a.is_some()).count())
        .sum()
}

/// Stores an answer for each key as a run's end does: pages of 10,000, one transaction each.
fn store(cache: &Cache, keys: &[Option<Key>], answer: &str) {
    for page in keys.chunks(10_000) {
        let mut answers: Vec<(Key, String)> =
            page.iter().flatten().map(|k| (*k, answer.to_string())).collect();
        assert!(cache.store_all("chat", &mut answers));
    }
}

/// A chat request as promptmill sends it: ~300 bytes.
fn body(i: usize) -> String {
    format!(
        r#"{{"model":"gpt-4o-mini","messages":[{{"role":"system","content":"You are a concise product copywriter."}},{{"role":"user","content":"Write a one-line description for product {i}, a red cotton t-shirt with a round neck, sizes S to XL."}}],"max_tokens":200,"temperature":0.2}}"#
    )
}

/// A typical answer body: ~600 bytes.
fn answer() -> String {
    r#"{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"A soft red cotton crew-neck tee, from S to XL, made for every day."},"finish_reason":"stop"}],"usage":{"prompt_tokens":41,"completion_tokens":18,"total_tokens":59}}"#.to_string()
}

fn time<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let out = f();
    (start.elapsed(), out)
}

fn per_row(d: Duration, rows: usize) -> f64 {
    d.as_secs_f64() * 1e6 / rows.max(1) as f64
}
