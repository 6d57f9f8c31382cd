//! Where requests go and with which key: `--provider`, `--base-url`, `--deployment`,
//! `--api-version` (Azure's `api-version`, Anthropic's `anthropic-version`), `--api-key-env`
//! and their environment variables, resolved into a `Target`,
//! and the checks on a base URL (plain http, credentials in it) and on the key's variable.
//! The provider's own rules (deployment names, API versions) are `provider.rs`'s.

use crate::cli::RunArgs;
use promptmill_core::error::ConfigError;
use promptmill_core::provider::{self, AzureUrl, Provider, ProviderKind};

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// Where requests go and which variable holds the key: `--provider`, `--base-url`,
/// `--deployment`, `--api-version`, `--api-key-env` and their environment variables, resolved.
pub(super) struct Target {
    pub(super) provider: Provider,
    pub(super) base_url: String,
    pub(super) api_key_env: String,
}

impl Target {
    pub(super) fn from_args(args: &RunArgs) -> Result<Target, ConfigError> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        // A deployment URL names Azure by itself (the "URL form"); otherwise OpenAI's shape.
        let kind = args.provider.unwrap_or_else(|| match &args.base_url {
            Some(url) if url.contains("/openai/deployments/") => ProviderKind::Azure,
            _ => ProviderKind::Openai,
        });
        let api_key_env = args
            .api_key_env
            .clone()
            .unwrap_or_else(|| kind.default_key_env().to_string());
        check_key_env(&api_key_env)?;
        if kind == ProviderKind::Anthropic {
            return anthropic(args, api_key_env);
        }
        if let Some(dialect) = kind.compatible() {
            let provider = match kind {
                ProviderKind::Groq => Provider::Groq,
                ProviderKind::Together => Provider::Together,
                _ => Provider::Gemini,
            };
            let at = (dialect.name, dialect.base_url_env, dialect.base_url);
            return at_own_address(args, provider, at, api_key_env);
        }
        if kind == ProviderKind::Mistral {
            let at = ("mistral", "MISTRAL_BASE_URL", provider::DEFAULT_MISTRAL_BASE_URL);
            return at_own_address(args, Provider::Mistral, at, api_key_env);
        }
        if kind == ProviderKind::Openai {
            for (flag, given, with) in [
                ("--deployment", args.deployment.is_some(), "azure"),
                ("--api-version", args.api_version.is_some(), "azure or anthropic"),
            ] {
                if given {
                    return Err(ConfigError::new(
                        flag,
                        format!("only applies with --provider {with}"),
                    ));
                }
            }
            let raw = args
                .base_url
                .clone()
                .or_else(|| env("OPENAI_BASE_URL"))
                .unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
            return Ok(Target {
                provider: Provider::OpenAi,
                base_url: check_base_url(&raw)?,
                api_key_env,
            });
        }
        let raw = args.base_url.clone().or_else(|| env("AZURE_OPENAI_ENDPOINT")).ok_or_else(|| {
            ConfigError::new(
                "--base-url",
                "--provider azure needs the resource endpoint: pass --base-url https://NAME.openai.azure.com or set AZURE_OPENAI_ENDPOINT",
            )
        })?;
        check_base_url(&raw)?;
        let url = AzureUrl::parse(&raw)?;
        let deployment = agree("--deployment", args.deployment.clone(), url.deployment)?
            .or_else(|| args.model.clone())
            .ok_or_else(|| {
                ConfigError::new(
                    "--deployment",
                    "--provider azure needs a deployment: pass --deployment NAME (it defaults to --model)",
                )
            })?;
        provider::check_deployment(&deployment, "--deployment")?;
        let api_version = agree("--api-version", args.api_version.clone(), url.api_version)?
            .or_else(|| env("OPENAI_API_VERSION"))
            .unwrap_or_else(|| provider::DEFAULT_AZURE_API_VERSION.to_string());
        provider::check_api_version(&api_version)?;
        Ok(Target {
            provider: Provider::Azure {
                deployment,
                api_version,
            },
            base_url: url.endpoint,
            api_key_env,
        })
    }
}

/// `--provider anthropic`: the base URL from `--base-url`, `ANTHROPIC_BASE_URL` or Anthropic's
/// own (without `/v1`: the family's path adds it), the `anthropic-version` from `--api-version`.
fn anthropic(args: &RunArgs, api_key_env: String) -> Result<Target, ConfigError> {
    if args.deployment.is_some() {
        return Err(ConfigError::new(
            "--deployment",
            "only applies with --provider azure",
        ));
    }
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let raw = args
        .base_url
        .clone()
        .or_else(|| env("ANTHROPIC_BASE_URL"))
        .unwrap_or_else(|| provider::DEFAULT_ANTHROPIC_BASE_URL.to_string());
    let version = args
        .api_version
        .clone()
        .unwrap_or_else(|| provider::DEFAULT_ANTHROPIC_VERSION.to_string());
    if version.trim().is_empty() || !version.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::new(
            "--api-version",
            format!(
                "`{version}` is not an anthropic-version (e.g. {})",
                provider::DEFAULT_ANTHROPIC_VERSION
            ),
        ));
    }
    Ok(Target {
        provider: Provider::Anthropic { version },
        base_url: check_base_url(&raw)?,
        api_key_env,
    })
}

/// `--provider groq|together|gemini|mistral`: a provider of OpenAI's wire format at its own
/// address: the base URL from `--base-url`, its variable (`GROQ_BASE_URL`…) or its default
/// (`at`: the provider's name, that variable, that default); `--deployment` and `--api-version`
/// do not apply.
fn at_own_address(
    args: &RunArgs,
    provider: Provider,
    (name, base_url_env, default): (&str, &str, &str),
    api_key_env: String,
) -> Result<Target, ConfigError> {
    for (flag, given) in [
        ("--deployment", args.deployment.is_some()),
        ("--api-version", args.api_version.is_some()),
    ] {
        if given {
            return Err(ConfigError::new(
                flag,
                format!("does not apply with --provider {name} (only with azure or anthropic)"),
            ));
        }
    }
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let raw = args
        .base_url
        .clone()
        .or_else(|| env(base_url_env))
        .unwrap_or_else(|| default.to_string());
    Ok(Target {
        provider,
        base_url: check_base_url(&raw)?,
        api_key_env,
    })
}

/// A setting given both as a flag and inside `--base-url`: they must agree.
fn agree(
    flag: &'static str,
    given: Option<String>,
    in_url: Option<String>,
) -> Result<Option<String>, ConfigError> {
    match (given, in_url) {
        (Some(a), Some(b)) if a != b => Err(ConfigError::new(
            flag,
            format!("`{a}` differs from `{b}` in --base-url; give one of them"),
        )),
        (a, b) => Ok(a.or(b)),
    }
}

pub fn check_base_url(raw: &str) -> Result<String, ConfigError> {
    let shown = promptmill_core::base_url::redact(raw.trim());
    let url = reqwest::Url::parse(raw.trim())
        .map_err(|e| ConfigError::new("--base-url", format!("`{shown}` is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::new(
            "--base-url",
            format!("`{shown}` is not an http(s) URL"),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::new(
            "--base-url",
            "must not contain credentials; the key comes from the environment",
        ));
    }
    if url.fragment().is_some() {
        return Err(ConfigError::new(
            "--base-url",
            format!("`{shown}` has a fragment (`#…`), which is never sent to a server; remove it"),
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// A plain `http://` base URL is refused unless it is on this machine or `--allow-http` is
/// given: the key and the `--header` values would travel in clear text. A per-run permission,
/// never stored in the job.
pub fn check_plain_http(base_url: &str, allow_http: bool) -> Result<(), ConfigError> {
    let http = reqwest::Url::parse(base_url).is_ok_and(|u| u.scheme() == "http");
    if !http || allow_http || is_loopback(base_url) {
        return Ok(());
    }
    Err(ConfigError::new(
        "--base-url",
        format!(
            "`{}` is plain http to a host that is not this machine: the API key and the --header values \
             would travel in clear text. Use https, or pass --allow-http if the network is trusted \
             (it is not stored in the job: every run and resume of it needs the flag again)",
            promptmill_core::base_url::redact(base_url)
        ),
    ))
}

/// `--api-key-env` names a variable; a value that is not a variable's name, or that looks like a
/// key itself, is refused without being shown (it may be the key).
pub fn check_key_env(name: &str) -> Result<(), ConfigError> {
    let is_name = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if is_name && !looks_like_a_key(name) {
        return Ok(());
    }
    Err(ConfigError::new(
        "--api-key-env",
        "takes the NAME of the variable that holds the key (e.g. OPENAI_API_KEY), not the key itself \
         (a name is letters, digits and `_`, and does not start with a digit)",
    ))
}

/// Whether a would-be variable name has the shape of a key: a known key prefix, or a long string
/// of mixed letters and digits (names are words joined by `_`, mostly in one case).
fn looks_like_a_key(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let prefixed = ["sk-", "sk_", "key-", "pk_", "rk_", "gsk_", "ghp_", "xoxb", "aiza"]
        .iter()
        .any(|p| lower.starts_with(p));
    let has = |f: fn(&u8) -> bool| name.as_bytes().iter().any(f);
    let digits = has(u8::is_ascii_digit);
    let letters = has(u8::is_ascii_alphabetic);
    let mixed_case = has(u8::is_ascii_lowercase) && has(u8::is_ascii_uppercase);
    let long_token = name.len() >= 32 && digits && letters && (mixed_case || !name.contains('_'));
    let random_word = name.len() >= 20 && digits && mixed_case && !name.contains('_');
    prefixed || long_token || random_word
}

/// `resume --base-url`: checked for the job's provider. For Azure it may be a deployment URL,
/// whose deployment must be the job's; an `api-version` in it replaces the stored one.
pub fn resume_base_url(raw: &str, provider: &mut Provider) -> Result<String, ConfigError> {
    let checked = check_base_url(raw)?;
    let Provider::Azure {
        deployment,
        api_version,
    } = provider
    else {
        return Ok(checked);
    };
    let url = AzureUrl::parse(&checked)?;
    if let Some(d) = url.deployment.filter(|d| d != deployment) {
        return Err(ConfigError::new(
            "--base-url",
            format!("names the deployment `{d}`, but the job sends to `{deployment}`"),
        ));
    }
    if let Some(v) = url.api_version {
        *api_version = v;
    }
    Ok(url.endpoint)
}

/// Whether requests to this base URL stay on this machine (a key is then optional).
pub fn is_loopback(base_url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(base_url) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A key is required unless the API is on loopback.
pub fn check_key_present(var: &str, base_url: &str) -> Result<(), ConfigError> {
    check_key_env(var)?;
    if promptmill_core::secret::ApiKey::from_env(var).is_none() && !is_loopback(base_url) {
        let base_url = promptmill_core::base_url::redact(base_url);
        return Err(ConfigError::new(
            "--api-key-env",
            format!("the environment variable {var} is not set, and {base_url} needs an API key; export {var}=… (or name another variable with --api-key-env)"),
        ));
    }
    Ok(())
}
