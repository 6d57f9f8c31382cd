//! The Progress section's charts: rows done and failed over time, and the ETA the progress line
//! showed.

use plotters::prelude::*;

use super::{frame, legend, line, marks, run_starts, svg, top, Axes, GREY};
use crate::report::data::Report;
use crate::report::scope::Clock;
use crate::report::view::View;

/// The job's rows done and failed (cumulative, rows settled before the view began included) at
/// evenly spaced moments of the view.
pub fn rows_over_time(r: &Report, v: &View) -> anyhow::Result<String> {
    let clock = Clock::of(&v.scope);
    let done: Vec<(f64, f64)> = v.rows.iter().map(|&(t, d, _)| (t, d as f64)).collect();
    let failed: Vec<(f64, f64)> = v.rows.iter().map(|&(t, _, f)| (t, f as f64)).collect();
    let last = |p: &[(f64, f64)]| p.last().map_or(0.0, |p| p.1);
    let (d, f) = (last(&done), last(&failed));
    let starts = run_starts(r, v);
    svg(|root| {
        let ceiling = top([d, f].into_iter());
        let mut chart = frame(
            root,
            Axes {
                caption: "Rows done and failed over time".into(),
                x: (clock.span, "seconds"),
                y: (ceiling, "rows".into()),
                y_label: None,
            },
        )?;
        line(&mut chart, done, BLUE, "done")?;
        line(&mut chart, failed, RED, "failed")?;
        marks(&mut chart, &starts, ceiling, GREY, "a run began")?;
        legend(&mut chart)
    })
}

/// The ETA the progress line showed, in seconds, over the view (a gap where it showed `?`).
pub fn eta(r: &Report, v: &View) -> anyhow::Result<String> {
    let clock = Clock::of(&v.scope);
    let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for &(t, eta) in &v.eta {
        match eta {
            Some(secs) => match segments.last_mut() {
                Some(s) => s.push((t, secs as f64)),
                None => segments.push(vec![(t, secs as f64)]),
            },
            None if segments.last().is_some_and(|s| !s.is_empty()) => segments.push(Vec::new()),
            None => {}
        }
    }
    segments.retain(|s| !s.is_empty());
    let ceiling = top(segments.iter().flatten().map(|p| p.1));
    let starts = run_starts(r, v);
    svg(|root| {
        let mut chart = frame(
            root,
            Axes {
                caption: "ETA the progress line showed".into(),
                x: (clock.span, "seconds"),
                y: (ceiling, "seconds left".into()),
                y_label: None,
            },
        )?;
        let color = RGBColor(0, 110, 60);
        for (i, s) in segments.into_iter().enumerate() {
            let series = chart.draw_series(LineSeries::new(s, color.stroke_width(2)))?;
            if i == 0 {
                series
                    .label("ETA")
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
            }
        }
        marks(&mut chart, &starts, ceiling, GREY, "a run began")?;
        legend(&mut chart)
    })
}
