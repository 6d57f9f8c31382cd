//! Showing progress while a run goes: a live bar on a terminal, a plain line every few seconds
//! elsewhere (CI, nohup, a pipe, `TERM=dumb`), nothing with `--quiet`.
//!
//! It only reads the shared counters; it ends when its token is cancelled, after drawing once more.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::budget::Costing;
use crate::estimate::report::{duration, thousands};
use crate::stats::{Snapshot, Stats};
use crate::summary::count;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    Bar,
    Lines { every: Duration },
    Off,
}

/// How often a plain line is printed, unless `--progress-interval` says otherwise.
pub const LINE_EVERY: Duration = Duration::from_secs(5);

/// Whether stderr is a terminal that can redraw a line (move the cursor, clear it). `TERM=dumb`
/// cannot, and indicatif draws nothing at all there.
pub fn can_redraw() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

impl Display {
    /// A bar on a terminal that can draw one (unless verbose logging also writes there), plain
    /// lines every `every` elsewhere.
    pub fn choose(quiet: bool, verbose: u8, every: Option<Duration>) -> Display {
        if quiet {
            Display::Off
        } else if can_redraw() && verbose == 0 {
            Display::Bar
        } else {
            Display::Lines {
                every: every.unwrap_or(LINE_EVERY).max(Duration::from_millis(10)),
            }
        }
    }
}

/// Where the job stood when this run started.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub total: u64,
    /// Rows settled (done, failed, skipped) before this run.
    pub settled: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// The run's ledger, when the job's models are priced: the display shows what the job has
    /// spent, what requests on the wire hold, and the budget when there is one.
    pub money: Option<Arc<Costing>>,
}

/// The numbers after the rows and the ETA, one field each, so that a line can be broken
/// between fields and never inside one.
fn fields(base: &Baseline, s: &Snapshot, rate: f64, stats: &Stats) -> Vec<String> {
    let mut f = vec![
        format!("{rate:.1} rows/s"),
        format!(
            "{} prompt + {} completion tokens",
            thousands(base.prompt_tokens + s.prompt_tokens),
            thousands(base.completion_tokens + s.completion_tokens)
        ),
    ];
    if let Some(c) = &base.money {
        f.push(c.spend().describe());
    }
    let cached = stats.cached.load(std::sync::atomic::Ordering::Relaxed);
    if cached > 0 {
        let saved = stats.saved_nanos.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e9;
        let saved = match base.money {
            Some(_) => format!(" (saved {})", crate::estimate::report::dollars(saved)),
            None => String::new(),
        };
        f.push(format!("{} from the cache{saved}", thousands(cached)));
    }
    f.extend([
        format!("{} on the wire", thousands(s.in_flight)),
        count(s.retries, "retry", "retries"),
        format!("{} × 429", thousands(s.http_429)),
        format!("{} failed", thousands(s.failed)),
        format!("limits: {}{}", stats.in_force(), stats.capped_note()),
    ]);
    f
}

/// The time left at the rate so far: `?` until a row of this run has settled, and once the run
/// is stopping (it will not finish).
fn eta(remaining: u64, settled_now: u64, rate: f64, stopping: bool) -> String {
    match eta_secs(remaining, settled_now, rate, stopping) {
        None => "?".to_string(),
        Some(secs @ 0..60) => format!("{secs}s"),
        Some(secs) => duration(Duration::from_secs(secs)),
    }
}

/// The ETA in whole seconds (a tenth of a second of ETA is noise), `None` where the line shows
/// `?`. The run report draws the ETA a run showed with this same formula.
pub fn eta_secs(remaining: u64, settled_now: u64, rate: f64, stopping: bool) -> Option<u64> {
    if stopping || settled_now == 0 || rate <= 0.0 {
        return None;
    }
    Some((remaining as f64 / rate).min(1e9).round() as u64)
}

/// Joins `fields` with `sep` into lines of at most `width` columns (when given), breaking only
/// between fields; every line after the first starts with `indent`.
pub fn fit(fields: &[String], sep: &str, indent: &str, first: usize, width: Option<usize>) -> String {
    let mut out = String::new();
    let mut col = first;
    for (i, field) in fields.iter().enumerate() {
        let len = field.chars().count();
        if i > 0 {
            let fits = width.is_none_or(|w| col + sep.chars().count() + len <= w);
            if fits {
                out.push_str(sep);
                col += sep.chars().count();
            } else {
                out.push_str(sep.trim_end());
                out.push('\n');
                out.push_str(indent);
                col = indent.chars().count();
            }
        }
        out.push_str(field);
        col += len;
    }
    out
}

/// Columns of the terminal on stderr, when it is one.
fn width() -> Option<usize> {
    terminal_size::terminal_size_of(std::io::stderr()).map(|(w, _)| usize::from(w.0))
}

/// Shows progress until `done` is cancelled; `stopping` (the run's stop token) switches the bar to
/// say that the run is draining.
pub fn spawn(
    display: Display,
    stats: Arc<Stats>,
    base: Baseline,
    stopping: CancellationToken,
    done: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        match display {
            Display::Off => {}
            Display::Bar => bar(stats, base, stopping, done).await,
            Display::Lines { every } => lines(stats, base, stopping, done, every).await,
        }
    })
}

async fn bar(stats: Arc<Stats>, base: Baseline, stopping: CancellationToken, done: CancellationToken) {
    let bar = ProgressBar::with_draw_target(Some(base.total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} rows  ETA {prefix}\n  {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("█▉▊▋▌▍▎▏ ");
    bar.set_style(style);
    bar.set_position(base.settled);
    bar.set_prefix("?");
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        let finished = tokio::select! {
            _ = done.cancelled() => true,
            _ = tick.tick() => false,
        };
        let s = stats.snapshot();
        let settled_now = s.done + s.failed;
        let settled = base.settled + settled_now;
        bar.set_position(settled);
        let rate = settled_now as f64 / start.elapsed().as_secs_f64().max(0.001);
        let stop = stopping.is_cancelled();
        bar.set_prefix(eta(base.total.saturating_sub(settled), settled_now, rate, stop));
        if stop && !finished {
            bar.set_message(format!(
                "stopping: waiting for {} on the wire (Ctrl-C again to exit at once)",
                count(s.in_flight, "request", "requests")
            ));
            continue;
        }
        let w = width().map(|w| w.saturating_sub(1));
        bar.set_message(fit(&fields(&base, &s, rate, &stats), "  ", "  ", 2, w));
        if finished {
            bar.abandon();
            return;
        }
    }
}

async fn lines(
    stats: Arc<Stats>,
    base: Baseline,
    stopping: CancellationToken,
    done: CancellationToken,
    every: Duration,
) {
    let start = Instant::now();
    let mut tick = tokio::time::interval(every);
    tick.tick().await; // the first tick is immediate; the first line comes after `every`
    loop {
        tokio::select! {
            _ = done.cancelled() => return,
            _ = tick.tick() => {}
        }
        let s = stats.snapshot();
        let settled_now = s.done + s.failed;
        let settled = base.settled + settled_now;
        let rate = settled_now as f64 / start.elapsed().as_secs_f64().max(0.001);
        let remaining = base.total.saturating_sub(settled);
        let head = format!(
            "promptmill: {}/{} rows ({:.1}%), ETA {}",
            thousands(settled),
            thousands(base.total),
            100.0 * settled as f64 / base.total.max(1) as f64,
            eta(remaining, settled_now, rate, stopping.is_cancelled())
        );
        let mut all = vec![head];
        all.extend(fields(&base, &s, rate, &stats));
        // A pipe takes the line whole; a terminal (TERM=dumb) gets it broken between fields.
        eprintln!("{}", fit(&all, ", ", "  ", 0, width()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_break_between_fields_never_inside_a_number() {
        let f: Vec<String> = [
            "12.5 rows/s",
            "1,234,567 prompt + 89,012 completion tokens",
            "3 on the wire",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            fit(&f, ", ", "  ", 0, None),
            "12.5 rows/s, 1,234,567 prompt + 89,012 completion tokens, 3 on the wire"
        );
        let wrapped = fit(&f, ", ", "  ", 0, Some(40));
        assert_eq!(
            wrapped,
            "12.5 rows/s,\n  1,234,567 prompt + 89,012 completion tokens,\n  3 on the wire"
        );
        for field in &f {
            assert!(wrapped.contains(field.as_str()), "{field} kept whole");
        }
        let roomy = fit(&f, "  ", "  ", 2, Some(80));
        assert!(roomy.lines().all(|l| l.chars().count() + 2 <= 80), "{roomy}");
    }

    #[test]
    fn eta_is_unknown_before_the_first_row_and_once_stopping() {
        assert_eq!(eta(100, 0, 0.0, false), "?");
        assert_eq!(eta(100, 5, 2.0, true), "?");
        assert_eq!(eta(100, 5, 2.0, false), "50s");
        assert_eq!(eta(0, 5, 2.0, false), "0s");
        assert_eq!(eta(1000, 5, 2.0, false), "8m 20s");
    }
}
