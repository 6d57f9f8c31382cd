//! Ctrl-C and SIGTERM.
//!
//! The first signal stops dispatch (requests on the wire may finish, up to the drain timeout) and
//! says so; the run then commits and prints the command that resumes it. A second signal exits at
//! once with the "stopped" code: the checkpoint is still consistent, because every commit is a
//! SQLite transaction and anything uncommitted simply did not happen.

use std::sync::Arc;

use crate::error::exit_code;
use crate::pipeline::{Control, StopReason};

/// Watches for signals until `control.abort` is cancelled or the task is aborted (when the run
/// ends). `stopping` says what the run does after the first signal; `resume` is the command to
/// print on a hard exit.
pub fn spawn(control: Arc<Control>, stopping: &'static str, resume: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut term = Term::new();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
            _ = control.abort.cancelled() => return,
        }
        eprintln!("\npromptmill: stopping — {stopping} (press Ctrl-C again to exit at once)");
        control.stop(StopReason::Interrupted);
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!("\npromptmill: exiting now. The checkpoint is consistent; resume with:\n  {resume}");
        std::process::exit(exit_code::STOPPED);
    })
}

/// SIGTERM on Unix; never fires elsewhere.
struct Term {
    #[cfg(unix)]
    inner: Option<tokio::signal::unix::Signal>,
}

impl Term {
    fn new() -> Term {
        Term {
            #[cfg(unix)]
            inner: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
        }
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(s) = &mut self.inner {
            s.recv().await;
            return;
        }
        std::future::pending::<()>().await
    }
}

/// What a live run does after the first signal.
pub const DRAINING: &str = "waiting for requests on the wire to finish";
/// What a batch run does after the first signal.
pub const DETACHING: &str = "no more polling; the submitted batches go on at the provider";
