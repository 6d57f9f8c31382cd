//! Tests of the prompt directives: parsing, and the answers they shape.

use super::*;
use crate::reply::{Reply, Usage};
use crate::shapes::chat as shape;
use bytes::Bytes;

#[test]
fn prompts_without_directives_are_left_alone() {
    assert_eq!(find("just a question [[not mock]]"), None);
}

#[test]
fn status_directive_is_found_anywhere_in_the_prompt() {
    let d = find("row 7 [[mock:status=503]] please").unwrap().unwrap();
    assert_eq!(
        d,
        Directive {
            fault: Fault::Status(StatusCode::SERVICE_UNAVAILABLE),
            fail_times: None,
            quota: false,
            retry_after: None,
        }
    );
}

#[test]
fn fail_times_directive_has_both_keys() {
    let d = find("[[mock:fail-times=2:status=429]]").unwrap().unwrap();
    assert_eq!(
        d,
        Directive {
            fault: Fault::Status(StatusCode::TOO_MANY_REQUESTS),
            fail_times: Some(2),
            quota: false,
            retry_after: None,
        }
    );
}

#[test]
fn quota_and_retry_hint_keys_shape_the_error() {
    let d = find("[[mock:fail-times=1:code=insufficient_quota]]")
        .unwrap()
        .unwrap();
    assert_eq!(
        (d.fault, d.quota),
        (Fault::Status(StatusCode::TOO_MANY_REQUESTS), true)
    );
    let hint = |text: &str| find(text).unwrap().unwrap().retry_after;
    assert_eq!(
        hint("[[mock:status=429:retry-after=2]]"),
        Some(RetryHint::Seconds(2))
    );
    assert_eq!(
        hint("[[mock:status=503:retry-after-ms=1500]]"),
        Some(RetryHint::Millis(1500))
    );
    assert_eq!(
        hint("[[mock:status=429:retry-after-date=3]]"),
        Some(RetryHint::Date(3))
    );
    assert_eq!(
        hint("[[mock:status=429:retry-after-date-ago=30]]"),
        Some(RetryHint::DateAgo(30))
    );
    assert!(find("[[mock:status=500:code=insufficient_quota]]")
        .unwrap()
        .unwrap_err()
        .contains("comes with status 429"));
    assert!(find("[[mock:status=429:code=nope]]")
        .unwrap()
        .unwrap_err()
        .contains("not known"));
    assert!(find("[[mock:status=429:retry-after-ms=soon]]")
        .unwrap()
        .unwrap_err()
        .contains("not a number"));
}

#[test]
fn shape_directives_describe_a_200() {
    let fault = |text: &str| find(text).unwrap().map(|d| d.fault);
    assert_eq!(
        fault("[[mock:reply=lone-surrogate]]"),
        Ok(Fault::Shape(Shape::LoneSurrogate))
    );
    assert_eq!(
        fault("[[mock:usage=-1]]"),
        Ok(Fault::Shape(Shape::PromptTokens("-1".into())))
    );
    assert_eq!(
        fault("[[mock:size=40000000]]"),
        Ok(Fault::Shape(Shape::Size(40_000_000)))
    );
    let once = find("[[mock:fail-times=1:reply=not-utf8]]").unwrap().unwrap();
    assert_eq!(
        (once.fault, once.fail_times),
        (Fault::Shape(Shape::NotUtf8), Some(1))
    );
    assert!(fault("[[mock:usage=lots]]")
        .unwrap_err()
        .contains("not a JSON number"));
    assert!(fault("[[mock:reply=odd]]").unwrap_err().contains("not known"));
    assert!(fault("[[mock:reply=truncated:status=500]]")
        .unwrap_err()
        .contains("take no status"));
}

#[test]
fn broken_directives_explain_themselves() {
    assert!(find("[[mock:status=200]]")
        .unwrap()
        .unwrap_err()
        .contains("400..=599"));
    assert!(find("[[mock:colour=red]]")
        .unwrap()
        .unwrap_err()
        .contains("unknown key"));
    assert!(find("[[mock:fail-times=2]]")
        .unwrap()
        .unwrap_err()
        .contains("missing status"));
    assert!(find("[[mock:status=500").unwrap().is_err());
}

#[test]
fn fail_times_fails_the_first_k_per_prompt_then_succeeds() {
    let memory = FailTimes::default();
    let fails: Vec<bool> = (0..4).map(|_| memory.should_fail("a", 2)).collect();
    assert_eq!(fails, [true, true, false, false]);
    assert!(memory.should_fail("b", 1), "each prompt has its own count");
}

#[test]
fn usage_detail_directives_report_cached_and_reasoning_tokens() {
    let d = find("[[mock:cached=40:reasoning=7:cache-creation=3]]")
        .unwrap()
        .unwrap();
    let details = Details {
        prompt_tokens: None,
        cached: Some(40),
        cache_creation: Some(3),
        reasoning: Some(7),
    };
    assert_eq!(d.fault, Fault::Shape(Shape::Details(details)));
    let normal = Reply {
        body: Bytes::from_static(
            br#"{"choices":[{"message":{"content":"Mock reply: hi"}}],"usage":{"prompt_tokens":50,"completion_tokens":3,"total_tokens":53}}"#,
        ),
        usage: Usage {
            prompt_tokens: 50,
            completion_tokens: 3,
            total_tokens: 53,
        },
    };
    let shaped = shape(&Shape::Details(details), normal, 50);
    let json: serde_json::Value = serde_json::from_slice(&shaped.body).unwrap();
    let u = &json["usage"];
    assert_eq!(
        (u["prompt_tokens"].as_u64(), u["completion_tokens"].as_u64()),
        (Some(50), Some(10))
    );
    assert_eq!(u["total_tokens"], 60);
    assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 40);
    assert_eq!(u["prompt_tokens_details"]["cache_creation_tokens"], 3);
    assert_eq!(u["completion_tokens_details"]["reasoning_tokens"], 7);
    assert_eq!(json["choices"][0]["message"]["content"], "Mock reply: hi");
    assert_eq!(
        shaped.usage.map(|u| u.completion_tokens),
        Some(10),
        "counted in the stats"
    );
    let long = find("[[mock:prompt-tokens=250000]]").unwrap().unwrap();
    assert!(matches!(
        long.fault,
        Fault::Shape(Shape::Details(Details {
            prompt_tokens: Some(250_000),
            ..
        }))
    ));
    assert!(find("[[mock:cached=4:size=10]]")
        .unwrap()
        .unwrap_err()
        .contains("no reply="));
    assert!(find("[[mock:cached=many]]")
        .unwrap()
        .unwrap_err()
        .contains("not a number"));
}
