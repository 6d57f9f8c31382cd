use super::*;

fn run(run: i64, started_at: i64, ended_at: i64) -> RunRecord {
    RunRecord {
        run,
        started_at,
        ended_at: Some(ended_at),
        outcome: Some("finished".into()),
        requests: 0,
        retries: 0,
        http_429: 0,
        limits: None,
        pid: None,
        on_wire: 0,
        claimed: 0,
        updated_at: Some(ended_at),
    }
}

/// Rows done at `ends`, as the report's timeline counts them at the moments `scope` asks for.
fn timeline(scope: &Scope, ctx: &EtaContext<'_>, ends: &[i64]) -> Timeline {
    let mut t = Timeline::new(View::moments(scope, ctx));
    for &at in ends {
        t.add(at, true);
    }
    t.seal();
    t
}

/// The first and last of `ends` within `[from, to)`.
fn span(ends: &[i64], from: i64, to: i64) -> crate::report::scope::Span {
    let within = || ends.iter().copied().filter(|&e| e >= from && e < to);
    within().min().zip(within().max())
}

#[test]
fn percentiles_are_nearest_rank() {
    let p = percentiles((1..=100).collect());
    assert_eq!((p.p50, p.p90, p.p99, p.max), (50, 90, 99, 100));
    let one = percentiles(vec![7]);
    assert_eq!((one.p50, one.p99, one.max), (7, 7, 7));
    assert_eq!(percentiles(Vec::new()).max, 0);
}

#[test]
fn the_eta_is_the_progress_lines_rows_left_over_the_runs_rate() {
    // 20 rows, 2 skipped as invalid; a 12 s run settles a row a second from 1 s to 6 s.
    let runs = [run(1, 0, 12_000)];
    let ends = [1_000, 2_000, 3_000, 4_000, 5_000, 6_000];
    let ctx = EtaContext {
        runs: &runs,
        total: 20,
        invalid: 2,
    };
    let scope = Scope::job(&runs, None, span(&ends, i64::MIN, i64::MAX));
    let eta = eta(&scope, &timeline(&scope, &ctx, &ends), &ctx);
    let at = |secs: f64| {
        eta.iter()
            .find(|(t, _)| (t - secs).abs() < 1e-9)
            .unwrap_or_else(|| panic!("a point at {secs} s"))
            .1
    };
    assert_eq!(at(0.0), None, "`?` before the first row");
    // At 6 s: 6 rows in 6 s, 20 - 2 - 6 = 12 left: 12 s, as the line says.
    assert_eq!(at(6.0), Some(12));
    assert_eq!(at(6.0), crate::progress::eta_secs(12, 6, 1.0, false));
    // At 12 s: 6 rows in 12 s, 12 left: 24 s.
    assert_eq!(at(12.0), Some(24));
    assert_eq!(eta.last(), Some(&(12.0, None)), "a gap after the run");
}

#[test]
fn a_later_run_counts_the_rows_settled_before_it_as_its_baseline() {
    let runs = [run(1, 0, 4_000), run(2, 10_000, 14_000)];
    let ends = [1_000, 2_000, 11_000, 12_000];
    let ctx = EtaContext {
        runs: &runs,
        total: 6,
        invalid: 0,
    };
    let (from, to) = Scope::run_window(&runs, 1);
    let scope = Scope::run(&runs, 1, None, span(&ends, from, to));
    assert_eq!(
        (scope.from, scope.to, scope.key.as_str()),
        (10_000, 14_000, "run-2-")
    );
    let eta = eta(&scope, &timeline(&scope, &ctx, &ends), &ctx);
    // 2 s into run 2: 2 rows in 2 s; 6 - 2 before - 2 = 2 left: 2 s.
    let two = eta
        .iter()
        .find(|(t, _)| (t - 2.0).abs() < 1e-9)
        .expect("a point at 2 s");
    assert_eq!(two.1, Some(2));
    assert!(eta.iter().all(|(t, _)| *t >= 0.0), "run 1 is not in run 2's view");
}
