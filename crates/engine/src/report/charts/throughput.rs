//! The Throughput section's charts: achieved requests/min or tokens/min against the limit in
//! force (given by a flag or learned from the server), with each 429, each pause for a spent
//! limit and each halving of the concurrency window marked on the time axis (one mark per
//! [`MARK_BINS`]th of the axis at most; the legend says so, with the count, when marks merged).

use plotters::prelude::*;

use super::{frame, legend, line, marks, step, svg, top, Axes};
use crate::report::bins::{Marks, MARK_BINS};
use crate::report::data::Report;
use crate::report::scope::Clock;
use crate::report::view::View;

/// What a throughput chart counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    Requests,
    Tokens,
}

impl Per {
    /// The view's count per bucket of its clock.
    fn sums(self, v: &View) -> Vec<f64> {
        match self {
            Per::Requests => v.tally.requests.clone(),
            Per::Tokens => v.tally.tokens.iter().map(|t| t[0] + t[2]).collect(),
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
    let mut limit = match per {
        Per::Requests => v.tally.rpm.points(),
        Per::Tokens => v.tally.tpm.points(),
    };
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

/// How a kind of mark is named in the legend: with its count, and a note when some fell in the
/// same bin as another and share its mark.
fn mark_label(name: &str, marks: &Marks) -> String {
    match marks.merged() {
        true => format!("{name} ({}; one mark per 1/{MARK_BINS} of the axis)", marks.total),
        false => name.to_string(),
    }
}

pub fn throughput(r: &Report, v: &View, per: Per) -> anyhow::Result<String> {
    let clock = Clock::of(&v.scope);
    let scale = 60.0 / clock.bucket();
    let achieved: Vec<(f64, f64)> = per
        .sums(v)
        .iter()
        .enumerate()
        .map(|(i, n)| (i as f64 * clock.bucket(), n * scale))
        .collect();
    let limit = limit_line(r, v, &clock, per);
    let ceiling = top(achieved.iter().chain(&limit).map(|p| p.1));
    let t = &v.tally;
    let http_429 = t.http_429.xs();
    let pauses = t.pauses.ranges();
    let labels = [
        mark_label("pause (a limit spent)", &t.pauses),
        mark_label("429", &t.http_429),
        mark_label("window halved", &t.halvings),
    ];
    let halved = t.halvings.xs();
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
            .label(labels[0].as_str())
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
            .label(labels[1].as_str())
            .legend(|(x, y)| TriangleMarker::new((x + 10, y), 5, RED.filled()));
        marks(&mut chart, &halved, ceiling, MAGENTA, &labels[2])?;
        legend(&mut chart)
    })
}
