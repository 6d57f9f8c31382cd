//! The subcommands. Each reads like its plot and returns the process exit code; the work is
//! done by the modules they call.

pub mod batch;
pub mod estimate;
pub mod export;
pub mod run;
pub mod status;
pub mod target;

use clap::Parser;

use crate::cli::{Cli, Command};

/// Parses the command line and runs the subcommand; returns the exit code.
pub fn main<I, T>(args: I) -> anyhow::Result<i32>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = Cli::parse_from(args);
    match cli.command {
        Command::Run(args) if args.estimate.dry_run => estimate::estimate(*args),
        Command::Run(args) => run::run(*args),
        Command::Estimate(args) => estimate::estimate(*args),
        Command::Resume(args) => run::resume(*args),
        Command::Status(args) => status::status(args),
        Command::Export(args) => export::export(args),
        Command::Cancel(args) => batch::cancel(args),
        Command::MockServer(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            crate::raise_fd_limit();
            runtime.block_on(crate::mock::run_cli(*args))?;
            Ok(crate::error::exit_code::SUCCESS)
        }
    }
}

/// Quotes a word for a POSIX shell when it needs quoting.
pub fn shell_quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./:=@%+,-".contains(&b));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("out/a.db"), "out/a.db");
        assert_eq!(shell_quote("my file.db"), "'my file.db'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
