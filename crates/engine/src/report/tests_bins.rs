use super::*;

/// The reference: nearest-rank percentiles of a sorted `Vec` (what the report computed before
/// it streamed).
fn sorted_percentiles(mut values: Vec<i64>) -> Percentiles {
    values.sort_unstable();
    let at = |q: f64| {
        let rank = (q * values.len() as f64).ceil() as usize;
        values[rank.clamp(1, values.len()) - 1]
    };
    Percentiles {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        max: values[values.len() - 1],
    }
}

/// A small deterministic generator (xorshift), so the test needs no seed file or crate.
fn values(n: usize, seed: u64, modulo: u64) -> Vec<i64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % modulo) as i64
        })
        .collect()
}

#[test]
fn latency_counts_give_the_same_percentiles_as_sorting_every_value() {
    for (n, modulo) in [
        (1, 10),
        (2, 3),
        (7, 1000),
        (100, 5),
        (1_000, 100_000),
        (50_001, 2_000),
    ] {
        let v = values(n, n as u64 * 7919 + 1, modulo);
        let mut counts = Latencies::default();
        v.iter().for_each(|&ms| counts.add(ms));
        assert_eq!(counts.percentiles(), sorted_percentiles(v.clone()), "{n} values");
        assert_eq!(counts.counts().map(|c| c.1).sum::<u64>(), n as u64);
    }
    assert_eq!(Latencies::default().percentiles(), Percentiles::default());
}

#[test]
fn latency_counts_hold_one_entry_per_distinct_value() {
    let mut counts = Latencies::default();
    for i in 0..100_000 {
        counts.add(i % 250);
    }
    assert_eq!(counts.counts().count(), 250);
    assert_eq!(counts.percentiles().max, 249);
}

#[test]
fn marks_keep_one_per_bin_and_count_every_one() {
    let mut m = Marks::default();
    m.add(10.0, 1.0, 1.0);
    m.add(10.0, 5.0, 6.0);
    assert!(!m.merged(), "two marks far apart are both kept");
    assert_eq!(m.xs(), vec![1.0, 5.0]);
    for i in 0..100_000 {
        let x = i as f64 / 10_000.0;
        m.add(10.0, x, x + 0.5);
    }
    assert_eq!(m.total, 100_002);
    assert!(m.merged());
    assert_eq!(m.xs().len(), MARK_BINS, "at most one mark per bin");
    // A pause widened to the furthest end in its bin: the 5.0 bin also held 5.0..5.5 and more.
    let five = m.ranges().into_iter().find(|r| r.0 == 5.0).expect("the 5 s mark");
    assert_eq!(five.1, 6.0);
}

#[test]
fn steps_keep_the_last_value_of_each_bin_from_its_first_change() {
    let mut s = Steps::default();
    s.add(100.0, 1.0, 60.0);
    s.add(100.0, 1.01, 30.0);
    s.add(100.0, 50.0, 90.0);
    assert_eq!(s.points(), vec![(1.0, 30.0), (50.0, 90.0)]);
}

#[test]
fn top_keeps_the_greatest_keys_the_earlier_of_equal_ones_first() {
    let v = values(10_000, 42, 300);
    let mut top = Top::new(10);
    for (i, &k) in v.iter().enumerate() {
        top.offer(k, || i);
    }
    // The reference: a stable sort of every item by key, greatest first.
    let mut all: Vec<usize> = (0..v.len()).collect();
    all.sort_by_key(|&i| std::cmp::Reverse(v[i]));
    all.truncate(10);
    assert_eq!(top.into_items(), all);
}

#[test]
fn the_timeline_counts_the_rows_settled_at_or_before_each_moment() {
    let ends = [
        (5, true),
        (10, false),
        (10, true),
        (11, true),
        (30, false),
        (1, true),
    ];
    let mut t = Timeline::new(vec![10, 0, 20, 9, 10, 40]);
    for (at, done) in ends {
        t.add(at, done);
    }
    t.seal();
    assert_eq!(t.at(0), (0, 0));
    assert_eq!(t.at(9), (2, 0));
    assert_eq!(t.at(10), (3, 1), "an end at the moment counts");
    assert_eq!(t.at(20), (4, 1));
    assert_eq!(t.at(40), (4, 2));
}
