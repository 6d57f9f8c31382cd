//! Noticing that our own process stood still: stopped (Ctrl-Z, SIGSTOP) and continued, or starved
//! of CPU. (A suspended machine is no such case on Linux: the monotonic clock, which timeouts and
//! this watch read, does not advance while it sleeps.) While the process stands still the answers to
//! requests on the wire keep arriving in their sockets, unread; when it runs again every timer
//! whose deadline passed fires at once. Without this, each such request would count as a server
//! timeout (re-sent: paid twice) and as overload (the window halved). A stall of ours is neither.
//!
//! [`Stalls`] is a handle on one watch per process: a thread that wakes every [`PERIOD`] on the
//! monotonic clock and adds any gap much longer than its period to a running total of time the
//! process stood still. A request takes a [`Mark`] when it starts; [`Stalls::since`] says how
//! long the process stood still after it, counting a gap the watch has not woken up to record yet
//! (a request answered in the first instant after SIGCONT must see the stall it lived through).
//! What to do about a stall is the caller's business: the transport gives a request its timeout
//! again (`api::deadline`), the pipeline does not read the attempt as the server's health.
//!
//! A thread, not a tokio task: it must not wait behind a busy runtime to notice time passing, and
//! the in-process pipeline tests on tokio's paused clock must not see a stall in a clock jump
//! (they use [`Stalls::none`]).

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// How often the watch wakes.
pub const PERIOD: Duration = Duration::from_millis(250);
/// A gap longer than `PERIOD` by more than this is a stall; shorter lateness is scheduling noise.
pub const SLACK: Duration = Duration::from_millis(750);

/// Where a request started, in stalled time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark(Duration);

#[derive(Debug)]
struct Watch {
    /// Guarded together so that a reader sees a gap either in `total` or as pending, never both
    /// or neither. A std Mutex: held for a subtraction, never across an await.
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// When the watch last woke.
    last_tick: Instant,
    /// Time the process stood still, summed over every stall recorded so far.
    total: Duration,
}

impl State {
    /// The part of a gap since `last_tick` that is a stall (zero for a normal tick).
    fn pending(&self, now: Instant) -> Duration {
        let gap = now.saturating_duration_since(self.last_tick);
        if gap > PERIOD + SLACK {
            gap - PERIOD
        } else {
            Duration::ZERO
        }
    }
}

/// A handle on the process's stall watch, or on none (then no stall is ever seen).
#[derive(Debug, Clone, Default)]
pub struct Stalls(Option<Arc<Watch>>);

impl Stalls {
    /// Never sees a stall: for tests whose clock is tokio's paused one.
    pub fn none() -> Stalls {
        Stalls(None)
    }

    /// The process's watch, started on first use; it lives as long as the process.
    pub fn watch() -> Stalls {
        static WATCH: OnceLock<Arc<Watch>> = OnceLock::new();
        let watch = WATCH.get_or_init(|| {
            let watch = Arc::new(Watch::new(Instant::now()));
            let ticking = Arc::clone(&watch);
            let started = std::thread::Builder::new()
                .name("promptmill-stall-watch".into())
                .spawn(move || loop {
                    std::thread::sleep(PERIOD);
                    ticking.tick(Instant::now());
                });
            if started.is_err() {
                tracing::warn!("could not start the stall watch; a stopped process may see timeouts");
            }
            watch
        });
        Stalls(Some(Arc::clone(watch)))
    }

    /// A watch that no thread ticks: tests drive it with [`Stalls::tick_at`].
    #[cfg(any(test, feature = "test-support"))]
    pub fn manual(start: Instant) -> Stalls {
        Stalls(Some(Arc::new(Watch::new(start))))
    }

    /// What the watch thread does when it wakes at `now` (tests call it with made-up instants).
    #[cfg(any(test, feature = "test-support"))]
    pub fn tick_at(&self, now: Instant) {
        if let Some(w) = &self.0 {
            w.tick(now);
        }
    }

    pub fn mark(&self) -> Mark {
        Mark(self.stalled_at(Instant::now()))
    }

    /// How long the process stood still after `mark`.
    pub fn since(&self, mark: Mark) -> Duration {
        self.stalled_at(Instant::now()).saturating_sub(mark.0)
    }

    fn stalled_at(&self, now: Instant) -> Duration {
        match &self.0 {
            None => Duration::ZERO,
            Some(w) => {
                let s = w.state.lock().unwrap_or_else(PoisonError::into_inner);
                s.total + s.pending(now)
            }
        }
    }
}

impl Watch {
    fn new(start: Instant) -> Watch {
        Watch {
            state: Mutex::new(State {
                last_tick: start,
                total: Duration::ZERO,
            }),
        }
    }

    fn tick(&self, now: Instant) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let stalled = s.pending(now);
        if !stalled.is_zero() {
            tracing::info!("the process stood still for {stalled:.1?} (stopped, or starved of CPU); requests on the wire get their timeout again");
            s.total += stalled;
        }
        s.last_tick = s.last_tick.max(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_ticks_are_no_stall_and_a_long_gap_is_one() {
        let t0 = Instant::now();
        let stalls = Stalls::manual(t0);
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mark = Mark(stalls.stalled_at(t0));
        for ms in [250, 500, 800, 1050] {
            stalls.tick_at(at(ms));
        }
        assert_eq!(
            stalls.stalled_at(at(1050)),
            mark.0,
            "late ticks within the slack are noise"
        );
        stalls.tick_at(at(6050));
        assert_eq!(stalls.stalled_at(at(6050)), Duration::from_millis(4750));
    }

    #[test]
    fn a_stall_the_watch_has_not_woken_to_record_is_seen_already() {
        let t0 = Instant::now();
        let stalls = Stalls::manual(t0);
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(stalls.stalled_at(at(5250)), Duration::from_secs(5), "pending");
        stalls.tick_at(at(5250));
        assert_eq!(
            stalls.stalled_at(at(5250)),
            Duration::from_secs(5),
            "recorded, not twice"
        );
        stalls.tick_at(at(5500));
        assert_eq!(stalls.stalled_at(at(5500)), Duration::from_secs(5));
    }

    #[test]
    fn no_watch_sees_no_stall() {
        let stalls = Stalls::none();
        let mark = stalls.mark();
        assert_eq!(stalls.since(mark), Duration::ZERO);
    }
}
