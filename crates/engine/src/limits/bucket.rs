//! One bucket of the limiter: a GCRA rate limiter from `governor`, read on a clock built on
//! `tokio::time`, and the two things a run asks of a bucket beyond "may this pass?": a new limit
//! mid-run, and lowering it to what the server says remains.
//!
//! governor keeps a bucket's state private and answers one question, `check_n(n)`: may `n`
//! cells pass now? If yes they are taken; if no, nothing is taken and the answer
//! (`NotUntil::earliest_possible`) names the instant they could. Everything here is that
//! question, asked in three ways:
//! - Reading the level without spending it ([`Bucket::full_at`]): `check_n(capacity)` fails
//!   unless the bucket is full, and its answer is then the instant the bucket is full again.
//!   By GCRA's own rule, `n` cells are ready `capacity - n` intervals before that. A probe that
//!   passed has emptied a full bucket; the limiter is replaced by a fresh one, which is full,
//!   so the probe changes nothing either way.
//! - Setting a level ([`Bucket::fill_to`]): a fresh limiter is full; `check_n(capacity - level)`
//!   leaves it holding exactly `level`.
//! - Taking ([`Bucket::take`]): `check_n(n)` itself.
//!
//! The rules for the two changes, and why:
//! - Lowered to the server's remaining R: a bucket that holds more than R (partly refilled
//!   cells included) is replaced by one holding exactly R; one that holds R or less is left
//!   alone, so `remaining` never raises it.
//! - A new limit: the new bucket holds what the old one held, rounded down to whole cells, and
//!   at most its new capacity. So a raised limit never starts with a burst the old bucket did
//!   not have; rounding down costs at most one cell's partial refill, on the careful side.
//!
//! Nothing here locks: the caller (`Limits`) holds every bucket under one lock, so a reading
//! and the take that follows it see the same state.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

/// governor's clock on tokio time: a reading is the time since the clock was made, so that
/// tests on tokio's paused clock see buckets refill in virtual time.
#[derive(Debug, Clone, Copy)]
pub(super) struct TokioClock {
    start: Instant,
}

impl TokioClock {
    pub(super) fn new() -> TokioClock {
        TokioClock {
            start: Instant::now(),
        }
    }

    /// The tokio instant of a reading, for `sleep_until`.
    pub(super) fn instant(&self, reading: Duration) -> Instant {
        self.start + reading
    }
}

impl Clock for TokioClock {
    type Instant = Duration;
    fn now(&self) -> Duration {
        self.start.elapsed()
    }
}

type Gcra = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>;

/// The two shapes of bucket (see the module doc of `limits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    Requests,
    Tokens,
}

/// A bucket that refills continuously at `limit` per minute up to its capacity.
#[derive(Debug)]
pub(super) struct Bucket {
    shape: Shape,
    limit: NonZeroU32,
    quota: Quota,
    clock: TokioClock,
    /// Replaced, never mutated otherwise, when the limit changes or the level is set.
    gcra: Gcra,
}

impl Bucket {
    /// A full bucket.
    pub(super) fn new(shape: Shape, limit: NonZeroU32, clock: TokioClock) -> Bucket {
        let quota = quota_of(shape, limit);
        Bucket {
            shape,
            limit,
            quota,
            clock,
            gcra: RateLimiter::direct_with_clock(quota, clock),
        }
    }

    /// The limit per minute.
    pub(super) fn limit(&self) -> u32 {
        self.limit.get()
    }

    /// How many cells the bucket holds when full.
    pub(super) fn capacity(&self) -> u32 {
        self.quota.burst_size().get()
    }

    /// The clock reading at which `n` cells (at most the capacity) are in the bucket; at or
    /// before now when they are there already.
    pub(super) fn ready_at(&mut self, n: NonZeroU32) -> Duration {
        let early = self.capacity().saturating_sub(n.get());
        self.full_at()
            .saturating_sub(self.quota.replenish_interval() * early)
    }

    /// Takes `n` cells now, or says from when they could be taken (nothing is taken then).
    pub(super) fn take(&self, n: NonZeroU32) -> Result<(), Duration> {
        match self.gcra.check_n(n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(not_until.earliest_possible()),
            // More than the capacity: never. `Limits` refuses such a request before asking; were
            // one to get here, it would ask again once the bucket is full.
            Err(_) => Err(self.clock.now() + self.quota.burst_size_replenished_in()),
        }
    }

    /// Makes this bucket hold at most `remaining` (see the module doc).
    pub(super) fn lower_to(&mut self, remaining: u64) {
        let Ok(remaining) = u32::try_from(remaining) else {
            return;
        };
        let capacity = self.capacity();
        if remaining >= capacity {
            return;
        }
        let full_at = self.full_at();
        let short = full_at.saturating_sub(self.clock.now());
        // It holds `capacity - short / interval` cells: more than `remaining` exactly when it
        // is less than `capacity - remaining` intervals short of full.
        if short < self.quota.replenish_interval() * (capacity - remaining) {
            self.fill_to(remaining);
        }
    }

    /// A new limit per minute (see the module doc for what the new bucket holds).
    pub(super) fn set_limit(&mut self, limit: NonZeroU32) {
        if limit == self.limit {
            return;
        }
        let full_at = self.full_at();
        let short = full_at.saturating_sub(self.clock.now()).as_nanos();
        let interval = self.quota.replenish_interval().as_nanos().max(1);
        let missing = u32::try_from(short.div_ceil(interval)).unwrap_or(u32::MAX);
        let held = self.capacity().saturating_sub(missing);
        self.limit = limit;
        self.quota = quota_of(self.shape, limit);
        self.fill_to(held.min(self.capacity()));
    }

    /// The clock reading at which the bucket is full again (now, when it is full), read with
    /// a probe that leaves the bucket as it was.
    fn full_at(&mut self) -> Duration {
        match self.gcra.check_n(self.quota.burst_size()) {
            Ok(Err(not_until)) => not_until.earliest_possible(),
            // It passed, so the bucket was full and the probe emptied it: a fresh limiter is
            // full. (`check_n(capacity)` never answers `InsufficientCapacity`.)
            _ => {
                self.gcra = RateLimiter::direct_with_clock(self.quota, self.clock);
                self.clock.now()
            }
        }
    }

    /// Replaces the limiter with one holding exactly `level` cells (at most the capacity).
    fn fill_to(&mut self, level: u32) {
        self.gcra = RateLimiter::direct_with_clock(self.quota, self.clock);
        if let Some(spent) = NonZeroU32::new(self.capacity().saturating_sub(level)) {
            // A fresh limiter is full, so this passes.
            let taken = self.gcra.check_n(spent);
            debug_assert!(matches!(taken, Ok(Ok(()))), "{taken:?}");
        }
    }
}

/// The quota of one shape of bucket. The interval is rounded up to a whole nanosecond, so a
/// bucket never refills faster than its limit (governor's `Quota::per_minute` rounds down).
fn quota_of(shape: Shape, limit: NonZeroU32) -> Quota {
    let burst = match shape {
        Shape::Requests => NonZeroU32::new(limit.get() / 60).unwrap_or(NonZeroU32::MIN),
        Shape::Tokens => limit,
    };
    let interval = Duration::from_nanos(60_000_000_000u64.div_ceil(u64::from(limit.get())));
    Quota::with_period(interval)
        .unwrap_or_else(|| Quota::per_minute(limit))
        .allow_burst(burst)
}
