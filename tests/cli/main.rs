//! End-to-end tests of the real `promptmill` binary against the bundled mock server on
//! 127.0.0.1 (port 0). One test binary (ripgrep's habit): shared helpers in `util.rs`, one
//! module per area, one behaviour per test.

mod azure;
mod azure_batch;
mod bad_input;
mod batch;
mod calibration;
mod command_line;
mod completions;
mod corpus;
mod cost;
mod cost_split;
mod disk;
mod disk_full;
mod doc_commands;
mod docs;
mod embeddings;
mod embeddings_batch;
mod embeddings_out;
mod faults;
mod files;
mod happy;
mod input_details;
mod input_grew;
mod limit;
mod limits;
mod numbers;
mod old_checkpoints;
mod onejob;
mod parquet;
mod profiles;
mod progress_lines;
mod pty;
mod report;
mod report_views;
mod responses;
mod resume;
mod secrets;
mod small_print;
mod spend;
mod status_live;
mod stdio;
mod targets;
mod time;
mod unknown_model;
mod util;
