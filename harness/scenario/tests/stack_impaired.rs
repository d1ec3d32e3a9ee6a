//! TCP over an impaired bridge, in simulation: bulk data still arrives
//! intact under loss, reordering, duplication and corruption, for several
//! seeds; a simulated run is a pure function of its seed; and loss is
//! recovered without waiting for retransmission timeouts (the patched
//! smoltcp's NewReno recovery and loss probe, `third_party/smoltcp`), with
//! several holes of a window repaired in the same round trip (its SACK
//! scoreboard).

use std::collections::HashMap;
use std::time::Duration;

use capture::{Direction, Record};
use etherparse::{SlicedPacket, TransportSlice};
use rstest::rstest;
use scenario::tcp_run::{Executor, TcpRun};
use stack::{ForwardMode, ThreadModel};
use user_vbridge::{Impairments, Reorder};

fn impaired() -> Impairments {
    Impairments {
        loss: 0.02,
        reorder: Some(Reorder { probability: 0.02, extra_delay: Duration::from_micros(300) }),
        duplicate: 0.01,
        corrupt: 0.01,
        delay: Duration::from_micros(50),
        ..Impairments::default()
    }
}

fn run(mode: ForwardMode, seed: u64, impairments: Impairments, capture: bool) -> scenario::tcp_run::TcpReport {
    let mut run = TcpRun::new(mode, ThreadModel::RunToWakeup, Executor::Sim, 16, 256 * 1024);
    run.seed = seed;
    run.impairments = impairments;
    run.capture = capture;
    run.timeout = Duration::from_secs(600);
    run.run().unwrap()
}

#[rstest]
fn bulk_survives_impairments(
    #[values(1, 2, 3)] seed: u64,
    #[values(ForwardMode::Rss, ForwardMode::SoftForward)] mode: ForwardMode,
) {
    let report = run(mode, seed, impaired(), false);
    report.check().unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    let bridge = &report.world.bridge;
    let port = report.world.hosts[0].bridge_port;
    let corrupted: u64 = [user_vbridge::Direction::Ingress, user_vbridge::Direction::Egress]
        .into_iter()
        .filter_map(|d| bridge.link_stats(port, d))
        .map(|l| l.corrupted)
        .sum();
    assert!(corrupted > 0, "the run must actually have been impaired");
}

#[test]
fn same_seed_same_captures_other_seed_other_captures() {
    let first = run(ForwardMode::Rss, 7, impaired(), true);
    let again = run(ForwardMode::Rss, 7, impaired(), true);
    let other = run(ForwardMode::Rss, 8, impaired(), true);
    for r in [&first, &again, &other] {
        r.check().unwrap();
    }
    let frames = |r: &scenario::tcp_run::TcpReport| {
        r.captures.iter().map(|c| (c.time, c.direction, c.data.clone())).collect::<Vec<_>>()
    };
    assert!(!first.captures.is_empty());
    assert!(frames(&first) == frames(&again), "same seed, different captures");
    assert!(frames(&first) != frames(&other), "different seeds gave identical captures");
}

/// The minimum retransmission timeout of our smoltcp (1 s upstream, where
/// any loss beyond the first hole of a window, a lost retransmission or a
/// lost FIN waited at least that long).
const MIN_RTO: Duration = Duration::from_millis(200);

#[rstest]
fn lossy_bulk_recovers_without_timeouts(#[values(1, 2, 3)] seed: u64) {
    // 2 MiB over one connection whose frames (data and ACKs) are lost with
    // probability 2 %: dozens of losses, several in most windows, and some
    // lost retransmissions, and, for some seeds, a lost FIN. The whole
    // transfer and close finish in less virtual time than a single
    // retransmission timeout: every loss was repaired without one.
    let mut run = TcpRun::new(ForwardMode::Rss, ThreadModel::RunToWakeup, Executor::Sim, 1, 2 << 20);
    run.seed = seed;
    run.impairments = Impairments { loss: 0.02, ..Impairments::default() };
    let report = run.run().unwrap();
    report.check().unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    let took = report.outcome.end.since(ethdev::time::Instant::ZERO);
    assert!(took < MIN_RTO, "seed {seed}: 2 MiB at 2 % loss took {took:?} of virtual time");
}

/// Data segments a host's port sent again, and how many of those lay above
/// the cumulative acknowledgement that had last arrived at that port.
#[derive(Debug, Default)]
struct Resent {
    segments: u64,
    above_ack: u64,
}

/// Whether sequence number `a` comes before `b`.
fn seq_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// Replays the frames seen on `port`, per local TCP port: a data segment
/// sent out that starts below the highest sequence number sent before is a
/// retransmission. NewReno retransmits only at the cumulative acknowledgement
/// (fast retransmit, partial ACK, loss probe); one above the acknowledgement
/// that had already arrived repairs a later hole while an earlier one is
/// still open, which only the SACK scoreboard does (or a go-back-N after a
/// timeout, which the run rules out).
fn resent(records: &[Record], port: &str) -> Resent {
    let mut highest_sent: HashMap<u16, u32> = HashMap::new();
    let mut last_ack: HashMap<u16, u32> = HashMap::new();
    let mut resent = Resent::default();
    for record in records.iter().filter(|r| r.interface.as_deref() == Some(port)) {
        let Ok(packet) = SlicedPacket::from_ethernet(&record.data) else { continue };
        let Some(TransportSlice::Tcp(tcp)) = packet.transport else { continue };
        match record.direction {
            Some(Direction::Outbound) if !tcp.payload().is_empty() => {
                let (seq, len) = (tcp.sequence_number(), tcp.payload().len() as u32);
                let high = highest_sent.entry(tcp.source_port()).or_insert(seq);
                if seq_before(seq, *high) {
                    resent.segments += 1;
                    if last_ack.get(&tcp.source_port()).is_some_and(|&ack| seq_before(ack, seq)) {
                        resent.above_ack += 1;
                    }
                }
                if seq_before(*high, seq.wrapping_add(len)) {
                    *high = seq.wrapping_add(len);
                }
            }
            Some(Direction::Inbound) if tcp.ack() => {
                let ack = last_ack.entry(tcp.destination_port()).or_insert(tcp.acknowledgment_number());
                if seq_before(*ack, tcp.acknowledgment_number()) {
                    *ack = tcp.acknowledgment_number();
                }
            }
            _ => {}
        }
    }
    resent
}

#[rstest]
fn lossy_bulk_repairs_several_holes_per_round_trip(#[values(1, 2, 3)] seed: u64) {
    // The transfer of `lossy_bulk_recovers_without_timeouts`, captured: the
    // client (the bulk sender) retransmits segments above the cumulative
    // acknowledgement it had received, i.e. it repairs later holes of a
    // window before the repair of the first one is acknowledged, instead of
    // one hole per round trip.
    let mut run = TcpRun::new(ForwardMode::Rss, ThreadModel::RunToWakeup, Executor::Sim, 1, 2 << 20);
    run.seed = seed;
    run.impairments = Impairments { loss: 0.02, ..Impairments::default() };
    run.capture = true;
    let report = run.run().unwrap();
    report.check().unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    let took = report.outcome.end.since(ethdev::time::Instant::ZERO);
    assert!(took < MIN_RTO, "seed {seed}: took {took:?} of virtual time, so a timeout may have struck");
    let client = resent(&report.captures, "client");
    eprintln!("seed {seed}: {client:?} in {took:?}");
    assert!(client.segments > 0, "seed {seed}: 2 % loss and nothing retransmitted?");
    assert!(client.above_ack > 0, "seed {seed}: every hole waited for the one below it: {client:?}");
}
