//! `dtnet real-nic` as a user runs it. With DPDK compiled in (the `dpdk`
//! crate's feature): the suite end to end on a net_ring vdev (a loopback
//! port without RSS, rte_flow or offloads), as a text report and as JSON,
//! and the errors for bad EAL arguments (EAL's cause quoted, its usage text
//! nowhere) and a missing port. Without it: the
//! command says the build has no DPDK support and how to get one.
//!
//! Each run initialises DPDK's EAL in its own `dtnet` process, under a file
//! prefix of its own, so tests running side by side do not share a runtime
//! directory.

use assert_cmd::Command;

/// EAL arguments for a test: no hugepages or PCI, a net_ring loopback port,
/// and a file prefix unique to the test and this process.
fn eal(test: &str) -> Vec<String> {
    let prefix = format!("--file-prefix=dtnet-cli-realnic-{test}-{}", std::process::id());
    ["--no-huge", "--no-pci", "-m", "64", "--no-telemetry", "--lcores=0@(0-1)", "--vdev", "net_ring0", &prefix]
        .map(String::from)
        .to_vec()
}

/// `dtnet real-nic` with the suite's `options`, then `--` and `eal`.
fn real_nic(options: &[&str], eal: &[String]) -> Command {
    let mut cmd = Command::cargo_bin("dtnet").unwrap();
    cmd.arg("real-nic").args(options).arg("--").args(eal);
    cmd
}

/// Quick options for net_ring0: few flows, a short throughput run.
const QUICK: &[&str] = &["--tx", "net_ring0", "--queues", "2", "--flows", "32", "--seconds", "0.3"];

dpdk::if_dpdk! {
    {
        /// The check names the suite runs, in order.
        const CHECKS: [&str; 5] = ["rss_queue", "flow_steering", "rx_checksum", "tx_checksum", "tso"];

        #[test]
        fn on_a_ring_vdev_the_report_says_unsupported_by_device_and_measures_each_queue() {
            let out = real_nic(QUICK, &eal("text")).output().unwrap();
            let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success(), "no check fails on net_ring\n{stdout}\n{stderr}");
            let header = "real-NIC suite: tx net_ring -> rx net_ring";
            assert!(stdout.starts_with(header), "DPDK's log stays on stderr:\n{stdout}");
            for check in CHECKS {
                let line = stdout.lines().find(|l| l.trim_start().starts_with(check));
                let line = line.unwrap_or_else(|| panic!("{check}:\n{stdout}"));
                assert!(line.contains("unsupported by device"), "net_ring cannot do {check}: {line}");
            }
            let rss = stdout.lines().find(|l| l.contains("rss_queue")).unwrap();
            assert!(rss.contains("RETA"), "net_ring has no RETA, and the report says so: {rss}");
            assert!(!stdout.contains("passed") && !stdout.contains("FAILED"), "{stdout}");
            let total = stdout.lines().find(|l| l.trim_start().starts_with("throughput")).expect("throughput line");
            assert!(total.contains("Mpps received at 64 bytes"), "{total}");
            assert!(stdout.lines().any(|l| l.trim_start().starts_with("queue 0") && l.contains("Mpps")), "{stdout}");
            let tcp = stdout.lines().find(|l| l.trim_start().starts_with("tcp ")).expect("tcp line");
            assert!(tcp.contains("unsupported by device") && tcp.contains("loopback"), "one port carries no TCP: {tcp}");
        }

        #[test]
        fn the_json_report_has_every_check_and_each_queues_rate() {
            let out = real_nic(&[QUICK, &["--json"]].concat(), &eal("json")).output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
            assert_eq!(report["tx_driver"], "net_ring");
            assert_eq!(report["failed"], false);
            let checks = report["checks"].as_array().expect("checks");
            assert_eq!(checks.iter().map(|c| c["name"].as_str().unwrap()).collect::<Vec<_>>(), CHECKS);
            for check in checks {
                assert_eq!(check["verdict"], "unsupported by device", "{check}");
                assert!(!check["detail"].as_str().unwrap().is_empty(), "{check}");
            }
            let throughput = &report["throughput"];
            let queues = throughput["queues"].as_array().expect("per-queue rates");
            assert!(!queues.is_empty(), "{throughput}");
            let frames: u64 = queues.iter().map(|q| q["frames"].as_u64().unwrap()).sum();
            assert!(frames > 0 && frames <= throughput["sent"].as_u64().unwrap(), "{throughput}");
            assert!(throughput["mpps_64b"].as_f64().is_some_and(|m| m > 0.0), "{throughput}");
            assert_eq!(report["tcp"]["verdict"], "unsupported by device", "{report}");
        }

        /// As root: net_af_packet sends into a kernel interface that
        /// net_tap owns, so the two ports carry TCP between a stack group
        /// on each, and the report has the Gbit/s of each receive queue.
        #[test]
        fn between_af_packet_and_tap_the_report_has_tcp_gbits_per_queue() {
            if !rustix::process::geteuid().is_root() {
                eprintln!("skipped: net_tap and net_af_packet need root");
                return;
            }
            let iface = format!("dtcli{}", std::process::id());
            let mut eal = eal("tcp");
            eal.retain(|a| a != "--vdev" && a != "net_ring0");
            eal.extend([format!("--vdev=net_tap0,iface={iface}"), format!("--vdev=net_af_packet0,iface={iface}")]);
            let options =
                ["--tx", "net_af_packet0", "--rx", "net_tap0", "--queues", "1", "--flows", "16", "--seconds", "0.2"];
            let out = real_nic(&[&options[..], &["--tcp-mib", "4", "--json"]].concat(), &eal).output().unwrap();
            let report: serde_json::Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
            let tcp = &report["tcp"];
            assert_eq!(tcp["verdict"], "measured", "{report}");
            assert!(tcp["gbps"].as_f64().is_some_and(|g| g > 0.0), "{tcp}");
            let queues = tcp["queues"].as_array().expect("per-queue figures");
            assert_eq!(queues.len(), 1, "{tcp}");
            assert_eq!(queues[0]["bytes"].as_u64(), Some(2 * (4 << 20)), "both connections' bytes, verified: {tcp}");
            assert_eq!(report["failed"], false, "{report}");
        }

        #[test]
        fn bad_eal_arguments_and_a_missing_port_are_named_errors() {
            let mut bad = eal("bad-eal");
            bad.push("--no-such-eal-option".into());
            let out = real_nic(QUICK, &bad).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{stderr}");
            let named = stderr.contains("dtnet: DPDK's EAL did not start") && stderr.contains("--no-such-eal-option");
            assert!(named, "{stderr}");
            assert!(stderr.contains("unrecognized option '--no-such-eal-option'"), "EAL's own words: {stderr}");
            assert!(!stderr.contains("panicked"), "{stderr}");
            assert!(out.stdout.is_empty(), "DPDK's usage text stays out of stdout: {}", String::from_utf8_lossy(&out.stdout));
            assert!(!stderr.contains("EAL common options"), "and out of the error: {stderr}");

            let out = real_nic(&["--tx", "net_nothing0"], &eal("missing")).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{stderr}");
            assert!(stderr.contains("real-NIC suite") && stderr.contains("net_nothing0"), "{stderr}");
        }
    } else {
        #[test]
        fn without_dpdk_the_command_says_how_to_build_with_it() {
            let out = real_nic(QUICK, &eal("no-dpdk")).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{stderr}");
            assert!(stderr.contains("no DPDK support") && stderr.contains("--features dpdk"), "{stderr}");
        }
    }
}
