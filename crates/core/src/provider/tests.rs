//! Tests of the providers' URLs and key headers, the Azure base URL forms, the names that go
//! into a URL, and old job records without a provider.

use super::*;

fn azure(deployment: &str) -> Provider {
    Provider::Azure {
        deployment: deployment.into(),
        api_version: "2024-10-21".into(),
    }
}

#[test]
fn openai_urls_append_the_endpoint_path() {
    let url = Provider::OpenAi
        .endpoint_url("https://api.openai.com/v1", Endpoint::Chat)
        .unwrap();
    assert_eq!(url.as_str(), "https://api.openai.com/v1/chat/completions");
    assert_eq!(Provider::OpenAi.key_header(), KeyHeader::Bearer);
    let url = Provider::OpenAi
        .endpoint_url("http://h/v1?tenant=abc", Endpoint::Completions)
        .unwrap();
    assert_eq!(url.as_str(), "http://h/v1/completions?tenant=abc");
}

#[test]
fn azure_urls_name_the_deployment_and_the_api_version() {
    let p = azure("gpt4o-prod");
    let url = p
        .endpoint_url("https://res.openai.azure.com", Endpoint::Chat)
        .unwrap();
    assert_eq!(
        url.as_str(),
        "https://res.openai.azure.com/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"
    );
    let url = p
        .endpoint_url("http://127.0.0.1:8/", Endpoint::Completions)
        .unwrap();
    assert_eq!(
        url.as_str(),
        "http://127.0.0.1:8/openai/deployments/gpt4o-prod/completions?api-version=2024-10-21"
    );
    assert_eq!(p.key_header(), KeyHeader::ApiKey);
}

#[test]
fn batch_api_urls_are_under_the_base_or_the_azure_resource() {
    let url = |p: &Provider, base: &str, segments: &[&str]| {
        p.batch_api_url(&reqwest::Url::parse(base).unwrap(), segments)
            .unwrap()
            .to_string()
    };
    assert_eq!(
        url(&Provider::OpenAi, "https://api.openai.com/v1/", &["files"]),
        "https://api.openai.com/v1/files"
    );
    assert_eq!(
        url(
            &Provider::OpenAi,
            "https://gw/v1?tenant=t",
            &["files", "f-1", "content"]
        ),
        "https://gw/v1/files/f-1/content?tenant=t"
    );
    let p = azure("batch-4o");
    assert_eq!(
        url(&p, "https://res.openai.azure.com/", &["files"]),
        "https://res.openai.azure.com/openai/files?api-version=2024-10-21"
    );
    assert_eq!(
        url(&p, "http://127.0.0.1:8", &["batches", "batch_1", "cancel"]),
        "http://127.0.0.1:8/openai/batches/batch_1/cancel?api-version=2024-10-21"
    );
    assert_eq!(
        url(
            &p,
            "https://res.openai.azure.com",
            &["files", "file-1", "content"]
        ),
        "https://res.openai.azure.com/openai/files/file-1/content?api-version=2024-10-21"
    );
}

#[test]
fn batch_lines_name_the_endpoint_and_model_as_the_provider_wants() {
    assert_eq!(
        Provider::OpenAi.batch_endpoint(Endpoint::Chat),
        "/v1/chat/completions"
    );
    assert_eq!(
        Provider::OpenAi.batch_endpoint(Endpoint::Completions),
        "/v1/completions"
    );
    assert_eq!(Provider::OpenAi.batch_model(), None);
    let p = azure("batch-4o");
    assert_eq!(p.batch_endpoint(Endpoint::Chat), "/chat/completions");
    assert_eq!(p.batch_model(), Some("batch-4o"));
}

#[test]
fn azure_base_urls_may_be_the_endpoint_or_a_deployment_url() {
    let plain = AzureUrl::parse("https://res.openai.azure.com/").unwrap();
    assert_eq!(plain.endpoint, "https://res.openai.azure.com");
    assert_eq!((plain.deployment, plain.api_version), (None, None));

    let with_openai = AzureUrl::parse("https://res.openai.azure.com/openai").unwrap();
    assert_eq!(with_openai.endpoint, "https://res.openai.azure.com");

    let portal = AzureUrl::parse(
        "https://res.openai.azure.com/openai/deployments/dep-1/chat/completions?api-version=2025-01-01-preview",
    )
    .unwrap();
    assert_eq!(portal.endpoint, "https://res.openai.azure.com");
    assert_eq!(portal.deployment.as_deref(), Some("dep-1"));
    assert_eq!(portal.api_version.as_deref(), Some("2025-01-01-preview"));

    let gateway = AzureUrl::parse("https://gw.example/azure/openai/deployments/d").unwrap();
    assert_eq!(gateway.endpoint, "https://gw.example/azure");
    assert_eq!(gateway.deployment.as_deref(), Some("d"));

    assert!(AzureUrl::parse("https://res/openai/deployments/").is_err());
    assert!(AzureUrl::parse("https://res/openai/deployments/a/b/c").is_err());
    let gateway = AzureUrl::parse(
        "https://gw.example/openai/deployments/d/chat/completions?api-version=v&subscription-key=k",
    )
    .unwrap();
    assert_eq!(gateway.endpoint, "https://gw.example/?subscription-key=k");
    assert_eq!(gateway.api_version.as_deref(), Some("v"));
    let url = azure("d")
        .endpoint_url(&gateway.endpoint, Endpoint::Chat)
        .unwrap();
    assert_eq!(
        url.as_str(),
        "https://gw.example/openai/deployments/d/chat/completions?subscription-key=k&api-version=2024-10-21"
    );
}

#[test]
fn a_resume_may_change_the_api_version_but_not_the_deployment_or_the_kind() {
    let stored = azure("a");
    let newer = Provider::Azure {
        deployment: "a".into(),
        api_version: "2025-01-01-preview".into(),
    };
    assert!(newer.changes_from(&stored).is_empty());
    assert_eq!(
        azure("b").changes_from(&stored),
        vec![r#"--deployment (was "a", now "b")"#]
    );
    assert_eq!(
        Provider::OpenAi.changes_from(&stored),
        vec!["--provider (was azure, now openai)"]
    );
}

#[test]
fn names_that_go_into_the_url_are_checked() {
    assert!(check_deployment("gpt-4o_mini.1", "--deployment").is_ok());
    assert!(check_deployment("a/b", "--deployment").is_err());
    assert!(check_deployment("", "--deployment").is_err());
    assert!(check_api_version("2024-10-21").is_ok());
    assert!(check_api_version("2024&x=1").is_err());
}

#[test]
fn old_job_records_without_a_provider_read_as_openai() {
    #[derive(Deserialize)]
    struct Old {
        #[serde(default)]
        provider: Provider,
    }
    let old: Old = serde_json::from_str("{}").unwrap();
    assert_eq!(old.provider, Provider::OpenAi);
    let json = serde_json::to_string(&azure("d")).unwrap();
    assert_eq!(
        json,
        r#"{"kind":"azure","deployment":"d","api_version":"2024-10-21"}"#
    );
    assert_eq!(serde_json::from_str::<Provider>(&json).unwrap(), azure("d"));
}

#[test]
fn mistral_sends_chat_and_embeddings_under_its_base_with_a_bearer_key() {
    let p = Provider::Mistral;
    let url = p.endpoint_url(DEFAULT_MISTRAL_BASE_URL, Endpoint::Chat).unwrap();
    assert_eq!(url.as_str(), "https://api.mistral.ai/v1/chat/completions");
    let url = p
        .endpoint_url(DEFAULT_MISTRAL_BASE_URL, Endpoint::Embeddings)
        .unwrap();
    assert_eq!(url.as_str(), "https://api.mistral.ai/v1/embeddings");
    assert_eq!(p.key_header(), KeyHeader::Bearer);
    assert_eq!(ProviderKind::Mistral.default_key_env(), "MISTRAL_API_KEY");
    for refused in [Endpoint::Completions, Endpoint::Responses, Endpoint::Messages] {
        let e = p.endpoint_url(DEFAULT_MISTRAL_BASE_URL, refused).unwrap_err();
        assert!(e.to_string().contains("--endpoint"), "{refused:?}: {e}");
    }
    assert_eq!(p.batch_endpoint(Endpoint::Chat), "/v1/chat/completions");
    assert_eq!(p.batch_model(), None);
}

#[test]
fn a_mistral_file_id_stays_one_segment_under_the_base_url() {
    let base = reqwest::Url::parse("http://127.0.0.1:9/v1").unwrap();
    let url = Provider::Mistral
        .batch_api_url(&base, &["files", "https://elsewhere.example/x", "content"])
        .unwrap();
    assert_eq!(url.origin(), base.origin(), "{url}");
}

#[test]
fn a_mistral_job_record_reads_back_and_a_resume_may_not_change_the_kind() {
    let text = serde_json::to_string(&Provider::Mistral).unwrap();
    assert_eq!(text, r#"{"kind":"mistral"}"#);
    assert_eq!(
        serde_json::from_str::<Provider>(&text).unwrap(),
        Provider::Mistral
    );
    assert!(Provider::Mistral.changes_from(&Provider::Mistral).is_empty());
    assert_eq!(Provider::OpenAi.changes_from(&Provider::Mistral).len(), 1);
}

#[test]
fn compatible_providers_are_unit_kinds_and_old_records_still_read() {
    for (provider, name) in [
        (Provider::Groq, "groq"),
        (Provider::Together, "together"),
        (Provider::Gemini, "gemini"),
    ] {
        let json = serde_json::to_string(&provider).unwrap();
        assert_eq!(json, format!(r#"{{"kind":"{name}"}}"#));
        assert_eq!(serde_json::from_str::<Provider>(&json).unwrap(), provider);
        assert_eq!(provider.kind_name(), name);
        assert_eq!(provider.key_header(), KeyHeader::Bearer);
        assert!(provider.changes_from(&provider.clone()).is_empty());
        assert_eq!(
            provider.changes_from(&Provider::OpenAi),
            vec![format!("--provider (was openai, now {name})")]
        );
    }
    let openai: Provider = serde_json::from_str(r#"{"kind":"openai"}"#).unwrap();
    assert_eq!(openai, Provider::OpenAi);
}

#[test]
fn compatible_urls_follow_the_base_url_and_the_table() {
    let url = Provider::Groq
        .endpoint_url("https://api.groq.com/openai/v1", Endpoint::Chat)
        .unwrap();
    assert_eq!(url.as_str(), "https://api.groq.com/openai/v1/chat/completions");
    let base = crate::base_url::parse("https://generativelanguage.googleapis.com/v1beta/openai").unwrap();
    let url = Provider::Gemini.batch_api_url(&base, &["files"]).unwrap();
    assert_eq!(
        url.as_str(),
        "https://generativelanguage.googleapis.com/v1beta/openai/files"
    );
    assert_eq!(
        Provider::Together.batch_endpoint(Endpoint::Chat),
        "/v1/chat/completions"
    );
    assert_eq!(Provider::Together.batch_limits(), (50_000, 100_000_000));
    assert_eq!(ProviderKind::Together.batch_limits(), (50_000, 100_000_000));
    assert_eq!(ProviderKind::Groq.default_key_env(), "GROQ_API_KEY");
    assert_eq!(ProviderKind::Gemini.default_key_env(), "GEMINI_API_KEY");
}

#[test]
fn families_a_compatible_provider_does_not_serve_are_refused_with_advice() {
    let err = Provider::Groq
        .endpoint_url("https://api.groq.com/openai/v1", Endpoint::Embeddings)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Groq does not serve the embeddings endpoint"),
        "{err}"
    );
    assert!(err.contains("chat"), "{err}");
    let err = Provider::Together
        .check_batch_endpoint(Endpoint::Embeddings)
        .unwrap_err()
        .to_string();
    assert!(err.contains("Together's Batch API does not run"), "{err}");
    assert!(Provider::Gemini
        .check_batch_endpoint(Endpoint::Embeddings)
        .is_ok());
    assert!(Provider::OpenAi.check_batch_endpoint(Endpoint::Responses).is_ok());
}
