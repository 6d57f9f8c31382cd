//! Holding dispatch under the provider's limits: requests per minute, tokens per minute, and a
//! pause that every worker honours after a 429.
//!
//! RPM and TPM are GCRA buckets from `governor`, read on a clock built on `tokio::time`, so tests
//! that pause tokio's clock see the limiter wait in virtual time too. Waiting is a tokio sleep
//! until the instant governor names, never a spin.
//!
//! Shapes of the buckets, and why:
//! - RPM refills continuously and holds at most one second's worth (at least 1). Providers enforce
//!   per-minute limits over shorter windows (OpenAI: "60,000 RPM may be enforced as 1,000
//!   requests per second"), so a full minute's burst at start would mostly earn 429s.
//! - TPM holds a full minute's worth, so a single large request (prompt + max_tokens) can always
//!   pass; a request that needs more than a minute's worth can never pass and is reported as
//!   [`TooLarge`] for its row instead of waiting forever.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

/// governor's clock on tokio time: the instant is the time since the clock was made.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    start: Instant,
}

impl Default for TokioClock {
    fn default() -> Self {
        TokioClock {
            start: Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    type Instant = Duration;
    fn now(&self) -> Duration {
        self.start.elapsed()
    }
}

type Bucket = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>;

/// A request needs more tokens than the TPM bucket can ever hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the request needs {needed} tokens (prompt + max_tokens), more than --tpm {capacity} allows in a minute"
)]
pub struct TooLarge {
    pub needed: u32,
    pub capacity: u32,
}

/// The limits in force for a run. Shared by every worker (`Arc<Limits>`), lives for the run.
pub struct Limits {
    clock: TokioClock,
    rpm: Option<Bucket>,
    tpm: Option<(Bucket, u32)>,
    /// Until when nobody sends: set by a 429, read by every worker before each attempt.
    paused_until: Mutex<Option<Instant>>,
}

impl Limits {
    pub fn new(rpm: Option<NonZeroU32>, tpm: Option<NonZeroU32>) -> Limits {
        let clock = TokioClock::default();
        let rpm = rpm.map(|r| {
            let burst = NonZeroU32::new((r.get() / 60).max(1)).unwrap_or(NonZeroU32::MIN);
            Bucket::direct_with_clock(Quota::per_minute(r).allow_burst(burst), clock)
        });
        let tpm = tpm.map(|t| (Bucket::direct_with_clock(Quota::per_minute(t), clock), t.get()));
        Limits {
            clock,
            rpm,
            tpm,
            paused_until: Mutex::new(None),
        }
    }

    /// Whether token counts are needed at all (only a TPM limit uses them).
    pub fn counts_tokens(&self) -> bool {
        self.tpm.is_some()
    }

    /// Waits until a request costing `tokens` may be sent: past any pause, within RPM and TPM.
    /// Not cancel-safe in the sense of refunds: a caller that drops this future after it passed a
    /// bucket has spent that capacity, which only makes the limiter more careful.
    pub async fn admit(&self, tokens: u32) -> Result<(), TooLarge> {
        if let Some((_, capacity)) = &self.tpm {
            if tokens > *capacity {
                return Err(TooLarge {
                    needed: tokens,
                    capacity: *capacity,
                });
            }
        }
        self.wait_pause().await;
        if let Some(rpm) = &self.rpm {
            self.take(rpm, NonZeroU32::MIN).await;
        }
        if let (Some((tpm, capacity)), Some(n)) = (&self.tpm, NonZeroU32::new(tokens)) {
            if !self.take(tpm, n).await {
                return Err(TooLarge {
                    needed: tokens,
                    capacity: *capacity,
                });
            }
        }
        // A 429 may have arrived while this request waited for the buckets.
        self.wait_pause().await;
        Ok(())
    }

    /// Stops all dispatch for `wait` from now (or longer, if a pause already runs longer).
    pub fn pause_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut paused = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        if paused.is_none_or(|p| p < until) {
            *paused = Some(until);
        }
    }

    async fn wait_pause(&self) {
        loop {
            let until = *self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => return,
            }
        }
    }

    /// Takes `n` cells, waiting as long as needed; false if the bucket can never hold `n`.
    async fn take(&self, bucket: &Bucket, n: NonZeroU32) -> bool {
        loop {
            match bucket.check_n(n) {
                Ok(Ok(())) => return true,
                Ok(Err(not_until)) => {
                    let wait = not_until.wait_time_from(self.clock.now());
                    tokio::time::sleep(wait.max(Duration::from_micros(100))).await;
                }
                Err(_) => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn rpm_spaces_requests_evenly_after_a_one_second_burst() {
        let limits = Limits::new(NonZeroU32::new(120), None);
        let start = Instant::now();
        for _ in 0..2 {
            limits.admit(0).await.unwrap();
        }
        assert!(
            start.elapsed() < Duration::from_millis(1),
            "the burst of 2 passes at once"
        );
        for _ in 0..4 {
            limits.admit(0).await.unwrap();
        }
        // 120/min is one request per 500 ms once the burst is spent.
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(2000) && waited < Duration::from_millis(2100),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn tpm_charges_tokens_and_rejects_oversized_requests() {
        let limits = Limits::new(None, NonZeroU32::new(6000));
        let start = Instant::now();
        limits.admit(6000).await.unwrap();
        limits.admit(100).await.unwrap();
        // 6000/min refills 100 tokens a second.
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(1000) && waited < Duration::from_millis(1100),
            "{waited:?}"
        );
        assert_eq!(
            limits.admit(6001).await,
            Err(TooLarge {
                needed: 6001,
                capacity: 6000
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_caller() {
        let limits = std::sync::Arc::new(Limits::new(None, None));
        limits.pause_for(Duration::from_secs(3));
        limits.pause_for(Duration::from_secs(1)); // a shorter pause does not shorten it
        let start = Instant::now();
        let a = tokio::spawn({
            let l = limits.clone();
            async move { l.admit(0).await }
        });
        let b = tokio::spawn({
            let l = limits.clone();
            async move { l.admit(0).await }
        });
        a.await.unwrap().unwrap();
        b.await.unwrap().unwrap();
        assert!(start.elapsed() >= Duration::from_secs(3));
    }
}
