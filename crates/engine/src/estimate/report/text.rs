//! The estimate as a table on stderr: the rows, each model's tokens, context check and prices,
//! the costs live and through the Batch API, the expectation, the time each limit takes, and the
//! invalid rows. What the numbers are is `report.rs`'s and `model.rs`'s; this only writes them.

use std::fmt;

use super::units::{bytes, dollars, duration_secs, thousands};
use super::{Cost, ModelReport, PromptSample, PromptTokens, Report};

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "promptmill estimate: {} ({})", self.input, self.endpoint)?;
        write!(f, "  rows        {} to send", thousands(self.rows_to_send))?;
        if let (Some(cache), true) = (&self.cache, self.rows_cached > 0) {
            write!(
                f,
                ", {} answered from the response cache {cache} (not sent, not billed)",
                thousands(self.rows_cached)
            )?;
        }
        if self.rows_invalid > 0 {
            write!(f, ", {} invalid", thousands(self.rows_invalid))?;
        }
        writeln!(f)?;
        for m in &self.models {
            model_lines(f, m, self.generates_text)?;
        }
        self.cost_lines(f)?;
        if self.generates_text {
            self.expectation_line(f)?;
        }
        self.time_lines(f)?;
        self.invalid_lines(f)
    }
}

/// One model's lines: its rows and tokenizer, its prompt tokens (and what the sample says of
/// them), the context check, its completion tokens and its prices.
fn model_lines(f: &mut fmt::Formatter<'_>, m: &ModelReport, generates_text: bool) -> fmt::Result {
    let name = if m.model.is_empty() {
        "(no model)"
    } else {
        &m.model
    };
    let scaled = m.prompt_tokens.sample.as_ref().is_some_and(|s| s.scaled);
    let exact = if m.exact_tokens {
        format!("{}, exact", m.encoding)
    } else if scaled {
        format!(
            "tokenizer unknown: counted with {}, scaled by the calibration sample",
            m.encoding
        )
    } else {
        format!(
            "tokenizer unknown: approximated with {}, expect a few % off",
            m.encoding
        )
    };
    writeln!(f, "  model       {name}: {} rows ({exact})", thousands(m.rows))?;
    if let Some(note) = &m.unknown_model {
        writeln!(f, "    note        {note}")?;
    }
    let p = &m.prompt_tokens;
    writeln!(
        f,
        "    prompt      {} tokens; per row mean {:.1}, p50 {}, p95 {}, max {}",
        thousands(p.total),
        p.mean,
        thousands(p.p50),
        thousands(p.p95),
        thousands(p.max)
    )?;
    if let Some(s) = &p.sample {
        sample_line(f, p, s)?;
    }
    match m.max_input_tokens {
        Some(limit) if m.rows_over_context > 0 => writeln!(
            f,
            "    context     {} rows over the {} tokens the model takes: run refuses them as invalid (their tokens are in the totals above)",
            thousands(m.rows_over_context),
            thousands(limit)
        )?,
        Some(limit) => writeln!(f, "    context     every row fits ({} tokens)", thousands(limit))?,
        None => writeln!(f, "    context     unknown for this model; not checked")?,
    }
    if generates_text {
        completion_line(f, m)?;
    } else {
        writeln!(
            f,
            "    completion  none: the answer is a vector, input tokens are all that is billed"
        )?;
    }
    price_line(f, m)
}

/// The completion tokens a model's rows may produce: expected, and at most.
fn completion_line(f: &mut fmt::Formatter<'_>, m: &ModelReport) -> fmt::Result {
    let c = &m.completion_tokens;
    let max = match c.max {
        Some(v) if c.rows_without_max_tokens > 0 => format!(
            "at most {} ({} rows without max_tokens, at the model's output cap)",
            thousands(v),
            thousands(c.rows_without_max_tokens)
        ),
        Some(v) => format!("at most {}", thousands(v)),
        None => format!(
            "unbounded: {} rows set no max_tokens and the model's output cap is unknown",
            thousands(c.rows_without_max_tokens)
        ),
    };
    let expected = match (c.expected, c.expected_low, c.expected_high) {
        (Some(e), Some(lo), Some(hi)) => {
            format!("expected {:.0} ({:.0} – {:.0}), ", e, lo, hi)
        }
        (Some(e), _, _) => format!("expected {e:.0}, "),
        _ => String::new(),
    };
    writeln!(f, "    completion  {expected}{max}")
}

/// A model's prices and where they come from, or why it has none.
fn price_line(f: &mut fmt::Formatter<'_>, m: &ModelReport) -> fmt::Result {
    match (&m.prices, &m.cost_unknown) {
        (Some(p), _) => {
            let batch = match (p.batch_input, p.batch_output) {
                (Some(i), Some(o)) => format!("; Batch API ${i} / ${o}"),
                _ => "; no Batch API price known".to_string(),
            };
            writeln!(
                f,
                "    price       ${} in / ${} out per 1M tokens{batch} ({})",
                p.input,
                p.output,
                m.price_source.as_deref().unwrap_or("")
            )
        }
        (None, Some(why)) => writeln!(f, "    price       unknown: {why}"),
        (None, None) => Ok(()),
    }
}

impl Report {
    /// The job's costs, live and through the Batch API.
    fn cost_lines(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cost_live {
            Some(c) => writeln!(f, "  cost live   {}", cost_line(c))?,
            None => writeln!(f, "  cost        unknown (a model has no price; see above)")?,
        }
        match &self.cost_batch {
            Some(c) => writeln!(f, "  cost batch  {}", cost_line(c))?,
            None if self.cost_live.is_some() => writeln!(f, "  cost batch  unknown (no Batch API price)")?,
            None => {}
        }
        Ok(())
    }

    /// The completion tokens expected per request and where that comes from, or how to get an
    /// expectation.
    fn expectation_line(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(e) = &self.expectation else {
            return writeln!(
                f,
                "  expected    give --expect-output-tokens N, or --sample N to measure, for an expected cost"
            );
        };
        match e.interval {
            Some((lo, hi)) => writeln!(
                f,
                "  expected    {:.1} completion tokens per request (95% interval {:.1} – {:.1}), from {}",
                e.per_request, lo, hi, e.source
            ),
            None => writeln!(
                f,
                "  expected    {:.0} completion tokens per request, from {}",
                e.per_request, e.source
            ),
        }
    }

    /// How long the live run takes under each limit, and how the Batch API would take the job.
    fn time_lines(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.timing;
        let mut parts = vec![format!(
            "--concurrency {} at {:.1}s per request: {}",
            t.concurrency,
            t.latency,
            duration_secs(t.by_concurrency)
        )];
        if let (Some(r), Some(s)) = (t.rpm, t.by_rpm) {
            parts.push(format!("--rpm {}: {}", thousands(r.into()), duration_secs(s)));
        }
        if let (Some(r), Some(s)) = (t.tpm, t.by_tpm) {
            parts.push(format!("--tpm {}: {}", thousands(r.into()), duration_secs(s)));
        }
        if t.requests != self.rows_to_send {
            writeln!(
                f,
                "  requests    {} (several rows per request: --rows-per-request)",
                thousands(t.requests)
            )?;
        }
        writeln!(
            f,
            "  time live   about {}, bound by {} ({})",
            duration_secs(t.seconds),
            t.binding,
            parts.join("; ")
        )?;
        if let Some(b) = &self.batch {
            writeln!(
                f,
                "  time batch  within the provider's 24 h window: {} input file{} of at most {} rows and {} (about {} in all)",
                thousands(b.files),
                if b.files == 1 { "" } else { "s" },
                thousands(b.max_rows),
                bytes(b.max_bytes),
                bytes(b.bytes)
            )?;
        }
        Ok(())
    }

    /// The invalid rows, the first of them listed, and what `run` would do with them.
    fn invalid_lines(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rows_invalid == 0 {
            return Ok(());
        }
        let verdict = if self.run_would_refuse {
            "run would refuse the input as it is (fix it, or pass --skip-invalid to record these rows as failed)"
        } else {
            "these rows are recorded as failed, unsent (--skip-invalid)"
        };
        writeln!(f, "  invalid     {verdict}:")?;
        for e in &self.invalid {
            writeln!(f, "    {e}")?;
        }
        if self.rows_invalid > self.invalid.len() as u64 {
            writeln!(
                f,
                "    … and {} more",
                self.rows_invalid - self.invalid.len() as u64
            )?;
        }
        Ok(())
    }
}

/// What the calibration sample says of a model's prompt tokens: the scaled expectation, or
/// (with an exact tokenizer) how far the server's count is from ours.
fn sample_line(f: &mut fmt::Formatter<'_>, p: &PromptTokens, s: &PromptSample) -> fmt::Result {
    let r = &s.ratio;
    let measured = format!(
        "{} sampled rows billed {} prompt tokens, {} counted here",
        thousands(r.rows),
        thousands(r.billed),
        thousands(r.counted)
    );
    if !s.scaled {
        let verdict = match s.difference {
            0 => "difference 0: the encoding matches the server's".to_string(),
            d => format!("difference {d:+}: the server counts differently (a wrong encoding, or framing)"),
        };
        return writeln!(f, "    sample      {measured}; {verdict}");
    }
    let round = |v: f64| thousands(v.round() as u64);
    match (r.interval, p.expected_low, p.expected_high) {
        (Some((lo, hi)), Some(plo), Some(phi)) => writeln!(
            f,
            "    calibrated  {} prompt tokens ({} – {}): ×{:.3} (95% interval {:.3} – {:.3}); {measured}",
            round(p.expected),
            round(plo),
            round(phi),
            r.ratio,
            lo,
            hi
        ),
        _ => writeln!(
            f,
            "    calibrated  {} prompt tokens: ×{:.3}; {measured}",
            round(p.expected),
            r.ratio
        ),
    }
}

fn cost_line(c: &Cost) -> String {
    let expected = match (c.expected, c.expected_low, c.expected_high) {
        (Some(e), Some(lo), Some(hi)) => {
            format!("expected {} ({} – {}), ", dollars(e), dollars(lo), dollars(hi))
        }
        (Some(e), _, _) => format!("expected {}, ", dollars(e)),
        _ => String::new(),
    };
    let max = match c.max {
        Some(m) => format!("at most {}", dollars(m)),
        None => "no upper bound (set --max-tokens)".to_string(),
    };
    format!(
        "{expected}{max}  (prompts {}, as if no prompt were cached)",
        dollars(c.prompt)
    )
}
