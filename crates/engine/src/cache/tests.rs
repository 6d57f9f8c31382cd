//! The cache's key and store, on files in a temp dir.

use super::key::{normalise, Scope};
use super::*;
use promptmill_core::family::Completion;
use promptmill_core::job::Endpoint;

fn scope(url: &str) -> Scope {
    let url = url::Url::parse(url).expect("test URL");
    Scope::new(Endpoint::Chat, &url)
}

const BODY: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":5}"#;

fn key_of(body: &str) -> Option<Key> {
    scope("https://api.openai.com/v1/chat/completions").key(body.as_bytes())
}

#[test]
fn the_ignored_fields_do_not_change_the_key() {
    let with = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":5,
        "stream":false,"user":"u1","metadata":{"a":"b"},"store":true}"#;
    assert_eq!(key_of(BODY), key_of(with));
    assert!(key_of(BODY).is_some());
}

#[test]
fn key_order_and_spacing_do_not_change_the_key() {
    let reordered =
        r#"{ "max_tokens": 5, "messages": [{"content": "hi", "role": "user"}], "model": "gpt-4o-mini" }"#;
    assert_eq!(key_of(BODY), key_of(reordered));
}

#[test]
fn any_other_field_changes_the_key() {
    for other in [
        r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"max_tokens":5}"#,
        r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi!"}],"max_tokens":5}"#,
        r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":6}"#,
        r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"temperature":0}"#,
        r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":5.0}"#,
    ] {
        assert_ne!(key_of(BODY), key_of(other), "{other}");
    }
}

#[test]
fn n_is_in_the_key_and_n_1_is_no_n() {
    let two = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"n":2}"#;
    let three = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"n":3}"#;
    let one = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"n":1}"#;
    assert!(key_of(two).is_some());
    assert_ne!(key_of(two), key_of(BODY));
    assert_ne!(key_of(two), key_of(three));
    assert_eq!(key_of(one), key_of(BODY));
}

#[test]
fn each_repeat_of_a_request_in_one_input_is_a_sample_of_its_own() {
    let body: serde_json::Map<String, serde_json::Value> = serde_json::from_str(BODY).expect("body");
    let other: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(r#"{"model":"gpt-4o-mini","messages":[]}"#).expect("body");
    let d = super::key::digest(&body);
    let mut repeats = super::key::Repeats::default();
    let first = repeats.number(d);
    let second = repeats.number(d);
    let third = repeats.number(d);
    assert_eq!(first, d, "the first keeps the body's digest");
    // The k-th repeat is keyed as (digest, k), as every earlier build keyed it: a cache written
    // by one of them still answers the repeats.
    let sample = |k: u32| -> super::key::Digest {
        use sha2::Digest as _;
        let mut hash = sha2::Sha256::new();
        hash.update(b"sample\0");
        hash.update(d);
        hash.update(k.to_le_bytes());
        hash.finalize().into()
    };
    assert_eq!([second, third], [sample(1), sample(2)]);
    assert_eq!(
        repeats.number(super::key::digest(&other)),
        super::key::digest(&other)
    );
    // A second reading of the same input numbers them the same way.
    let mut again = super::key::Repeats::default();
    assert_eq!(
        [again.number(d), again.number(d), again.number(d)],
        [first, second, third]
    );
}

#[test]
fn the_base_url_is_normalised_and_credentials_left_out() {
    assert_eq!(
        normalise(&url::Url::parse("HTTPS://API.Example.COM:443/v1/chat/completions/").expect("url")),
        "https://api.example.com/v1/chat/completions"
    );
    let a = scope("https://gw.example/v1/chat/completions?b=2&a=1&api_key=secret1");
    let b = scope("https://gw.example/v1/chat/completions?a=1&b=2&api_key=other");
    assert_eq!(a.key(BODY.as_bytes()), b.key(BODY.as_bytes()));
    assert_ne!(
        scope("https://gw.example/v1/chat/completions?a=1").key(BODY.as_bytes()),
        scope("https://gw.example/v1/chat/completions?a=2").key(BODY.as_bytes())
    );
}

#[test]
fn the_family_and_the_target_are_in_the_key() {
    let url = url::Url::parse("https://api.openai.com/v1/x").expect("url");
    let chat = Scope::new(Endpoint::Chat, &url).key(BODY.as_bytes());
    let responses = Scope::new(Endpoint::Responses, &url).key(BODY.as_bytes());
    assert_ne!(chat, responses);
    assert_ne!(
        scope("https://a.example/v1/chat/completions").key(BODY.as_bytes()),
        scope("https://b.example/v1/chat/completions").key(BODY.as_bytes())
    );
}

#[test]
fn an_answer_stored_is_found_by_another_opening_and_a_read_only_cache_stores_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sub/cache.db");
    let key = key_of(BODY).expect("key");
    let other = key_of(r#"{"model":"m","messages":[]}"#).expect("key");
    let cache = Cache::open(&path, true).expect("open");
    assert!(!cache.store_all("chat", &mut [(key, "{\"answer\":1}".into())]));
    assert_eq!(cache.lookup(&key), None, "read only: nothing stored");
    drop(cache);

    let cache = Cache::open(&path, false).expect("open");
    assert!(cache.store_all(
        "chat",
        &mut [(other, "{\"answer\":2}".into()), (key, "{\"answer\":1}".into())]
    ));
    drop(cache);
    let cache = Cache::open(&path, true).expect("open");
    assert_eq!(cache.lookup(&key).as_deref(), Some("{\"answer\":1}"));
    assert_eq!(
        cache.lookup_many(&[Some(other), None, Some(key)]),
        vec![
            Some("{\"answer\":2}".to_string()),
            None,
            Some("{\"answer\":1}".to_string())
        ]
    );
    let s = stats(&path).expect("stats");
    assert_eq!(s.answers, 2);
    assert_eq!(s.families, vec![("chat".to_string(), 2)]);
    assert_eq!(prune(&path, Duration::from_secs(3600)).expect("prune"), 0);
    assert_eq!(clear(&path).expect("clear"), 2);
    assert_eq!(cache.lookup(&key), None);
}

#[test]
fn keys_that_share_their_first_8_bytes_take_turns_and_never_answer_for_each_other() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = Cache::open(&dir.path().join("cache.db"), false).expect("open");
    let a = [7u8; 32];
    let mut b = a;
    b[31] = 8;
    assert!(cache.store_all("chat", &mut [(a, "A".into())]));
    assert_eq!(cache.lookup(&b), None, "same index entry, another key: a miss");
    assert!(cache.store_all("chat", &mut [(b, "B".into())]));
    assert_eq!(cache.lookup(&b).as_deref(), Some("B"));
    assert_eq!(cache.lookup(&a), None, "replaced");
}

#[cfg(unix)]
#[test]
fn the_file_is_private_to_the_user() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("new/cache.db");
    drop(Cache::open(&path, false).expect("open"));
    let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.path().join("new")), 0o700);
}

#[test]
fn a_damaged_file_does_not_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("cache.db");
    std::fs::write(&path, vec![0x55u8; 8192]).expect("write");
    assert!(Cache::open(&path, false).is_err());
    assert!(Cache::open_or_warn(&path, false).is_none());
}

#[test]
fn cut_short_and_refused_answers_may_not_be_cached() {
    let answer = |reason: &str| Completion {
        text: Some("x".into()),
        finish_reason: Some(reason.into()),
        refusal: None,
        usage: Default::default(),
        model: None,
        id: None,
        raw: String::new(),
        embeddings: Vec::new(),
    };
    assert!(answer("stop").may_be_cached());
    assert!(answer("end_turn").may_be_cached());
    for reason in ["length", "max_tokens", "content_filter", "refusal"] {
        assert!(!answer(reason).may_be_cached(), "{reason}");
    }
    // A chat refusal ends with `stop`, its refusal beside it.
    let refused = Completion {
        refusal: Some("I can't".into()),
        ..answer("stop")
    };
    assert!(!refused.may_be_cached());
}
