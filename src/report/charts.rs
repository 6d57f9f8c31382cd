//! The run report's charts, each one SVG drawn by `plotters` (its SVG backend: text is left to
//! the browser's fonts, nothing is rasterised here). Each function takes the report's data and
//! returns the `<svg>` element; the page (`html.rs`) places them. Time axes are seconds since
//! the job's first recorded attempt.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::data::Report;

const SIZE: (u32, u32) = (1100, 320);
const FONT: &str = "sans-serif";

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Draws one chart into an SVG string.
fn svg(draw: impl FnOnce(&Area<'_>) -> DrawResult) -> anyhow::Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| anyhow::anyhow!("drawing a chart: {e}"))?;
        draw(&root).map_err(|e| anyhow::anyhow!("drawing a chart: {e}"))?;
        root.present()
            .map_err(|e| anyhow::anyhow!("drawing a chart: {e}"))?;
    }
    Ok(out)
}

/// The time axis: the first attempt (or row end) and the span in seconds.
struct Clock {
    origin: i64,
    span: f64,
}

impl Clock {
    fn of(r: &Report) -> Clock {
        let starts = r.attempts.iter().map(|a| a.started_at);
        let ends = r.ends.iter().map(|e| e.at);
        let origin = starts.clone().chain(ends.clone()).min().unwrap_or(0);
        let last = r
            .attempts
            .iter()
            .map(|a| a.started_at + a.latency_ms)
            .chain(ends)
            .max()
            .unwrap_or(origin);
        Clock {
            origin,
            span: ((last - origin) as f64 / 1000.0).max(0.1),
        }
    }

    fn at(&self, ms: i64) -> f64 {
        (ms - self.origin) as f64 / 1000.0
    }

    /// Buckets of about a fortieth of the run, at least 50 ms.
    fn bucket(&self) -> f64 {
        (self.span / 40.0).max(0.05)
    }

    fn buckets(&self) -> usize {
        (self.span / self.bucket()).ceil() as usize + 1
    }

    fn index(&self, ms: i64) -> usize {
        ((self.at(ms) / self.bucket()).floor().max(0.0) as usize).min(self.buckets() - 1)
    }
}

fn top(values: impl Iterator<Item = f64>) -> f64 {
    values.fold(0.0, f64::max).max(1.0) * 1.1
}

/// Rows done and failed over time (cumulative).
pub fn rows_over_time(r: &Report) -> anyhow::Result<String> {
    let clock = Clock::of(r);
    let (mut done, mut failed) = (vec![(0.0, 0.0)], vec![(0.0, 0.0)]);
    let (mut d, mut f) = (0.0, 0.0);
    for e in &r.ends {
        if e.done {
            d += 1.0;
            done.push((clock.at(e.at), d));
        } else {
            f += 1.0;
            failed.push((clock.at(e.at), f));
        }
    }
    done.push((clock.span, d));
    failed.push((clock.span, f));
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption("Rows done and failed over time", (FONT, 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..clock.span, 0.0..top([d, f].into_iter()))?;
        chart.configure_mesh().x_desc("seconds").y_desc("rows").draw()?;
        chart
            .draw_series(LineSeries::new(done, BLUE.stroke_width(2)))?
            .label("done")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE));
        chart
            .draw_series(LineSeries::new(failed, RED.stroke_width(2)))?
            .label("failed")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED));
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()?;
        Ok(())
    })
}

/// Achieved requests/min or tokens/min per bucket against the limit in force, with 429s,
/// pauses and the window's halvings marked on the time axis.
pub fn throughput(r: &Report, tokens: bool) -> anyhow::Result<String> {
    let clock = Clock::of(r);
    let mut per = vec![0.0; clock.buckets()];
    for a in &r.attempts {
        let n = if tokens {
            (a.prompt_tokens.unwrap_or(0) + a.completion_tokens.unwrap_or(0)) as f64
        } else {
            1.0
        };
        per[clock.index(a.started_at)] += n;
    }
    let scale = 60.0 / clock.bucket();
    let achieved: Vec<(f64, f64)> = per
        .iter()
        .enumerate()
        .map(|(i, n)| (i as f64 * clock.bucket(), n * scale))
        .collect();
    // The limit as it changed, starting from the last run's recorded limits when nothing changed.
    let mut limit: Vec<(f64, f64)> = Vec::new();
    for a in r.attempts.iter().filter(|a| a.limits_changed) {
        if let Some(n) = if tokens { a.tpm } else { a.rpm } {
            limit.push((clock.at(a.started_at), n as f64));
        }
    }
    if limit.is_empty() {
        let last = r.runs.last().and_then(|run| run.limits);
        if let Some(n) = last.and_then(|l| if tokens { l.tpm.limit } else { l.rpm.limit }) {
            limit.push((0.0, f64::from(n)));
        }
    }
    if let Some(&(_, n)) = limit.last() {
        limit.push((clock.span, n));
    }
    let ceiling = top(achieved.iter().chain(&limit).map(|p| p.1));
    let marks = |pred: &dyn Fn(&crate::store::attempts::StoredAttempt) -> bool| -> Vec<f64> {
        r.attempts
            .iter()
            .filter(|a| pred(a))
            .map(|a| clock.at(a.started_at))
            .collect()
    };
    let http_429 = marks(&|a| a.status == Some(429));
    let pauses: Vec<(f64, f64)> = r
        .attempts
        .iter()
        .filter(|a| a.paused)
        .map(|a| {
            let from = clock.at(a.started_at + a.latency_ms);
            (from, from + a.wait_ms.unwrap_or(0) as f64 / 1000.0)
        })
        .collect();
    let mut halvings = Vec::new();
    let mut window = None;
    for a in &r.attempts {
        if let (Some(before), Some(now)) = (window, a.window) {
            if now < before {
                halvings.push(clock.at(a.started_at + a.latency_ms));
            }
        }
        window = a.window.or(window);
    }
    let what = if tokens { "tokens/min" } else { "requests/min" };
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(format!("Achieved {what} against the limit in force"), (FONT, 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..clock.span, 0.0..ceiling)?;
        chart.configure_mesh().x_desc("seconds").y_desc(what).draw()?;
        let pause_color = RGBColor(255, 200, 0).mix(0.3);
        chart
            .draw_series(
                pauses
                    .iter()
                    .map(|&(a, b)| Rectangle::new([(a, 0.0), (b, ceiling)], pause_color.filled())),
            )?
            .label("pause (a limit spent)")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], pause_color.filled()));
        chart
            .draw_series(LineSeries::new(achieved, BLUE.stroke_width(2)))?
            .label(format!("achieved {what}"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE));
        if !limit.is_empty() {
            chart
                .draw_series(LineSeries::new(step(&limit), BLACK.stroke_width(1)))?
                .label("limit in force")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK));
        }
        chart
            .draw_series(
                http_429
                    .iter()
                    .map(|&x| TriangleMarker::new((x, ceiling * 0.97), 5, RED.filled())),
            )?
            .label("429")
            .legend(|(x, y)| TriangleMarker::new((x + 10, y), 5, RED.filled()));
        chart
            .draw_series(
                halvings
                    .iter()
                    .map(|&x| PathElement::new([(x, 0.0), (x, ceiling)], MAGENTA.stroke_width(2))),
            )?
            .label("window halved")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], MAGENTA));
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()?;
        Ok(())
    })
}

/// A step line through points (each value holds until the next point).
fn step(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(points.len() * 2);
    for (i, &(x, y)) in points.iter().enumerate() {
        if i > 0 {
            out.push((x, points[i - 1].1));
        }
        out.push((x, y));
    }
    out
}

/// A histogram of attempt latencies, in 30 bins up to the slowest.
pub fn latency_histogram(r: &Report) -> anyhow::Result<String> {
    const BINS: usize = 30;
    let max = r.numbers.latency_ms.max.max(1);
    let width = (max as f64 / BINS as f64).max(1.0);
    let mut counts = [0u64; BINS];
    for a in &r.attempts {
        let bin = ((a.latency_ms.max(0) as f64 / width) as usize).min(BINS - 1);
        counts[bin] += 1;
    }
    let highest = counts.iter().copied().max().unwrap_or(0).max(1);
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption("Latency of every attempt", (FONT, 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..width * BINS as f64, 0u64..highest + highest / 10 + 1)?;
        chart
            .configure_mesh()
            .x_desc("milliseconds")
            .y_desc("attempts")
            .draw()?;
        chart.draw_series(counts.iter().enumerate().map(|(i, &n)| {
            let x = i as f64 * width;
            Rectangle::new([(x, 0), (x + width, n)], BLUE.mix(0.6).filled())
        }))?;
        Ok(())
    })
}

/// Prompt, cached, completion and reasoning tokens per bucket of time.
pub fn tokens_over_time(r: &Report) -> anyhow::Result<String> {
    let clock = Clock::of(r);
    let mut sums = vec![[0.0f64; 4]; clock.buckets()];
    for a in &r.attempts {
        let s = &mut sums[clock.index(a.started_at)];
        for (k, v) in [
            a.prompt_tokens,
            a.cached_tokens,
            a.completion_tokens,
            a.reasoning_tokens,
        ]
        .into_iter()
        .enumerate()
        {
            s[k] += v.unwrap_or(0) as f64;
        }
    }
    let ceiling = top(sums.iter().flat_map(|s| s.iter().copied()));
    let series = [
        ("prompt", BLUE),
        ("cached", CYAN),
        ("completion", GREEN),
        ("reasoning", MAGENTA),
    ];
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption("Tokens over time", (FONT, 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..clock.span, 0.0..ceiling)?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc(format!("tokens per {:.2} s", clock.bucket()))
            .draw()?;
        for (k, (name, color)) in series.into_iter().enumerate() {
            let points = sums
                .iter()
                .enumerate()
                .map(|(i, s)| (i as f64 * clock.bucket(), s[k]));
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()?;
        Ok(())
    })
}

/// Cumulative cost against the `--max-cost` budget, when there was one.
pub fn cost_over_time(r: &Report) -> anyhow::Result<String> {
    let clock = Clock::of(r);
    let mut total = 0.0;
    let mut points = vec![(0.0, 0.0)];
    for a in r.attempts.iter().filter(|a| a.cost_nanos > 0) {
        total += a.cost_nanos as f64 / 1e9;
        points.push((clock.at(a.started_at + a.latency_ms), total));
    }
    points.push((clock.span, total));
    let budget = r.numbers.max_cost;
    let ceiling = (total.max(budget.unwrap_or(0.0)) * 1.1).max(1e-6);
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption("Cumulative cost", (FONT, 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..clock.span, 0.0..ceiling)?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("dollars")
            .y_label_formatter(&|v| format!("${v:.4}"))
            .draw()?;
        chart
            .draw_series(LineSeries::new(points, BLUE.stroke_width(2)))?
            .label("spent")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE));
        if let Some(b) = budget {
            chart
                .draw_series(LineSeries::new([(0.0, b), (clock.span, b)], RED.stroke_width(1)))?
                .label("--max-cost")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED));
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()?;
        Ok(())
    })
}

/// Batch mode: each part's span from planned to last seen, one bar per part.
pub fn batches(r: &Report) -> anyhow::Result<String> {
    let origin = r.parts.iter().map(|p| p.created_at).min().unwrap_or(0);
    let span = r
        .parts
        .iter()
        .map(|p| (p.updated_at - origin) as f64 / 1000.0)
        .fold(1.0, f64::max);
    let n = r.parts.len().max(1) as f64;
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption("Batches: planned to last seen", (FONT, 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..span * 1.05, 0.0..n)?;
        chart.configure_mesh().x_desc("seconds").y_desc("part").draw()?;
        chart.draw_series(r.parts.iter().enumerate().map(|(i, p)| {
            let a = (p.created_at - origin) as f64 / 1000.0;
            let b = ((p.updated_at - origin) as f64 / 1000.0).max(a + span / 200.0);
            let color = if p.failed > 0 {
                RED.mix(0.6)
            } else {
                GREEN.mix(0.6)
            };
            Rectangle::new([(a, i as f64 + 0.15), (b, i as f64 + 0.85)], color.filled())
        }))?;
        Ok(())
    })
}
