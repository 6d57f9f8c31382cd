//! The done rows' usage, summed into the groups that pay the same prices: by the model the
//! requests name, by route (live or the Batch API), and by long-context tier (the prompt size
//! bands the job's price tiers cut). Pricing the groups is `budget`'s; this only sums, so a
//! job of a million rows is priced from a handful of sums, not row by row.

use super::{token_sum, tokens_of, Store};

/// Token sums of a group of done rows. Details a server did not report count as 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageSums {
    pub prompt: u64,
    pub cached: u64,
    pub cache_creation: u64,
    pub completion: u64,
    pub reasoning: u64,
}

/// Done rows that pay the same prices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageGroup {
    /// The model the rows' requests name (`''` for none), or the job's fixed model.
    pub model: String,
    /// Done through the Batch API.
    pub batch: bool,
    /// The smallest prompt of a row in the group: every row's prompt lies in the same band
    /// between tier thresholds, so this picks the group's tier.
    pub least_prompt: u64,
    pub sums: UsageSums,
}

/// The done rows' usage, by group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobUsage {
    pub groups: Vec<UsageGroup>,
}

impl JobUsage {
    /// The sums of the rows of `model` done live (`batch` false) or through the Batch API.
    pub fn of(&self, model: &str, batch: bool) -> UsageSums {
        let mut total = UsageSums::default();
        for g in self
            .groups
            .iter()
            .filter(|g| g.model == model && g.batch == batch)
        {
            total.prompt += g.sums.prompt;
            total.cached += g.sums.cached;
            total.cache_creation += g.sums.cache_creation;
            total.completion += g.sums.completion;
            total.reasoning += g.sums.reasoning;
        }
        total
    }
}

impl Store {
    /// The usage of the done rows, grouped by the model their requests name (all under `fixed`
    /// when the job names one), by route, and by the band of prompt sizes between the
    /// `thresholds` (the job's long-context tiers; any order).
    pub fn usage_by_model(&self, fixed: Option<&str>, thresholds: &[u64]) -> anyhow::Result<JobUsage> {
        self.usage_where(fixed, thresholds, false)
    }

    /// The same sums over the rows done from the response cache, which cost nothing: what the
    /// cache saved, priced like a bill.
    pub fn cached_usage_by_model(&self, fixed: Option<&str>, thresholds: &[u64]) -> anyhow::Result<JobUsage> {
        self.usage_where(fixed, thresholds, true)
    }

    /// The done rows' usage sums (and those of the rows whose answers broke the job's
    /// `--schema`: rejected, or asked again in a follow-up batch; paid for too), of the rows answered by a request (`cached` false) or from
    /// the response cache (true).
    fn usage_where(&self, fixed: Option<&str>, thresholds: &[u64], cached: bool) -> anyhow::Result<JobUsage> {
        let mut cuts = thresholds.to_vec();
        cuts.sort_unstable();
        cuts.dedup();
        // The band a prompt lies in: how many thresholds it is above. The thresholds are our
        // own numbers, so they are written into the query.
        let prompt = "(CASE WHEN typeof(prompt_tokens) = 'integer' THEN prompt_tokens ELSE 0 END)";
        let band = match cuts.is_empty() {
            true => "0".to_string(),
            false => cuts
                .iter()
                .map(|t| format!("({prompt} > {t})"))
                .collect::<Vec<_>>()
                .join(" + "),
        };
        // Each row's details clamped as the formula clamps one request's (a server that reports
        // more cached tokens than prompt tokens), so the sums price as the rows would one by one.
        let sums = [
            "prompt_tokens",
            "min(cached_tokens, prompt_tokens)",
            "min(cache_creation_tokens, prompt_tokens - coalesce(min(cached_tokens, prompt_tokens), 0))",
            "completion_tokens",
            "min(reasoning_tokens, completion_tokens)",
        ]
        .map(token_sum)
        .join(", ");
        let model = match fixed {
            Some(_) => "?1",
            None => "coalesce(json_extract(request, '$.model'), '')",
        };
        let sql = format!(
            "SELECT {model}, part IS NOT NULL, {band}, min({prompt}), {sums}
               FROM rows WHERE (state = 'done' OR schema IS NOT NULL OR reasked > 0) AND cached = {} GROUP BY 1, 2, 3",
            i64::from(cached)
        );
        let mut q = self.conn.prepare(&sql)?;
        let mut usage = JobUsage::default();
        let mut rows = match fixed {
            Some(m) => q.query([m])?,
            None => q.query([])?,
        };
        while let Some(r) = rows.next()? {
            let n = |i| r.get::<_, f64>(i).map(tokens_of);
            let least: i64 = r.get(3)?;
            usage.groups.push(UsageGroup {
                model: r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                batch: r.get(1)?,
                least_prompt: u64::try_from(least).unwrap_or(0),
                sums: UsageSums {
                    prompt: n(4)?,
                    cached: n(5)?,
                    cache_creation: n(6)?,
                    completion: n(7)?,
                    reasoning: n(8)?,
                },
            });
        }
        Ok(usage)
    }
}
