//! Bridge forwarding: 64-byte frames from veth transmit queues through the
//! bridge (learned FDB, no impairments) into veth receive queues with RSS,
//! on one core.
//!
//! The loop is testpmd's `macswap` mode: every port starts with frames in
//! flight to its partner; each frame received is sent back with its MACs
//! swapped, so buffers are recycled and the figure is pure forwarding cost
//! (receive classification and RSS included). The baseline is the same loop
//! over a direct veth-to-veth cable, measured in the same run.

use std::time::Duration;

use ethdev::dev::PortConf;
use ethdev::frame::FrameSpec;
use ethdev::mac::MacAddr;
use ethdev::mbuf::Mbuf;
use ethdev::mempool::{Mempool, MempoolConfig, Owner};
use ethdev::packet::IpAddrs;
use ethdev::{EthDev, Instant, RxQueue, TxQueue};
use user_vbridge::{Bridge, BridgeConfig, PortConfig};
use user_veth::{Cable, Veth, VethWire};

use crate::{best_rate, measurement, repeat_for, Budget, Measurement};

const QUEUES: u16 = 4;
const BURST: usize = 32;
/// Frames each port keeps in flight: four bursts, as a macswap loop keeps a
/// few bursts per port circulating (more only measures cache misses).
const IN_FLIGHT: usize = 128;
/// Bytes of a minimum Ethernet frame without its FCS.
const FRAME_LEN: usize = 60;

pub(super) fn run(budget: Budget) -> Vec<Measurement> {
    let two = best_rate(budget, |length| bridged(2, length));
    let eight = best_rate(budget, |length| bridged(8, length));
    let cable = best_rate(budget, cabled);
    vec![
        measurement("bridge.fwd.64b.2port", two, "Mpps"),
        measurement("bridge.fwd.64b.8port", eight, "Mpps"),
        measurement("bridge.fwd.64b.ratio_to_cable", two / cable, "x"),
    ]
}

fn mac(i: usize) -> MacAddr {
    MacAddr([2, 0, 0, 0, 1, i as u8])
}

/// The queue handles of one port: every receive queue, transmit queue 0.
struct Queues {
    rx: Vec<Box<dyn RxQueue>>,
    tx: Box<dyn TxQueue>,
}

/// `count` started ports with `QUEUES` RSS queues, sharing `pool`, as
/// their queue handles and wire ends.
fn ports(count: usize, pool: &Mempool) -> Vec<(Queues, VethWire)> {
    (0..count)
        .map(|i| {
            let (port, wire) = Veth::new(format!("veth{i}"), mac(i), pool.clone());
            port.configure(&PortConf::new(QUEUES)).expect("valid port configuration");
            port.start().expect("port starts");
            let rx = (0..QUEUES).map(|q| port.rx_queue(q).expect("configured queue")).collect();
            (Queues { rx, tx: port.tx_queue(0).expect("configured queue") }, wire)
        })
        .collect()
}

/// Puts `IN_FLIGHT` frames on port `i`'s transmit queue towards its partner
/// `i ^ 1`, spread over many flows so RSS uses every queue.
fn prime(port: &mut Queues, i: usize, pool: &Mempool) {
    let mut burst: Vec<Mbuf> = (0..IN_FLIGHT)
        .map(|n| {
            let ip = IpAddrs::V4 { src: [10, 0, 0, i as u8], dst: [10, 0, 0, (i ^ 1) as u8] };
            let spec = FrameSpec::udp(ip, 1024 + n as u16, 7).macs(mac(i), mac(i ^ 1));
            let mut m = pool.alloc(Owner::NONE).expect("bench pool sized for the frames in flight");
            spec.write_to(&[0; FRAME_LEN - 42], &mut m);
            m
        })
        .collect();
    port.tx.tx_burst(&mut burst);
}

/// Receives on every queue of `port` and sends everything back with MACs
/// swapped; returns how many frames were received.
fn macswap(port: &mut Queues, buf: &mut Vec<Mbuf>) -> u64 {
    let mut received = 0;
    for rx in &mut port.rx {
        rx.rx_burst(buf, BURST);
    }
    for m in buf.iter_mut() {
        let data = m.data_mut();
        let (dst, src) = data.split_at_mut(6);
        dst.swap_with_slice(&mut src[..6]);
        received += 1;
    }
    port.tx.tx_burst(buf);
    buf.clear();
    received
}

fn bridged(count: usize, length: Duration) -> u64 {
    let pool = Mempool::new(MempoolConfig::new("bench", (count * IN_FLIGHT * 2) as u32)).expect("valid pool");
    let mut bridge = Bridge::new(BridgeConfig::default()).expect("valid bridge");
    let mut veths = Vec::new();
    for (port, wire) in ports(count, &pool) {
        bridge.add_port(Box::new(wire), PortConfig::default()).expect("port added");
        veths.push(port);
    }
    veths.iter_mut().enumerate().for_each(|(i, p)| prime(p, i, &pool));
    let mut buf = Vec::with_capacity(BURST * QUEUES as usize);
    let mut now = Instant::ZERO;
    repeat_for(length, || {
        now = now + Duration::from_micros(1);
        bridge.poll(now);
        veths.iter_mut().map(|p| macswap(p, &mut buf)).sum()
    })
}

fn cabled(length: Duration) -> u64 {
    let pool = Mempool::new(MempoolConfig::new("bench", (IN_FLIGHT * 4) as u32)).expect("valid pool");
    let mut pair = ports(2, &pool);
    let (mut b, wire_b) = pair.pop().expect("two ports");
    let (mut a, wire_a) = pair.pop().expect("two ports");
    prime(&mut a, 0, &pool);
    prime(&mut b, 1, &pool);
    let mut cable = Cable::new(wire_a, wire_b);
    let mut buf = Vec::with_capacity(BURST * QUEUES as usize);
    repeat_for(length, || {
        cable.pump(BURST);
        macswap(&mut a, &mut buf) + macswap(&mut b, &mut buf)
    })
}
