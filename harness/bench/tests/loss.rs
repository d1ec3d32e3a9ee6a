//! Loss recovery: a verified stream over a link that loses the sender's
//! frames, and the same-run comparison with the kernel with an nftables random drop (this kernel has no netem).
//! The test names contain `threads` so nextest runs them one at a time.

use bench::loss::{stream, KERNEL_NAMES, NAMES, RATES, RATIO_NAMES};
use bench::Budget;

/// Whether the test runs as root with `nft`, `ip`, `ethtool` and `iperf3`,
/// read independently of the code under test.
fn kernel_baseline_possible() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:"));
    let root = uid.and_then(|ids| ids.split_whitespace().nth(1)) == Some("0");
    let path = std::env::var("PATH").unwrap_or_default() + ":/usr/sbin:/sbin";
    let tools = ["iperf3", "ip", "ethtool", "nft"]
        .iter()
        .all(|tool| path.split(':').any(|dir| std::path::Path::new(dir).join(tool).exists()));
    root && tools
}

#[test]
fn a_stream_over_a_lossy_link_threads_recovers_every_byte() {
    for rate in &RATES {
        let len = 1 << 20;
        let run = stream(len, rate).unwrap_or_else(|e| panic!("{}: {e}", rate.ours));
        // About 720 data frames at 1 MiB: 1 % loss drops seven on average;
        // none at all has a chance of 0.07 %.
        assert!(run.lost > 0, "{}: the link lost nothing", rate.ours);
        assert!(run.gbits.is_finite() && run.gbits > 0.0, "{}: {run:?}", rate.ours);
    }
}

#[test]
fn loss_figures_threads_come_in_the_default_run_and_ratios_only_when_selected() {
    let names = bench::names();
    assert!(NAMES.iter().all(|n| names.contains(n)), "{names:?}");
    assert!(KERNEL_NAMES.iter().chain(&RATIO_NAMES).all(|n| !names.contains(n)), "{names:?}");
    let results = bench::run(&["tcp.goodput.loss".to_string()], Budget::SMOKE);
    let got: Vec<&str> = results.iter().map(|m| m.name.as_str()).collect();
    let mut expected = NAMES.to_vec();
    if kernel_baseline_possible() {
        expected.extend(RATIO_NAMES);
    }
    assert_eq!(got, expected, "{results:?}");
    assert!(results.iter().all(|m| m.value.is_finite() && m.value > 0.0), "{results:?}");
}
