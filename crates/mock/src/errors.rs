//! OpenAI-shaped error answers: the `{"error":{message,type,param,code}}` body, the `type` and
//! `code` OpenAI uses for each status, and the `retry-after`/`retry-after-ms` headers of 429s.
//! Also the one JSON response builder every answer goes through. Which error to send, and
//! when, is decided by `service`.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Response, StatusCode};
use serde::Serialize;

/// Body type of every mock response: one buffer, written in one go.
pub(crate) type Body = Full<Bytes>;

pub(crate) const RETRY_AFTER_MS: &str = "retry-after-ms";

/// A JSON response with the given status.
pub(crate) fn json_response(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// An error answer as OpenAI would send it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub message: Cow<'static, str>,
    pub kind: &'static str,
    pub param: Option<&'static str>,
    pub code: Option<&'static str>,
    /// Sent in the headers `retry_form` names.
    pub retry_after: Option<Duration>,
    pub retry_form: RetryForm,
}

/// The headers a retry hint is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryForm {
    /// `retry-after` (whole seconds, rounded up) and `retry-after-ms`, as OpenAI sends them.
    Both,
    /// `retry-after` in whole seconds (rounded up) only.
    Seconds,
    /// `retry-after-ms` only.
    Millis,
    /// `retry-after` as an HTTP date, rounded up to the next whole second so the wait it
    /// implies is never shorter than asked.
    Date,
    /// `retry-after` as an HTTP date the wait *before* now: a server whose clock is behind.
    PastDate,
}

impl ApiError {
    /// An error for `status` with the `type`/`code` OpenAI uses for it.
    pub fn for_status(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        let (kind, code) = match status.as_u16() {
            401 => ("invalid_request_error", Some("invalid_api_key")),
            429 => ("requests", Some("rate_limit_exceeded")),
            500..=599 => ("server_error", None),
            _ => ("invalid_request_error", None),
        };
        ApiError {
            status,
            message: message.into(),
            kind,
            param: None,
            code,
            retry_after: None,
            retry_form: RetryForm::Both,
        }
    }

    /// OpenAI's 429 for an account out of credit: not a rate limit, so no retry hint.
    pub fn insufficient_quota() -> Self {
        ApiError {
            kind: "insufficient_quota",
            code: Some("insufficient_quota"),
            ..Self::for_status(
                StatusCode::TOO_MANY_REQUESTS,
                "You exceeded your current quota, please check your plan and billing details. For more \
                 information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
            )
        }
    }

    /// The 401 for a missing or wrong key. Never echoes what the client sent.
    pub fn invalid_key() -> Self {
        Self::for_status(StatusCode::UNAUTHORIZED, "Incorrect API key provided.")
    }

    /// OpenAI's answer to an unknown path.
    pub fn invalid_url(method: &hyper::Method, path: &str) -> Self {
        Self::for_status(StatusCode::NOT_FOUND, format!("Invalid URL ({method} {path})"))
    }

    pub fn with_param(mut self, param: Option<&'static str>) -> Self {
        self.param = param;
        self
    }

    /// Adds `retry-after` when the status is 429 (injected 429s use --retry-after).
    pub fn with_retry_after_if_429(mut self, retry_after: Duration) -> Self {
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            self.retry_after = Some(retry_after);
        }
        self
    }

    /// Adds a retry hint in the given form, whatever the status.
    pub fn with_retry_hint(mut self, wait: Duration, form: RetryForm) -> Self {
        self.retry_after = Some(wait);
        self.retry_form = form;
        self
    }

    /// The `{"error":{…}}` body alone: what a batch's error file carries for a line.
    pub fn body(&self) -> Bytes {
        #[derive(Serialize)]
        struct Envelope<'a> {
            error: Inner<'a>,
        }
        #[derive(Serialize)]
        struct Inner<'a> {
            message: &'a str,
            #[serde(rename = "type")]
            kind: &'a str,
            param: Option<&'a str>,
            code: Option<&'a str>,
        }
        super::reply::to_bytes(&Envelope {
            error: Inner {
                message: &self.message,
                kind: self.kind,
                param: self.param,
                code: self.code,
            },
        })
    }

    pub fn into_response(self) -> Response<Body> {
        let mut response = json_response(self.status, self.body());
        if let Some(wait) = self.retry_after {
            let headers = response.headers_mut();
            let millis = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
            let (seconds, ms) = match self.retry_form {
                RetryForm::Both => (true, true),
                RetryForm::Seconds => (true, false),
                RetryForm::Millis => (false, true),
                RetryForm::Date | RetryForm::PastDate => (false, false),
            };
            if seconds {
                headers.insert(RETRY_AFTER, HeaderValue::from(millis.div_ceil(1000)));
            }
            if ms {
                headers.insert(RETRY_AFTER_MS, HeaderValue::from(millis));
            }
            let date = match self.retry_form {
                RetryForm::Date => Some(http_date_after(SystemTime::now(), wait)),
                RetryForm::PastDate => {
                    let at = SystemTime::now().checked_sub(wait).unwrap_or(UNIX_EPOCH);
                    Some(httpdate::fmt_http_date(at.max(UNIX_EPOCH)))
                }
                _ => None,
            };
            // An HTTP date is ASCII; skipping the header would be the fallback.
            if let Some(value) = date.and_then(|d| HeaderValue::from_str(&d).ok()) {
                headers.insert(RETRY_AFTER, value);
            }
        }
        response
    }
}

/// The HTTP date `wait` after `now`, rounded up to a whole second (the format has no fraction).
/// A wait beyond a year is cut to a year: an HTTP date cannot go past 9999, and a prompt's
/// directive must not be able to crash the server.
fn http_date_after(now: SystemTime, wait: Duration) -> String {
    const YEAR: Duration = Duration::from_secs(365 * 86_400);
    let at = now.checked_add(wait.min(YEAR)).unwrap_or(now);
    let at = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = at.as_secs() + u64::from(at.subsec_nanos() > 0);
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_json(response: Response<Body>) -> serde_json::Value {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn invalid_key_body_is_exactly_openais() {
        let json = body_json(ApiError::invalid_key().into_response()).await;
        let expected = serde_json::json!({"error": {"message": "Incorrect API key provided.",
            "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}});
        assert_eq!(json, expected);
    }

    #[test]
    fn retry_after_rounds_seconds_up_and_keeps_milliseconds() {
        let error = ApiError::for_status(StatusCode::TOO_MANY_REQUESTS, "slow down")
            .with_retry_after_if_429(Duration::from_millis(1500));
        let response = error.into_response();
        assert_eq!(response.headers()[RETRY_AFTER], "2");
        assert_eq!(response.headers()[RETRY_AFTER_MS], "1500");
    }

    #[test]
    fn a_retry_hint_goes_out_in_the_form_asked_for() {
        let hinted = |form| {
            ApiError::for_status(StatusCode::SERVICE_UNAVAILABLE, "x")
                .with_retry_hint(Duration::from_millis(1500), form)
                .into_response()
        };
        let seconds = hinted(RetryForm::Seconds);
        assert_eq!(seconds.headers()[RETRY_AFTER], "2");
        assert!(!seconds.headers().contains_key(RETRY_AFTER_MS));
        let millis = hinted(RetryForm::Millis);
        assert_eq!(millis.headers()[RETRY_AFTER_MS], "1500");
        assert!(!millis.headers().contains_key(RETRY_AFTER));
        let date = hinted(RetryForm::Date);
        assert!(!date.headers().contains_key(RETRY_AFTER_MS));
        let when = httpdate::parse_http_date(date.headers()[RETRY_AFTER].to_str().unwrap()).unwrap();
        assert!(when >= SystemTime::now() + Duration::from_millis(500));
    }

    #[test]
    fn an_http_date_is_never_earlier_than_the_wait() {
        let now = UNIX_EPOCH + Duration::from_millis(1_000_000_250);
        let date = http_date_after(now, Duration::from_secs(2));
        let when = httpdate::parse_http_date(&date).unwrap();
        assert_eq!(when, UNIX_EPOCH + Duration::from_secs(1_000_003));
        let far = http_date_after(UNIX_EPOCH, Duration::from_secs(u64::MAX));
        assert_eq!(
            httpdate::parse_http_date(&far).unwrap(),
            UNIX_EPOCH + Duration::from_secs(365 * 86_400)
        );
        let exact = http_date_after(UNIX_EPOCH + Duration::from_secs(10), Duration::from_secs(2));
        assert_eq!(
            httpdate::parse_http_date(&exact).unwrap(),
            UNIX_EPOCH + Duration::from_secs(12)
        );
    }

    #[tokio::test]
    async fn insufficient_quota_is_openais_body_without_a_retry_hint() {
        let response = ApiError::insufficient_quota().into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(!response.headers().contains_key(RETRY_AFTER));
        let json = body_json(response).await;
        assert_eq!(json["error"]["type"], "insufficient_quota");
        assert_eq!(json["error"]["code"], "insufficient_quota");
        assert!(json["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("You exceeded your current quota"));
    }

    #[test]
    fn server_errors_have_type_server_error_and_no_retry_after() {
        let error = ApiError::for_status(StatusCode::BAD_GATEWAY, "x")
            .with_retry_after_if_429(Duration::from_secs(1));
        assert_eq!(
            (error.kind, error.code, error.retry_after),
            ("server_error", None, None)
        );
    }
}
