//! The `promptmill` binary: runs the command line and turns its result into an exit code.

use promptmill::error::exit_code;

fn main() {
    let code = match promptmill::commands::main(std::env::args_os()) {
        Ok(code) => code,
        Err(err) => {
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::BrokenPipe {
                    std::process::exit(exit_code::SUCCESS);
                }
            }
            eprintln!("promptmill: error: {err:#}");
            exit_code::ERROR
        }
    };
    std::process::exit(code);
}
