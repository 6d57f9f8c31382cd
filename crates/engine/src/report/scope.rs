//! What part of the job a view of the report covers: the whole job, or one run of it (a job
//! resumed twice has three). A scope picks its attempts by run and its row ends by time (a row's
//! end belongs to the run that was going when it was settled), and gives the charts their time
//! axis ([`Clock`]: seconds since the scope began).

use crate::store::attempts::StoredAttempt;
use crate::store::RunRecord;

/// The whole job, or one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Prefix of the ids of this view's elements: `""` for the whole job, `run-N-` for run N.
    pub key: String,
    pub title: String,
    pub run: Option<i64>,
    /// Unix ms: the scope's first and last moments.
    pub from: i64,
    pub to: i64,
}

/// The first and last moments of some records (unix ms), `None` when there are none.
pub type Span = Option<(i64, i64)>;

impl Scope {
    /// The whole job, from its first run (or record) to its last record: `attempts` spans the
    /// attempts' starts to their ends, `ends` the rows' ends.
    pub fn job(runs: &[RunRecord], attempts: Span, ends: Span) -> Scope {
        let firsts = runs.iter().map(|r| r.started_at);
        let from = firsts
            .chain(attempts.map(|s| s.0))
            .chain(ends.map(|s| s.0))
            .min()
            .unwrap_or(0);
        Scope {
            key: String::new(),
            title: "The whole job".into(),
            run: None,
            from,
            to: last_moment(runs.iter(), attempts, ends).max(from),
        }
    }

    /// Run `runs[i]`: from its start to its last record (before the next run began):
    /// `attempts` spans its own attempts, `ends` the rows settled from its start until the next
    /// run's ([`Scope::run_window`]).
    pub fn run(runs: &[RunRecord], i: usize, attempts: Span, ends: Span) -> Scope {
        let run = &runs[i];
        Scope {
            key: format!("run-{}-", run.run),
            title: format!("Run {}", run.run),
            run: Some(run.run),
            from: run.started_at,
            to: last_moment(std::iter::once(run), attempts, ends).max(run.started_at),
        }
    }

    /// The moments `[from, to)` whose row ends belong to run `runs[i]`.
    pub fn run_window(runs: &[RunRecord], i: usize) -> (i64, i64) {
        let next = runs.get(i + 1).map_or(i64::MAX, |n| n.started_at);
        (runs[i].started_at, next)
    }

    pub fn holds(&self, a: &StoredAttempt) -> bool {
        self.run.is_none_or(|r| a.run == r)
    }

    /// The id of this scope's copy of element `id`.
    pub fn id(&self, id: &str) -> String {
        format!("{}{id}", self.key)
    }
}

fn last_moment<'a>(runs: impl Iterator<Item = &'a RunRecord>, attempts: Span, ends: Span) -> i64 {
    let runs = runs.filter_map(|r| r.ended_at.or(r.updated_at));
    runs.chain(attempts.map(|s| s.1))
        .chain(ends.map(|s| s.1))
        .max()
        .unwrap_or(0)
}

/// A scope's time axis: seconds since it began.
pub struct Clock {
    pub origin: i64,
    pub span: f64,
}

impl Clock {
    pub fn of(s: &Scope) -> Clock {
        Clock {
            origin: s.from,
            span: ((s.to - s.from) as f64 / 1000.0).max(0.1),
        }
    }

    pub fn at(&self, ms: i64) -> f64 {
        (ms - self.origin) as f64 / 1000.0
    }

    /// The moment `secs` into the scope, unix ms.
    pub fn ms(&self, secs: f64) -> i64 {
        self.origin + (secs * 1000.0).round() as i64
    }

    /// Buckets of about a fortieth of the span, at least 50 ms.
    pub fn bucket(&self) -> f64 {
        (self.span / 40.0).max(0.05)
    }

    pub fn buckets(&self) -> usize {
        (self.span / self.bucket()).ceil() as usize + 1
    }

    pub fn index(&self, ms: i64) -> usize {
        ((self.at(ms) / self.bucket()).floor().max(0.0) as usize).min(self.buckets() - 1)
    }

    /// `n + 1` evenly spaced moments from the start to the end, in seconds.
    pub fn samples(&self, n: usize) -> impl Iterator<Item = f64> + '_ {
        (0..=n).map(move |i| self.span * i as f64 / n.max(1) as f64)
    }
}
