//! `promptmill report`: one self-contained HTML page of how a job went, read from its
//! checkpoint. [`data`] gathers the numbers (the same store calls `status` makes), streaming the
//! attempts and the rows' ends into bounded [`tally`]s and [`bins`], [`scope`] and
//! [`view`] cut them into the whole job and each run, [`estimate`] prices the job's rows as the
//! dry run does, [`charts`] draws them as SVG, [`html`] and [`tables`] lay out the page;
//! [`write`] puts it in place through [`promptmill_core::files`] (exclusive temp file, mode 0600, renamed).

pub mod bins;
pub mod charts;
pub mod data;
pub mod estimate;
pub mod html;
pub mod scope;
pub mod tables;
pub mod tally;
pub mod view;

use std::path::Path;

use crate::store::Store;

/// Writes the report of the job in `store` (checkpoint `db`) to `out`.
pub fn write(store: &Store, db: &Path, out: &Path) -> anyhow::Result<()> {
    let report = data::Report::read(store, db)?;
    let page = html::page(&report)?;
    promptmill_core::files::write(out, page.as_bytes())
        .map_err(|e| anyhow::anyhow!("{}: could not write the report: {e:#}", out.display()))
}
