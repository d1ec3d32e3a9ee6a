//! What the DPDK tests share: an EAL per test process, without hugepages
//! or PCI, under a file prefix unique to the test.

use dpdk::Eal;

/// Initialises the EAL for test `name` with the extra `args` (e.g.
/// `--vdev=net_null0`). The main lcore may run on either core, so parallel
/// tests do not pile onto core 0. Dropping the `Eal` (also while a failing
/// test unwinds) cleans up and removes the runtime directory.
pub fn eal(name: &str, args: &[&str]) -> Eal {
    let prefix = format!("dtnet-test-{name}-{}", std::process::id());
    let mut all = vec![
        "--no-huge".to_owned(),
        "--no-pci".to_owned(),
        "-m".to_owned(),
        "64".to_owned(),
        "--no-telemetry".to_owned(),
        "--lcores=0@(0-1)".to_owned(),
        "--log-level=lib.eal:warning".to_owned(),
        format!("--file-prefix={prefix}"),
    ];
    all.extend(args.iter().map(|&a| a.to_owned()));
    let eal = Eal::init(&all).expect("EAL init");
    let dir = eal.runtime_dir().expect("a primary process has a runtime dir");
    assert!(dir.ends_with(&prefix), "runtime dir {} is named after the file prefix", dir.display());
    eal
}
