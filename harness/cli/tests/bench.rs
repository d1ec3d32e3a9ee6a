//! Every benchmark runs and reports a figure; prefixes select benchmarks.

use bench::Budget;

#[test]
fn every_benchmark_runs_and_reports_a_positive_figure() {
    // The cross-process ring benchmark starts `dtnet` as its peer.
    std::env::set_var("DTNET_BIN", env!("CARGO_BIN_EXE_dtnet"));
    let results = bench::run(&[], Budget::SMOKE);
    let names: Vec<&str> = results.iter().map(|m| m.name.as_str()).collect();
    // The kernel peer needs root and TUN; elsewhere it says why and is absent.
    let kernel_peer = kernel_peer::netns::unavailable().is_none();
    let expected: Vec<&str> =
        bench::names().into_iter().filter(|&n| kernel_peer || n != bench::kernel_peer::NAME).collect();
    assert_eq!(names, expected);
    assert!(results.iter().all(|m| m.value.is_finite() && m.value > 0.0), "{results:?}");
    let only_rss = bench::run(&["softrss.f".to_string()], Budget::SMOKE);
    assert_eq!(only_rss.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["softrss.fast"]);
}
