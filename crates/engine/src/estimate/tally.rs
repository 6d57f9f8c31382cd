//! A model's token counts in the dry run: its rows, prompt tokens, the completions they ask for
//! and the bytes of their requests, with a histogram of prompt lengths (exact percentiles and
//! the long-context bands without keeping a count a row).

use std::collections::BTreeMap;

use promptmill_core::tokens;

/// Token counts of the rows of one model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelTally {
    pub rows: u64,
    pub prompt_tokens: u64,
    /// Σ max_tokens × n over the rows that set a maximum.
    pub max_output_tokens: u64,
    /// Rows without a maximum, and the completions (n) they ask for.
    pub unbounded_rows: u64,
    pub unbounded_choices: u64,
    /// Σ n over all rows: completions asked for.
    pub choices: u64,
    /// Rows by prompt tokens.
    pub lengths: BTreeMap<u64, u64>,
    /// Σ bytes of the request bodies (for the Batch API's file sizes).
    pub request_bytes: u64,
}

/// Rows whose prompts lie between the same long-context tier thresholds (see
/// [`ModelTally::bands`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Band {
    /// The shortest prompt in the band.
    pub least: u64,
    /// Its share of the rows and of the prompt tokens (0..=1).
    pub rows: f64,
    pub prompt: f64,
}

impl ModelTally {
    pub fn add(&mut self, cost: &tokens::RequestCost, bytes: usize) {
        self.rows += 1;
        self.request_bytes += bytes as u64;
        self.prompt_tokens += cost.prompt_tokens;
        self.choices += cost.choices;
        if cost.max_output_tokens == 0 {
            self.unbounded_rows += 1;
            self.unbounded_choices += cost.choices;
        } else {
            self.max_output_tokens += cost.max_output_tokens;
        }
        *self.lengths.entry(cost.prompt_tokens).or_default() += 1;
    }

    pub(super) fn merge(&mut self, other: ModelTally) {
        self.rows += other.rows;
        self.prompt_tokens += other.prompt_tokens;
        self.max_output_tokens += other.max_output_tokens;
        self.request_bytes += other.request_bytes;
        self.unbounded_rows += other.unbounded_rows;
        self.unbounded_choices += other.unbounded_choices;
        self.choices += other.choices;
        for (len, n) in other.lengths {
            *self.lengths.entry(len).or_default() += n;
        }
    }

    /// The smallest prompt length that at least `q` (0..=1) of the rows do not exceed.
    pub fn quantile(&self, q: f64) -> u64 {
        let wanted = ((self.rows as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (&len, &n) in &self.lengths {
            seen += n;
            if seen >= wanted {
                return len;
            }
        }
        0
    }

    pub fn max(&self) -> u64 {
        self.lengths.keys().next_back().copied().unwrap_or(0)
    }

    /// The rows split at `thresholds` (a model's long-context tiers, ascending): per band of
    /// prompt sizes, its shortest prompt (which picks its tier), its share of the rows and its
    /// share of the prompt tokens. One band holding everything when there are no thresholds.
    pub fn bands(&self, thresholds: &[u64]) -> Vec<Band> {
        let mut bands: Vec<Band> = Vec::new();
        let (rows, prompt) = (self.rows.max(1) as f64, self.prompt_tokens.max(1) as f64);
        let mut last = None;
        for (&len, &n) in &self.lengths {
            let band = thresholds.iter().filter(|&&t| len > t).count();
            if last != Some(band) {
                bands.push(Band {
                    least: len,
                    ..Band::default()
                });
                last = Some(band);
            }
            if let Some(b) = bands.last_mut() {
                b.rows += n as f64 / rows;
                b.prompt += (len * n) as f64 / prompt;
            }
        }
        if bands.is_empty() {
            bands.push(Band {
                least: 0,
                rows: 1.0,
                prompt: 1.0,
            });
        }
        bands
    }

    /// Rows whose prompt has more tokens than `limit`.
    pub fn rows_over(&self, limit: u64) -> u64 {
        self.lengths.range(limit + 1..).map(|(_, n)| n).sum()
    }
}
