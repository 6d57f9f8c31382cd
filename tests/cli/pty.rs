//! Running the binary on a pseudo-terminal (through util-linux `script`), for what it does only
//! on a terminal: the `--confirm` question, the progress display under TERM=dumb.

use crate::util::{wait_for, Dir, Outcome, DEADLINE};

/// `args` run under a pseudo-terminal (util-linux `script`), with `input` typed on it and
/// `env` set; what the terminal showed (stdout and stderr together) is in `stdout`.
pub fn on_a_terminal(dir: &Dir, args: &[&str], env: &[(&str, &str)], input: &str) -> Outcome {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    let command = std::iter::once(env!("CARGO_BIN_EXE_promptmill"))
        .chain(args.iter().copied())
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ");
    // An 80-column terminal, as most are by default (a fresh pty has no size at all).
    let command = format!("stty rows 24 cols 80 && exec {command}");
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(dir.path(""))
        .env("XDG_CACHE_HOME", dir.fresh_cache_home())
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("util-linux `script` runs the command on a pseudo-terminal");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("type the answer");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let status = wait_for(&mut child, DEADLINE);
    drop(stdin);
    Outcome {
        status,
        stdout: reader.join().expect("reader"),
        stderr: String::new(),
    }
}
