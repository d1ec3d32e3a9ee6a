//! TCP over an impaired bridge, in simulation: bulk data still arrives
//! intact under loss, reordering, duplication and corruption, for several
//! seeds; a simulated run is a pure function of its seed; and loss is
//! recovered without waiting for retransmission timeouts (the patched
//! smoltcp's NewReno recovery and loss probe, `third_party/smoltcp`).

use std::time::Duration;

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
