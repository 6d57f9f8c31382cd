//! Unit tests of the flag checks: parameters, headers, base URLs, the key's variable, the
//! provider target and the default checkpoint path.

use std::path::{Path, PathBuf};

use super::input::parse_params;
use super::send::parse_header;
use super::*;
use crate::cli;

#[test]
fn params_parse_json_or_fall_back_to_strings() {
    let p = parse_params(&["top_p=0.9".into(), "stop=[\"\\n\"]".into(), "user=alice".into()]).unwrap();
    assert_eq!(p["top_p"], serde_json::json!(0.9));
    assert_eq!(p["stop"], serde_json::json!(["\n"]));
    assert_eq!(p["user"], serde_json::json!("alice"));
    assert_eq!(parse_params(&["nokey".into()]).unwrap_err().flag, "--param");
    assert!(parse_params(&["model=x".into()]).is_err());
}

#[test]
fn headers_parse_and_authorization_is_refused() {
    assert_eq!(
        parse_header("OpenAI-Organization: org-1").unwrap(),
        ("OpenAI-Organization".into(), "org-1".into())
    );
    assert!(parse_header("no colon").is_err());
    assert!(parse_header("Authorization: Bearer x").is_err());
    assert!(is_secret_header("X-Api-Key"));
    assert!(!is_secret_header("OpenAI-Project"));
}

#[test]
fn loopback_needs_no_key() {
    assert!(is_loopback("http://127.0.0.1:8080/v1"));
    assert!(is_loopback("http://localhost:1/v1"));
    assert!(is_loopback("http://[::1]:1/v1"));
    assert!(!is_loopback("https://api.openai.com/v1"));
    assert!(check_key_present("PROMPTMILL_TEST_SURELY_UNSET", "https://api.openai.com/v1").is_err());
    assert!(check_key_present("PROMPTMILL_TEST_SURELY_UNSET", "http://127.0.0.1:9/v1").is_ok());
}

#[test]
fn plain_http_is_refused_off_this_machine_unless_allowed() {
    assert!(check_plain_http("http://127.0.0.1:9/v1", false).is_ok());
    assert!(check_plain_http("http://localhost:9/v1", false).is_ok());
    assert!(check_plain_http("https://gw.example/v1", false).is_ok());
    let err = check_plain_http("http://gw.example/v1?key=sk-x", false).unwrap_err();
    assert!(err.message.contains("clear text"), "{err}");
    assert!(!err.message.contains("sk-x"), "{err}");
    assert!(check_plain_http("http://gw.example/v1", true).is_ok());
}

#[test]
fn api_key_env_takes_a_name_and_refuses_what_looks_like_a_key() {
    for name in [
        "OPENAI_API_KEY",
        "AZURE_OPENAI_API_KEY",
        "_K",
        "my_key_2",
        "A_VERY_LONG_ENVIRONMENT_NAME_FOR_KEY_2",
    ] {
        assert!(check_key_env(name).is_ok(), "{name}");
    }
    for value in [
        "sk-proj-abc123",
        "sk_live_abc123",
        "key-12345",
        "2OPENAI",
        "",
        "MY KEY",
        "0123456789abcdef0123456789abcdef",
        "AbCdEf1234567890GhIjKl",
    ] {
        let err = check_key_env(value).unwrap_err();
        assert!(err.message.contains("takes the NAME"), "{value}: {err}");
        assert!(
            value.is_empty() || !err.to_string().contains(value),
            "{value} echoed: {err}"
        );
    }
}

#[test]
fn base_urls_are_checked() {
    assert!(check_base_url("https://gw/v1#frag").is_err());
    assert_eq!(
        check_base_url("https://gw/v1?tenant=a").unwrap(),
        "https://gw/v1?tenant=a"
    );
    assert_eq!(
        check_base_url("https://api.openai.com/v1/").unwrap(),
        "https://api.openai.com/v1"
    );
    assert!(check_base_url("ftp://x").is_err());
    assert!(check_base_url("https://user:pw@host/v1").is_err());
    assert!(check_base_url("not a url").is_err());
}

fn target(flags: &[&str]) -> Result<Target, ConfigError> {
    use clap::Parser;
    let argv = [
        "promptmill",
        "run",
        "in.jsonl",
        "-o",
        "out.jsonl",
        "--api-version",
        "v1",
    ];
    let cli = cli::Cli::try_parse_from(argv.iter().chain(flags)).unwrap();
    let cli::Command::Run(args) = cli.command else {
        unreachable!("parsed as run")
    };
    Target::from_args(&args)
}

#[test]
fn azure_targets_a_deployment_that_defaults_to_the_model() {
    let t = target(&[
        "--provider",
        "azure",
        "--base-url",
        "https://r.openai.azure.com/",
        "--model",
        "gpt-4o",
    ])
    .unwrap();
    assert_eq!(t.base_url, "https://r.openai.azure.com");
    assert_eq!(t.api_key_env, "AZURE_OPENAI_API_KEY");
    assert_eq!(
        t.provider,
        Provider::Azure {
            deployment: "gpt-4o".into(),
            api_version: "v1".into()
        }
    );
    let err = target(&["--provider", "azure", "--base-url", "https://r"])
        .err()
        .unwrap();
    assert_eq!(err.flag, "--deployment");
}

#[test]
fn a_deployment_url_names_azure_by_itself() {
    let t = target(&["--base-url", "https://r.openai.azure.com/openai/deployments/d1"]).unwrap();
    assert_eq!(t.provider.kind_name(), "azure");
    assert_eq!(t.base_url, "https://r.openai.azure.com");
    let clash = target(&[
        "--base-url",
        "https://r/openai/deployments/d1",
        "--deployment",
        "d2",
    ]);
    assert_eq!(clash.err().unwrap().flag, "--deployment");
}

#[test]
fn azure_flags_are_refused_for_openai() {
    let err = target(&["--provider", "openai", "--base-url", "https://x/v1"])
        .err()
        .unwrap();
    assert_eq!(err.flag, "--api-version");
}

#[test]
fn default_checkpoint_sits_beside_the_output() {
    assert_eq!(
        default_db_path(Path::new("out/x.jsonl")),
        PathBuf::from("out/x.jsonl.promptmill.db")
    );
}
