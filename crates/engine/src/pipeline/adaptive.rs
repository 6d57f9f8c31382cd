//! Adaptive concurrency: how many requests may be on the wire at once, between 1 and
//! `--concurrency`, so that a struggling server is not hammered.
//!
//! The rule (AIMD, as TCP does for congestion):
//! - **Probe.** When some limit is to be learned from the server's headers, the window starts at 1
//!   and opens fully at the first answer (which carries the headers, or shows the server sends
//!   none), unless the probe met overload first. Otherwise it starts fully open.
//! - **Multiplicative decrease.** The window halves (never below 1) after four overload signals
//!   in a row with no success between them, or when latency rises sharply above its baseline.
//!   Four, not fewer: with 10% of answers failing at random, four in a row come about once in
//!   10,000 answers, while a server failing half its requests shows them within a few dozen.
//!   Overload signals: a timeout, a connection error, a 5xx, 408, 409, or a 429 whose headers do
//!   not say a limit is spent (a 429 that says so is the limiter's business: it pauses everyone
//!   until the limit has room, see `limits.rs`). Sharply: the recent latency (moving average of
//!   the last ~8 successes) is over twice the baseline (a slow moving average, which follows
//!   drops quickly and rises slowly) and at least 250 ms above it.
//! - **One decrease per round trip.** Only requests sent after the last decrease can cause the
//!   next one: answers to requests sent under the old window tell nothing about the new one.
//!   After a decrease on latency, the baseline moves to the new latency, so a server that is
//!   merely slower (longer answers) costs one halving, while one that keeps slowing down keeps
//!   being backed off.
//! - **Additive increase.** Every success counts; after as many successes as the window is wide,
//!   the window grows by one, back up to `--concurrency`.
//!
//! Mechanics: the window is a semaphore whose permits are the window's size. A request holds a
//! [`Slot`] (a permit) while it is on the wire. Growing adds permits; shrinking retires free
//! permits at once, and records the rest as a debt that slots pay when they are dropped, so
//! requests already on the wire are never cut short. The semaphore is fair: rows get slots in
//! the order they asked.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{AcquireError, Semaphore, SemaphorePermit};

/// Overload signals in a row that halve the window.
const STREAK: u32 = 4;
/// Successes before the latency rule may act (the baseline needs a few samples).
const LATENCY_SAMPLES: u32 = 8;
/// Recent latency above `RATIO` × baseline and `MARGIN` above it counts as a sharp rise.
const RATIO: f64 = 2.0;
const MARGIN: f64 = 0.25;

/// What one attempt says about the server's health.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Signal {
    /// A completion came back after `latency` on the wire.
    Success { latency: Duration },
    /// Says nothing about load: a 4xx for the row itself, a malformed body, a spent limit.
    Neutral,
    /// Timeout, connection error, 5xx, 408, 409, or a 429 that is not a spent limit.
    Overload,
}

/// Moving averages of successful latency, in seconds.
#[derive(Debug, Default)]
struct Latency {
    samples: u32,
    baseline: f64,
    recent: f64,
}

impl Latency {
    /// Adds a sample; true when the recent latency has risen sharply above the baseline.
    fn observe(&mut self, latency: Duration) -> bool {
        let l = latency.as_secs_f64();
        if self.samples == 0 {
            self.baseline = l;
            self.recent = l;
        } else {
            self.recent += (l - self.recent) / 8.0;
            let weight = if l < self.baseline { 1.0 / 8.0 } else { 1.0 / 64.0 };
            self.baseline += (l - self.baseline) * weight;
        }
        self.samples = self.samples.saturating_add(1);
        self.samples >= LATENCY_SAMPLES
            && self.recent > RATIO * self.baseline
            && self.recent - self.baseline > MARGIN
    }

    /// Takes the latency now (`latest`, or the recent average if higher) as the new normal.
    fn rebase(&mut self, latest: Duration) {
        self.baseline = self.recent.max(latest.as_secs_f64());
    }
}

#[derive(Debug)]
struct State {
    /// The window: permits in circulation, less `debt`.
    size: usize,
    /// Permits to retire as slots return them (the window shrank below what was in use).
    debt: usize,
    /// Still waiting for the first answer (see the module doc).
    probing: bool,
    /// Bumped at each decrease; a slot remembers the epoch it was taken in.
    epoch: u64,
    /// Overload signals in a row (from requests of the current epoch).
    streak: u32,
    /// Successes since the window last grew.
    successes: usize,
    latency: Latency,
    /// Decreases so far (for tests and logs).
    decreases: u64,
}

/// The adaptive window of one run. Lives in the pipeline for the run; every attempt takes a
/// [`Slot`] from it before it is sent and hands the slot back with its [`Signal`].
#[derive(Debug)]
pub struct Window {
    max: usize,
    /// One permit per request allowed on the wire. Never closed.
    permits: Semaphore,
    // A std Mutex: the critical sections are a few integer operations and never await.
    state: Mutex<State>,
}

/// Leave to put one request on the wire; returned by dropping it (or through [`Window::finish`]).
#[derive(Debug)]
pub struct Slot<'a> {
    window: &'a Window,
    permit: Option<SemaphorePermit<'a>>,
    epoch: u64,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut s = self.window.state();
        if s.debt > 0 {
            s.debt -= 1;
            if let Some(p) = self.permit.take() {
                p.forget();
            }
        }
        // Otherwise the permit goes back to the semaphore as it drops.
    }
}

impl Window {
    /// A window of at most `max` requests; starting at 1 until the first answer if `probe`.
    pub fn new(max: usize, probe: bool) -> Window {
        let max = max.max(1);
        let size = if probe { 1 } else { max };
        Window {
            max,
            permits: Semaphore::new(size),
            state: Mutex::new(State {
                size,
                debt: 0,
                probing: probe && max > 1,
                epoch: 0,
                streak: 0,
                successes: 0,
                latency: Latency::default(),
                decreases: 0,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The window's size now, and its ceiling.
    pub fn size(&self) -> (usize, usize) {
        (self.state().size, self.max)
    }

    /// How many times the window has been halved.
    pub fn decreases(&self) -> u64 {
        self.state().decreases
    }

    /// Waits for leave to send one request. Cancel-safe. Errs only if the semaphore were
    /// closed, which never happens.
    pub async fn acquire(&self) -> Result<Slot<'_>, AcquireError> {
        let permit = self.permits.acquire().await?;
        let epoch = self.state().epoch;
        Ok(Slot {
            window: self,
            permit: Some(permit),
            epoch,
        })
    }

    /// An answer arrived (any status): the probe is over, and the window opens fully, unless
    /// the probe already met overload (timeouts, say); then it grows back by the usual steps.
    pub fn answered(&self) {
        let mut s = self.state();
        if s.probing {
            s.probing = false;
            if s.decreases == 0 {
                let grow = self.max - s.size;
                self.grow(&mut s, grow);
            }
        }
    }

    /// Returns the slot and adjusts the window by what its attempt said.
    pub fn finish(&self, slot: Slot<'_>, signal: Signal) {
        self.observe(&slot, signal);
        drop(slot);
    }

    /// Adjusts the window by what an attempt said, leaving its slot held (a row's last answer
    /// keeps its place on the wire until its outcome is committed).
    pub fn observe(&self, slot: &Slot<'_>, signal: Signal) {
        {
            let mut s = self.state();
            let current = slot.epoch == s.epoch;
            match signal {
                Signal::Neutral => {}
                Signal::Success { latency } => {
                    s.streak = 0;
                    if s.latency.observe(latency) && current {
                        s.latency.rebase(latency);
                        self.decrease(&mut s, "latency rose sharply");
                    } else if s.size < self.max {
                        s.successes += 1;
                        if s.successes >= s.size {
                            s.successes = 0;
                            self.grow(&mut s, 1);
                        }
                    }
                }
                Signal::Overload if current => {
                    s.streak += 1;
                    if s.streak >= STREAK {
                        self.decrease(&mut s, "the server is failing or overloaded");
                    }
                }
                Signal::Overload => {}
            }
        }
    }

    fn grow(&self, s: &mut State, by: usize) {
        let by = by.min(self.max - s.size);
        let paid = by.min(s.debt);
        s.debt -= paid;
        self.permits.add_permits(by - paid);
        s.size += by;
    }

    fn decrease(&self, s: &mut State, why: &str) {
        let to = (s.size / 2).max(1);
        let mut cut = s.size - to;
        s.size = to;
        s.epoch += 1;
        s.streak = 0;
        s.successes = 0;
        s.decreases += 1;
        while cut > 0 {
            match self.permits.try_acquire() {
                Ok(p) => {
                    p.forget();
                    cut -= 1;
                }
                Err(_) => break,
            }
        }
        s.debt += cut;
        tracing::info!("concurrency window halved to {to}: {why}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Signal = Signal::Success {
        latency: Duration::from_millis(100),
    };

    /// Runs `n` attempts one after another, each with `signal`.
    async fn attempts(w: &Window, n: usize, signal: Signal) {
        for _ in 0..n {
            let slot = w.acquire().await.unwrap();
            w.finish(slot, signal);
        }
    }

    #[tokio::test]
    async fn a_probing_window_allows_one_until_the_first_answer() {
        let w = Window::new(8, true);
        let first = w.acquire().await.unwrap();
        assert!(w.permits.try_acquire().is_err(), "a second request waits");
        w.answered();
        assert_eq!(w.size(), (8, 8));
        w.finish(first, FAST);
        assert_eq!(w.permits.available_permits(), 8);
        assert_eq!(
            Window::new(8, false).size(),
            (8, 8),
            "nothing to learn: open at once"
        );
    }

    #[tokio::test]
    async fn a_probe_that_met_overload_does_not_open_the_window_at_once() {
        let w = Window::new(8, true);
        attempts(&w, 4, Signal::Overload).await; // four timeouts, say
        w.answered();
        assert_eq!(w.size(), (1, 8));
        attempts(&w, 1, FAST).await;
        assert_eq!(w.size(), (2, 8), "then it grows by the usual steps");
    }

    #[tokio::test]
    async fn four_overloads_in_a_row_halve_the_window_and_successes_grow_it_back() {
        let w = Window::new(16, false);
        attempts(&w, 3, Signal::Overload).await;
        attempts(&w, 1, FAST).await; // a success between breaks the streak
        attempts(&w, 3, Signal::Overload).await;
        assert_eq!(w.size().0, 16);
        attempts(&w, 1, Signal::Overload).await;
        assert_eq!(w.size().0, 8);
        assert_eq!(w.permits.available_permits(), 8);
        // +1 after a window's worth of successes: 8 successes → 9, 9 more → 10.
        attempts(&w, 8, FAST).await;
        assert_eq!(w.size().0, 9);
        attempts(&w, 9, FAST).await;
        assert_eq!(w.size().0, 10);
        attempts(&w, 10_000, FAST).await;
        assert_eq!(w.size().0, 16, "never above --concurrency");
    }

    #[tokio::test]
    async fn the_window_never_drops_below_one() {
        let w = Window::new(4, false);
        attempts(&w, 30, Signal::Overload).await;
        assert_eq!(w.size().0, 1);
        attempts(&w, 1, FAST).await;
        assert_eq!(w.size().0, 2);
    }

    #[tokio::test]
    async fn answers_to_requests_sent_before_a_decrease_do_not_decrease_it_again() {
        let w = Window::new(8, false);
        let mut slots = Vec::new();
        for _ in 0..8 {
            slots.push(w.acquire().await.unwrap());
        }
        // All eight fail: the first four halve the window, the other four were sent under
        // the old window and say nothing new.
        for slot in slots {
            w.finish(slot, Signal::Overload);
        }
        assert_eq!(w.size().0, 4);
        assert_eq!(w.decreases(), 1);
        assert_eq!(
            w.permits.available_permits(),
            4,
            "the debt was paid as slots came back"
        );
    }

    #[tokio::test]
    async fn shrinking_never_cuts_requests_on_the_wire() {
        let w = Window::new(4, false);
        let mut on_wire = Vec::new();
        for _ in 0..3 {
            on_wire.push(w.acquire().await.unwrap());
        }
        w.decrease(&mut w.state(), "test");
        // One free permit was retired at once; two are owed by the requests on the wire.
        assert_eq!((w.size().0, w.state().debt), (2, 1));
        assert_eq!(w.permits.available_permits(), 0);
        drop(on_wire);
        assert_eq!(w.state().debt, 0);
        assert_eq!(w.permits.available_permits(), 2);
        // Growing pays a debt before it adds permits.
        let held = w.acquire().await.unwrap();
        w.decrease(&mut w.state(), "test");
        assert_eq!((w.size().0, w.state().debt), (1, 0));
        w.grow(&mut w.state(), 1);
        drop(held);
        assert_eq!(w.permits.available_permits(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_sharp_rise_in_latency_halves_the_window_once_per_rise() {
        let w = Window::new(32, false);
        let at = |ms| Signal::Success {
            latency: Duration::from_millis(ms),
        };
        attempts(&w, 20, at(200)).await;
        assert_eq!(w.size().0, 32);
        // Latency jumps to 2 s: recent passes 2 × 0.2 s + 0.25 s after a few answers.
        attempts(&w, 6, at(2000)).await;
        assert_eq!(w.size().0, 16);
        // Staying at 2 s is the new normal: no further decrease.
        attempts(&w, 40, at(2000)).await;
        assert_eq!(w.decreases(), 1);
        // Small variations never count.
        let w = Window::new(32, false);
        for i in 0..200 {
            attempts(&w, 1, at(100 + (i % 7) * 40)).await;
        }
        assert_eq!(w.decreases(), 0);
    }

    #[tokio::test]
    async fn neutral_answers_change_nothing() {
        let w = Window::new(8, false);
        attempts(&w, 3, Signal::Overload).await;
        attempts(&w, 5, Signal::Neutral).await;
        attempts(&w, 1, Signal::Overload).await;
        assert_eq!(w.size().0, 4, "the streak went on across neutral answers");
    }
}
