//! Logs: to stderr, at the level `-v` asks for, promptmill's own events only.

use promptmill_engine::progress;

/// Logs go to stderr; `-v` shows retries and failures, `-vv` every response. Only promptmill's
/// own events are shown: the HTTP stack's are noise here, and nothing can leak through them.
pub(crate) fn init_logging(verbose: u8) {
    use tracing_subscriber::prelude::*;
    let level = match verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    let filter = tracing_subscriber::filter::Targets::new()
        .with_target("promptmill", level)
        .with_default(tracing::Level::WARN);
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(progress::can_redraw())
                .with_target(false),
        )
        .with(filter)
        .try_init();
}
