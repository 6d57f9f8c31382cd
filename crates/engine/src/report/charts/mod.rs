//! The run report's charts, each one SVG drawn by `plotters` (its SVG backend: text is left to
//! the browser's fonts, nothing is rasterised here). Each chart function takes the report's
//! data and a [`View`](super::view::View) (the whole job, or one run) and returns the `<svg>`
//! element; the page (`html.rs`) places them. Time axes are seconds since the view began.
//!
//! What every chart shares is here: the canvas ([`svg`]), the frame with its caption and axes
//! ([`frame`]) with tick labels that stay short at any scale ([`tick`]), lines, vertical marks
//! and the legend. Each file beside this one draws one section's charts. Every series is
//! bounded (buckets or samples of the span, or one mark per bin of it:
//! [`super::bins::MARK_BINS`]), so a chart's size does not grow with the rows.

pub mod batches;
pub mod cost;
pub mod latency;
pub mod progress;
pub mod throughput;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

const SIZE: (u32, u32) = (1100, 320);
const FONT: &str = "sans-serif";

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult = Result<(), Box<dyn std::error::Error>>;
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws one chart into an SVG string.
fn svg(draw: impl FnOnce(&Area<'_>) -> DrawResult) -> anyhow::Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        let fail = |e: &dyn std::fmt::Display| anyhow::anyhow!("drawing a chart: {e}");
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        draw(&root).map_err(|e| fail(&e))?;
        root.present().map_err(|e| fail(&e))?;
    }
    Ok(out)
}

/// A chart's caption and axes: x from 0, y from 0, each up to its maximum.
struct Axes<'f> {
    caption: String,
    x: (f64, &'f str),
    y: (f64, String),
    /// How the y labels read ([`tick`] when `None`).
    y_label: Option<&'f dyn Fn(&f64) -> String>,
}

fn frame<'a, 'b>(root: &'a Area<'b>, axes: Axes<'_>) -> Result<Chart<'a, 'b>, Box<dyn std::error::Error>> {
    let mut chart = ChartBuilder::on(root)
        .caption(axes.caption, (FONT, 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..axes.x.0, 0.0..axes.y.0)?;
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(axes.x.1).y_desc(axes.y.1);
    mesh.x_label_formatter(&tick);
    mesh.y_label_formatter(axes.y_label.unwrap_or(&tick));
    mesh.draw()?;
    Ok(chart)
}

/// A tick label that stays short at any scale: whole numbers without decimals, thousands and
/// millions as `k` and `M` (a 1M-row job's axes read `250k`, `1M`, `40M`, not `40000000.0`).
pub fn tick(v: &f64) -> String {
    let a = v.abs();
    let trim = |s: String| match s.contains('.') {
        true => s.trim_end_matches('0').trim_end_matches('.').to_string(),
        false => s,
    };
    if a >= 1e6 {
        format!("{}M", trim(format!("{:.2}", v / 1e6)))
    } else if a >= 1e4 {
        format!("{}k", trim(format!("{:.1}", v / 1e3)))
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else {
        trim(format!("{v:.2}"))
    }
}

/// A dollar tick label: [`tick`] from a dollar up (`$250`, `$10k`), four decimals at most below
/// one (`$0.0015`).
pub fn dollar_tick(v: &f64) -> String {
    if v.abs() >= 1.0 {
        return format!("${}", tick(v));
    }
    let cents = format!("{v:.4}");
    format!("${}", cents.trim_end_matches('0').trim_end_matches('.'))
}

/// A labelled line.
fn line(chart: &mut Chart<'_, '_>, points: Vec<(f64, f64)>, color: RGBColor, label: &str) -> DrawResult {
    chart
        .draw_series(LineSeries::new(points, color.stroke_width(2)))?
        .label(label)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
    Ok(())
}

/// A labelled vertical line at each of `xs`, from 0 to `top`.
fn marks(chart: &mut Chart<'_, '_>, xs: &[f64], top: f64, color: RGBColor, label: &str) -> DrawResult {
    if xs.is_empty() {
        return Ok(());
    }
    chart
        .draw_series(
            xs.iter()
                .map(|&x| PathElement::new([(x, 0.0), (x, top)], color.stroke_width(1))),
        )?
        .label(label)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
    Ok(())
}

fn legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>) -> DrawResult {
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;
    Ok(())
}

/// The top of a y axis that shows `values`: a tenth above the highest, at least 1.1.
fn top(values: impl Iterator<Item = f64>) -> f64 {
    values.fold(0.0, f64::max).max(1.0) * 1.1
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

const GREY: RGBColor = RGBColor(150, 150, 150);

/// Where each run after the first began, in the whole job's view (none in a run's own view).
fn run_starts(r: &super::data::Report, v: &super::view::View) -> Vec<f64> {
    if v.scope.run.is_some() {
        return Vec::new();
    }
    let clock = super::scope::Clock::of(&v.scope);
    r.runs
        .iter()
        .skip(1)
        .map(|run| clock.at(run.started_at))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn tick_labels_stay_short_at_any_scale() {
        let labels: Vec<String> = [
            0.0, 0.25, 2.5, 8.0, 50.0, 2000.0, 12_500.0, 250_000.0, 1e6, 1.25e6, 4.2e7,
        ]
        .iter()
        .map(super::tick)
        .collect();
        assert_eq!(
            labels,
            ["0", "0.25", "2.5", "8", "50", "2000", "12.5k", "250k", "1M", "1.25M", "42M"]
        );
        let dollars: Vec<String> = [0.0, 0.0015, 0.5, 2.5, 1000.0, 10_000.0]
            .iter()
            .map(super::dollar_tick)
            .collect();
        assert_eq!(dollars, ["$0", "$0.0015", "$0.5", "$2.5", "$1000", "$10k"]);
    }
}
