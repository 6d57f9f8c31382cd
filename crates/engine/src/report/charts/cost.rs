//! The Cost section's chart: the job's cumulative cost against the dry run's estimate for its
//! rows (the prompts' cost, and the most it can cost) and the `--max-cost` budget when there
//! was one. A run's view starts from what the runs before it spent, so its line meets the same
//! budget. The line has a point per bin of the span (at most [`crate::report::bins::MARK_BINS`]),
//! at the bin's end, whatever the number of attempts.

use plotters::prelude::*;

use super::{frame, legend, line, svg, Axes};
use crate::report::data::Report;
use crate::report::scope::Clock;
use crate::report::view::View;

pub fn cost_over_time(r: &Report, v: &View) -> anyhow::Result<String> {
    let clock = Clock::of(&v.scope);
    let t = &v.tally;
    let mut total = t.cost_before;
    let mut points = vec![(0.0, total)];
    let width = clock.span / t.cost_bins.len() as f64;
    for (i, dollars) in t.cost_bins.iter().enumerate().filter(|b| *b.1 > 0.0) {
        total += dollars;
        points.push((((i + 1) as f64 * width).min(clock.span), total));
    }
    points.push((clock.span, total));
    let budget = r.numbers.max_cost;
    let estimate = r.numbers.estimate;
    let guides = [
        estimate.map(|e| (e.prompt, "estimate: the prompts", RGBColor(0, 140, 140))),
        estimate
            .and_then(|e| e.max)
            .map(|m| (m, "estimate: at most (every max_tokens)", RGBColor(120, 60, 160))),
        budget.map(|b| (b, "--max-cost", RED)),
    ];
    let ceiling = guides
        .iter()
        .flatten()
        .map(|g| g.0)
        .fold(total, f64::max)
        .max(1e-6)
        * 1.1;
    svg(|root| {
        let mut chart = frame(
            root,
            Axes {
                caption: "Cumulative cost against the estimate and the budget".into(),
                x: (clock.span, "seconds"),
                y: (ceiling, "dollars".into()),
                y_label: Some(&super::dollar_tick),
            },
        )?;
        line(&mut chart, points, BLUE, "spent")?;
        for (value, label, color) in guides.into_iter().flatten() {
            line(&mut chart, vec![(0.0, value), (clock.span, value)], color, label)?;
        }
        legend(&mut chart)
    })
}
