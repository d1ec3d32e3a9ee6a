//! TCP segmentation offload end to end, in simulation.
//!
//! Both hosts enable TSO (`GroupConfig::tso`), so the sending stacks build
//! TCP segments of up to 64 KiB. The client's NIC sends them whole, as
//! super-frames (as Linux sends GSO packets across a veth); over perfect
//! links the bridge passes them on and the server's large receive offload
//! hands them up whole, while before a lossy link the bridge cuts them at
//! the wire MSS, so the server only receives frames of at most 1514 bytes.
//! Every byte must still arrive intact (also under loss), the sender's port
//! counters must count the segments each super-frame stands for, the same
//! seed must give the same capture, and every run ends with accounting
//! closed and every pool back to its baseline.

use rstest::rstest;
use scenario::tcp_run::{Executor, TcpReport, TcpRun};
use stack::{ForwardMode, ThreadModel};
use user_vbridge::Impairments;

const CONNS: u64 = 4;
const BYTES: u64 = 1 << 20;
/// Largest frame on a 1500-byte MTU wire: IP MTU plus the Ethernet header.
const WIRE_FRAME: usize = 1514;

fn run(mode: ForwardMode, loss: f64, ipv6: bool) -> TcpReport {
    run_impaired(mode, Impairments { loss, ..Impairments::default() }, true, ipv6)
}

/// A checked run with `impairments` on both hosts' links into the bridge,
/// and on those out of it if `egress`.
fn run_impaired(mode: ForwardMode, impairments: Impairments, egress: bool, ipv6: bool) -> TcpReport {
    let mut run = TcpRun::new(mode, ThreadModel::RunToWakeup, Executor::Sim, CONNS, BYTES);
    run.tso = true;
    run.impair_egress = egress;
    run.ipv6 = ipv6;
    run.capture = true;
    run.impairments = impairments.clone();
    let report = run.run().unwrap();
    report.check().unwrap_or_else(|e| panic!("{mode:?} {impairments:?} ipv6 {ipv6}: {e}"));
    report
}

/// Lengths of the frames recorded on `interface`.
fn lengths(report: &TcpReport, interface: impl Fn(&str) -> bool) -> Vec<usize> {
    let on = |r: &&capture::Record| r.interface.as_deref().is_some_and(&interface);
    report.captures.iter().filter(on).map(|r| r.data.len()).collect()
}

fn wire_lengths(report: &TcpReport) -> Vec<usize> {
    lengths(report, |i| i == "client" || i == "server")
}

fn server_queue_lengths(report: &TcpReport) -> Vec<usize> {
    lengths(report, |i| i.starts_with("server/rxq"))
}

fn client_queue_lengths(report: &TcpReport) -> Vec<usize> {
    lengths(report, |i| i.starts_with("client/txq"))
}

/// Frames the client's stacks handed to `tx_burst`, frames its port sent,
/// and the port's count of extra TSO segments.
fn client_port_counts(report: &TcpReport) -> (u64, u64, u64) {
    let port = &report.world.hosts[1].port;
    let xstats = ethdev::EthDev::xstats(port).unwrap();
    let sum = |f: &dyn Fn(&str) -> bool| xstats.iter().filter(|x| f(&x.name)).map(|x| x.value).sum::<u64>();
    let accepted = sum(&|n| n.starts_with("tx_q") && n.ends_with("_accepted"));
    let extra = sum(&|n| n == "tx_tso_extra_segments");
    (accepted, ethdev::EthDev::stats(port).unwrap().opackets, extra)
}

#[rstest]
fn tso_bulk_crosses_whole_over_perfect_links_and_is_cut_before_lossy_ones(
    #[values(ForwardMode::Rss, ForwardMode::SoftForward)] mode: ForwardMode,
    #[values(0.0, 0.02)] loss: f64,
) {
    let report = run(mode, loss, false);
    let sent = lengths(&report, |i| i == "client");
    let biggest = sent.iter().copied().max().unwrap_or(0);
    assert!(biggest > 8 * WIRE_FRAME, "the client's port sent no super-frame (largest {biggest})");
    let received = server_queue_lengths(&report);
    let biggest = received.iter().copied().max().unwrap_or(0);
    if loss == 0.0 {
        assert!(biggest > 8 * WIRE_FRAME, "the server's LRO took no super-frame whole (largest {biggest})");
    } else {
        assert_eq!(biggest, WIRE_FRAME, "the bridge cuts super-frames at the wire MSS before a lossy link");
    }
    let queued = client_queue_lengths(&report);
    let biggest = queued.iter().copied().max().unwrap_or(0);
    assert!(biggest > 8 * WIRE_FRAME, "the client's stacks never handed the NIC a large segment (largest {biggest})");
    let (accepted, sent, extra) = client_port_counts(&report);
    assert!(accepted < sent, "no super-frame counted as its segments: {accepted} frames in, {sent} out");
    assert_eq!(sent - accepted, extra, "every extra frame is a TSO segment");
    let client = &report.world.hosts[1].group;
    let asked: u64 = (0..client.len()).map(|i| client.stats(i).device.tso_frames).sum();
    assert!(asked > 0 && asked < accepted, "{asked} TSO requests among {accepted} frames");
}

/// Under the sim executor a seed fixes the run: super-frames, the bridge's
/// cuts before a lossy link and the losses give the same capture twice.
#[test]
fn tso_runs_are_deterministic() {
    let first = run(ForwardMode::Rss, 0.02, false);
    let second = run(ForwardMode::Rss, 0.02, false);
    assert!(!first.captures.is_empty());
    assert!(first.captures == second.captures, "the same seed gave different captures");
}

/// smoltcp does not offload IPv6 segmentation, so TSO hosts send IPv6 TCP
/// at the wire MSS, with the NIC filling in the checksums.
#[test]
fn ipv6_with_tso_has_checksum_offload_only() {
    let report = run(ForwardMode::Rss, 0.0, true);
    let queued = client_queue_lengths(&report);
    assert!(!queued.is_empty() && queued.iter().all(|&n| n <= WIRE_FRAME), "an IPv6 segment above the MTU");
    assert!(wire_lengths(&report).contains(&WIRE_FRAME));
    let (accepted, sent, extra) = client_port_counts(&report);
    assert_eq!((accepted, extra), (sent, 0), "no segmentation for IPv6");
}

/// TSO hosts also have receive checksum offload: a NIC believes the
/// checksums the sending NIC (or the bridge cutting a super-frame) filled
/// in, and smoltcp does not sum them again. A frame whose bit the bridge
/// flipped loses that trust, so its receiver verifies it, finds the bad
/// checksum and drops it (counted), and TCP sends it again: every byte
/// still arrives intact (the run's check compares each one).
#[test]
fn tso_bulk_survives_corruption() {
    // Each frame crosses one impaired link, its sender's into the bridge:
    // two bit flips in one frame can leave its checksum right (with seed 1
    // they do), one never does.
    let corrupt = Impairments { corrupt: 0.02, ..Impairments::default() };
    let report = run_impaired(ForwardMode::Rss, corrupt, false, false);
    let world = &report.world;
    let directions = [user_vbridge::Direction::Ingress, user_vbridge::Direction::Egress];
    let corrupted: u64 = world
        .hosts
        .iter()
        .flat_map(|host| directions.iter().filter_map(|&d| world.bridge.link_stats(host.bridge_port, d)))
        .map(|link| link.corrupted)
        .sum();
    let dropped: u64 =
        world.hosts.iter().flat_map(|host| (0..host.group.len()).map(|i| host.group.stats(i).checksum_drops)).sum();
    assert!(corrupted > 0, "the bridge corrupted no frame");
    assert!(dropped > 0, "no corrupted frame was dropped for its checksum ({corrupted} corrupted)");
    assert!(dropped <= corrupted, "{dropped} frames dropped for a bad checksum, only {corrupted} corrupted");
}
