//! Across crates: veth ports on an impaired bridge. The same seed gives
//! byte-identical captures, corruption is caught by checksum offload, and
//! every frame and buffer is accounted for.

use std::time::Duration;

use ethdev::dev::{PortConf, RxOffloads};
use ethdev::frame::FrameSpec;
use ethdev::mbuf::OlFlags;
use ethdev::mempool::{Mempool, MempoolConfig, Owner};
use ethdev::packet::IpAddrs;
use ethdev::{EthDev, Instant, RxQueue, TxQueue};
use user_vbridge::{Bridge, BridgeConfig, Captured, Direction, Impairments, PortConfig, PortId, Reorder, TapFilter};
use user_veth::{Veth, VethPort};

const FRAMES: u16 = 400;

struct Outcome {
    captures: Vec<(PortId, Direction, Instant, Vec<u8>)>,
    received: u64,
    flagged_bad: u64,
    corrupted: u64,
}

fn impaired() -> Impairments {
    Impairments {
        loss: 0.05,
        duplicate: 0.05,
        corrupt: 0.05,
        delay: Duration::from_micros(20),
        jitter: Duration::from_micros(10),
        reorder: Some(Reorder { probability: 0.1, extra_delay: Duration::from_micros(50) }),
        ..Impairments::default()
    }
}

fn mac(i: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0, i]
}

fn run(seed: u64) -> Outcome {
    let pool = Mempool::new(MempoolConfig::new("e2e", 4096)).unwrap();
    let mut bridge = Bridge::new(BridgeConfig { seed, ..BridgeConfig::default() }).unwrap();
    let tap = bridge.add_tap(TapFilter { port: None, direction: None });
    let mut hosts: Vec<Host> = (0..2u8)
        .map(|i| {
            let (port, wire) = Veth::new(format!("h{i}"), mac(i), pool.clone());
            let mut conf = PortConf::new(2);
            conf.rx_offloads = RxOffloads::CHECKSUM;
            port.configure(&conf).unwrap();
            port.start().unwrap();
            bridge.add_port(Box::new(wire), PortConfig { egress: impaired(), ..PortConfig::default() }).unwrap();
            Host::new(port)
        })
        .collect();
    let mut now = Instant::ZERO;
    let (mut received, mut flagged_bad) = (0, 0);
    for n in 0..FRAMES {
        let from = (n % 2) as usize;
        let ip = IpAddrs::V4 { src: [10, 0, 0, from as u8], dst: [10, 0, 0, 1 - from as u8] };
        let spec = FrameSpec::udp(ip, 1000 + n, 53).macs(mac(from as u8), mac(1 - from as u8));
        let mut m = pool.alloc(Owner::NONE).unwrap();
        spec.write_to(format!("frame {n}").as_bytes(), &mut m);
        hosts[from].tx.tx_burst(&mut vec![m]);
        now = now + Duration::from_micros(1);
        bridge.poll(now);
        drain(&mut hosts, &mut received, &mut flagged_bad);
    }
    while let Some(at) = bridge.poll_at().filter(|&at| at < now + Duration::from_secs(1)) {
        now = now.max(at);
        bridge.poll(now);
        drain(&mut hosts, &mut received, &mut flagged_bad);
    }
    bridge.check_accounting().unwrap();
    hosts.iter().try_for_each(|h| h.port.check_accounting()).unwrap();
    let corrupted = (0..2).map(|p| bridge.link_stats(PortId(p), Direction::Egress).unwrap().corrupted).sum();
    let captures =
        bridge.take_captures(tap).into_iter().map(|c: Captured| (c.port, c.direction, c.time, c.data)).collect();
    drop((bridge, hosts));
    assert_eq!(pool.in_use(), 0, "buffers leaked");
    Outcome { captures, received, flagged_bad, corrupted }
}

/// A port with the handles of its two receive queues and transmit queue 0.
struct Host {
    port: VethPort,
    rx: Vec<Box<dyn RxQueue>>,
    tx: Box<dyn TxQueue>,
}

impl Host {
    fn new(port: VethPort) -> Host {
        let rx = (0..2).map(|q| port.rx_queue(q).unwrap()).collect();
        let tx = port.tx_queue(0).unwrap();
        Host { port, rx, tx }
    }
}

fn drain(hosts: &mut [Host], received: &mut u64, flagged_bad: &mut u64) {
    let mut buf = Vec::new();
    for host in hosts {
        for rx in &mut host.rx {
            rx.rx_burst(&mut buf, 64);
        }
    }
    *received += buf.len() as u64;
    *flagged_bad +=
        buf.iter().filter(|m| m.flags().intersects(OlFlags::RX_L4_CKSUM_BAD | OlFlags::RX_IP_CKSUM_BAD)).count() as u64;
}

#[test]
fn same_seed_gives_byte_identical_captures_and_another_seed_does_not() {
    let (a, b, c) = (run(11), run(11), run(12));
    assert!(!a.captures.is_empty());
    assert_eq!(a.captures, b.captures);
    assert_ne!(a.captures, c.captures);
    let reordered = a.captures.windows(2).any(|w| w[0].2 > w[1].2);
    assert!(!reordered, "captures are in time order");
}

#[test]
fn impairments_show_up_at_the_receivers() {
    let outcome = run(5);
    let egress = outcome.captures.iter().filter(|c| c.1 == Direction::Egress).count() as u64;
    assert_eq!(egress, outcome.received, "every frame the bridge delivered was received");
    assert!(outcome.received < FRAMES as u64 * 105 / 100, "loss and duplication net out below +5%");
    assert!(outcome.corrupted > 0 && outcome.flagged_bad > 0, "corruption happened and was caught");
    assert!(outcome.flagged_bad <= outcome.corrupted, "only corrupted frames are flagged bad");
}
