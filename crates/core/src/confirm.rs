//! `--confirm`: asking "Send? [y/N]" on the terminal after the cost line, before a new job's
//! first request, and whether it can be asked at all (never on a pipe or a file).

use std::io::{BufRead, IsTerminal, Write};

/// Why `--confirm` cannot be honoured here.
pub const NEEDS_TERMINAL: &str =
    "a confirmation needs a terminal on standard input; it never waits on a pipe or a file. \
     Drop --confirm (the cost line before the first request says what will be sent), or run from a terminal";

/// Whether `--confirm` can ask: standard input and standard error are terminals.
pub fn can_ask() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks "Send? [y/N]" on the terminal; true only for an answer starting with y.
pub fn ask() -> std::io::Result<bool> {
    eprint!("Send? [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim().chars().next(), Some('y' | 'Y')))
}
