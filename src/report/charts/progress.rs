//! The Progress section's charts: rows done and failed over time, and the ETA the progress line
//! showed.

use plotters::prelude::*;

use super::{frame, legend, line, marks, run_starts, svg, top, Axes, GREY};
use crate::report::data::Report;
use crate::report::scope::Clock;
use crate::report::view::View;

/// Points of the rows line: the counts at evenly spaced moments, however many rows settled.
const POINTS: usize = 200;

/// The job's rows done and failed (cumulative, rows settled before the view began included) at
/// evenly spaced moments of the view.
pub fn rows_over_time(r: &Report, v: &View) -> anyhow::Result<String> {
    let clock = Clock::of(&v.scope);
    let (mut done, mut failed) = (Vec::new(), Vec::new());
    let (mut d, mut f) = (0.0, 0.0);
    let mut ends = r.ends.iter().peekable();
    for t in clock.samples(POINTS) {
        let until = clock.ms(t);
        while let Some(e) = ends.next_if(|e| e.at <= until) {
            *(if e.done { &mut d } else { &mut f }) += 1.0;
        }
        done.push((t, d));
        failed.push((t, f));
    }
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
