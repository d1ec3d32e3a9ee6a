//! The default scenario: deterministic by seed, and its checks can fail.

use harness::bench::{self, Budget};
use harness::wire_run::{run, WireRun};

fn params(seed: u64, loss: f64) -> WireRun {
    WireRun { seed, flows: 400, loss }
}

#[test]
fn same_seed_same_outcome_other_seed_other_outcome() {
    let a = run(&params(7, 0.05)).unwrap();
    let b = run(&params(7, 0.05)).unwrap();
    let c = run(&params(8, 0.05)).unwrap();
    assert!(a.passed() && c.passed(), "{a}\n{c}");
    assert_eq!(format!("{a}"), format!("{b}"));
    assert_ne!(format!("{a}"), format!("{c}"));
}

#[test]
fn total_loss_is_counted_not_hidden() {
    let report = run(&params(1, 1.0)).unwrap();
    assert_eq!((report.delivered, report.lost), (0, report.sent));
    assert!(report.passed(), "{report}");
}

#[test]
fn every_benchmark_runs_and_reports_a_positive_figure() {
    let results = bench::run(&[], Budget::SMOKE);
    let names: Vec<&str> = results.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, bench::names());
    assert!(results.iter().all(|m| m.value.is_finite() && m.value > 0.0), "{results:?}");
    let only_rss = bench::run(&["softrss.f".to_string()], Budget::SMOKE);
    assert_eq!(only_rss.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["softrss.fast"]);
}
