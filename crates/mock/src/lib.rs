//! `promptmill mock-server`: a local, fast, OpenAI-compatible server for rehearsing jobs for
//! free, the keyless demo, the integration tests and the throughput benchmark. With no flags
//! it answers every request instantly and deterministically; flags inject latency, random
//! faults, per-prompt faults, provider-style rate limits and auth.
//!
//! Map of the module:
//! - `config`: the flags ([`MockArgs`]) and the validated settings ([`MockConfig`]).
//! - `server`: the socket, one task per connection, shutdown ([`MockServer`]).
//! - `service`: one request through its checks, latency, stats and log.
//! - `family`: the four API families (chat, completions, Responses, embeddings) and a parsed
//!   body of any of them; `wire`: chat and completion bodies; `reply`: their answers;
//!   `responses`: `/v1/responses`; `embeddings`: `/v1/embeddings`; `messages`: Anthropic's
//!   `/v1/messages` (and `messages/dialect`: its error bodies and limit headers); `errors`:
//!   error answers.
//! - `structured`: the structured output a request asks for (`response_format`, `text.format`,
//!   `output_config.format`, a forced tool) and the text answering it, or spoiling it on purpose;
//!   `instance`: a deterministic, bounded instance of a JSON Schema.
//! - `faults`: seeded random faults and jitter; `directives`: `[[mock:...]]` in prompts;
//!   `shapes`: the 200s directives shape for chat, completions, Responses and embeddings;
//!   `limits`: --rpm/--tpm; `stats`: `/mock/stats`; `log`: --log.
//! - OpenAI's Files and Batches APIs: `batch_api` (routes, pagination, `/mock/batches`),
//!   `files` (uploads and the file store), `batch_lines` (input lines and their validation),
//!   `batches` (the batch store and lifecycle; Mistral's `/v1/batch/jobs` in `batches/mistral`), `batch_run` (answering lines into output and
//!   error files), `batch_outcome` (--batch-outcome and `X-Mock-Batch-Outcome`).
//! - `tests`, `tests_faults`, `tests_batches`, `tests_families` (Responses and embeddings),
//!   `tests_structured` and `tests_structured_batches` (structured output), `tests_mistral_batches`: in-process tests
//!   against a real server on 127.0.0.1:0.
//!
//! This file only wires the subcommand: bind, announce, serve until a signal.

mod answering;
mod batch_api;
/// `--dialect`: whose Files and Batches API the mock's `/v1/` paths speak.
pub use batch_api::Dialect;
mod batch_lines;
mod batch_outcome;
mod batch_run;
mod batches;
mod config;
mod directives;
mod embeddings;
mod errors;
mod family;
mod faults;
mod files;
mod instance;
mod limits;
mod log;
mod messages;
mod reply;
mod responses;
mod routes;
mod server;
mod service;
mod shapes;
mod stats;
mod structured;
mod wire;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_azure_batches;
#[cfg(test)]
mod tests_batches;
#[cfg(test)]
mod tests_compat_batches;
#[cfg(test)]
mod tests_families;
#[cfg(test)]
mod tests_faults;
#[cfg(test)]
mod tests_messages;
#[cfg(test)]
mod tests_mistral_batches;
#[cfg(test)]
mod tests_structured;
#[cfg(test)]
mod tests_structured_batches;

use std::io::Write;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

pub use batch_outcome::BatchOutcomes;
pub use config::{ConfigError, DropCreate, FaultRates, MockArgs, MockConfig};
pub use server::MockServer;

/// The subcommand: binds, prints exactly one line `listening on http://HOST:PORT/v1` to
/// stdout, then serves until Ctrl-C or SIGTERM and returns once connections are closed.
pub async fn run_cli(args: MockArgs) -> anyhow::Result<()> {
    let config = MockConfig::from_args(args)?;
    let server = MockServer::bind(config).await?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{}/v1", server.local_addr())
            .and_then(|()| stdout.flush())
            .context("could not write the listening address to stdout")?;
    }
    // Cancelled once, by the first signal; `serve` then winds down and returns.
    let shutdown = CancellationToken::new();
    let serving = server.serve(shutdown.clone());
    tokio::pin!(serving);
    tokio::select! {
        result = &mut serving => return result,
        signal = termination() => signal?,
    }
    shutdown.cancel();
    serving.await
}

/// Completes on Ctrl-C, or on SIGTERM where there is such a thing.
async fn termination() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("could not listen for SIGTERM")?;
        tokio::select! {
            ctrl_c = tokio::signal::ctrl_c() => ctrl_c.context("could not listen for Ctrl-C"),
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .context("could not listen for Ctrl-C")
    }
}
