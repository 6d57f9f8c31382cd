//! The run report's page: one self-contained HTML file (inline CSS and SVG, no script that runs,
//! nothing fetched), laid out from [`Report`] and the charts. The numbers `status --json` also
//! shows are embedded as JSON in `<script type="application/json" id="numbers">` and shown in
//! cells marked `data-number="NAME"`, so a test (or a person) can compare them.

use std::fmt::Write;

use super::charts;
use super::data::Report;
use crate::estimate::report::dollars;

/// Text for HTML, escaped.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222;max-width:1140px}\
h1{font-size:24px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}\
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}\
figure{margin:12px 0}pre{background:#f6f6f6;padding:8px;white-space:pre-wrap}";

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
    summary(&mut h, r)?;
    let chart = |h: &mut String, id: &str, svg: anyhow::Result<String>| -> anyhow::Result<()> {
        writeln!(h, "<figure id=\"{id}\">{}</figure>", svg?)?;
        Ok(())
    };
    h.push_str("<h2>Progress</h2>\n");
    chart(&mut h, "chart-rows", charts::rows_over_time(r))?;
    h.push_str("<h2>Throughput and limits</h2>\n");
    chart(&mut h, "chart-requests", charts::throughput(r, false))?;
    chart(&mut h, "chart-tokens-per-minute", charts::throughput(r, true))?;
    h.push_str("<h2>Latency</h2>\n");
    latency(&mut h, r)?;
    chart(&mut h, "chart-latency", charts::latency_histogram(r))?;
    h.push_str("<h2>Tokens</h2>\n");
    chart(&mut h, "chart-tokens", charts::tokens_over_time(r))?;
    h.push_str("<h2>Cost</h2>\n");
    chart(&mut h, "chart-cost", charts::cost_over_time(r))?;
    expensive(&mut h, r)?;
    errors(&mut h, r)?;
    if !r.parts.is_empty() {
        h.push_str("<h2>Batches</h2>\n");
        chart(&mut h, "chart-batches", charts::batches(r))?;
        batches(&mut h, r)?;
    }
    runs(&mut h, r)?;
    repro(&mut h, r)?;
    h.push_str("</body></html>\n");
    Ok(h)
}

fn cell(h: &mut String, name: &str, label: &str, value: &str) -> std::fmt::Result {
    writeln!(
        h,
        "<tr><th>{}</th><td class=\"n\" data-number=\"{name}\">{}</td></tr>",
        esc(label),
        esc(value)
    )
}

fn summary(h: &mut String, r: &Report) -> std::fmt::Result {
    let n = &r.numbers;
    let c = &n.rows;
    h.push_str("<h2>Summary</h2>\n<table id=\"summary\">\n");
    for (name, label, v) in [
        ("rows.total", "rows", c.total),
        ("rows.done", "done", c.done),
        ("rows.failed", "failed", c.failed),
        ("rows.invalid", "skipped (invalid input)", c.invalid),
        ("rows.pending", "pending", c.pending),
        ("rows.attempts", "attempts", c.attempts),
        ("requests", "requests sent", n.requests),
        ("retries", "retries", n.retries),
        ("http_429", "429 answers", n.http_429),
        ("rows.prompt_tokens", "prompt tokens", c.prompt_tokens),
        ("rows.completion_tokens", "completion tokens", c.completion_tokens),
        ("rows.total_tokens", "total tokens", c.total_tokens),
    ] {
        cell(h, name, label, &v.to_string())?;
    }
    let money = |v: Option<f64>| v.map_or("unknown".to_string(), dollars);
    cell(h, "cost", "cost", &money(n.cost))?;
    if n.max_cost.is_some() {
        cell(h, "max_cost", "--max-cost budget", &money(n.max_cost))?;
    }
    h.push_str("</table>\n");
    Ok(())
}

fn latency(h: &mut String, r: &Report) -> std::fmt::Result {
    let p = r.numbers.latency_ms;
    h.push_str("<table id=\"latency\"><tr><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr><tr>");
    for (name, v) in [("p50", p.p50), ("p90", p.p90), ("p99", p.p99), ("max", p.max)] {
        write!(h, "<td class=\"n\" data-number=\"latency_ms.{name}\">{v} ms</td>")?;
    }
    h.push_str("</tr></table>\n<p>Slowest attempts:</p>\n<table id=\"slowest\"><tr><th>row</th><th>ms</th><th>status</th></tr>\n");
    for (id, ms, status) in &r.slowest {
        let status = status.map_or("no answer".to_string(), |s| s.to_string());
        writeln!(
            h,
            "<tr><td>{}</td><td class=\"n\">{ms}</td><td>{status}</td></tr>",
            esc(id)
        )?;
    }
    h.push_str("</table>\n");
    Ok(())
}

fn expensive(h: &mut String, r: &Report) -> std::fmt::Result {
    if r.expensive.is_empty() {
        return Ok(());
    }
    h.push_str("<p>Most expensive rows:</p>\n<table id=\"expensive\"><tr><th>row</th><th>cost</th></tr>\n");
    for (id, cost) in &r.expensive {
        writeln!(
            h,
            "<tr><td>{}</td><td class=\"n\">{}</td></tr>",
            esc(id),
            esc(&dollars(*cost))
        )?;
    }
    h.push_str("</table>\n");
    Ok(())
}

fn errors(h: &mut String, r: &Report) -> std::fmt::Result {
    h.push_str("<h2>Errors and finish reasons</h2>\n<p>Failed attempts by kind:</p>\n");
    h.push_str(
        "<table id=\"errors\"><tr><th>kind</th><th>status</th><th>attempts</th><th>sample rows</th></tr>\n",
    );
    for e in &r.errors {
        let status = e.status.map_or("-".to_string(), |s| s.to_string());
        writeln!(
            h,
            "<tr><td>{}</td><td>{status}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            esc(&e.class),
            e.count,
            esc(&e.sample_ids.join(", "))
        )?;
    }
    h.push_str("</table>\n<p>Failed rows by error:</p>\n<table id=\"row-errors\"><tr><th>error</th><th>rows</th></tr>\n");
    for (error, rows) in &r.row_errors {
        writeln!(h, "<tr><td>{}</td><td class=\"n\">{rows}</td></tr>", esc(error))?;
    }
    h.push_str("</table>\n<p>Finish reasons of the done rows:</p>\n<table id=\"finish-reasons\"><tr><th>finish reason</th><th>rows</th></tr>\n");
    for (reason, rows) in &r.finish_reasons {
        writeln!(h, "<tr><td>{}</td><td class=\"n\">{rows}</td></tr>", esc(reason))?;
    }
    h.push_str("</table>\n");
    Ok(())
}

fn batches(h: &mut String, r: &Report) -> std::fmt::Result {
    h.push_str("<table id=\"batches\"><tr><th>part</th><th>batch</th><th>stage</th><th>status</th><th>rows</th><th>done</th><th>failed</th></tr>\n");
    for p in &r.parts {
        writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            p.part,
            esc(p.batch_id.as_deref().unwrap_or("-")),
            esc(&p.stage),
            esc(p.status.as_deref().unwrap_or("-")),
            p.rows,
            p.completed,
            p.failed
        )?;
    }
    h.push_str("</table>\n");
    Ok(())
}

fn runs(h: &mut String, r: &Report) -> std::fmt::Result {
    h.push_str("<h2>Runs</h2>\n<table id=\"runs\"><tr><th>run</th><th>started (unix ms)</th><th>seconds</th><th>outcome</th><th>requests</th><th>retries</th><th>429s</th></tr>\n");
    for run in &r.runs {
        let secs = run.ended_at.map_or("-".to_string(), |e| {
            format!("{:.1}", (e - run.started_at) as f64 / 1000.0)
        });
        writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{secs}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            run.run,
            run.started_at,
            esc(run.outcome.as_deref().unwrap_or("(running or killed)")),
            run.requests,
            run.retries,
            run.http_429
        )?;
    }
    h.push_str("</table>\n");
    Ok(())
}

fn repro(h: &mut String, r: &Report) -> std::fmt::Result {
    let p = &r.repro;
    h.push_str("<h2>Reproducibility</h2>\n<table id=\"repro\">\n");
    let none = || "-".to_string();
    for (label, value) in [
        ("checkpoint", p.checkpoint.clone()),
        ("input", p.input.clone()),
        ("input fingerprint", p.fingerprint.clone()),
        ("template", p.template.clone().unwrap_or_else(none)),
        ("system", p.system.clone().unwrap_or_else(none)),
        (
            "model",
            p.model.clone().unwrap_or_else(|| "(from the rows)".into()),
        ),
        ("family", p.family.clone()),
        ("endpoint", p.endpoint.clone()),
        ("provider", p.provider.clone()),
        ("base URL", p.base_url.clone()),
        ("extra headers (names)", p.header_names.join(", ")),
        ("settings", p.settings.clone()),
        ("parameters", p.params.clone()),
        ("mode", p.mode.clone()),
        ("promptmill version", p.tool_version.clone()),
    ] {
        writeln!(
            h,
            "<tr><th>{}</th><td><code>{}</code></td></tr>",
            esc(label),
            esc(&value)
        )?;
    }
    h.push_str("</table>\n");
    Ok(())
}
