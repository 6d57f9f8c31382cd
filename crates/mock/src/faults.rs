//! Random faults (--rate-429, --rate-500, --rate-hang, --rate-reset, --rate-malformed, and the
//! spoiled answers --rate-invalid-json, --rate-schema-break, --rate-cut, --rate-refusal) and
//! latency jitter, drawn from a small seeded generator. Each request gets its own stream,
//! derived from --seed and the request's arrival index, so no state is shared between
//! requests (no lock) and a run with the same arrival order makes the same decisions.
//! Turning a fault into an answer is `service`'s job.

use std::time::Duration;

use super::config::FaultRates;
use super::structured::Spoiled;

/// SplitMix64: tiny, fast and statistically fine for fault injection. Not cryptographic.
pub(crate) struct Rng(u64);

impl Rng {
    /// The stream of the `index`-th request of a server seeded with `seed`.
    pub fn for_request(seed: u64, index: u64) -> Self {
        let mut rng = Rng(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
        // One step so that neighbouring indexes do not start from neighbouring states.
        rng.next_u64();
        rng
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One injected failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    TooMany,
    /// 500, 502 or 503.
    ServerError(u16),
    Hang,
    Reset,
    Malformed,
    /// A well-formed answer whose text is spoiled (for a text family; others answer normally).
    Spoiled(Spoiled),
}

/// The configured fault rates, ready to draw from.
pub(crate) struct Faults {
    rates: FaultRates,
    /// Whether any rate is above zero; when not, `draw` does not touch the generator.
    any: bool,
}

impl Faults {
    pub fn new(rates: FaultRates) -> Self {
        let any = rates.all().iter().any(|&p| p > 0.0);
        Faults { rates, any }
    }

    /// One draw decides among the faults: they are exclusive, each with its own probability
    /// (their sum is at most 1, checked by the config).
    pub fn draw(&self, rng: &mut Rng) -> Option<Fault> {
        if !self.any {
            return None;
        }
        let r = &self.rates;
        let u = rng.unit();
        let mut edge = 0.0;
        let table = [
            (r.rate_429, Fault::TooMany),
            (r.rate_500, Fault::ServerError(0)),
            (r.hang, Fault::Hang),
            (r.reset, Fault::Reset),
            (r.malformed, Fault::Malformed),
            (r.invalid_json, Fault::Spoiled(Spoiled::InvalidJson)),
            (r.schema_break, Fault::Spoiled(Spoiled::SchemaBreak)),
            (r.cut, Fault::Spoiled(Spoiled::Cut)),
            (r.refusal, Fault::Spoiled(Spoiled::Refusal)),
        ];
        for (p, fault) in table {
            edge += p;
            if u < edge {
                return Some(match fault {
                    Fault::ServerError(_) => {
                        Fault::ServerError([500, 502, 503][(rng.next_u64() % 3) as usize])
                    }
                    other => other,
                });
            }
        }
        None
    }
}

/// The latency of one request: `base` plus uniform 0..`jitter`.
pub(crate) fn latency(base: Duration, jitter: Duration, rng: &mut Rng) -> Duration {
    if jitter.is_zero() {
        base
    } else {
        base + jitter.mul_f64(rng.unit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(rate_429: f64, rate_500: f64) -> FaultRates {
        FaultRates {
            rate_429,
            rate_500,
            ..FaultRates::default()
        }
    }

    #[test]
    fn same_seed_and_index_make_the_same_decision() {
        let faults = Faults::new(rates(0.3, 0.3));
        let run = |seed| {
            (0..200)
                .map(|i| faults.draw(&mut Rng::for_request(seed, i)))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn rates_are_roughly_honoured() {
        let faults = Faults::new(rates(0.2, 0.1));
        let draws: Vec<_> = (0..20_000)
            .map(|i| faults.draw(&mut Rng::for_request(1, i)))
            .collect();
        let share = |f: fn(&Option<Fault>) -> bool| draws.iter().filter(|d| f(d)).count() as f64 / 20_000.0;
        assert!((share(|d| *d == Some(Fault::TooMany)) - 0.2).abs() < 0.02);
        assert!((share(|d| matches!(d, Some(Fault::ServerError(_)))) - 0.1).abs() < 0.02);
    }

    #[test]
    fn rate_one_always_fires_and_zero_never_does() {
        let hang = Faults::new(FaultRates {
            hang: 1.0,
            ..FaultRates::default()
        });
        assert!((0..100).all(|i| hang.draw(&mut Rng::for_request(1, i)) == Some(Fault::Hang)));
        let none = Faults::new(FaultRates::default());
        assert!((0..100).all(|i| none.draw(&mut Rng::for_request(1, i)).is_none()));
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let (base, jitter) = (Duration::from_millis(50), Duration::from_millis(10));
        for i in 0..100 {
            let d = latency(base, jitter, &mut Rng::for_request(3, i));
            assert!(d >= base && d < base + jitter);
        }
    }
}
