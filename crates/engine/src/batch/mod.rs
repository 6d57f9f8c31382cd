//! `run --mode batch`: a job's rows through the provider's asynchronous Batch API instead of one
//! request each. The rows, checkpoint, output and totals are the live mode's; only the transport
//! differs. [`driver`] submits parts (one input file and one batch each), waits for them and
//! collects their results into the checkpoint; [`client`] is the Files and Batches APIs it uses,
//! behind a trait; [`wire`] is their objects; `results` reads a finished batch's result files; the parts' records live in `store/parts.rs`.

pub mod client;
pub mod driver;
mod results;
pub mod wire;

pub use client::{ApiError, BatchApi, CreateBatch, HttpBatchApi};
pub use driver::{Driver, DriverSettings, Ending};

#[cfg(test)]
mod tests;
