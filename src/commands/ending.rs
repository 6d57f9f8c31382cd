//! How a live run ends: the one table from why it stopped to its outcome and exit code, the
//! message that says what to do next, and the results written (shared with batch runs: the
//! output, the `--summary` file, the report, the totals), with the messages both kinds of run
//! print for a refused key, an exhausted quota and a full disk.

use std::path::Path;

use super::shell_quote;
use crate::config::SendConfig;
use promptmill_core::error::exit_code;
use promptmill_core::job::JobRecord;
use promptmill_engine::budget::Spend;
use promptmill_engine::estimate::report::dollars;
use promptmill_engine::output;
use promptmill_engine::pipeline::StopReason;
use promptmill_engine::store::{Counts, Store};
use promptmill_engine::summary::Summary;

/// A live run's outcome (as the checkpoint records it) and exit code: why it stopped, or, when
/// nothing stopped it, what is left of the rows it could send (`claimable`). The calibration
/// sample (`sample`) settles its rows, failed ones included, and leaves the rest.
pub fn live_outcome(reason: Option<&StopReason>, sample: bool, claimable: &Counts) -> (&'static str, i32) {
    match reason {
        Some(StopReason::Interrupted) => ("interrupted", exit_code::STOPPED),
        Some(StopReason::Auth { .. }) => ("stopped_auth", exit_code::STOPPED),
        Some(StopReason::Quota { .. }) => ("stopped_quota", exit_code::STOPPED),
        Some(StopReason::Checkpoint(_)) => ("checkpoint_error", exit_code::ERROR),
        Some(StopReason::Budget { .. }) => ("budget", exit_code::BUDGET),
        Some(StopReason::Misdirected(_)) => ("stopped_misdirected", exit_code::STOPPED),
        None if sample => ("sample_sent", exit_code::SUCCESS),
        None if claimable.failed + claimable.invalid > 0 => ("finished", exit_code::ROWS_FAILED),
        None if claimable.pending + claimable.in_flight > 0 => ("incomplete", exit_code::STOPPED),
        None => ("finished", exit_code::SUCCESS),
    }
}

/// What the message at the end of a live run needs to know.
pub struct Ending<'a> {
    pub job: &'a JobRecord,
    pub db: &'a Path,
    pub resume_cmd: &'a str,
    /// The endpoint as messages show it (credential-like query values redacted).
    pub shown_url: &'a str,
    pub spend: &'a Spend,
    pub after: &'a Counts,
    /// Pending rows past `--limit`.
    pub beyond_limit: u64,
    /// The run was over the whole job (not the calibration sample).
    pub whole_job: bool,
    pub quiet: bool,
}

impl Ending<'_> {
    /// Prints what stopped the run and what to do next, or what is left to do.
    pub fn explain(&self, reason: Option<&StopReason>, code: i32) {
        let resume_cmd = self.resume_cmd;
        match reason {
            Some(StopReason::Auth { status, message }) => eprintln!(
                "{}",
                refused_credentials(
                    &format!("HTTP {status}: {message}"),
                    &self.job.api_key_env,
                    resume_cmd
                )
            ),
            Some(StopReason::Quota { message }) => eprintln!("{}", out_of_quota(message, resume_cmd)),
            Some(StopReason::Checkpoint(e)) => eprintln!("promptmill: {}: {e}", self.db.display()),
            Some(StopReason::Interrupted) => {
                eprintln!("promptmill: interrupted; resume with:\n  {resume_cmd}")
            }
            Some(StopReason::Misdirected(trip)) => eprintln!(
                "{}",
                super::target::misdirected(trip, self.shown_url, self.job.endpoint.path(), resume_cmd)
            ),
            Some(StopReason::Budget { limit, needed }) => eprintln!(
                "promptmill: stopped at the --max-cost budget: {} spent of {} (the job so far); the next \
                 request may cost up to {}, more than the {} left; {} remain.\n\
                 Resume with a larger budget:\n  {resume_cmd} --max-cost AMOUNT",
                dollars(self.spend.total()),
                dollars(*limit),
                dollars(*needed),
                dollars(self.spend.remaining().unwrap_or(0.0)),
                promptmill_engine::summary::count(self.after.pending + self.after.in_flight, "row", "rows")
            ),
            None if code == exit_code::ROWS_FAILED => self.rows_failed(),
            None => {}
        }
        if let Some(n) = self
            .job
            .limit
            .filter(|_| self.beyond_limit > 0 && self.whole_job && !self.quiet)
        {
            eprintln!(
                "promptmill: --limit {n}: the {} pending rows past the first {n} were not sent.\n\
                 Run the same command without --limit (or with a larger one), or \
                 `promptmill resume {} --no-limit`, to send them.",
                self.beyond_limit,
                self.db.display()
            );
        }
    }

    /// Failed rows: where to see why, and how to send them again; invalid rows: that they never
    /// became requests.
    fn rows_failed(&self) {
        let db = shell_quote(&self.db.display().to_string());
        let after = self.after;
        if after.failed > 0 {
            eprintln!(
                "promptmill: {} failed; see `promptmill status {db}`, or send them again with:\n  {} --retry-failed",
                promptmill_engine::summary::count(after.failed, "row", "rows"),
                self.resume_cmd
            );
        }
        // --retry-failed cannot help these: they never became requests.
        if after.invalid > 0 {
            let (rows, were) = if after.invalid == 1 {
                ("row", "was")
            } else {
                ("rows", "were")
            };
            eprintln!(
                "promptmill: {} {rows} {were} invalid input and {were} not sent; the reasons are in the \
                 output's `error` field and in `promptmill status {db}`",
                after.invalid
            );
        }
    }
}

/// What to tell the user when the API refuses the key (`detail`: what it answered).
pub(crate) fn refused_credentials(detail: &str, key_env: &str, resume_cmd: &str) -> String {
    format!(
        "promptmill: the API refused the credentials ({detail}).\n\
         Check the key in {key_env} (and --header values), then resume with:\n  {resume_cmd}"
    )
}

/// What to tell the user when the account is out of credit.
pub(crate) fn out_of_quota(message: &str, resume_cmd: &str) -> String {
    format!(
        "promptmill: the API says the account is out of quota (HTTP 429: {message}).\n\
         This is a billing matter, not a rate limit: waiting will not help. Add credit or raise the\n\
         spending limit of the account (OpenAI: https://platform.openai.com/settings/organization/billing),\n\
         then resume with:\n  {resume_cmd}"
    )
}

/// A full disk stops the run (exit 4), it does not fail it: every row committed is safe in the
/// checkpoint at `db`, and `cmd` finishes the job once there is room. Any other error is returned.
pub(crate) fn disk_full_stop(e: anyhow::Error, db: &Path, finish: &str, cmd: &str) -> anyhow::Result<i32> {
    if !promptmill_core::error::is_disk_full(&e) {
        return Err(e);
    }
    eprintln!(
        "promptmill: {e:#}\n\
         The rows completed so far are safe in the checkpoint {}. Free some space, then {finish}:\n  {cmd}",
        db.display()
    );
    Ok(exit_code::STOPPED)
}

/// The command that writes a job's output from its checkpoint.
pub(crate) fn export_cmd(db: &Path, out: &output::OutputSpec) -> String {
    let path = out.path.display().to_string();
    let mut cmd = format!(
        "promptmill export {} -o {}",
        shell_quote(&db.display().to_string()),
        shell_quote(&path)
    );
    if output::OutputFormat::from_path(&out.path) != Some(out.format) {
        cmd.push_str(&format!(" --format {}", crate::cli::name_of(out.format)));
    }
    cmd
}

/// Ends a run: writes the output (with `export`) and the `--summary` file, records the summary
/// in the checkpoint, and prints the totals. Shared by live and batch runs. A run whose output
/// could not be written is recorded as `output_failed`, never as finished.
pub(crate) fn write_results(
    store: &Store,
    run_id: i64,
    job: &JobRecord,
    send: &SendConfig,
    summary: &Summary,
    export: bool,
) -> anyhow::Result<()> {
    let exported = match export {
        true => output::export(store, &job.output_columns(), &job.output, send.overwrite).map(drop),
        false => Ok(()),
    };
    record_results(store, run_id, send, summary, exported)
}

/// [`write_results`] once the output was written, or failed to be with `exported`'s error (a
/// caller that exports while it sums the totals: `batch.rs`).
pub(crate) fn record_results(
    store: &Store,
    run_id: i64,
    send: &SendConfig,
    summary: &Summary,
    exported: anyhow::Result<()>,
) -> anyhow::Result<()> {
    if let Err(e) = exported {
        let mut failed = summary.clone();
        failed.outcome = "output_failed".into();
        // Best effort: on a full disk this small write may fail too, and the run then
        // simply has no recorded end, which is not "finished" either.
        let _ = serde_json::to_string_pretty(&failed)
            .map_err(anyhow::Error::from)
            .and_then(|json| store.end_run(run_id, &failed.outcome, &json));
        return Err(e);
    }
    let summary_json = serde_json::to_string_pretty(summary)?;
    store.end_run(run_id, &summary.outcome, &summary_json)?;
    if let Some(path) = &send.summary {
        promptmill_core::files::write(path, format!("{summary_json}\n").as_bytes())?;
    }
    if let Some(path) = &send.report {
        promptmill_engine::report::write(store, store.path(), path)?;
    }
    if !send.quiet {
        eprintln!("{summary}");
    }
    Ok(())
}
