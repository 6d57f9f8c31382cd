//! Tests of the mock server's flags: the defaults are the perfect server, and every rate,
//! status, duration, Batch flag and key variable is validated with the flag named.

use super::*;
use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: MockArgs,
}

fn parse(flags: &[&str]) -> MockArgs {
    let argv = std::iter::once("mock-server").chain(flags.iter().copied());
    Cli::try_parse_from(argv).expect("flags parse").args
}

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn no_flags_is_the_perfect_server() {
    let config = MockConfig::validate(parse(&[]), no_env).unwrap();
    let default = MockConfig::default();
    assert_eq!(config.faults, FaultRates::default());
    assert_eq!(config.latency, Duration::ZERO);
    assert_eq!(config.fail_first, 0);
    assert_eq!((config.rpm, config.tpm), (None, None));
    assert_eq!((config.host, config.port), (default.host, default.port));
}

#[test]
fn rates_outside_zero_one_name_the_flag() {
    let err = MockConfig::validate(parse(&["--rate-hang", "1.5"]), no_env).unwrap_err();
    assert_eq!(
        err,
        ConfigError::Probability {
            flag: "rate-hang",
            value: 1.5
        }
    );
    assert!(err.to_string().contains("--rate-hang"));
}

#[test]
fn rates_adding_up_above_one_are_rejected() {
    let args = parse(&["--rate-429", "0.6", "--rate-500", "0.6"]);
    assert!(matches!(
        MockConfig::validate(args, no_env),
        Err(ConfigError::RatesAboveOne(_))
    ));
}

#[test]
fn fail_status_must_be_an_error_status() {
    let args = parse(&["--fail-first", "2", "--fail-status", "200"]);
    assert_eq!(
        MockConfig::validate(args, no_env).unwrap_err(),
        ConfigError::FailStatus(200)
    );
}

#[test]
fn retry_after_takes_fractions_of_a_second_and_rejects_negatives() {
    let config = MockConfig::validate(parse(&["--retry-after", "0.25"]), no_env).unwrap();
    assert_eq!(config.retry_after, Duration::from_millis(250));
    let config = MockConfig::validate(parse(&["--retry-after", "2"]), no_env).unwrap();
    assert_eq!(config.retry_after, Duration::from_secs(2));
    let err = MockConfig::validate(parse(&["--retry-after=-1"]), no_env).unwrap_err();
    assert_eq!(err, ConfigError::RetryAfter(-1.0));
    assert!(err.to_string().contains("--retry-after"));
}

#[test]
fn durations_use_humantime() {
    let args = parse(&["--latency", "50ms", "--latency-jitter", "2s"]);
    let config = MockConfig::validate(args, no_env).unwrap();
    assert_eq!(config.latency, Duration::from_millis(50));
    assert_eq!(config.latency_jitter, Duration::from_secs(2));
}

#[test]
fn api_key_comes_from_the_named_variable_and_is_never_printed() {
    let args = parse(&["--api-key-env", "MY_KEY"]);
    let env = |name: &str| (name == "MY_KEY").then(|| "sk-secret".to_string());
    let config = MockConfig::validate(args, env).unwrap();
    assert_eq!(config.api_key.as_deref(), Some("sk-secret"));
    assert!(!format!("{config:?}").contains("sk-secret"));
}

#[test]
fn batch_flags_are_validated_and_name_themselves() {
    let args = parse(&[
        "--batch-polls",
        "5",
        "--batch-outcome",
        "2=expired:0.2",
        "--drop-upload",
        "3",
    ]);
    let config = MockConfig::validate(args, no_env).unwrap();
    assert_eq!((config.batch_polls, config.drop_upload), (5, Some(3)));
    assert_ne!(config.batch_outcomes, BatchOutcomes::default());
    let args = parse(&["--drop-batch-create", "2:after"]);
    let config = MockConfig::validate(args, no_env).unwrap();
    assert_eq!(config.drop_batch_create, Some(DropCreate { nth: 2, after: true }));
    for bad in ["2", "0:before", "2:during", "x:after"] {
        let err = MockConfig::validate(parse(&["--drop-batch-create", bad]), no_env).unwrap_err();
        assert_eq!(err, ConfigError::DropBatchCreate(bad.into()));
    }
    let err = MockConfig::validate(parse(&["--batch-outcome", "soon"]), no_env).unwrap_err();
    assert!(err.to_string().starts_with("--batch-outcome: "), "{err}");
    let err = MockConfig::validate(parse(&["--drop-upload", "0"]), no_env).unwrap_err();
    assert!(err.to_string().contains("--drop-upload"));
}

#[test]
fn unset_or_empty_key_variable_is_an_error() {
    let args = parse(&["--api-key-env", "MY_KEY"]);
    let err = MockConfig::validate(args.clone(), no_env).unwrap_err();
    assert_eq!(err, ConfigError::MissingKey("MY_KEY".into()));
    let empty = |_: &str| Some(String::new());
    assert!(MockConfig::validate(args, empty).is_err());
}

#[test]
fn the_spoil_rates_are_validated_and_share_the_sum_of_one() {
    let args = parse(&[
        "--rate-invalid-json",
        "0.1",
        "--rate-schema-break",
        "0.2",
        "--rate-cut",
        "0.3",
        "--rate-refusal",
        "0.4",
    ]);
    let faults = MockConfig::validate(args, no_env).unwrap().faults;
    assert_eq!(
        (
            faults.invalid_json,
            faults.schema_break,
            faults.cut,
            faults.refusal
        ),
        (0.1, 0.2, 0.3, 0.4)
    );
    let err = MockConfig::validate(parse(&["--rate-cut", "1.5"]), no_env).unwrap_err();
    assert_eq!(
        err,
        ConfigError::Probability {
            flag: "rate-cut",
            value: 1.5
        }
    );
    assert!(err.to_string().contains("--rate-cut"));
    let over = parse(&["--rate-refusal", "0.7", "--rate-429", "0.4"]);
    let err = MockConfig::validate(over, no_env).unwrap_err();
    assert!(matches!(err, ConfigError::RatesAboveOne(_)));
    assert!(err.to_string().contains("--rate-refusal"));
}
