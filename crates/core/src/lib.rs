//! promptmill-core: what every other promptmill crate stands on, and nothing that sends,
//! stores or schedules.
//!
//! - [`job`]: the persisted job record (versioned) and, in `job::settings`, the persisted types
//!   it is built from: send limits, batch settings, mode, output spec, provider. A checkpoint
//!   rebuilds a job from these alone.
//! - [`family`]: the API families behind the `ApiFamily` trait (chat, completions, the Responses
//!   API, embeddings), one file each: body shapes, token framing, what a success reads as,
//!   rate-limit headers, Batch lines. Adding a family is a file there and one registry line.
//! - [`provider`] and [`base_url`]: where a request goes and which header carries the key.
//! - [`input`] streams rows from CSV, JSON Lines or Parquet; [`template`] renders prompts.
//! - [`tokens`] counts tokens as OpenAI does; [`models`] knows context windows and prices and
//!   holds the one cost formula.
//! - [`files`] creates every file written for the user (exclusively, mode 0600, renamed into
//!   place); [`paths`] tells whether two paths are the same file.
//! - [`secret`], [`error`], [`retry`], [`stall`], [`confirm`]: the key kept out of every output,
//!   the exit codes, backoff, a process that stood still, `--confirm`'s question.

pub mod base_url;
pub mod confirm;
pub mod error;
pub mod family;
pub mod files;
pub mod input;
pub mod job;
pub mod models;
pub mod paths;
pub mod provider;
pub mod retry;
pub mod schema;
pub mod secret;
pub mod stall;
pub mod template;
pub mod tokens;
