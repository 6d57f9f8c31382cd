//! The run report's page: one self-contained HTML file (inline CSS and SVG, no script that runs,
//! nothing fetched), laid out from [`Report`] and the charts. The whole job is shown first; when
//! the job had more than one run, each run follows in its own `<details>` section (plain HTML:
//! a click opens it, no script) with the same charts and tables for that run alone.
//!
//! The numbers `status --json` also shows are embedded as JSON in
//! `<script type="application/json" id="numbers">` and shown in cells marked
//! `data-number="NAME"`, so a test (or a person) can compare them. The tables are in
//! [`super::tables`].

use std::fmt::Write;

use super::charts::{self, throughput::Per};
use super::data::Report;
use super::tables::{self, esc};
use super::view::View;

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222;max-width:1140px}\
h1{font-size:24px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ccc}\
h3{font-size:16px;margin-top:20px}\
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}\
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}\
figure{margin:12px 0}pre{background:#f6f6f6;padding:8px;white-space:pre-wrap}\
details{border:1px solid #ccc;padding:4px 12px;margin:10px 0}summary{font-weight:bold;cursor:pointer}";

/// The whole page.
pub fn page(r: &Report) -> anyhow::Result<String> {
    let mut h = String::new();
    let title = format!("promptmill report: {}", r.repro.input);
    write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        esc(&title),
        esc(&title)
    )?;
    let numbers = serde_json::to_string(&r.numbers)?.replace('<', "\\u003c");
    writeln!(
        h,
        "<script type=\"application/json\" id=\"numbers\">{numbers}</script>"
    )?;
    tables::summary(&mut h, r)?;
    if let Some(job) = r.views.first() {
        h.push_str("<section id=\"job\">\n");
        view(&mut h, r, job, "h2")?;
        h.push_str("</section>\n");
    }
    h.push_str("<h2>Errors and finish reasons of the rows</h2>\n");
    tables::row_errors(&mut h, r)?;
    if !r.parts.is_empty() {
        h.push_str("<h2>Batches</h2>\n");
        figure(&mut h, "chart-batches", charts::batches::batches(r))?;
        tables::batches(&mut h, r)?;
        tables::batch_states(&mut h, r)?;
    }
    h.push_str("<h2>Runs</h2>\n");
    tables::runs(&mut h, r)?;
    for v in r.views.iter().skip(1) {
        writeln!(
            h,
            "<details id=\"{}\"><summary>{}: its own charts and tables</summary>",
            v.scope.key.trim_end_matches('-'),
            esc(&v.scope.title)
        )?;
        view(&mut h, r, v, "h3")?;
        h.push_str("</details>\n");
    }
    tables::repro(&mut h, r)?;
    h.push_str("</body></html>\n");
    Ok(h)
}

fn figure(h: &mut String, id: &str, svg: anyhow::Result<String>) -> anyhow::Result<()> {
    writeln!(h, "<figure id=\"{id}\">{}</figure>", svg?)?;
    Ok(())
}

/// One view's sections: its charts and tables, element ids prefixed by its scope's key.
fn view(h: &mut String, r: &Report, v: &View, heading: &str) -> anyhow::Result<()> {
    let id = |name: &str| v.scope.id(name);
    let section = |h: &mut String, title: &str| writeln!(h, "<{heading}>{}</{heading}>", esc(title));
    section(h, "Progress")?;
    figure(h, &id("chart-rows"), charts::progress::rows_over_time(r, v))?;
    figure(h, &id("chart-eta"), charts::progress::eta(r, v))?;
    section(h, "Throughput and limits")?;
    figure(
        h,
        &id("chart-requests"),
        charts::throughput::throughput(r, v, Per::Requests),
    )?;
    figure(
        h,
        &id("chart-tokens-per-minute"),
        charts::throughput::throughput(r, v, Per::Tokens),
    )?;
    section(h, "Latency")?;
    tables::latency(h, v)?;
    figure(h, &id("chart-latency"), charts::latency::latency_histogram(v))?;
    section(h, "Tokens")?;
    figure(h, &id("chart-tokens"), charts::latency::tokens_over_time(v))?;
    section(h, "Cost")?;
    figure(h, &id("chart-cost"), charts::cost::cost_over_time(r, v))?;
    tables::cost(h, r, v)?;
    section(h, "Failed attempts")?;
    tables::errors(h, v)?;
    Ok(())
}
