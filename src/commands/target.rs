//! Where a job's requests go, as the commands see it: the checks made before anything is sent
//! (a key, plain http, credential query parameters given again), and what the user is told when
//! the run's first answers say the target is wrong (a redirect, 404s, a refused connection, a
//! name that does not resolve). The URLs themselves are built in `provider.rs` and `base_url.rs`;
//! the decision to stop is the pipeline's first-answers guard.

use std::path::Path;

use super::shell_quote;
use crate::config;
use promptmill_core::error::ConfigError;
use promptmill_core::job::JobRecord;
use promptmill_engine::pipeline::first_answers::{Symptom, Trip};

/// Checks, before anything is sent, where the job's requests would go: a key is there (unless
/// on loopback), plain http is allowed for this run, and the base URL has every query parameter
/// that was withheld from the checkpoint as a credential. Shared by live and batch runs and
/// `cancel`.
pub(crate) fn check(job: &JobRecord, allow_http: bool, db: &Path) -> anyhow::Result<()> {
    let missing = promptmill_core::base_url::missing_params(&job.base_url, &job.withheld_params);
    if !missing.is_empty() {
        let names = missing
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ConfigError::new(
            "--base-url",
            format!(
                "the job's base URL has the query parameter {names}, which is not stored because it looks like a \
                 credential; give the whole base URL again:\n  promptmill resume {} --base-url 'URL'",
                shell_quote(&db.display().to_string())
            ),
        )
        .into());
    }
    config::check_plain_http(&job.base_url, allow_http)?;
    config::check_key_present(&job.api_key_env, &job.base_url)?;
    Ok(())
}

/// What to tell the user when the first answers of a run all said the target is wrong (`url`:
/// the endpoint, as it may be shown; `endpoint_path`: its path under the base URL, e.g.
/// `/chat/completions`).
pub(crate) fn misdirected(trip: &Trip, url: &str, endpoint_path: &str, resume_cmd: &str) -> String {
    let n = trip.answers;
    let requests = if n == 1 {
        "the one request".to_string()
    } else {
        format!("all {n} requests")
    };
    let parsed = reqwest::Url::parse(url).ok();
    let host = parsed
        .as_ref()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
        .unwrap_or_else(|| url.to_string());
    let name = parsed
        .as_ref()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| url.to_string());
    match &trip.symptom {
        Symptom::Redirect { status, location } => redirects(
            &format!("{requests} so far got HTTP {status}"),
            location.as_deref(),
            location.as_deref().and_then(|l| base_of(l, endpoint_path)),
            resume_cmd,
        ),
        Symptom::NotFound { message } => format!(
            "promptmill: {requests} so far got 404 Not Found from {url} ({message}): is --base-url right?\n\
             No row was marked failed; they are pending. Fix the setting, then resume with:\n  {resume_cmd} --base-url URL"
        ),
        Symptom::Refused => format!(
            "promptmill: cannot connect to {host}: connection refused ({requests} so far). Is the server running, and --base-url right?\n\
             No row was marked failed; they are pending. Resume with:\n  {resume_cmd}"
        ),
        Symptom::Dns => format!(
            "promptmill: cannot resolve {name}: DNS lookup failed ({requests} so far). Is --base-url right?\n\
             No row was marked failed; they are pending. Fix the setting, then resume with:\n  {resume_cmd} --base-url URL"
        ),
    }
}

/// What to tell the user when the base URL redirects (`detail`: what was answered; `base`: the
/// base URL the `Location` implies, when it can tell). Redirects are never followed: the key and
/// the `--header`s would go wherever they point.
pub(crate) fn redirects(
    detail: &str,
    location: Option<&str>,
    base: Option<String>,
    resume_cmd: &str,
) -> String {
    let to = location.unwrap_or("(no Location given)");
    let base = base.map_or_else(|| "URL".to_string(), |b| shell_quote(&b));
    format!(
        "promptmill: the base URL redirects to {to}; give that URL as --base-url ({detail}).\n\
         Redirects are not followed: the API key and the --header values would go with them.\n\
         No row was marked failed; they are pending. Resume with:\n  {resume_cmd} --base-url {base}"
    )
}

/// The base URL a redirect's `Location` implies: the `Location` without the endpoint's path
/// (`https://h/v2/chat/completions` → `https://h/v2`), query kept; `None` when it does not end
/// with that path or is not an absolute URL.
fn base_of(location: &str, endpoint_path: &str) -> Option<String> {
    let mut url = reqwest::Url::parse(location).ok()?;
    let prefix = url
        .path()
        .trim_end_matches('/')
        .strip_suffix(endpoint_path)?
        .to_string();
    url.set_path(&prefix);
    Some(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_suggests_the_base_url_its_location_implies() {
        assert_eq!(
            base_of("https://h/v2/chat/completions?tenant=a", "/chat/completions").as_deref(),
            Some("https://h/v2?tenant=a")
        );
        assert_eq!(base_of("https://h/elsewhere", "/chat/completions"), None);
        assert_eq!(base_of("/v2/chat/completions", "/chat/completions"), None);
        let text = redirects(
            "x",
            Some("https://h/v2/chat/completions"),
            Some("https://h/v2".into()),
            "promptmill resume db",
        );
        assert!(
            text.contains("promptmill resume db --base-url https://h/v2"),
            "{text}"
        );
    }
}
