//! What the response cache costs a row, measured in-process on the engine's own `Cache`: the
//! key (parse the request body, write it canonically, SHA-256) and one indexed SQLite read, for
//! a miss (an empty cache) and a hit (every answer stored), over N realistic chat requests.
//! Run with:
//!
//! ```text
//! cargo run --release --example cache_lookup                 # 100,000 rows
//! cargo run --example cache_lookup -- 20000                  # a debug build, fewer rows
//! ```

use std::time::{Duration, Instant};

use promptmill_core::job::Endpoint;
use promptmill_engine::cache::{Cache, Scope};

fn main() -> anyhow::Result<()> {
    let rows: usize = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 100_000,
    };
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("cache.db");
    let url = url::Url::parse("https://api.openai.com/v1/chat/completions")?;
    let scope = Scope::new(Endpoint::Chat, &url);
    let bodies: Vec<String> = (0..rows).map(body).collect();
    let answer = answer();

    let cache = Cache::open(&path, false)?;
    let (miss, misses) = time(|| {
        count(&bodies, |b| {
            scope.key(b.as_bytes()).and_then(|k| cache.lookup(&k))
        })
    });
    assert_eq!(misses, 0);
    let store_start = Instant::now();
    for b in &bodies {
        if let Some(k) = scope.key(b.as_bytes()) {
            cache.put_blocking(k, "chat", answer.clone());
        }
    }
    cache.close();
    let stored = store_start.elapsed();
    let (hit, hits) = time(|| {
        count(&bodies, |b| {
            scope.key(b.as_bytes()).and_then(|k| cache.lookup(&k))
        })
    });
    assert_eq!(hits, rows);
    let (key_only, _) = time(|| count(&bodies, |b| scope.key(b.as_bytes()).map(|_| ())));

    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "response cache, {rows} chat requests of ~{} bytes, {build} build",
        bodies[0].len()
    );
    println!(
        "  key only (parse, canonical, SHA-256)  {:>7.2} µs/row",
        per_row(key_only, rows)
    );
    println!(
        "  lookup, miss (empty cache)            {:>7.2} µs/row",
        per_row(miss, rows)
    );
    println!(
        "  lookup, hit                           {:>7.2} µs/row",
        per_row(hit, rows)
    );
    println!(
        "  store (queue + grouped commits)       {:>7.2} µs/row",
        per_row(stored, rows)
    );
    Ok(())
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

fn count<T>(bodies: &[String], f: impl Fn(&String) -> Option<T>) -> usize {
    bodies.iter().filter(|b| f(b).is_some()).count()
}

fn time<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let out = f();
    (start.elapsed(), out)
}

fn per_row(d: Duration, rows: usize) -> f64 {
    d.as_secs_f64() * 1e6 / rows.max(1) as f64
}
