//! The input a job reads and what to make of it: the file and its format, the request settings
//! (template, system message, model, parameters) and the job as the command describes it. The
//! command line builds it (`config::input_config`); the dry run and the load read it.

use std::path::PathBuf;

use promptmill_core::input::InputFormat;
use promptmill_core::job::JobSpec;

use crate::prepare::RequestSettings;

/// The input and what to make of it: the part of `run`'s flags that a dry run needs too.
#[derive(Debug, Clone)]
pub struct InputConfig {
    pub input: PathBuf,
    pub format: InputFormat,
    pub skip_invalid: bool,
    pub request: RequestSettings,
    /// The job as the command describes it (the input's fingerprint is filled in once read).
    pub spec: JobSpec,
}
