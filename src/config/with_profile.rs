//! `--profile`: a profile's settings laid under the flags, before they are validated like any
//! flag. Reading and checking the file is `profile.rs`'s; this file only fills the flags not given.

use crate::cli::RunArgs;
use crate::profile::{self, ProfileUse};

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
    fn fill<T>(slot: &mut Option<T>, value: Option<T>, flag: &str, gave: &mut Vec<String>) {
        if let (None, Some(v)) = (&slot, value) {
            *slot = Some(v);
            gave.push(flag.to_string());
        }
    }
    let settings = s.settings;
    let text = |v: Option<toml::Spanned<String>>| v.map(toml::Spanned::into_inner);
    fill(&mut args.provider, settings.provider, "--provider", &mut gave);
    fill(
        &mut args.base_url,
        text(settings.base_url),
        "--base-url",
        &mut gave,
    );
    fill(
        &mut args.api_key_env,
        text(settings.api_key_env),
        "--api-key-env",
        &mut gave,
    );
    fill(
        &mut args.deployment,
        text(settings.deployment),
        "--deployment",
        &mut gave,
    );
    fill(
        &mut args.api_version,
        text(settings.api_version),
        "--api-version",
        &mut gave,
    );
    fill(&mut args.model, text(settings.model), "--model", &mut gave);
    let send = &mut args.send;
    fill(
        &mut send.concurrency,
        settings.concurrency,
        "--concurrency",
        &mut gave,
    );
    fill(&mut send.rpm, settings.rpm, "--rpm", &mut gave);
    fill(&mut send.tpm, settings.tpm, "--tpm", &mut gave);
    fill(
        &mut send.max_attempts,
        settings.max_attempts,
        "--max-attempts",
        &mut gave,
    );
    fill(&mut send.prices.prices, settings.prices, "--prices", &mut gave);
    // The two prices go together: a flag for either leaves both of the profile's unused.
    if send.prices.price_in.is_none() && send.prices.price_out.is_none() {
        fill(
            &mut send.prices.price_in,
            settings.price_in,
            "--price-in",
            &mut gave,
        );
        fill(
            &mut send.prices.price_out,
            settings.price_out,
            "--price-out",
            &mut gave,
        );
    }
    // A header given on the command line replaces the profile's header of that name.
    let header_name = |h: &str| h.split(':').next().unwrap_or(h).trim().to_ascii_lowercase();
    let given: Vec<String> = send.headers.iter().map(|h| header_name(h)).collect();
    let from_profile: Vec<String> = settings
        .headers
        .into_iter()
        .map(toml::Spanned::into_inner)
        .filter(|h| !given.contains(&header_name(h)))
        .collect();
    if !from_profile.is_empty() {
        gave.push("--header".to_string());
        send.headers.splice(0..0, from_profile);
    }
    Ok(Some(ProfileUse {
        name: s.name,
        file: s.file,
        gave,
    }))
}
