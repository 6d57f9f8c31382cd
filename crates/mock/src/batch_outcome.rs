//! What a batch is made to do, on demand: the `OUTCOME` vocabulary shared by the
//! `X-Mock-Batch-Outcome` header and the `--batch-outcome SPEC` flag, the SPEC syntax
//! (`OUTCOME` for every batch, `N=OUTCOME` for the Nth batch created), and the choice for one
//! batch (header, else the Nth-batch flag, else the every-batch flag, else `completed`).
//! Carrying the outcome out (the lifecycle, the output files) is `batches`' business.

use std::collections::HashMap;

/// Fraction of the lines processed before an `expired` batch runs out of time, when the
/// OUTCOME does not say (`expired` rather than `expired:F`).
const DEFAULT_EXPIRED_FRACTION: f64 = 0.5;

/// How a batch ends.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) enum Outcome {
    /// Every line is processed; the batch completes.
    #[default]
    Completed,
    /// The batch fails validation, with an `errors.data` entry and no output.
    Failed,
    /// The first fraction (0..=1) of the lines are processed, then the batch expires; the rest
    /// go to the error file with code `batch_expired`.
    Expired(f64),
}

impl Outcome {
    /// Parses `completed`, `failed`, `expired` or `expired:F`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "completed" => Ok(Outcome::Completed),
            "failed" => Ok(Outcome::Failed),
            "expired" => Ok(Outcome::Expired(DEFAULT_EXPIRED_FRACTION)),
            other => {
                let Some(fraction) = other.strip_prefix("expired:") else {
                    return Err(format!(
                        "`{other}` is not an outcome (expected completed, failed, expired or expired:F)"
                    ));
                };
                match fraction.trim().parse::<f64>() {
                    // `contains` is false for NaN.
                    Ok(f) if (0.0..=1.0).contains(&f) => Ok(Outcome::Expired(f)),
                    _ => Err(format!(
                        "expired:{fraction}: the fraction must be a number from 0 to 1"
                    )),
                }
            }
        }
    }
}

/// The --batch-outcome flags, validated: one outcome for every batch and/or outcomes for
/// chosen batches by creation order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchOutcomes {
    every: Option<Outcome>,
    nth: HashMap<u64, Outcome>,
}

impl BatchOutcomes {
    /// Parses the SPECs in the order given; a later SPEC for the same target wins.
    pub fn parse<S: AsRef<str>>(specs: &[S]) -> Result<Self, String> {
        let mut outcomes = BatchOutcomes::default();
        for spec in specs {
            let spec = spec.as_ref();
            match spec.split_once('=') {
                None => outcomes.every = Some(Outcome::parse(spec)?),
                Some((n, outcome)) => {
                    let n: u64 = n.trim().parse().ok().filter(|&n| n >= 1).ok_or_else(|| {
                        format!("`{spec}`: N in N=OUTCOME must be a batch number, 1 or more")
                    })?;
                    outcomes.nth.insert(n, Outcome::parse(outcome)?);
                }
            }
        }
        Ok(outcomes)
    }

    /// The outcome of the `nth` batch created (1-based), given its create request's header.
    pub(crate) fn choose(&self, nth: u64, header: Option<Outcome>) -> Outcome {
        header
            .or_else(|| self.nth.get(&nth).copied())
            .or(self.every)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_parse_with_the_default_expiry_fraction() {
        assert_eq!(Outcome::parse("completed"), Ok(Outcome::Completed));
        assert_eq!(Outcome::parse(" failed "), Ok(Outcome::Failed));
        assert_eq!(Outcome::parse("expired"), Ok(Outcome::Expired(0.5)));
        assert_eq!(Outcome::parse("expired:0.25"), Ok(Outcome::Expired(0.25)));
        assert!(Outcome::parse("expired:1.5").unwrap_err().contains("from 0 to 1"));
        assert!(Outcome::parse("expired:NaN").is_err());
        assert!(Outcome::parse("done").unwrap_err().contains("`done`"));
    }

    #[test]
    fn the_header_beats_the_nth_flag_which_beats_the_every_flag() {
        let outcomes = BatchOutcomes::parse(&["expired", "2=failed"]).unwrap();
        assert_eq!(outcomes.choose(1, None), Outcome::Expired(0.5));
        assert_eq!(outcomes.choose(2, None), Outcome::Failed);
        assert_eq!(outcomes.choose(2, Some(Outcome::Completed)), Outcome::Completed);
        assert_eq!(BatchOutcomes::default().choose(7, None), Outcome::Completed);
    }

    #[test]
    fn a_bad_spec_names_itself() {
        assert!(BatchOutcomes::parse(&["0=failed"])
            .unwrap_err()
            .contains("`0=failed`"));
        assert!(BatchOutcomes::parse(&["x=failed"]).is_err());
        assert!(BatchOutcomes::parse(&["3=gone"]).unwrap_err().contains("`gone`"));
    }
}
