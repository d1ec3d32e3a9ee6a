//! The real-NIC suite (`dpdk::realnic`) on devices this machine has:
//! - two net_ring ports cabled back to back, which have no RSS, rte_flow
//!   or offloads: every check says "unsupported by device" (never
//!   "passed"), the throughput run counts frames, and the TCP run (a stack
//!   group on each port, one stack as net_ring has no RSS) verifies every
//!   byte of its connections and reports their Gbit/s on queue 0;
//! - one loopback port: the TCP run is unsupported (one port cannot carry
//!   TCP between two stack groups), never measured;
//! - a net_tap port and a net_af_packet port on one kernel interface (root
//!   only; each direction in its own test, as a run closes its ports):
//!   net_tap's driver verifies and fills in checksums and segments TCP in
//!   software, so receiving on it the rx checksum check passes and sending
//!   from it the tx checksum and TSO checks pass; its RSS check is
//!   unsupported (no RETA), flow steering passes or names why the kernel's
//!   tc refused the rule, and af_packet's missing offloads are unsupported.
#![cfg(feature = "dpdk")]

mod common;

use std::process::Command;
use std::time::Duration;

use dpdk::realnic::{self, Options, Outcome, TcpOutcome, CONNS_PER_STACK};

/// Payload of each TCP connection in these tests.
const TCP_BYTES: u64 = 4 << 20;

fn options(tx: &str, rx: &str) -> Options {
    Options { flows: 64, duration: Duration::from_millis(300), tcp_bytes: TCP_BYTES, ..Options::new(tx, rx) }
}

#[test]
fn on_ring_ports_every_check_is_unsupported_and_throughput_is_measured() {
    let eal = common::eal("realnic-ring", &[]);
    eal.ring_cable("rn", 4).expect("ring cable");
    let report = realnic::run(&eal, &options("net_ring_rn_a", "net_ring_rn_b")).expect("the suite runs");
    eprintln!("{report}");
    assert_eq!(report.checks.len(), 5);
    for check in &report.checks {
        assert!(matches!(check.outcome, Outcome::Unsupported(_)), "{}: {:?}", check.name, check.outcome);
    }
    let throughput = report.throughput.as_ref().expect("throughput runs on any device");
    let received: u64 = throughput.queues.iter().map(|q| q.frames).sum();
    assert!(throughput.sent > 0 && received > 0, "{throughput:?}");
    assert!(received <= throughput.sent, "only the suite's frames are counted");
    let TcpOutcome::Measured(tcp) = &report.tcp else { panic!("two ring ports carry TCP: {report}") };
    assert_eq!(tcp.queues.len(), 1, "net_ring has no RSS: one stack, one queue: {tcp:?}");
    let queue = &tcp.queues[0];
    assert_eq!(queue.conns, CONNS_PER_STACK, "{tcp:?}");
    assert_eq!(queue.bytes, CONNS_PER_STACK as u64 * TCP_BYTES, "every byte verified by the receiver: {tcp:?}");
    assert!(queue.gbps > 0.0 && tcp.seconds > 0.0, "{tcp:?}");
    assert!(!report.failed());
    let text = report.to_string();
    assert!(text.contains("unsupported by device"), "{text}");
    assert!(text.lines().any(|l| l.contains("queue 0") && l.contains("Gbit/s TCP")), "{text}");
}

#[test]
fn on_one_loopback_port_tcp_is_unsupported() {
    let eal = common::eal("realnic-loopback", &[]);
    eal.ring_cable("lo", 1).expect("ring cable");
    let report = realnic::run(&eal, &Options { queues: 1, ..options("net_ring_lo_a", "net_ring_lo_a") }).expect("runs");
    let TcpOutcome::Unsupported(why) = &report.tcp else { panic!("one port: {report}") };
    assert!(why.contains("loopback"), "{why}");
    assert!(report.to_string().contains("tcp            unsupported by device"), "{report}");
    assert!(!report.failed(), "{report}");
}

#[test]
fn a_missing_port_is_a_named_error() {
    let eal = common::eal("realnic-missing", &[]);
    let err = realnic::run(&eal, &options("net_nothing0", "net_nothing0")).unwrap_err();
    assert!(err.to_string().contains("net_nothing0"), "{err}");
    let zero = Options { queues: 0, ..options("a", "b") };
    assert!(realnic::run(&eal, &zero).is_err(), "zero queues are refused");
}

/// The EAL of a test with a net_tap port and a net_af_packet port on the
/// same kernel interface: what net_af_packet sends the kernel hands to
/// net_tap, what net_tap sends net_af_packet sees. `None` without root.
fn tap_and_af_packet(name: &str) -> Option<dpdk::Eal> {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: net_tap and net_af_packet need root");
        return None;
    }
    let iface = format!("dtrn{}", std::process::id());
    let vdevs = [format!("--vdev=net_tap0,iface={iface}"), format!("--vdev=net_af_packet0,iface={iface}")];
    let eal = common::eal(name, &[&vdevs[0], &vdevs[1]]);
    let _ = Command::new("sysctl").args(["-qw", &format!("net.ipv6.conf.{iface}.disable_ipv6=1")]).status();
    Some(eal)
}

#[test]
fn receiving_on_net_tap_the_rx_checksum_check_passes() {
    let Some(eal) = tap_and_af_packet("realnic-into-tap") else { return };
    let report = realnic::run(&eal, &Options { queues: 2, ..options("net_af_packet0", "net_tap0") }).expect("runs");
    eprintln!("{report}");
    assert!(matches!(report.outcome("rx_checksum"), Some(Outcome::Passed(_))), "{report}");
    let Some(Outcome::Unsupported(why)) = report.outcome("rss_queue") else { panic!("net_tap has no RETA: {report}") };
    assert!(why.contains("RETA"), "{why}");
    match report.outcome("flow_steering") {
        Some(Outcome::Passed(_)) => {}
        Some(Outcome::Unsupported(why)) => assert!(why.contains("net_tap"), "{why}"),
        other => panic!("flow steering: {other:?}"),
    }
    for name in ["tx_checksum", "tso"] {
        assert!(matches!(report.outcome(name), Some(Outcome::Unsupported(_))), "af_packet has no {name}: {report}");
    }
    assert!(!report.failed(), "{report}");
}

#[test]
fn sending_from_net_tap_the_tx_checksum_and_tso_checks_pass() {
    let Some(eal) = tap_and_af_packet("realnic-from-tap") else { return };
    let report = realnic::run(&eal, &Options { queues: 1, ..options("net_tap0", "net_af_packet0") }).expect("runs");
    eprintln!("{report}");
    for name in ["tx_checksum", "tso"] {
        assert!(matches!(report.outcome(name), Some(Outcome::Passed(_))), "{name}: {report}");
    }
    assert!(matches!(report.outcome("rx_checksum"), Some(Outcome::Unsupported(_))), "af_packet checks no checksums");
    assert!(report.throughput.as_ref().is_ok_and(|t| t.queues.iter().any(|q| q.frames > 0)), "{report}");
    assert!(!report.failed(), "{report}");
}
