//! The Latency and Tokens sections' charts: a histogram of attempt latencies (from the exact
//! counts per millisecond), and prompt, cached, completion and reasoning tokens over time.

use plotters::prelude::*;

use super::{frame, legend, line, svg, top, Axes};
use crate::report::scope::Clock;
use crate::report::view::View;

/// A histogram of the view's attempt latencies, in 30 bins up to the slowest.
pub fn latency_histogram(v: &View) -> anyhow::Result<String> {
    const BINS: usize = 30;
    let max = v.latency_ms.max.max(1);
    let width = (max as f64 / BINS as f64).max(1.0);
    let mut counts = [0u64; BINS];
    for (ms, n) in v.tally.latencies.counts() {
        let bin = ((ms.max(0) as f64 / width) as usize).min(BINS - 1);
        counts[bin] += n;
    }
    let ceiling = top(counts.iter().map(|&n| n as f64));
    svg(|root| {
        let mut chart = frame(
            root,
            Axes {
                caption: "Latency of every attempt".into(),
                x: (width * BINS as f64, "milliseconds"),
                y: (ceiling, "attempts".into()),
                y_label: None,
            },
        )?;
        chart.draw_series(counts.iter().enumerate().map(|(i, &n)| {
            let x = i as f64 * width;
            Rectangle::new([(x, 0.0), (x + width, n as f64)], BLUE.mix(0.6).filled())
        }))?;
        Ok(())
    })
}

/// Prompt, cached, completion and reasoning tokens per bucket of time.
pub fn tokens_over_time(v: &View) -> anyhow::Result<String> {
    let clock = Clock::of(&v.scope);
    let sums = &v.tally.tokens;
    let ceiling = top(sums.iter().flatten().copied());
    let series = [
        ("prompt", BLUE),
        ("cached", CYAN),
        ("completion", GREEN),
        ("reasoning", MAGENTA),
    ];
    svg(|root| {
        let mut chart = frame(
            root,
            Axes {
                caption: "Tokens over time".into(),
                x: (clock.span, "seconds"),
                y: (ceiling, format!("tokens per {:.2} s", clock.bucket())),
                y_label: None,
            },
        )?;
        for (k, (name, color)) in series.into_iter().enumerate() {
            let points = sums
                .iter()
                .enumerate()
                .map(|(i, s)| (i as f64 * clock.bucket(), s[k]))
                .collect();
            line(&mut chart, points, color, name)?;
        }
        legend(&mut chart)
    })
}
