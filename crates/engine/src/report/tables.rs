//! The run report's tables, written into the page (`html.rs`): the summary, each view's latency,
//! cost and failed-attempt tables, the rows' errors and finish reasons, the batches, the runs and
//! the reproducibility block. Cells of numbers `status --json` also shows carry
//! `data-number="NAME"` (the whole job's only: a run's copy of a table has none).

use std::fmt::{Result, Write};

use super::data::Report;
use super::view::View;
use crate::estimate::report::dollars;

/// Text for HTML, escaped.
pub fn esc(text: &str) -> String {
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

fn cell(h: &mut String, name: &str, label: &str, value: &str) -> Result {
    writeln!(
        h,
        "<tr><th>{}</th><td class=\"n\" data-number=\"{name}\">{}</td></tr>",
        esc(label),
        esc(value)
    )
}

fn money(v: Option<f64>) -> String {
    v.map_or("unknown".to_string(), dollars)
}

/// Opens a table with its id and header cells.
fn open(h: &mut String, id: &str, heads: &[&str]) -> Result {
    write!(h, "<table id=\"{id}\"><tr>")?;
    for head in heads {
        write!(h, "<th>{}</th>", esc(head))?;
    }
    h.push_str("</tr>\n");
    Ok(())
}

/// One row of cells; those starting with a digit or `$` are right-aligned.
fn row(h: &mut String, cells: &[String]) -> Result {
    h.push_str("<tr>");
    for c in cells {
        let numeric = c.starts_with(|ch: char| ch.is_ascii_digit() || ch == '$');
        let class = if numeric { " class=\"n\"" } else { "" };
        write!(h, "<td{class}>{}</td>", esc(c))?;
    }
    h.push_str("</tr>\n");
    Ok(())
}

pub fn summary(h: &mut String, r: &Report) -> Result {
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
    cell(h, "cost", "cost", &money(n.cost))?;
    if let Some(e) = n.estimate {
        cell(h, "estimate.prompt", "estimate: the prompts", &dollars(e.prompt))?;
        cell(h, "estimate.max", "estimate: at most", &money(e.max))?;
    }
    if n.max_cost.is_some() {
        cell(h, "max_cost", "--max-cost budget", &money(n.max_cost))?;
    }
    h.push_str("</table>\n");
    Ok(())
}

pub fn latency(h: &mut String, v: &View) -> Result {
    let p = v.latency_ms;
    let whole = v.scope.run.is_none();
    writeln!(
        h,
        "<table id=\"{}\"><tr><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr><tr>",
        v.scope.id("latency")
    )?;
    for (name, ms) in [("p50", p.p50), ("p90", p.p90), ("p99", p.p99), ("max", p.max)] {
        match whole {
            true => write!(
                h,
                "<td class=\"n\" data-number=\"latency_ms.{name}\">{ms} ms</td>"
            )?,
            false => write!(h, "<td class=\"n\">{ms} ms</td>")?,
        }
    }
    h.push_str("</tr></table>\n<p>Slowest attempts:</p>\n");
    open(h, &v.scope.id("slowest"), &["row", "ms", "status"])?;
    for (id, ms, status) in &v.slowest {
        let status = status.map_or("no answer".to_string(), |s| s.to_string());
        row(h, &[id.clone(), ms.to_string(), status])?;
    }
    h.push_str("</table>\n");
    Ok(())
}

pub fn cost(h: &mut String, r: &Report, v: &View) -> Result {
    let spent = match v.scope.run {
        None => "Spent by the job's recorded attempts",
        Some(_) => "Spent by this run's attempts",
    };
    writeln!(h, "<p>{spent}: {}", esc(&dollars(v.cost)))?;
    if let (None, Some(e)) = (v.scope.run, r.numbers.estimate) {
        write!(
            h,
            "; the dry run's estimate for these rows: {} for the prompts, at most {}",
            esc(&dollars(e.prompt)),
            esc(&money(e.max))
        )?;
    }
    h.push_str(".</p>\n");
    if v.expensive.is_empty() {
        return Ok(());
    }
    h.push_str("<p>Most expensive rows:</p>\n");
    open(h, &v.scope.id("expensive"), &["row", "cost"])?;
    for (id, cost) in &v.expensive {
        row(h, &[id.clone(), dollars(*cost)])?;
    }
    h.push_str("</table>\n");
    Ok(())
}

pub fn errors(h: &mut String, v: &View) -> Result {
    h.push_str("<p>Failed attempts by kind:</p>\n");
    open(
        h,
        &v.scope.id("errors"),
        &["kind", "status", "attempts", "sample rows"],
    )?;
    for e in &v.errors {
        let status = e.status.map_or("-".to_string(), |s| s.to_string());
        row(
            h,
            &[
                e.class.clone(),
                status,
                e.count.to_string(),
                e.sample_ids.join(", "),
            ],
        )?;
    }
    h.push_str("</table>\n");
    Ok(())
}

pub fn row_errors(h: &mut String, r: &Report) -> Result {
    h.push_str("<p>Failed rows by error:</p>\n");
    open(h, "row-errors", &["error", "rows"])?;
    for (error, rows) in &r.row_errors {
        row(h, &[error.clone(), rows.to_string()])?;
    }
    h.push_str("</table>\n<p>Finish reasons of the done rows:</p>\n");
    open(h, "finish-reasons", &["finish reason", "rows"])?;
    for (reason, rows) in &r.finish_reasons {
        row(h, &[reason.clone(), rows.to_string()])?;
    }
    h.push_str("</table>\n");
    Ok(())
}

pub fn batches(h: &mut String, r: &Report) -> Result {
    let heads = ["part", "batch", "stage", "status", "rows", "done", "failed"];
    open(h, "batches", &heads)?;
    for p in &r.parts {
        row(
            h,
            &[
                p.part.to_string(),
                p.batch_id.clone().unwrap_or_else(|| "-".into()),
                p.stage.clone(),
                p.status.clone().unwrap_or_else(|| "-".into()),
                p.rows.to_string(),
                p.completed.to_string(),
                p.failed.to_string(),
            ],
        )?;
    }
    h.push_str("</table>\n");
    Ok(())
}

/// Each state the driver saw, with its time since the part was planned.
pub fn batch_states(h: &mut String, r: &Report) -> Result {
    h.push_str("<p>Each batch's states as polled:</p>\n");
    let heads = [
        "part",
        "seconds after planning",
        "status",
        "completed",
        "failed",
        "total",
    ];
    open(h, "batch-states", &heads)?;
    for s in &r.batch_states {
        let planned = r
            .parts
            .iter()
            .find(|p| p.part == s.part)
            .map_or(s.at, |p| p.created_at);
        row(
            h,
            &[
                s.part.to_string(),
                format!("{:.1}", (s.at - planned) as f64 / 1000.0),
                s.status.clone(),
                s.completed.to_string(),
                s.failed.to_string(),
                s.total.to_string(),
            ],
        )?;
    }
    h.push_str("</table>\n");
    Ok(())
}

pub fn runs(h: &mut String, r: &Report) -> Result {
    let heads = [
        "run",
        "started (unix ms)",
        "seconds",
        "outcome",
        "requests",
        "retries",
        "429s",
    ];
    open(h, "runs", &heads)?;
    for run in &r.runs {
        let secs = run.ended_at.map_or("-".to_string(), |e| {
            format!("{:.1}", (e - run.started_at) as f64 / 1000.0)
        });
        let n = run.run;
        write!(
            h,
            "<tr><td>{n}</td><td>{}</td><td class=\"n\">{secs}</td><td>{}</td>",
            run.started_at,
            esc(run.outcome.as_deref().unwrap_or("(running or killed)"))
        )?;
        for (name, v) in [
            ("requests", run.requests),
            ("retries", run.retries),
            ("http_429", run.http_429),
        ] {
            write!(h, "<td class=\"n\" data-number=\"runs.{n}.{name}\">{v}</td>")?;
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
    Ok(())
}

pub fn repro(h: &mut String, r: &Report) -> Result {
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
