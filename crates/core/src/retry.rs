//! How long to wait before the next attempt of a row.
//!
//! Exponential backoff with full jitter (a uniformly random wait between zero and
//! `base × 2^(attempt-1)`, capped), which spreads retries of many workers so they do not return
//! in a wave. When the server says how long to wait (`Retry-After`), that wait is used as it is:
//! the server knows better than any formula. A rate-limited attempt without a hint waits at least
//! one second, since an immediate retry into a 429 only earns another one. A hint is capped at
//! [`HINT_CAP`] (a server asking for ten hours is misconfigured, or means "not today": an hour
//! later the row asks again), and a capped hint is never silent: [`Hint`] keeps what was asked
//! so the run can say which row waits how long, and why.

use std::time::Duration;

use rand::Rng;

/// The longest a row waits on a server's `Retry-After`.
pub const HINT_CAP: Duration = Duration::from_secs(3600);

/// A server's retry hint: what it asked, and what we wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hint {
    pub asked: Duration,
    /// `asked`, at most [`HINT_CAP`].
    pub wait: Duration,
}

impl Hint {
    pub fn new(asked: Duration) -> Hint {
        Hint {
            asked,
            wait: asked.min(HINT_CAP),
        }
    }

    /// Whether the cap cut the wait short.
    pub fn capped(&self) -> bool {
        self.wait < self.asked
    }

    /// "the server asked to wait 10h; waiting the 1h cap", for a capped hint.
    pub fn explain(&self) -> Option<String> {
        let round = |d: Duration| humantime::format_duration(Duration::from_secs(d.as_secs()));
        self.capped().then(|| {
            format!(
                "the server asked to wait {} (Retry-After); waiting the {} cap",
                round(self.asked),
                round(self.wait)
            )
        })
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The wait after the `failures`-th failed attempt of a row (1 for the first failure).
    pub fn delay(
        &self,
        failures: u32,
        hint: Option<Duration>,
        rate_limited: bool,
        rng: &mut impl Rng,
    ) -> Duration {
        if let Some(hint) = hint {
            return Hint::new(hint).wait;
        }
        let exp = failures.saturating_sub(1).min(30);
        let ceiling = self.base.saturating_mul(1u32 << exp).min(self.cap);
        let drawn = Duration::from_secs_f64(rng.random::<f64>() * ceiling.as_secs_f64());
        if rate_limited {
            drawn.max(Duration::from_secs(1))
        } else {
            drawn
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn server_hint_wins() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let b = Backoff::default();
        assert_eq!(
            b.delay(5, Some(Duration::from_secs(7)), true, &mut rng),
            Duration::from_secs(7)
        );
    }

    #[test]
    fn a_hint_above_the_cap_is_capped_and_explained() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let b = Backoff::default();
        let ten_hours = Duration::from_secs(36_000);
        assert_eq!(b.delay(1, Some(ten_hours), true, &mut rng), HINT_CAP);
        let hint = Hint::new(ten_hours);
        assert!(hint.capped());
        assert_eq!(
            hint.explain().as_deref(),
            Some("the server asked to wait 10h (Retry-After); waiting the 1h cap")
        );
        let fine = Hint::new(Duration::from_secs(30));
        assert_eq!(
            (fine.wait, fine.capped(), fine.explain()),
            (Duration::from_secs(30), false, None)
        );
        assert!(!Hint::new(HINT_CAP).capped());
    }

    #[test]
    fn full_jitter_stays_under_the_exponential_ceiling() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let b = Backoff::default();
        for failures in 1..12 {
            let ceiling = (Duration::from_millis(500) * 2u32.pow(failures - 1)).min(Duration::from_secs(60));
            for _ in 0..100 {
                let d = b.delay(failures, None, false, &mut rng);
                assert!(d <= ceiling, "{failures}: {d:?} > {ceiling:?}");
            }
        }
    }

    #[test]
    fn rate_limited_without_hint_waits_at_least_a_second() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let b = Backoff::default();
        for _ in 0..100 {
            assert!(b.delay(1, None, true, &mut rng) >= Duration::from_secs(1));
        }
    }
}
