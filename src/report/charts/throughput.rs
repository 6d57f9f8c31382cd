//! The Throughput section's charts: achieved requests/min or tokens/min against the limit in
//! force (given by a flag or learned from the server), with each 429, each pause for a spent
//! limit and each halving of the concurrency window marked on the time axis.

use plotters::prelude::*;

use super::{frame, legend, line, marks, step, svg, top, Axes};
use crate::report::data::Report;
use crate::report::scope::Clock;
use crate::report::view::View;
use crate::store::attempts::StoredAttempt;

/// What a throughput chart counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    Requests,
    Tokens,
}

impl Per {
    fn of(self, a: &StoredAttempt) -> f64 {
        match self {
            Per::Requests => 1.0,
            Per::Tokens => (a.prompt_tokens.unwrap_or(0) + a.completion_tokens.unwrap_or(0)) as f64,
        }
    }

    fn limit(self, rpm: Option<i64>, tpm: Option<i64>) -> Option<i64> {
        match self {
            Per::Requests => rpm,
            Per::Tokens => tpm,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Per::Requests => "requests/min",
            Per::Tokens => "tokens/min",
        }
    }
}

/// The limit as it changed; from the view's last run's recorded limit when no answer changed it.
fn limit_line(r: &Report, v: &View, clock: &Clock, per: Per) -> Vec<(f64, f64)> {
    let mut limit: Vec<(f64, f64)> = v
        .scope
        .attempts(&r.attempts)
        .filter(|a| a.limits_changed)
        .filter_map(|a| {
            per.limit(a.rpm, a.tpm)
                .map(|n| (clock.at(a.started_at), n as f64))
        })
        .collect();
    if limit.is_empty() {
        let run = r
            .runs
            .iter()
            .rev()
            .find(|run| v.scope.run.is_none_or(|n| n == run.run));
        let recorded = run.and_then(|run| run.limits);
        let given = recorded.and_then(|l| match per {
            Per::Requests => l.rpm.limit,
            Per::Tokens => l.tpm.limit,
        });
        limit.extend(given.map(|n| (0.0, f64::from(n))));
    }
    if let Some(&(_, n)) = limit.last() {
        limit.push((clock.span, n));
    }
    limit
}

/// When the window shrank (after the answer that shrank it).
fn halvings(r: &Report, v: &View, clock: &Clock) -> Vec<f64> {
    let mut out = Vec::new();
    let mut window = None;
    for a in v.scope.attempts(&r.attempts) {
        if let (Some(before), Some(now)) = (window, a.window) {
            if now < before {
                out.push(clock.at(a.started_at + a.latency_ms));
            }
        }
        window = a.window.or(window);
    }
    out
}

pub fn throughput(r: &Report, v: &View, per: Per) -> anyhow::Result<String> {
    let clock = Clock::of(&v.scope);
    let mut sums = vec![0.0; clock.buckets()];
    for a in v.scope.attempts(&r.attempts) {
        sums[clock.index(a.started_at)] += per.of(a);
    }
    let scale = 60.0 / clock.bucket();
    let achieved: Vec<(f64, f64)> = sums
        .iter()
        .enumerate()
        .map(|(i, n)| (i as f64 * clock.bucket(), n * scale))
        .collect();
    let limit = limit_line(r, v, &clock, per);
    let ceiling = top(achieved.iter().chain(&limit).map(|p| p.1));
    let attempts = || v.scope.attempts(&r.attempts);
    let http_429: Vec<f64> = attempts()
        .filter(|a| a.status == Some(429))
        .map(|a| clock.at(a.started_at))
        .collect();
    let pauses: Vec<(f64, f64)> = attempts()
        .filter(|a| a.paused)
        .map(|a| {
            let from = clock.at(a.started_at + a.latency_ms);
            (from, from + a.wait_ms.unwrap_or(0) as f64 / 1000.0)
        })
        .collect();
    let halved = halvings(r, v, &clock);
    let what = per.name();
    svg(|root| {
        let mut chart = frame(
            root,
            Axes {
                caption: format!("Achieved {what} against the limit in force"),
                x: (clock.span, "seconds"),
                y: (ceiling, what.into()),
                y_label: None,
            },
        )?;
        let shade = RGBColor(255, 200, 0).mix(0.3);
        chart
            .draw_series(
                pauses
                    .iter()
                    .map(|&(a, b)| Rectangle::new([(a, 0.0), (b, ceiling)], shade.filled())),
            )?
            .label("pause (a limit spent)")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], shade.filled()));
        line(&mut chart, achieved, BLUE, &format!("achieved {what}"))?;
        if !limit.is_empty() {
            line(&mut chart, step(&limit), BLACK, "limit in force")?;
        }
        chart
            .draw_series(
                http_429
                    .iter()
                    .map(|&x| TriangleMarker::new((x, ceiling * 0.97), 5, RED.filled())),
            )?
            .label("429")
            .legend(|(x, y)| TriangleMarker::new((x + 10, y), 5, RED.filled()));
        marks(&mut chart, &halved, ceiling, MAGENTA, "window halved")?;
        legend(&mut chart)
    })
}
