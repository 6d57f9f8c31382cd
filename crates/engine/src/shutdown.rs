//! Ctrl-C, SIGTERM and SIGHUP (the terminal closed): all three mean "stop this run".
//!
//! The first signal stops dispatch (requests on the wire may finish, up to the drain timeout) and
//! says so; the run then commits and prints the command that resumes it. A second signal exits at
//! once with the "stopped" code: the checkpoint is still consistent, because every commit is a
//! SQLite transaction and anything uncommitted simply did not happen.

use std::sync::Arc;

use crate::pipeline::{Control, StopReason};
use promptmill_core::error::exit_code;

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

/// Writes a line to stderr. After SIGHUP the terminal may be gone (every write to it fails with
/// EIO), and `eprintln!` panics on a failed write: here, and in every message the run prints on
/// its way out. So when this write fails, stderr (and stdout, when it is the same terminal) is
/// pointed at `/dev/null`: the messages are lost, the run still drains, commits and exits as
/// stopped.
fn say(text: &str) {
    use std::io::Write;
    if writeln!(std::io::stderr(), "\npromptmill: {text}").is_err() {
        silence_lost_terminal();
    }
}

#[cfg(unix)]
fn silence_lost_terminal() {
    use std::os::fd::AsRawFd;
    let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") else {
        return;
    };
    let file = |fd: i32| {
        // SAFETY: fstat only fills the struct it is given; a closed fd is an error, not UB.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        (unsafe { libc::fstat(fd, &mut st) } == 0).then_some((st.st_dev, st.st_ino, st.st_rdev))
    };
    let stdout_is_stderr = file(1).is_some() && file(1) == file(2);
    // SAFETY: dup2 onto the standard descriptors, which stay open (now on /dev/null); nothing
    // holds their old file beyond them.
    unsafe {
        libc::dup2(null.as_raw_fd(), 2);
        if stdout_is_stderr {
            libc::dup2(null.as_raw_fd(), 1);
        }
    }
}

#[cfg(not(unix))]
fn silence_lost_terminal() {}

/// SIGTERM or SIGHUP on Unix; never fires elsewhere. A closed terminal (SIGHUP) is a stop
/// request like any other: the run drains, commits and says how to resume (the words are lost
/// if the terminal is gone), instead of dying by the signal's default action. A run started with
/// SIGHUP ignored (`nohup`) keeps ignoring it: that run was asked to outlive its terminal.
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
            hangup: (!hangup_ignored())
                .then(|| signal(SignalKind::hangup()).ok())
                .flatten(),
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

/// Whether this process started with SIGHUP ignored (as `nohup` starts it). Asked before tokio
/// installs its handler, which would replace the ignoring.
#[cfg(unix)]
fn hangup_ignored() -> bool {
    // SAFETY: with a null new action, sigaction only reads the current one into `old`.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGHUP, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}

/// What a live run does after the first signal.
pub const DRAINING: &str = "waiting for requests on the wire to finish";
/// What a batch run does after the first signal.
pub const DETACHING: &str = "no more polling; the submitted batches go on at the provider";
