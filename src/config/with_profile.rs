//! `--profile`: a profile's settings laid under the flags, before they are validated like any
//! flag. Reading and checking the file is `profile.rs`'s; this file only fills the flags not given.

use crate::cli::{RunArgs, SendArgs};
use crate::profile::{self, ProfileUse, Settings};

/// Lays the `--profile` under the command line: each setting of the profile fills its flag
/// when the flag was not given (flag > profile; the stored job and the defaults come after, as
/// for any flag not given). Returns what the profile gave, for the job record.
pub(super) fn apply_profile(args: &mut RunArgs) -> anyhow::Result<Option<ProfileUse>> {
    let Some(name) = args.profile.profile.take() else {
        return Ok(None);
    };
    let file = profile::config_path(args.profile.config.as_deref())?;
    let s = profile::load(&file, &name)?;
    let mut gave = Vec::new();
    let mut settings = s.settings;
    fill_target(args, &mut settings, &mut gave);
    fill_send(&mut args.send, &mut settings, &mut gave);
    fill_headers(&mut args.send, settings.headers, &mut gave);
    Ok(Some(ProfileUse {
        name: s.name,
        file: s.file,
        gave,
    }))
}

/// Fills `slot` with the profile's `value` when the flag was not given, noting the flag.
fn fill<T>(slot: &mut Option<T>, value: Option<T>, flag: &str, gave: &mut Vec<String>) {
    if let (None, Some(v)) = (&slot, value) {
        *slot = Some(v);
        gave.push(flag.to_string());
    }
}

fn text(v: Option<toml::Spanned<String>>) -> Option<String> {
    v.map(toml::Spanned::into_inner)
}

/// Where requests go, and the model.
fn fill_target(args: &mut RunArgs, settings: &mut Settings, gave: &mut Vec<String>) {
    fill(&mut args.provider, settings.provider.take(), "--provider", gave);
    fill(
        &mut args.base_url,
        text(settings.base_url.take()),
        "--base-url",
        gave,
    );
    fill(
        &mut args.api_key_env,
        text(settings.api_key_env.take()),
        "--api-key-env",
        gave,
    );
    fill(
        &mut args.deployment,
        text(settings.deployment.take()),
        "--deployment",
        gave,
    );
    fill(
        &mut args.api_version,
        text(settings.api_version.take()),
        "--api-version",
        gave,
    );
    fill(&mut args.model, text(settings.model.take()), "--model", gave);
}

/// How requests are sent: the limits and the prices.
fn fill_send(send: &mut SendArgs, settings: &mut Settings, gave: &mut Vec<String>) {
    fill(
        &mut send.concurrency,
        settings.concurrency.take(),
        "--concurrency",
        gave,
    );
    fill(&mut send.rpm, settings.rpm.take(), "--rpm", gave);
    fill(&mut send.tpm, settings.tpm.take(), "--tpm", gave);
    fill(
        &mut send.max_attempts,
        settings.max_attempts.take(),
        "--max-attempts",
        gave,
    );
    fill(&mut send.prices.prices, settings.prices.take(), "--prices", gave);
    // The two prices go together: a flag for either leaves both of the profile's unused.
    if send.prices.price_in.is_none() && send.prices.price_out.is_none() {
        fill(
            &mut send.prices.price_in,
            settings.price_in.take(),
            "--price-in",
            gave,
        );
        fill(
            &mut send.prices.price_out,
            settings.price_out.take(),
            "--price-out",
            gave,
        );
    }
}

/// The profile's headers, before the command line's; a header given on the command line
/// replaces the profile's header of that name.
fn fill_headers(send: &mut SendArgs, headers: Vec<toml::Spanned<String>>, gave: &mut Vec<String>) {
    let header_name = |h: &str| h.split(':').next().unwrap_or(h).trim().to_ascii_lowercase();
    let given: Vec<String> = send.headers.iter().map(|h| header_name(h)).collect();
    let from_profile: Vec<String> = headers
        .into_iter()
        .map(toml::Spanned::into_inner)
        .filter(|h| !given.contains(&header_name(h)))
        .collect();
    if !from_profile.is_empty() {
        gave.push("--header".to_string());
        send.headers.splice(0..0, from_profile);
    }
}
