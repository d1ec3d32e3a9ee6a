//! A mixed topology: a DPDK port (`DpdkEthDev` as a `Wire`) plugged into
//! user-vbridge beside a user-veth port. A host on the veth port sends UDP
//! frames to a host behind the DPDK port (the far end of a net_ring
//! cable, driven through `EthDev`); each arrives byte for byte, is answered,
//! and the answer arrives back at the veth host byte for byte. The bridge
//! learns both hosts on the right ports, every frame is accounted for, and
//! both pools (dtnet's and DPDK's) are back to their baseline.
#![cfg(feature = "dpdk")]

mod common;

use std::time::Duration;

use dpdk::{DpdkEthDev, PktPool, PoolConf};
use ethdev::dev::PortConf;
use ethdev::frame::FrameSpec;
use ethdev::packet::IpAddrs;
use ethdev::rss::RssHashTypes;
use ethdev::{EthDev, Instant, Mbuf, Mempool, MempoolConfig, Owner, RxQueue, TxQueue};
use user_vbridge::{Bridge, BridgeConfig, PortConfig};
use user_veth::Veth;

const VETH_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const FAR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const PINGS: u16 = 100;
/// Bridge polls a frame may take to cross (a liveness bound).
const MAX_POLLS: usize = 100;

/// A UDP frame between the two hosts; `to_far` says which way.
fn frame(pool: &Mempool, to_far: bool, n: u16, payload: &str) -> Mbuf {
    let (v, f) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let spec = if to_far {
        FrameSpec::udp(IpAddrs::V4 { src: v, dst: f }, 4000 + n, 7).macs(VETH_MAC, FAR_MAC)
    } else {
        FrameSpec::udp(IpAddrs::V4 { src: f, dst: v }, 7, 4000 + n).macs(FAR_MAC, VETH_MAC)
    };
    let mut mbuf = pool.alloc(Owner::NONE).expect("dtnet mbuf");
    assert!(spec.write_to(payload.as_bytes(), &mut mbuf));
    mbuf
}

/// Polls the bridge until `rx` yields one frame; returns its bytes.
fn cross(bridge: &mut Bridge, now: &mut Instant, rx: &mut dyn RxQueue) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..MAX_POLLS {
        *now = *now + Duration::from_micros(10);
        bridge.poll(*now);
        if rx.rx_burst(&mut out, 8) > 0 {
            assert_eq!(out.len(), 1, "exactly the one frame crossed");
            return out[0].data().to_vec();
        }
    }
    panic!("no frame crossed the bridge within {MAX_POLLS} polls");
}

#[test]
fn a_dpdk_port_on_the_bridge_talks_with_a_veth_host() {
    let eal = common::eal("ethdev-bridge", &[]);
    let dpdk_pool = PktPool::new(&eal, "ethdev_bridge_pool", PoolConf::default()).expect("pool");
    let pool = Mempool::new(MempoolConfig::new("ethdev_bridge_dtnet", 2048)).expect("dtnet pool");
    let (a, b) = eal.ring_cable("bridge", 1).expect("ring cable");
    let uplink = DpdkEthDev::new(&eal, a, &dpdk_pool, pool.clone()).expect("uplink adapter");
    let far = DpdkEthDev::new(&eal, b, &dpdk_pool, pool.clone()).expect("far adapter");
    let conf = PortConf { rss_types: RssHashTypes::empty(), rx_ring_size: 512, tx_ring_size: 512, ..PortConf::new(1) };
    for port in [&uplink, &far] {
        port.configure(&conf).expect("configure");
        port.start().expect("start");
    }
    let mut bridge = Bridge::with_pool(BridgeConfig::default(), pool.clone()).expect("bridge");
    let (veth, veth_wire) = Veth::new("h0", VETH_MAC, pool.clone());
    veth.configure(&PortConf::new(1)).expect("configure veth");
    veth.start().expect("start veth");
    let veth_port = bridge.add_port(Box::new(veth_wire), PortConfig::default()).expect("veth on the bridge");
    let dpdk_port = bridge.add_port(Box::new(uplink.wire().expect("wire")), PortConfig::default()).expect("dpdk port");
    assert_eq!(bridge.port_name(dpdk_port), Some(uplink.name()));
    assert!(matches!(uplink.stop(), Err(ethdev::error::DevError::State { .. })), "the wire holds the queues");

    let (mut veth_tx, mut veth_rx) = (veth.tx_queue(0).expect("veth tx"), veth.rx_queue(0).expect("veth rx"));
    let (mut far_tx, mut far_rx) = (far.tx_queue(0).expect("far tx"), far.rx_queue(0).expect("far rx"));
    let mut now = Instant::ZERO;
    for n in 0..PINGS {
        let ping = frame(&pool, true, n, &format!("ping {n}"));
        let sent = ping.data().to_vec();
        assert_eq!(veth_tx.tx_burst(&mut vec![ping]), 1);
        assert_eq!(cross(&mut bridge, &mut now, &mut *far_rx), sent, "ping {n} reaches the DPDK side intact");
        let pong = frame(&pool, false, n, &format!("pong {n}"));
        let sent = pong.data().to_vec();
        assert_eq!(far_tx.tx_burst(&mut vec![pong]), 1);
        assert_eq!(cross(&mut bridge, &mut now, &mut *veth_rx), sent, "pong {n} reaches the veth host intact");
    }

    assert_eq!(bridge.fdb_entry(VETH_MAC, 0).map(|e| e.port), Some(veth_port), "learned on the veth port");
    assert_eq!(bridge.fdb_entry(FAR_MAC, 0).map(|e| e.port), Some(dpdk_port), "learned on the DPDK port");
    bridge.check_accounting().expect("bridge accounting");
    veth.check_accounting().expect("veth accounting");
    let stats = far.stats().expect("far stats");
    assert_eq!((stats.ipackets, stats.opackets), (u64::from(PINGS), u64::from(PINGS)));
    drop((veth_tx, veth_rx, far_tx, far_rx, bridge, veth));
    assert_eq!(pool.in_use(), 0, "every dtnet mbuf is back");
    assert_eq!(dpdk_pool.in_use(), 0, "every DPDK mbuf is back");
}
