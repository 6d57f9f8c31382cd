//! The slow reliability tests, a separate target so that `cargo test` stays quick: CI runs them
//! with `cargo test --release --test reliability`. Each drives the real binary against the
//! bundled mock server on 127.0.0.1 (port 0) and is bounded in time (every command by the
//! harness's deadline). Run with `-- --nocapture` to see the measured numbers.
//!
//! - `kill_loop`: 20 SIGKILLs at random moments of a 2,000-row job, then the output against a
//!   clean run's, and the requests paid twice.
//! - `fault_mix`: a 1,000-row job against a server that fails one request in five in every
//!   way it can; every row settles, with its reason, and every retry is on record.

// The end-to-end tests' harness; not every helper is used here.
#[allow(dead_code)]
#[path = "../cli/util.rs"]
mod util;

mod fault_mix;
mod kill_loop;
