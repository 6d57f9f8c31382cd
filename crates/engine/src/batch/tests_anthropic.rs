//! Anthropic's Message Batches protocol without a server: results lines read into outcomes,
//! batch objects mapped to the driver's states and counts, request lines and the create body,
//! and the results URL followed only on the base URL's origin.

use super::*;

fn batch(status: &str, counts: serde_json::Value, cancel: bool) -> MessageBatch {
    serde_json::from_value(serde_json::json!({
        "id": "msgbatch_1", "type": "message_batch", "processing_status": status,
        "request_counts": counts, "results_url": (status == "ended").then_some("https://api.anthropic.com/v1/messages/batches/msgbatch_1/results"),
        "created_at": "2026-12-04T19:00:00.123456Z",
        "cancel_initiated_at": cancel.then_some("2026-12-04T19:01:00Z"),
    }))
    .unwrap()
}

#[test]
fn a_succeeded_line_is_the_message_the_family_reads() {
    let line = r#"{"custom_id":"promptmill-rows-7-7","result":{"type":"succeeded","message":{"id":"msg_1","type":"message","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":3,"output_tokens":1}}}}"#;
    let r = read_result(line).unwrap();
    assert_eq!(r.custom_id, "promptmill-rows-7-7");
    match r.outcome {
        LineOutcome::Response { status, body } => {
            assert_eq!(status, 200);
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(v["content"][0]["text"], "hi");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn errored_canceled_and_expired_lines_fail_with_their_reason() {
    let errored = r#"{"custom_id":"a","result":{"type":"errored","error":{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"}}}}"#;
    let reason = |line: &str| match read_result(line).unwrap().outcome {
        LineOutcome::Error(text) => text,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        reason(errored),
        "invalid_request_error: max_tokens: Field required"
    );
    assert!(reason(r#"{"custom_id":"b","result":{"type":"canceled"}}"#).starts_with("canceled:"));
    assert!(reason(r#"{"custom_id":"c","result":{"type":"expired"}}"#).starts_with("expired:"));
    assert!(reason(r#"{"custom_id":"d","result":{"type":"exploded"}}"#).contains("exploded"));
    assert!(reason(r#"{"custom_id":"e"}"#).contains("no result"));
    assert!(read_result("not json").is_none());
    assert!(
        read_result(r#"{"result":{"type":"canceled"}}"#).is_none(),
        "no custom_id"
    );
}

#[test]
fn processing_statuses_map_to_the_drivers_states() {
    let counts = |p: u64, s: u64, e: u64, c: u64, x: u64| serde_json::json!({"processing": p, "succeeded": s, "errored": e, "canceled": c, "expired": x});
    let v = view(batch("in_progress", counts(3, 2, 0, 0, 0), false));
    assert_eq!((v.state, v.status.as_str()), (State::Running, "in_progress"));
    assert_eq!(
        v.counts,
        Counts {
            total: 5,
            completed: 2,
            failed: 0
        }
    );
    assert_eq!(v.output, None);
    assert_eq!(
        view(batch("canceling", counts(3, 0, 0, 0, 0), true)).state,
        State::Finishing
    );
    let done = view(batch("ended", counts(0, 4, 1, 0, 0), false));
    assert_eq!(done.state, State::Ended(End::Completed));
    assert_eq!(
        done.counts,
        Counts {
            total: 5,
            completed: 4,
            failed: 1
        }
    );
    assert!(done.output.unwrap().ends_with("/results"));
    assert_eq!(
        view(batch("ended", counts(0, 2, 0, 3, 0), true)).state,
        State::Ended(End::Cancelled)
    );
    assert_eq!(
        view(batch("ended", counts(0, 2, 0, 0, 3), false)).state,
        State::Ended(End::Expired)
    );
    let absurd = view(batch("ended", counts(u64::MAX, u64::MAX, 0, 0, 0), false));
    assert_eq!(absurd.counts.total, 2 * MAX_COUNT, "bounded, no overflow");
}

#[test]
fn request_lines_carry_the_body_as_params_and_refuse_a_bad_custom_id() {
    let line = request_line("promptmill-rows-1-1", r#"{"model":"m","max_tokens":5}"#).unwrap();
    assert_eq!(
        std::str::from_utf8(&line).unwrap(),
        "{\"custom_id\":\"promptmill-rows-1-1\",\"params\":{\"model\":\"m\",\"max_tokens\":5}}\n"
    );
    assert!(request_line("row id/with spaces", "{}").is_err());
    assert!(request_line(&"x".repeat(65), "{}").is_err());
    assert!(request_line("", "{}").is_err());
    assert!(request_line("ok", "{not json").is_err());
    let body = create_body(&Bytes::from([line.clone(), line].concat()));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["requests"].as_array().unwrap().len(), 2);
    assert_eq!(v["requests"][1]["params"]["max_tokens"], 5);
}

#[test]
fn results_are_fetched_only_from_the_base_urls_origin() {
    let base = reqwest::Url::parse("https://api.anthropic.com").unwrap();
    assert!(same_origin(&base, "https://api.anthropic.com/v1/messages/batches/b/results").is_ok());
    let elsewhere = same_origin(&base, "https://evil.example/v1/results").unwrap_err();
    assert!(elsewhere.contains("not followed"), "{elsewhere}");
    assert!(
        same_origin(&base, "http://api.anthropic.com/x").is_err(),
        "another scheme"
    );
    assert!(
        same_origin(&base, "https://api.anthropic.com:8443/x").is_err(),
        "another port"
    );
    assert!(same_origin(&base, "/relative").is_err());
}

#[test]
fn created_at_reads_as_rfc_3339_with_or_without_fractions() {
    assert_eq!(unix_ms("1970-01-01T00:00:01Z"), Some(1000));
    assert_eq!(unix_ms("1970-01-01T00:00:01.5Z"), Some(1500));
    assert_eq!(unix_ms("yesterday"), None);
}

fn listed(id: &str, created_at: &str, requests: u64) -> MessageBatch {
    serde_json::from_value(serde_json::json!({
        "id": id, "processing_status": "in_progress", "created_at": created_at,
        "request_counts": {"processing": requests},
    }))
    .unwrap()
}

fn lost_create(requests: u64, known: &[&str]) -> Create {
    Create {
        part: 2,
        tag: "t".into(),
        model: "m".into(),
        endpoint: Endpoint::Messages,
        input: Input::Inline(Bytes::new()),
        requests,
        planned_at: unix_ms("2026-12-04T19:00:00Z").unwrap(),
        known: known.iter().map(|k| k.to_string()).collect(),
    }
}

#[test]
fn a_lost_create_is_the_one_batch_of_its_size_since_it_was_planned_that_the_job_does_not_know() {
    let page = [
        listed("other_size", "2026-12-04T19:00:05Z", 4),
        listed("mine", "2026-12-04T19:00:04Z", 5),
        listed("part_1", "2026-12-04T19:00:01Z", 5),
        listed("long_ago", "2026-12-03T10:00:00Z", 5),
    ];
    let mut found = Vec::new();
    let older = matches(&page, &lost_create(5, &["part_1"]), &mut found);
    assert!(
        older,
        "the page reached batches older than the part: the search stops"
    );
    match verdict(found, &lost_create(5, &["part_1"])) {
        Found::Batch(b) => assert_eq!(b.id, "mine"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_candidate_means_nothing_was_made_and_two_cannot_be_told_apart() {
    let page = [
        listed("a", "2026-12-04T19:30:00Z", 5),
        listed("b", "2026-12-04T18:30:00Z", 5),
    ];
    let mut none = Vec::new();
    assert!(!matches(&page, &lost_create(7, &[]), &mut none));
    assert!(matches!(verdict(none, &lost_create(7, &[])), Found::Nothing));
    // Within the hour allowed for clock skew, both are candidates.
    let mut two = Vec::new();
    matches(&page, &lost_create(5, &[]), &mut two);
    match verdict(two, &lost_create(5, &[])) {
        Found::Ambiguous(why) => assert!(why.contains("a, b") && why.contains("resume"), "{why}"),
        other => panic!("{other:?}"),
    }
}
