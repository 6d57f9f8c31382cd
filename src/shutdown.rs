//! Ctrl-C, SIGTERM and SIGHUP (the terminal closed): all three mean "stop this run".
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
        say(&format!(
            "stopping — {stopping} (press Ctrl-C again to exit at once)"
        ));
        control.stop(StopReason::Interrupted);
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        say(&format!(
            "exiting now. The checkpoint is consistent; resume with:\n  {resume}"
        ));
        std::process::exit(exit_code::STOPPED);
    })
}

/// Writes a line to stderr, ignoring failure: after SIGHUP the terminal may be gone, and a
/// failed write must not keep the run from stopping (`eprintln!` would panic this task).
fn say(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\npromptmill: {text}");
}

/// SIGTERM or SIGHUP on Unix; never fires elsewhere. A closed terminal (SIGHUP) is a stop
/// request like any other: the run drains, commits and says how to resume (to the log, if the
/// terminal is gone), instead of dying mid-commit by the signal's default action.
struct Term {
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hangup: Option<tokio::signal::unix::Signal>,
}

impl Term {
    fn new() -> Term {
        #[cfg(unix)]
        use tokio::signal::unix::{signal, SignalKind};
        Term {
            #[cfg(unix)]
            terminate: signal(SignalKind::terminate()).ok(),
            #[cfg(unix)]
            hangup: signal(SignalKind::hangup()).ok(),
        }
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            /// One signal stream, or never when it could not be installed.
            async fn next(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                _ = next(&mut self.terminate) => {}
                _ = next(&mut self.hangup) => {}
            }
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await
    }
}

/// What a live run does after the first signal.
pub const DRAINING: &str = "waiting for requests on the wire to finish";
/// What a batch run does after the first signal.
pub const DETACHING: &str = "no more polling; the submitted batches go on at the provider";
