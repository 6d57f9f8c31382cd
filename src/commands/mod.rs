//! The subcommands. Each reads like its plot and returns the process exit code; the work is
//! done by the modules they call.

pub mod batch;
pub mod cache;
pub mod completions;
mod ending;
pub mod estimate;
mod execute;
pub mod export;
mod logging;
pub mod man;
pub mod report;
pub mod run;
pub mod status;
pub mod target;

use crate::cli::Command;

/// Parses the command line and runs the subcommand; returns the exit code.
pub fn main<I, T>(args: I) -> anyhow::Result<i32>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = crate::cli::parse(args);
    match cli.command {
        Command::Run(args) if args.estimate.dry_run => estimate::estimate(*args),
        Command::Run(args) => run::run(*args),
        Command::Estimate(args) => estimate::estimate(*args),
        Command::Resume(args) => run::resume(*args),
        Command::Status(args) => status::status(args),
        Command::Export(args) => export::export(args),
        Command::Report(args) => report::report(args),
        Command::Cache(args) => cache::cache(args),
        Command::Cancel(args) => batch::cancel(args),
        Command::MockServer(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            crate::raise_fd_limit();
            runtime.block_on(crate::mock::run_cli(*args))?;
            Ok(promptmill_core::error::exit_code::SUCCESS)
        }
        Command::Completions(args) => completions::completions(args),
        Command::Man(args) => man::man(args),
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

/// A command line as a POSIX shell reads it back: each word quoted when it needs quoting, so a
/// printed command can be copied and pasted as it is.
pub fn shell_line<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| shell_quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::{shell_line, shell_quote};

    #[test]
    fn a_printed_command_line_quotes_the_words_that_need_it() {
        let line = shell_line(&[
            "promptmill",
            "run",
            "/tmp/my data/p.csv",
            "--template",
            "Write a one-line product description for a {color} {name}.",
            "--base-url",
            "http://127.0.0.1:8080/v1",
        ]);
        assert_eq!(
            line,
            "promptmill run '/tmp/my data/p.csv' --template 'Write a one-line product description for a {color} {name}.' --base-url http://127.0.0.1:8080/v1"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("out/a.db"), "out/a.db");
        assert_eq!(shell_quote("my file.db"), "'my file.db'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
