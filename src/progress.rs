//! Showing progress while a run goes: a live bar on a terminal, a plain line every few seconds
//! elsewhere (CI, nohup, a pipe), nothing with `--quiet`.
//!
//! It only reads the shared counters; it ends when its token is cancelled, after drawing once more.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::stats::Stats;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    Bar,
    Lines { every: Duration },
    Off,
}

impl Display {
    /// A bar on a terminal (unless verbose logging also writes there), lines elsewhere.
    pub fn choose(quiet: bool, verbose: u8) -> Display {
        if quiet {
            Display::Off
        } else if std::io::stderr().is_terminal() && verbose == 0 {
            Display::Bar
        } else {
            Display::Lines {
                every: Duration::from_secs(5),
            }
        }
    }
}

/// Where the job stood when this run started.
#[derive(Debug, Clone, Copy)]
pub struct Baseline {
    pub total: u64,
    /// Rows settled (done, failed, skipped) before this run.
    pub settled: u64,
    pub tokens: u64,
    /// Dollars the job had spent, when its model's price is known (the display then shows the
    /// money spent so far, and the budget when there is one).
    pub cost: Option<f64>,
    pub budget: Option<f64>,
}

impl Baseline {
    /// ", $0.042 spent" (", $0.042 of $1.00 spent" with a budget), or nothing when unpriced.
    fn money(&self, s: &crate::stats::Snapshot) -> String {
        let Some(before) = self.cost else {
            return String::new();
        };
        let spent = crate::estimate::report::dollars(before + s.cost_nanos as f64 / 1e9);
        match self.budget {
            Some(b) => format!(", {spent} of {} spent", crate::estimate::report::dollars(b)),
            None => format!(", {spent} spent"),
        }
    }
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
            Display::Lines { every } => lines(stats, base, done, every).await,
        }
    })
}

async fn bar(stats: Arc<Stats>, base: Baseline, stopping: CancellationToken, done: CancellationToken) {
    let bar = ProgressBar::with_draw_target(Some(base.total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} rows  ETA {eta}\n  {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("█▉▊▋▌▍▎▏ ");
    bar.set_style(style);
    bar.set_position(base.settled);
    bar.reset_eta();
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        let finished = tokio::select! {
            _ = done.cancelled() => true,
            _ = tick.tick() => false,
        };
        let s = stats.snapshot();
        bar.set_position(base.settled + s.done + s.failed);
        let rate = (s.done + s.failed) as f64 / start.elapsed().as_secs_f64().max(0.001);
        if stopping.is_cancelled() && !finished {
            bar.set_message(format!(
                "stopping: waiting for {} requests on the wire (Ctrl-C again to exit at once)",
                s.in_flight
            ));
            continue;
        }
        bar.set_message(format!(
            "{rate:.1} rows/s  {} tokens{}  {} in flight  {} retries  {} × 429  {} failed  (limits: {}){}",
            base.tokens + s.total_tokens,
            base.money(&s),
            s.in_flight,
            s.retries,
            s.http_429,
            s.failed,
            stats.in_force(),
            stats.capped_note()
        ));
        if finished {
            bar.abandon();
            return;
        }
    }
}

async fn lines(stats: Arc<Stats>, base: Baseline, done: CancellationToken, every: Duration) {
    let start = Instant::now();
    let mut tick = tokio::time::interval(every);
    tick.tick().await; // the first tick is immediate; the first line comes after `every`
    loop {
        tokio::select! {
            _ = done.cancelled() => return,
            _ = tick.tick() => {}
        }
        let s = stats.snapshot();
        let settled = base.settled + s.done + s.failed;
        let elapsed = start.elapsed().as_secs_f64();
        let rate = (s.done + s.failed) as f64 / elapsed.max(0.001);
        let remaining = base.total.saturating_sub(settled);
        let eta = if rate > 0.0 {
            humantime::format_duration(Duration::from_secs((remaining as f64 / rate) as u64)).to_string()
        } else {
            "?".to_string()
        };
        eprintln!(
            "promptmill: {settled}/{} rows ({:.1}%), {rate:.1} rows/s, ETA {eta}, {} tokens{}, {} in flight, {} retries, {} × 429, {} failed; limits: {}{}",
            base.total,
            100.0 * settled as f64 / base.total.max(1) as f64,
            base.tokens + s.total_tokens,
            base.money(&s),
            s.in_flight,
            s.retries,
            s.http_429,
            s.failed,
            stats.in_force(),
            stats.capped_note()
        );
    }
}
