//! Tests of `models`: lookups, sources, the misspelt-model note.

use super::*;

#[test]
fn a_misspelt_model_is_unknown_and_the_nearest_is_suggested() {
    assert_eq!(did_you_mean("gpt-4o-mnii"), Some("gpt-4o-mini"));
    assert_eq!(did_you_mean("gpt4o-mini"), Some("gpt-4o-mini"));
    assert_eq!(did_you_mean("openai/gtp-4o"), Some("gpt-4o"));
    for known in [
        "gpt-4o-mini",
        "gpt-4o-mini-2024-07-18",
        "openai/gpt-4o",
        "gpt-4-0613",
    ] {
        assert_eq!(did_you_mean(known), None, "{known}");
    }
    // Far from everything: unknown, but no guess.
    assert_eq!(did_you_mean("my-local-llama"), None);
    assert_eq!(did_you_mean("m"), None);
    assert_eq!(
        unknown_model_note("gpt-4o-mnii", "o200k_base", false, false).unwrap(),
        "unknown model `gpt-4o-mnii` (did you mean gpt-4o-mini?): tokens approximated with \
         o200k_base, no price — pass --price-in/--price-out"
    );
    assert_eq!(unknown_model_note("gpt-4o-mini", "o200k_base", true, true), None);
    assert_eq!(
        unknown_model_note("my-llama", "o200k_base", false, true).unwrap(),
        "unknown model `my-llama`: tokens approximated with o200k_base"
    );
}

#[test]
fn table_models_are_found_under_prefixes_and_dates() {
    let book = PriceBook::default();
    let info = book.lookup("openai/gpt-4o-2024-08-06").unwrap();
    assert_eq!(info.max_input_tokens, Some(128_000));
    let p = info.prices.unwrap();
    assert_eq!((p.input, p.output), (2.5, 10.0));
    assert_eq!(book.lookup("gpt-4-0613").unwrap().max_input_tokens, Some(8_192));
    assert!(matches!(
        book.lookup("gpt-4o-mini").unwrap().source,
        Some(Source::BuiltIn { .. })
    ));
    let none = book.lookup("llama-3-8b").unwrap();
    assert_eq!((none.prices, none.max_input_tokens), (None, None));
}

#[test]
fn costs_are_per_million_and_batch_is_half() {
    let p = PriceBook::default()
        .lookup("gpt-4o-mini")
        .unwrap()
        .prices
        .unwrap();
    let million = Billed::plain(1e6, 1e6);
    assert!((p.cost(false, 1, &million).total() - 0.75).abs() < 1e-12);
    assert!((p.cost(true, 1, &million).total() - 0.375).abs() < 1e-12);
    let p = PriceBook::default()
        .lookup("gpt-3.5-turbo-instruct")
        .unwrap()
        .prices
        .unwrap();
    assert_eq!(p.batch_input, None);
    let one = Billed::plain(1e6, 1e6);
    assert_eq!(
        p.cost(true, 1, &one),
        p.cost(false, 1, &one),
        "no Batch price: the live one"
    );
}

#[test]
fn flags_win_and_must_come_in_pairs() {
    let book = PriceBook::new(None, Some(1.0), Some(2.0)).unwrap();
    let info = book.lookup("my-local-model").unwrap();
    assert_eq!(info.source, Some(Source::Flags));
    let p = info.prices.unwrap();
    assert_eq!(p.cost(true, 1, &Billed::plain(2e6, 0.0)).total(), 1.0);
    let err = PriceBook::new(None, Some(1.0), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "--price-out: is needed with --price-in (dollars per million output tokens)"
    );
    let err = PriceBook::new(None, Some(-1.0), Some(1.0)).unwrap_err();
    assert!(
        err.to_string().starts_with("--price-in: `-1` is not a price"),
        "{err}"
    );
}

#[test]
fn a_litellm_map_overrides_the_table_and_bad_entries_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prices.json");
    std::fs::write(
        &path,
        r#"{"sample_spec": {"max_input_tokens": "doc text"},
            "gpt-4o": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, "max_input_tokens": 1000},
            "broken": {"input_cost_per_token": "cheap"}}"#,
    )
    .unwrap();
    let book = PriceBook::new(Some(&path), None, None).unwrap();
    let info = book.lookup("gpt-4o").unwrap();
    let p = info.prices.unwrap();
    assert_eq!((p.input, p.output, p.batch_input), (1.0, 2.0, None));
    assert_eq!(info.max_input_tokens, Some(1000));
    assert_eq!(
        info.max_output_tokens,
        Some(16_384),
        "the table fills what the file leaves out"
    );
    let err = book.lookup("broken").unwrap_err().to_string();
    assert!(err.contains("prices.json: model `broken`: invalid type"), "{err}");
    std::fs::write(&path, "[1]").unwrap();
    let err = PriceBook::new(Some(&path), None, None).unwrap_err().to_string();
    assert!(err.ends_with("is not a LiteLLM price map (a JSON object of model name → prices)"));
}

/// The real LiteLLM map in `../shared` (absent outside this project's CI and workspace).
#[test]
fn the_shared_litellm_map_loads_with_batch_prices() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/litellm-prices.json");
    if !path.exists() {
        eprintln!("skipped: {} is absent", path.display());
        return;
    }
    let book = PriceBook::new(Some(&path), None, None).unwrap();
    let info = book.lookup("gpt-4o-mini").unwrap();
    let p = info.prices.unwrap();
    assert!((p.input - 0.15).abs() < 1e-9 && (p.output - 0.6).abs() < 1e-9);
    assert!((p.batch_input.unwrap() - 0.075).abs() < 1e-9);
    assert!(matches!(info.source, Some(Source::File { .. })));
    // Every built-in row agrees with the map, so the table is only as stale as the map.
    for k in BUILTIN {
        let p = book.lookup(k.model).unwrap().prices.unwrap();
        assert!((p.input - k.input).abs() < 1e-9, "{}", k.model);
        assert!((p.output - k.output).abs() < 1e-9, "{}", k.model);
        if let Some(written) = k.cache_creation {
            assert!((p.cache_creation.unwrap() - written).abs() < 1e-9, "{}", k.model);
        }
        if k.model.starts_with("claude") {
            assert!(
                (p.cached_input.unwrap() - k.cached_input.unwrap()).abs() < 1e-9,
                "{}",
                k.model
            );
            assert!(
                (p.batch_input.unwrap() - k.batch.unwrap().0).abs() < 1e-9,
                "{}",
                k.model
            );
        }
    }
    // The Anthropic entries load, dated names included.
    let haiku = book.lookup("claude-haiku-4-5-20251001").unwrap().prices.unwrap();
    assert!((haiku.cache_creation.unwrap() - 1.25).abs() < 1e-9);
}

#[test]
fn claude_models_are_in_the_table_with_cache_write_read_and_batch_prices() {
    let book = PriceBook::new(None, None, None).unwrap();
    let info = book.lookup("claude-haiku-4-5-20251001").unwrap();
    let p = info.prices.unwrap();
    assert_eq!((p.input, p.output), (1.0, 5.0));
    assert_eq!((p.cache_creation, p.cached_input), (Some(1.25), Some(0.1)));
    assert_eq!((p.batch_input, p.batch_output), (Some(0.5), Some(2.5)));
    assert_eq!(
        info.source,
        Some(Source::BuiltIn {
            checked: CLAUDE_CHECKED.to_string()
        })
    );
    assert_eq!(info.max_output_tokens, Some(64_000));
}
