//! The kernel TCP baseline: a real `iperf3` transfer over a veth pair between
//! two namespaces when the host allows it, a clear skip when it does not.
//! The test names contain `threads` so nextest runs them one at a time.

use bench::kernel::{kernel_goodput, KernelSkip, NAME, OFFLOAD};
use bench::Budget;

/// Whether the test runs as root (effective uid 0), read independently of
/// the code under test.
fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:"));
    uid.and_then(|ids| ids.split_whitespace().nth(1)) == Some("0")
}

#[test]
fn kernel_baseline_threads_runs_iperf3() {
    match kernel_goodput(1) {
        Ok(gbits) => assert!(gbits.is_finite() && gbits > 0.0, "goodput {gbits} Gbit/s"),
        Err(skip) if !is_root() => {
            assert_eq!(skip, KernelSkip::NotRoot);
            assert!(skip.to_string().contains("not root"), "{skip}");
        }
        Err(skip @ KernelSkip::MissingTool(_)) => assert!(skip.to_string().contains("not installed"), "{skip}"),
        Err(skip) => panic!("root with the tools present, yet the baseline failed: {skip}"),
    }
}

/// Whether every tool the baseline runs is on the PATH (or in /usr/sbin,
/// /sbin), looked up independently of the code under test.
fn has_tools() -> bool {
    let path = std::env::var("PATH").unwrap_or_default() + ":/usr/sbin:/sbin";
    ["iperf3", "ip", "ethtool", "nft"]
        .iter()
        .all(|tool| path.split(':').any(|dir| std::path::Path::new(dir).join(tool).exists()))
}

#[test]
fn kernel_bench_threads_runs_only_when_selected() {
    let loss = bench::loss::KERNEL_NAMES;
    let kernel = [NAME, OFFLOAD, bench::kernel_conn::NAME, loss[0], loss[1]];
    assert!(kernel.iter().all(|name| !bench::names().contains(name)));
    let results = bench::run(&["kernel.tcp".to_string()], Budget::SMOKE);
    let names: Vec<&str> = results.iter().map(|m| m.name.as_str()).collect();
    let expected: &[&str] = if is_root() && has_tools() { &kernel } else { &[] };
    assert_eq!(names, expected, "root {} tools {}: {results:?}", is_root(), has_tools());
    assert!(results.iter().all(|m| m.value.is_finite() && m.value > 0.0), "{results:?}");
}

/// The same-run ratios against the kernel: present exactly when the
/// baselines can run, each a positive factor.
#[test]
fn kernel_ratios_threads_compare_with_a_same_run_baseline() {
    let prefixes = ["tcp.conn_rate.ratio".to_string(), "tcp.goodput.tso.ratio".to_string()];
    // `tcp.goodput.tso.ratio_to_1500` (no baseline) shares the prefix.
    let results: Vec<_> =
        bench::run(&prefixes, Budget::SMOKE).into_iter().filter(|m| m.name.ends_with(".ratio")).collect();
    let names: Vec<&str> = results.iter().map(|m| m.name.as_str()).collect();
    let expected: &[&str] =
        if is_root() && has_tools() { &["tcp.goodput.tso.ratio", "tcp.conn_rate.ratio"] } else { &[] };
    assert_eq!(names, expected, "{results:?}");
    assert!(results.iter().all(|m| m.unit == "x" && m.value.is_finite() && m.value > 0.0), "{results:?}");
}
