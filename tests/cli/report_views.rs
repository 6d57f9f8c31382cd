//! The run report's views and records beyond one run: a job resumed twice shows each of its three
//! runs and the whole (with the runs' numbers equal to `status --json`'s), the cost chart's
//! estimate is the dry run's own figure for the rows, and batch mode records and charts each
//! batch's states as the driver polled them.

use serde_json::Value;

use crate::util::*;

fn embedded_numbers(html: &str) -> Value {
    let open = "<script type=\"application/json\" id=\"numbers\">";
    let start = html.find(open).expect("the numbers block") + open.len();
    let end = start + html[start..].find("</script>").expect("its end");
    serde_json::from_str(&html[start..end]).expect("numbers JSON")
}

/// The text of the element that opens with `open` up to its `close`.
fn element<'a>(html: &'a str, open: &str, close: &str) -> &'a str {
    let at = html.find(open).unwrap_or_else(|| panic!("{open} in the page"));
    let len = html[at..]
        .find(close)
        .unwrap_or_else(|| panic!("the end of {open}"));
    &html[at..at + len]
}

/// Whether an SVG drawn by plotters has a `<text>` that reads `text`.
fn svg_text(svg: &str, text: &str) -> bool {
    svg.contains(&format!(">\n{text}\n</text>"))
}

const PRICED: [&str; 6] = ["--price-in", "1", "--price-out", "2", "--max-tokens", "50"];

/// 12 rows, one of which the server always refuses.
fn refusing_rows(dir: &Dir) {
    let mut text = String::new();
    for i in 1..=12 {
        text.push_str(&format!(
            "{{\"id\":\"r{i}\",\"prompt\":\"Say something about {i}.\"}}\n"
        ));
    }
    text.push_str("{\"id\":\"refused\",\"prompt\":\"x [[mock:status=400]]\"}\n");
    dir.write("p.jsonl", text);
}

#[test]
fn a_job_resumed_twice_shows_each_of_its_three_runs_and_the_whole() {
    let dir = Dir::new();
    refusing_rows(&dir);
    let mock = Mock::start(&["--latency", "5ms"]);
    assert_eq!(run(run_job(&dir, &mock).args(PRICED)).code(), 3);
    assert_eq!(
        run(run_job(&dir, &mock).args(PRICED).arg("--retry-failed")).code(),
        3
    );
    let last = run(run_job(&dir, &mock)
        .args(PRICED)
        .args(["--retry-failed", "--report", "report.html"]));
    assert_eq!(last.code(), 3, "{}", last.stderr);
    let html = dir.read("report.html");
    let status = status_json(&dir);
    let runs = status["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 3);

    // The runs' numbers are status's, in the JSON block and in the runs table.
    let numbers = embedded_numbers(&html);
    for (shown, want) in numbers["runs"].as_array().expect("runs").iter().zip(runs) {
        for field in [
            "run",
            "started_at",
            "ended_at",
            "outcome",
            "requests",
            "retries",
            "http_429",
        ] {
            assert_eq!(shown[field], want[field], "run {}: {field}", want["run"]);
        }
        for field in ["requests", "retries", "http_429"] {
            let cell = format!("data-number=\"runs.{}.{field}\">{}<", want["run"], want[field]);
            assert!(html.contains(&cell), "{cell}");
        }
    }
    assert_eq!(numbers["runs"].as_array().unwrap().len(), 3);

    // The whole job, then each run in its own section with its own charts.
    let whole = element(&html, "<section id=\"job\">", "</section>");
    assert!(whole.contains("<figure id=\"chart-eta\"><svg"));
    for n in 1..=3 {
        let section = element(&html, &format!("<details id=\"run-{n}\">"), "</details>");
        for chart in [
            "chart-rows",
            "chart-eta",
            "chart-requests",
            "chart-latency",
            "chart-tokens",
            "chart-cost",
        ] {
            assert!(
                section.contains(&format!("<figure id=\"run-{n}-{chart}\"><svg")),
                "run {n}: {chart}"
            );
        }
        // Every run sent the refused row once more: each run's own errors table names it.
        let errors = element(section, &format!("<table id=\"run-{n}-errors\">"), "</table>");
        assert!(
            errors.contains("<td>refused</td><td class=\"n\">400</td><td class=\"n\">1</td>"),
            "run {n}: {errors}"
        );
    }
    // The first run sent all 13 rows; the later ones only the refused row.
    let slowest = |n: usize| {
        element(&html, &format!("<table id=\"run-{n}-slowest\">"), "</table>")
            .matches("<tr>")
            .count()
            - 1
    };
    assert_eq!((slowest(1), slowest(2), slowest(3)), (10, 1, 1));
}

#[test]
fn the_cost_chart_draws_the_dry_runs_estimate_for_the_rows_and_the_budget() {
    let dir = Dir::new();
    refusing_rows(&dir);
    let mock = Mock::start(&[]);
    let out = run(run_job(&dir, &mock)
        .args(PRICED)
        .args(["--max-cost", "3", "--report", "report.html"]));
    assert_eq!(out.code(), 3, "{}", out.stderr);
    let estimate = run(promptmill(&dir)
        .args(["estimate", "p.jsonl", "--model", "m", "--json"])
        .args(PRICED));
    assert_eq!(estimate.code(), 0, "{}", estimate.stderr);
    let estimate: Value = serde_json::from_str(&estimate.stdout).expect("estimate --json");
    let html = dir.read("report.html");
    let numbers = embedded_numbers(&html);
    assert_eq!(numbers["estimate"]["prompt"], estimate["cost_live"]["prompt"]);
    assert_eq!(numbers["estimate"]["max"], estimate["cost_live"]["max"]);
    assert!(numbers["estimate"]["max"].as_f64().unwrap() > 0.0, "{numbers}");
    let cost = element(&html, "<figure id=\"chart-cost\">", "</figure>");
    for legend in [
        "spent",
        "estimate: the prompts",
        "estimate: at most (every max_tokens)",
        "--max-cost",
    ] {
        assert!(svg_text(cost, legend), "the cost chart's legend has {legend}");
    }
    let dollars = |v: &Value| promptmill::estimate::report::dollars(v.as_f64().unwrap());
    let cell = format!(
        "data-number=\"estimate.max\">{}<",
        dollars(&estimate["cost_live"]["max"])
    );
    assert!(html.contains(&cell), "{cell}");
}

#[test]
fn batch_mode_records_each_batchs_states_as_polled_and_charts_them() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 20);
    let mock = Mock::start(&["--batch-polls", "3"]);
    let out = run(run_job(&dir, &mock).args([
        "--mode",
        "batch",
        "--poll-interval",
        "10ms",
        "--batch-max-rows",
        "8",
        "--report",
        "report.html",
    ]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let html = dir.read("report.html");
    let chart = element(&html, "<figure id=\"chart-batches\">", "</figure>");
    for status in ["in_progress", "completed"] {
        assert!(svg_text(chart, status), "the legend names {status}");
    }
    let states = element(&html, "<table id=\"batch-states\">", "</table>");
    for part in 1..=3 {
        let of_part: Vec<&str> = states
            .lines()
            .filter(|l| l.starts_with(&format!("<tr><td class=\"n\">{part}</td>")))
            .collect();
        // Each part went through in progress to completed; a poll that saw nothing new
        // recorded nothing, so no two rows in a row are the same.
        assert!(
            of_part.iter().any(|l| l.contains("<td>in_progress</td>")),
            "part {part}: {states}"
        );
        let last = of_part.last().unwrap_or_else(|| panic!("part {part} has states"));
        assert!(
            last.contains("<td>completed</td>"),
            "part {part} ended completed: {states}"
        );
        let rows = [8, 8, 4][part - 1];
        assert!(
            last.ends_with(&format!(
                "<td class=\"n\">{rows}</td><td class=\"n\">0</td><td class=\"n\">{rows}</td></tr>"
            )),
            "{last}"
        );
        let cells = |l: &str| l.split("</td>").skip(2).collect::<Vec<_>>().join("");
        for pair in of_part.windows(2) {
            assert_ne!(cells(pair[0]), cells(pair[1]), "a repeated state: {states}");
        }
    }
}
