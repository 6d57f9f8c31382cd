//! Holding dispatch under the provider's limits: requests per minute, tokens per minute, and a
//! pause that every worker honours when the server says a limit is spent.
//!
//! Where each limit comes from ([`Source`]): a limit the user gave (`--rpm`/`--tpm`, now or
//! remembered from an earlier run of the job) is fixed for the run. A limit the user did not give
//! is learned from the server's `x-ratelimit-limit-*` headers as answers arrive
//! ([`Limits::observe`]) and follows them when they change; an answer without them changes
//! nothing (the last known value stays). Until the server names a limit there is none; the
//! pipeline's adaptive window (`pipeline::adaptive`) keeps the first requests to one until the
//! first answer arrives. Whatever the source, `x-ratelimit-remaining-*` lowers what a bucket holds
//! (never raises it), so the limiter never believes it has more room than the server says: other
//! clients of the same key, and a server that counts tokens differently, are accounted for.
//!
//! RPM and TPM are GCRA buckets from `governor` (`bucket`: how a limit changes mid-run and how a
//! bucket is lowered to what remains), read on a clock built on `tokio::time`, so tests that
//! pause tokio's clock see the limiter wait in virtual time too. Waiting is a tokio sleep until
//! the instant governor names, never a spin. Their shapes, and why:
//! - RPM holds one second's worth (at least 1). Providers enforce per-minute limits over shorter
//!   windows (OpenAI: "60,000 RPM may be enforced as 1,000 requests per second"), so a full
//!   minute's burst at start would mostly earn 429s.
//! - TPM holds a full minute's worth, so a single large request (prompt + max_tokens) can always
//!   pass; a request that needs more than a minute's worth of a limit the user gave can never
//!   pass and is reported as [`TooLarge`] for its row instead of waiting forever.
//!
//! A limit learned from the server that is smaller than one request needs is not believed: a
//! real provider's TPM always fits its own requests, so such a header is a misreport (a gateway's
//! placeholder, a wrong unit), and failing rows on it would fail them for nothing. The limiter
//! drops that limit (no token limit from the server), warns once, and from then on ignores any
//! server limit below the largest request it had to let through; the server's 429s, if any,
//! still pace the run. Only `--tpm` can fail a row as too large.
//!
//! A request passes only when both buckets have room, and then takes from both at once, so a
//! request waiting for tokens does not hold a request slot meanwhile: under one lock, each
//! bucket names when it will have room (a reading that takes nothing), the request sleeps until
//! the later of the two, and only then are both taken.

mod bucket;

use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use governor::clock::Clock;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use self::bucket::{Bucket, Shape, TokioClock};
use crate::api::ratelimit::{Gauge, RateHeaders};

/// Where a limit in force came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// No limit: none was given, and the server has not named one (yet).
    #[default]
    None,
    /// `--rpm`/`--tpm`, given now or remembered from an earlier run of the job.
    Flag,
    /// The server's `x-ratelimit-limit-*` header.
    Server,
}

/// One limit in force.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateInForce {
    /// Per minute; `None` when there is no limit.
    pub limit: Option<u32>,
    pub source: Source,
}

/// How many requests may be on the wire: the adaptive window and its ceiling (`--concurrency`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowInForce {
    pub current: u32,
    pub max: u32,
}

/// What a run sends under at a moment. Published by the pipeline through `Stats`, shown by the
/// progress display, and stored with the run so that `status` can show it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InForce {
    pub rpm: RateInForce,
    pub tpm: RateInForce,
    pub concurrency: WindowInForce,
}

impl fmt::Display for RateInForce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.limit, self.source) {
            (Some(n), Source::Server) => write!(f, "{n} (server)"),
            (Some(n), _) => write!(f, "{n} (flag)"),
            (None, _) => write!(f, "none"),
        }
    }
}

impl fmt::Display for InForce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rpm {}, tpm {}, concurrency {}/{}",
            self.rpm, self.tpm, self.concurrency.current, self.concurrency.max
        )
    }
}

/// A request needs more tokens than the user's `--tpm` allows in a minute, so it can never
/// pass. (A learned limit that small is not believed instead: see the module doc.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the request needs {needed} tokens (prompt + max_tokens), more than --tpm {capacity} allows in a minute"
)]
pub struct TooLarge {
    pub needed: u32,
    pub capacity: u32,
}

/// One limit: its bucket (none when there is no limit) and where it came from.
#[derive(Debug)]
struct Rate {
    shape: Shape,
    bucket: Option<Bucket>,
    source: Source,
    /// The smallest limit the server may name and be believed: the largest request a learned
    /// limit was found too small for (0 until that happens).
    floor: u64,
}

impl Rate {
    fn new(shape: Shape, flag: Option<NonZeroU32>, clock: TokioClock) -> Rate {
        Rate {
            shape,
            bucket: flag.map(|l| Bucket::new(shape, l, clock)),
            source: if flag.is_some() {
                Source::Flag
            } else {
                Source::None
            },
            floor: 0,
        }
    }

    /// A learned limit too small for a request of `needed`: dropped, and any server limit
    /// below `needed` is ignored from now on. Returns the limit dropped.
    fn disbelieve(&mut self, needed: u64) -> Option<u32> {
        self.floor = self.floor.max(needed);
        self.source = Source::None;
        self.bucket.take().map(|b| b.limit())
    }

    /// Applies one answer's gauge: learns the limit unless the user gave one, then lowers the
    /// level to what the server says remains.
    fn observe(&mut self, gauge: Gauge, clock: TokioClock) {
        if self.source != Source::Flag {
            let limit = gauge
                .limit
                .map(|l| u32::try_from(l).unwrap_or(u32::MAX))
                .and_then(NonZeroU32::new)
                .filter(|l| u64::from(l.get()) >= self.floor);
            if let Some(limit) = limit {
                match &mut self.bucket {
                    Some(b) => b.set_limit(limit),
                    None => self.bucket = Some(Bucket::new(self.shape, limit, clock)),
                }
                self.source = Source::Server;
            }
        }
        if let (Some(b), Some(remaining)) = (&mut self.bucket, gauge.remaining) {
            b.lower_to(remaining);
        }
    }

    /// If the gauge says this limit has no room for `needed`, how long until it has, by the
    /// server's own limit (or ours) and bounded by its reset time.
    fn spent(&self, gauge: Gauge, needed: u64) -> Option<Duration> {
        let remaining = gauge.remaining?;
        if remaining >= needed.max(1) {
            return None;
        }
        let limit = gauge.limit.or(self.bucket.as_ref().map(|b| u64::from(b.limit())));
        let refill = limit
            .filter(|&l| l > 0)
            .map(|l| Duration::from_secs_f64((needed.max(1) - remaining) as f64 * 60.0 / l as f64));
        match (refill, gauge.reset) {
            (Some(r), Some(reset)) => Some(r.min(reset)),
            (Some(r), None) => Some(r),
            (None, Some(reset)) => Some(reset),
            (None, None) => Some(Duration::from_secs(1)),
        }
    }

    fn in_force(&self) -> RateInForce {
        RateInForce {
            limit: self.bucket.as_ref().map(Bucket::limit),
            source: self.source,
        }
    }
}

#[derive(Debug)]
struct State {
    /// The clock every bucket reads; its readings turn into tokio instants to sleep until.
    clock: TokioClock,
    requests: Rate,
    tokens: Rate,
    /// Until when nobody sends: set when a 429 says a limit is spent.
    paused_until: Option<Instant>,
    /// Whether the warning about a server TPM smaller than one request has been given.
    warned_implausible: bool,
}

impl State {
    /// The server's TPM cannot hold one request of `tokens`: stop believing it (module doc).
    fn implausible_tpm(&mut self, tokens: u32) {
        let dropped = self.tokens.disbelieve(u64::from(tokens));
        if !std::mem::replace(&mut self.warned_implausible, true) {
            if let Some(limit) = dropped {
                tracing::warn!(
                    "the server reported a token limit of {limit} per minute (x-ratelimit-limit-tokens), \
                     less than one request needs ({tokens} tokens); not believing it: no token limit \
                     from the server (give --tpm to set one)"
                );
            }
        }
    }

    /// Takes one request and `tokens` tokens if both buckets have room now; otherwise takes
    /// nothing and says when both will.
    fn try_take(&mut self, tokens: u32) -> Result<(), Instant> {
        let tokens = NonZeroU32::new(tokens);
        let mut ready = None;
        if let Some(b) = &mut self.requests.bucket {
            ready = ready.max(Some(b.ready_at(NonZeroU32::MIN)));
        }
        if let (Some(b), Some(n)) = (&mut self.tokens.bucket, tokens) {
            ready = ready.max(Some(b.ready_at(n)));
        }
        if let Some(at) = ready.filter(|&at| at > self.clock.now()) {
            return Err(self.clock.instant(at));
        }
        // Both had room at an earlier reading and nothing else touches them (the lock), so
        // neither take can fail: buckets only fill as time passes.
        let at = |at| self.clock.instant(at);
        if let Some(b) = &self.requests.bucket {
            b.take(NonZeroU32::MIN).map_err(at)?;
        }
        if let (Some(b), Some(n)) = (&self.tokens.bucket, tokens) {
            b.take(n).map_err(at)?;
        }
        Ok(())
    }
}

/// The limits in force for a run. Shared by every worker (inside the pipeline), lives for the run.
#[derive(Debug)]
pub struct Limits {
    // A std Mutex, not tokio's: every critical section is a few governor checks and never
    // awaits; waiting happens outside it. It is also what makes "both buckets have room, then
    // take from both" one step: governor's own atomics only guard one bucket at a time.
    state: Mutex<State>,
}

impl Limits {
    /// `rpm`/`tpm` are the user's limits; a `None` is learned from the server's headers.
    pub fn new(rpm: Option<NonZeroU32>, tpm: Option<NonZeroU32>) -> Limits {
        let clock = TokioClock::new();
        Limits {
            state: Mutex::new(State {
                clock,
                requests: Rate::new(Shape::Requests, rpm, clock),
                tokens: Rate::new(Shape::Tokens, tpm, clock),
                paused_until: None,
                warned_implausible: false,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether some limit is left for the server to name.
    pub fn learns(&self) -> bool {
        let s = self.state();
        s.requests.source != Source::Flag || s.tokens.source != Source::Flag
    }

    /// Whether token counts are needed now (only a TPM limit uses them). It can become true
    /// during a run, when the server names a TPM limit.
    pub fn counts_tokens(&self) -> bool {
        self.state().tokens.bucket.is_some()
    }

    /// The RPM and TPM in force now, and where they came from.
    pub fn in_force(&self) -> (RateInForce, RateInForce) {
        let s = self.state();
        (s.requests.in_force(), s.tokens.in_force())
    }

    /// Waits until a request costing `tokens` may be sent: past any pause, within RPM and TPM.
    /// Cancel-safe: nothing is taken until the moment it returns `Ok`.
    pub async fn admit(&self, tokens: u32) -> Result<(), TooLarge> {
        loop {
            let until = {
                let mut s = self.state();
                let too_large = s.tokens.bucket.as_ref().filter(|b| tokens > b.capacity());
                if let Some(b) = too_large {
                    if s.tokens.source == Source::Flag {
                        return Err(TooLarge {
                            needed: tokens,
                            capacity: b.limit(),
                        });
                    }
                    s.implausible_tpm(tokens);
                }
                match s.paused_until {
                    Some(until) if until > Instant::now() => until,
                    _ => match s.try_take(tokens) {
                        Ok(()) => return Ok(()),
                        Err(ready) => ready,
                    },
                }
            };
            tokio::time::sleep_until(until).await;
        }
    }

    /// Applies the `x-ratelimit-*` headers of one answer (any status). Returns whether the
    /// limits in force changed.
    pub fn observe(&self, headers: &RateHeaders) -> bool {
        if headers.is_empty() {
            return false;
        }
        let mut s = self.state();
        let before = (s.requests.in_force(), s.tokens.in_force());
        let clock = s.clock;
        s.requests.observe(headers.requests, clock);
        s.tokens.observe(headers.tokens, clock);
        before != (s.requests.in_force(), s.tokens.in_force())
    }

    /// For a 429: if its headers say a limit is spent (no request left, or fewer tokens left
    /// than this request needs), how long until there is room again. `None` when the headers
    /// say nothing of the kind (a 429 for another reason, or a server without the headers).
    pub fn spent(&self, headers: &RateHeaders, tokens: u32) -> Option<Duration> {
        let s = self.state();
        let requests = s.requests.spent(headers.requests, 1);
        let tokens = s.tokens.spent(headers.tokens, u64::from(tokens));
        requests.into_iter().chain(tokens).max()
    }

    /// Stops all dispatch for `wait` from now (or longer, if a pause already runs longer).
    pub fn pause_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut s = self.state();
        if s.paused_until.is_none_or(|p| p < until) {
            s.paused_until = Some(until);
        }
    }
}

#[cfg(test)]
mod tests;
