//! The Batches section's chart (`--mode batch`): one bar per part, from when it was planned to
//! when it was last seen, in segments coloured by the batch status the driver saw when it polled
//! (validating, in progress, finalizing, and how it ended), each labelled with its counts.

use plotters::prelude::*;

use super::{frame, legend, svg, Axes};
use crate::report::data::Report;
use crate::store::batch_states::BatchState;

/// The statuses in the legend, with their colours; anything else is grey.
const STATUSES: &[(&str, RGBColor)] = &[
    ("(planned, submitting)", RGBColor(210, 210, 210)),
    ("validating", RGBColor(160, 160, 200)),
    ("in_progress", RGBColor(70, 130, 220)),
    ("finalizing", RGBColor(240, 160, 40)),
    ("completed", RGBColor(60, 170, 80)),
    ("failed", RGBColor(210, 50, 50)),
    ("expired", RGBColor(150, 40, 40)),
    ("cancelling", RGBColor(200, 120, 150)),
    ("cancelled", RGBColor(120, 70, 90)),
];

fn color(status: &str) -> RGBColor {
    STATUSES
        .iter()
        .find(|s| s.0 == status)
        .map_or(RGBColor(120, 120, 120), |s| s.1)
}

/// A stretch of a part's bar: from, to (seconds since the first part was planned), the status,
/// and the state seen (none before the first).
type Segment<'a> = (f64, f64, &'a str, Option<&'a BatchState>);

fn segments(r: &Report, part: i64, origin: i64) -> Vec<Segment<'_>> {
    let secs = |ms: i64| (ms - origin) as f64 / 1000.0;
    let Some(p) = r.parts.iter().find(|p| p.part == part) else {
        return Vec::new();
    };
    let states: Vec<&BatchState> = r.batch_states.iter().filter(|s| s.part == part).collect();
    let end = states.last().map_or(p.updated_at, |s| s.at.max(p.updated_at));
    let mut out = Vec::new();
    let first = states.first().map_or(end, |s| s.at);
    out.push((secs(p.created_at), secs(first), STATUSES[0].0, None));
    for (i, s) in states.iter().enumerate() {
        let to = states.get(i + 1).map_or(end, |n| n.at);
        out.push((secs(s.at), secs(to), s.status.as_str(), Some(*s)));
    }
    out
}

pub fn batches(r: &Report) -> anyhow::Result<String> {
    let origin = r.parts.iter().map(|p| p.created_at).min().unwrap_or(0);
    let bars: Vec<_> = r.parts.iter().map(|p| segments(r, p.part, origin)).collect();
    let span = bars.iter().flatten().map(|s| s.1).fold(1.0, f64::max) * 1.05;
    let n = r.parts.len().max(1) as f64;
    svg(|root| {
        let mut chart = frame(
            root,
            Axes {
                caption: "Batches: each part's states as polled".into(),
                x: (span, "seconds since the first part was planned"),
                y: (n, "part".into()),
                y_label: Some(&|v| format!("{}", v.floor() as i64 + 1)),
            },
        )?;
        let thin = span / 400.0;
        for (i, bar) in bars.iter().enumerate() {
            let y = i as f64;
            chart.draw_series(bar.iter().map(|&(a, b, status, _)| {
                let rect = [(a, y + 0.2), (b.max(a + thin), y + 0.8)];
                Rectangle::new(rect, color(status).filled())
            }))?;
            chart.draw_series(bar.iter().filter_map(|&(a, _, _, state)| {
                let s = state?;
                let label = format!("{}/{} ({} failed)", s.completed, s.total, s.failed);
                Some(Text::new(label, (a, y + 0.95), ("sans-serif", 11)))
            }))?;
        }
        for &(status, c) in STATUSES {
            let seen = bars.iter().flatten().any(|s| s.2 == status);
            if seen {
                chart
                    .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())?
                    .label(status)
                    .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], c.filled()));
            }
        }
        legend(&mut chart)
    })
}
