//! The bounded shapes the report folds a job's records into, so that its memory and its page do
//! not grow with the rows: exact latency counts ([`Latencies`]: one count per distinct
//! millisecond value, which gives exact percentiles), marks on a time axis kept one per bin
//! ([`Marks`]), a step line kept one step per bin ([`Steps`]), a top-N by a key ([`Top`]), and
//! cumulative row counts at chosen moments ([`Timeline`]).
//!
//! What they are folded from, and for which part of the job, is [`super::tally`]'s concern.

use std::collections::BTreeMap;

use super::view::Percentiles;

/// How many bins a time axis's marks and steps are kept in: at most this many marks (or steps)
/// per series, however many events there were.
pub const MARK_BINS: usize = 500;

/// Which of [`MARK_BINS`] bins of `span` seconds `x` falls in.
fn bin_of(x: f64, span: f64) -> usize {
    let at = (x / span.max(1e-9) * MARK_BINS as f64).floor();
    (at.max(0.0) as usize).min(MARK_BINS - 1)
}

/// Exact counts of latencies by millisecond value.
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    counts: BTreeMap<i64, u64>,
    total: u64,
}

impl Latencies {
    pub fn add(&mut self, ms: i64) {
        *self.counts.entry(ms).or_default() += 1;
        self.total += 1;
    }

    /// Nearest-rank percentiles, exact: the same as sorting every value.
    pub fn percentiles(&self) -> Percentiles {
        let Some((&max, _)) = self.counts.last_key_value() else {
            return Percentiles::default();
        };
        let at = |q: f64| {
            let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
            let mut seen = 0;
            for (&ms, &n) in &self.counts {
                seen += n;
                if seen >= rank {
                    return ms;
                }
            }
            max
        };
        Percentiles {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max,
        }
    }

    /// Each distinct value with how many attempts took it, fastest first.
    pub fn counts(&self) -> impl Iterator<Item = (i64, u64)> + '_ {
        self.counts.iter().map(|(&ms, &n)| (ms, n))
    }
}

/// Marks on a time axis (seconds), one per bin: the first mark in a bin stands for every other
/// one in it, and a range (a pause) is widened to the furthest end in its bin.
#[derive(Debug, Clone, Default)]
pub struct Marks {
    bins: BTreeMap<usize, (f64, f64)>,
    /// Every mark folded in, shown or not.
    pub total: u64,
}

impl Marks {
    pub fn add(&mut self, span: f64, from: f64, to: f64) {
        self.total += 1;
        let kept = self.bins.entry(bin_of(from, span)).or_insert((from, to));
        kept.1 = kept.1.max(to);
    }

    pub fn xs(&self) -> Vec<f64> {
        self.bins.values().map(|m| m.0).collect()
    }

    pub fn ranges(&self) -> Vec<(f64, f64)> {
        self.bins.values().copied().collect()
    }

    /// Whether some marks share a bin with another (so fewer are drawn than happened).
    pub fn merged(&self) -> bool {
        self.total > self.bins.len() as u64
    }
}

/// A step line's changes (seconds, value), one per bin: the last value of a bin holds from the
/// first change in it.
#[derive(Debug, Clone, Default)]
pub struct Steps {
    bins: BTreeMap<usize, (f64, f64)>,
}

impl Steps {
    /// A change at `x`; changes come in the order they happened.
    pub fn add(&mut self, span: f64, x: f64, value: f64) {
        let kept = self.bins.entry(bin_of(x, span)).or_insert((x, value));
        kept.1 = value;
    }

    pub fn points(&self) -> Vec<(f64, f64)> {
        self.bins.values().copied().collect()
    }
}

/// The `n` greatest items by key, the earlier of equal keys first (as a stable sort would keep
/// them).
#[derive(Debug, Clone)]
pub struct Top<T> {
    n: usize,
    /// (key, item), greatest key first, equal keys in the order they came.
    items: Vec<(i64, T)>,
}

impl<T> Top<T> {
    pub fn new(n: usize) -> Top<T> {
        Top {
            n,
            items: Vec::with_capacity(n + 1),
        }
    }

    /// Offers an item; `make` is called only when it is kept.
    pub fn offer(&mut self, key: i64, make: impl FnOnce() -> T) {
        if self.items.len() == self.n && self.items.last().is_none_or(|l| l.0 >= key) {
            return;
        }
        let at = self.items.partition_point(|i| i.0 >= key);
        self.items.insert(at, (key, make()));
        self.items.truncate(self.n);
    }

    pub fn into_items(self) -> Vec<T> {
        self.items.into_iter().map(|i| i.1).collect()
    }
}

/// Rows done and failed up to chosen moments: how many row ends fell at or before each.
#[derive(Debug, Clone)]
pub struct Timeline {
    moments: Vec<i64>,
    /// (done, failed) ending exactly in (previous moment, this moment]; cumulated by [`Self::seal`].
    counts: Vec<(u64, u64)>,
}

impl Timeline {
    pub fn new(mut moments: Vec<i64>) -> Timeline {
        moments.sort_unstable();
        moments.dedup();
        let counts = vec![(0, 0); moments.len()];
        Timeline { moments, counts }
    }

    /// A row settled at `at` (in any order).
    pub fn add(&mut self, at: i64, done: bool) {
        let i = self.moments.partition_point(|&m| m < at);
        if let Some(c) = self.counts.get_mut(i) {
            *(if done { &mut c.0 } else { &mut c.1 }) += 1;
        }
    }

    /// Turns the counts per interval into counts up to each moment (once, after the last add).
    pub fn seal(&mut self) {
        let mut sum = (0, 0);
        for c in &mut self.counts {
            sum = (sum.0 + c.0, sum.1 + c.1);
            *c = sum;
        }
    }

    /// (done, failed) at or before `moment`, which must be one of the moments asked for.
    pub fn at(&self, moment: i64) -> (u64, u64) {
        match self.moments.binary_search(&moment) {
            Ok(i) => self.counts[i],
            Err(0) => (0, 0),
            Err(i) => self.counts[i - 1],
        }
    }
}

#[cfg(test)]
#[path = "tests_bins.rs"]
mod tests;
