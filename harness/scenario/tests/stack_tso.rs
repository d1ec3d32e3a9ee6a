//! TCP segmentation offload end to end, in simulation.
//!
//! Both hosts enable TSO (`GroupConfig::tso`), so the sending stacks build
//! TCP segments of up to 64 KiB and the client's NIC cuts them at the wire
//! MSS. Every byte must still arrive intact (also under loss), the wire
//! must only ever carry frames of at most 1514 bytes while the transmit
//! queues did carry larger ones, the sender's port counters must show more
//! frames leaving than the stacks handed over, and every run ends with
//! accounting closed and every pool back to its baseline.

use rstest::rstest;
use scenario::tcp_run::{Executor, TcpReport, TcpRun};
use stack::{ForwardMode, ThreadModel};
use user_vbridge::Impairments;

const CONNS: u64 = 4;
const BYTES: u64 = 1 << 20;
/// Largest frame on a 1500-byte MTU wire: IP MTU plus the Ethernet header.
const WIRE_FRAME: usize = 1514;

fn run(mode: ForwardMode, loss: f64, ipv6: bool) -> TcpReport {
    let mut run = TcpRun::new(mode, ThreadModel::RunToWakeup, Executor::Sim, CONNS, BYTES);
    run.tso = true;
    run.ipv6 = ipv6;
    run.capture = true;
    run.impairments = Impairments { loss, ..Impairments::default() };
    let report = run.run().unwrap();
    report.check().unwrap_or_else(|e| panic!("{mode:?} loss {loss} ipv6 {ipv6}: {e}"));
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
fn tso_bulk_is_cut_at_the_wire_mtu(
    #[values(ForwardMode::Rss, ForwardMode::SoftForward)] mode: ForwardMode,
    #[values(0.0, 0.02)] loss: f64,
) {
    let report = run(mode, loss, false);
    let wire = wire_lengths(&report);
    assert!(wire.iter().all(|&n| n <= WIRE_FRAME), "a frame above {WIRE_FRAME} bytes reached the wire");
    assert!(wire.contains(&WIRE_FRAME), "no full-size segment on the wire");
    let queued = client_queue_lengths(&report);
    let biggest = queued.iter().copied().max().unwrap_or(0);
    assert!(biggest > 8 * WIRE_FRAME, "the client's stacks never handed the NIC a large segment (largest {biggest})");
    let (accepted, sent, extra) = client_port_counts(&report);
    assert!(accepted < sent, "no segmentation: {accepted} frames in, {sent} out");
    assert_eq!(sent - accepted, extra, "every extra frame is a TSO segment");
    let client = &report.world.hosts[1].group;
    let asked: u64 = (0..client.len()).map(|i| client.stats(i).device.tso_frames).sum();
    assert!(asked > 0 && asked < accepted, "{asked} TSO requests among {accepted} frames");
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
