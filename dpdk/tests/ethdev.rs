//! Two net_ring ports cabled back to back, driven only through dtnet's
//! `EthDev` trait (`DpdkEthDev`): frames from a dtnet pool cross on every
//! queue both ways, byte for byte, with their queue recorded; the control
//! operations DPDK has answer, those it lacks are `Unsupported`, the
//! port refuses to stop under live queue handles, and both pools (DPDK's
//! and dtnet's) are back to their baseline.
#![cfg(feature = "dpdk")]

mod common;

use std::sync::Arc;

use dpdk::port::rss_hf;
use dpdk::{DpdkEthDev, PktPool, PoolConf, PortCtl};
use ethdev::dev::{EthDev, PortConf, RxOffloads};
use ethdev::error::DevError;
use ethdev::rss::{Reta, RssHashTypes, RssKey};
use ethdev::{Mbuf, Mempool, MempoolConfig, Owner, RxQueue, TxQueue};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Frames per queue and direction.
const FRAMES: usize = 300;
const QUEUES: u16 = 2;

/// Two queues, no RSS (net_ring hashes nothing), 512-slot rings.
fn conf() -> PortConf {
    PortConf { rx_ring_size: 512, tx_ring_size: 512, rss_types: RssHashTypes::empty(), ..PortConf::new(QUEUES) }
}

/// A frame of `len` random bytes whose first bytes say where it goes.
fn frame(rng: &mut ChaCha8Rng, tag: &str, len: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..len.max(60)).map(|_| rng.random()).collect();
    bytes[..tag.len()].copy_from_slice(tag.as_bytes());
    bytes
}

/// Sends `frames` (copied into mbufs of `pool`) on `tx` in bursts and
/// collects what `rx` receives, checking each mbuf's queue.
fn carry(pool: &Mempool, tx: &mut dyn TxQueue, rx: &mut dyn RxQueue, q: u16, frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut received = Vec::new();
    let mut burst: Vec<Mbuf> = Vec::new();
    let mut out = Vec::new();
    for chunk in frames.chunks(40) {
        for bytes in chunk {
            let mut mbuf = pool.alloc(Owner::NONE).expect("dtnet pool has room");
            assert!(mbuf.extend_from_slice(bytes));
            burst.push(mbuf);
        }
        assert_eq!(tx.tx_burst(&mut burst), chunk.len(), "a ring with room takes the whole burst");
        assert!(burst.is_empty(), "taken frames leave the burst");
        while rx.rx_burst(&mut out, 64) > 0 {}
        for mbuf in out.drain(..) {
            assert_eq!(mbuf.queue(), q, "the mbuf records its rx queue");
            received.push(mbuf.data().to_vec());
        }
    }
    received
}

#[test]
fn ring_ports_exchange_frames_through_the_ethdev_trait() {
    let eal = common::eal("ethdev-ring", &[]);
    let dpdk_pool = PktPool::new(&eal, "ethdev_ring_pool", PoolConf::default()).expect("pool");
    let mbufs = Mempool::new(MempoolConfig::new("ethdev_ring_dtnet", 1024)).expect("dtnet pool");
    let (a, b) = eal.ring_cable("ethdev", QUEUES).expect("ring cable");
    let port_a: Arc<dyn EthDev> = Arc::new(DpdkEthDev::new(&eal, a, &dpdk_pool, mbufs.clone()).expect("adapter a"));
    let port_b: Arc<dyn EthDev> = Arc::new(DpdkEthDev::new(&eal, b, &dpdk_pool, mbufs.clone()).expect("adapter b"));
    assert!(DpdkEthDev::new(&eal, a, &dpdk_pool, mbufs.clone()).is_err(), "a port has one owner");

    let info = port_a.info();
    assert_eq!(info.driver, "net_ring");
    assert!(info.max_rx_queues >= QUEUES, "{info:?}");
    assert!(matches!(port_a.rx_queue(0), Err(DevError::State { .. })), "no queue handles before start");
    let offloads = PortConf { rx_offloads: RxOffloads::CHECKSUM, ..conf() };
    assert!(matches!(port_a.configure(&offloads), Err(DevError::Unsupported(_))), "offloads are refused by name");
    assert!(matches!(port_a.flow_flush(), Err(DevError::Unsupported(_))), "flow rules are not translated yet");
    let jumbo = PortConf { mtu: 9000, ..conf() };
    assert!(matches!(port_a.configure(&jumbo), Err(DevError::Unsupported(_))), "MTU changes are refused by name");
    for port in [&port_a, &port_b] {
        port.configure(&conf()).expect("configure");
        port.start().expect("start");
        assert!(port.link().expect("link").up, "a started ring port is up");
    }
    // Ports made from rings have an all-zero MAC; the call still answers.
    assert_eq!(port_a.mac_addr().expect("mac"), [0; 6]);
    let reta = port_a.reta_update(Reta::new(128, QUEUES).expect("reta"));
    assert!(matches!(reta, Err(DevError::Config(_) | DevError::Unsupported(_))), "net_ring has no RETA: {reta:?}");

    let mut rng = ChaCha8Rng::seed_from_u64(12);
    for q in 0..QUEUES {
        let (mut tx_a, mut rx_a) = (port_a.tx_queue(q).expect("tx a"), port_a.rx_queue(q).expect("rx a"));
        let (mut tx_b, mut rx_b) = (port_b.tx_queue(q).expect("tx b"), port_b.rx_queue(q).expect("rx b"));
        assert!(matches!(port_a.rx_queue(q), Err(DevError::State { .. })), "one handle per queue");
        assert!(matches!(port_a.stop(), Err(DevError::State { .. })), "no stop under live handles");
        let to_b: Vec<Vec<u8>> =
            (0..FRAMES).map(|i| frame(&mut rng, &format!("a>b q{q} #{i}"), i * 5 % 1500)).collect();
        let to_a: Vec<Vec<u8>> =
            (0..FRAMES).map(|i| frame(&mut rng, &format!("b>a q{q} #{i}"), i * 3 % 1000)).collect();
        assert_eq!(carry(&mbufs, &mut *tx_a, &mut *rx_b, q, &to_b), to_b, "a to b, queue {q}");
        assert_eq!(carry(&mbufs, &mut *tx_b, &mut *rx_a, q, &to_a), to_a, "b to a, queue {q}");
    }

    let stats = port_a.stats().expect("stats");
    let total = u64::from(QUEUES) * FRAMES as u64;
    assert_eq!((stats.opackets, stats.ipackets, stats.ierrors, stats.oerrors), (total, total, 0, 0));
    let xstats = port_a.xstats().expect("xstats");
    let value = |name: &str| xstats.iter().find(|x| x.name == name).map(|x| x.value);
    assert_eq!(value("tx_good_packets"), Some(total), "{xstats:?}");
    assert_eq!(value("dtnet_rx_nombuf"), Some(0));
    for port in [&port_a, &port_b] {
        port.stop().expect("stop once the handles are gone");
    }
    assert_eq!(mbufs.in_use(), 0, "every dtnet mbuf is back");
    assert_eq!(dpdk_pool.in_use(), 0, "every DPDK mbuf is back");
}

#[test]
fn frames_that_cannot_cross_are_counted_drops() {
    let eal = common::eal("ethdev-drops", &[]);
    let dpdk_pool = PktPool::new(&eal, "ethdev_drops_pool", PoolConf::default()).expect("pool");
    // Big dtnet buffers (a frame too long for a DPDK mbuf) and a pool of 4.
    let mbufs = Mempool::new(MempoolConfig::new("ethdev_drops_dtnet", 4).data_room(4096)).expect("dtnet pool");
    let (a, b) = eal.ring_cable("drops", 1).expect("ring cable");
    let port_a = DpdkEthDev::new(&eal, a, &dpdk_pool, mbufs.clone()).expect("adapter a");
    let port_b = DpdkEthDev::new(&eal, b, &dpdk_pool, mbufs.clone()).expect("adapter b");
    let conf = PortConf { rss_types: RssHashTypes::empty(), rx_ring_size: 512, tx_ring_size: 512, ..PortConf::new(1) };
    for port in [&port_a, &port_b] {
        port.configure(&conf).expect("configure");
        port.start().expect("start");
    }
    let (mut tx, mut rx) = (port_a.tx_queue(0).expect("tx"), port_b.rx_queue(0).expect("rx"));
    let mut burst = Vec::new();
    for len in [100, 3000, 200] {
        let mut mbuf = mbufs.alloc(Owner::NONE).expect("mbuf");
        assert!(mbuf.extend_from_slice(&vec![len as u8; len]));
        burst.push(mbuf);
    }
    assert_eq!(tx.tx_burst(&mut burst), 3, "the long frame is taken and dropped, not left to block the queue");
    let mut out = Vec::new();
    assert_eq!(rx.rx_burst(&mut out, 64), 2);
    assert_eq!(out.iter().map(Mbuf::len).collect::<Vec<_>>(), [100, 200]);
    let xstats = port_a.xstats().expect("xstats");
    assert!(xstats.iter().any(|x| x.name == "dtnet_tx_too_long" && x.value == 1), "{xstats:?}");

    // Four dtnet mbufs: hold them all, and received frames are counted drops.
    let mut held: Vec<Mbuf> = std::mem::take(&mut out);
    held.extend((0..2).map(|_| mbufs.alloc(Owner::NONE).expect("mbuf")));
    let mut small = held.pop().expect("one to send");
    assert!(small.trim(small.len()));
    assert!(small.extend_from_slice(&[7; 64]));
    let mut burst = vec![small];
    assert_eq!(tx.tx_burst(&mut burst), 1);
    held.push(mbufs.alloc(Owner::NONE).expect("the sent mbuf is free again"));
    assert_eq!(rx.rx_burst(&mut out, 64), 0, "no dtnet mbuf to receive into");
    let stats = port_b.stats().expect("stats");
    assert_eq!(stats.ierrors, 1, "the drop is counted: {stats:?}");
    drop((held, tx, rx));
    assert_eq!(mbufs.in_use(), 0);
    assert_eq!(dpdk_pool.in_use(), 0, "the dropped frame's DPDK mbuf went back too");
}

#[test]
fn rss_and_reta_are_programmed_through_the_ethdev_trait() {
    let eal = common::eal("ethdev-rss", &["--vdev=net_null0,size=128"]);
    let dpdk_pool = PktPool::new(&eal, "ethdev_rss_pool", PoolConf::default()).expect("pool");
    let mbufs = Mempool::new(MempoolConfig::new("ethdev_rss_dtnet", 256)).expect("dtnet pool");
    let id = eal.port_by_name("net_null0").expect("net_null0");
    let port = DpdkEthDev::new(&eal, id, &dpdk_pool, mbufs.clone()).expect("adapter");
    let info = port.info();
    assert_eq!((info.driver, info.reta_sizes), ("net_null", &[128u16][..]), "{info:?}");
    let types = RssHashTypes::IPV4 | RssHashTypes::IPV4_TCP | RssHashTypes::IPV6_UDP;
    assert!(info.rss_types.contains(types), "{info:?}");
    let short = PortConf { reta_size: 64, rss_types: types, ..PortConf::new(4) };
    assert!(matches!(port.configure(&short), Err(DevError::Config(e)) if e.field == "reta_size"));
    port.configure(&PortConf { rss_types: types, ..PortConf::new(4) }).expect("configure with RSS");

    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let key_bytes: Vec<u8> = (0..40).map(|_| rng.random()).collect();
    port.rss_hash_update(RssKey::new(&key_bytes).expect("key"), types).expect("rss_hash_update");
    let (got_key, got_hf) = port.ctl(PortCtl::rss_conf).expect("rss_conf");
    assert_eq!((got_key, got_hf), (key_bytes, rss_hf(types)), "the device holds the key and types it was given");
    let entries: Vec<u16> = (0..128).map(|_| rng.random_range(0..4)).collect();
    port.reta_update(Reta::from_entries(entries.clone(), 4).expect("reta")).expect("reta_update");
    assert_eq!(port.reta_query().expect("reta_query").entries(), &entries[..]);
    let wrong = Reta::from_entries(entries[..64].to_vec(), 4).expect("64-entry reta");
    assert!(matches!(port.reta_update(wrong), Err(DevError::Config(e)) if e.field == "reta"));
    assert_eq!(port.reta_query().expect("reta_query").entries(), &entries[..], "a refused update changed nothing");

    // net_null makes up 128-byte frames: they arrive in dtnet mbufs.
    port.start().expect("start");
    let mut rx = port.rx_queue(3).expect("rx queue 3");
    let mut out = Vec::new();
    assert_eq!(rx.rx_burst(&mut out, 32), 32);
    assert!(out.iter().all(|m| m.len() == 128 && m.queue() == 3), "{out:?}");
    assert_eq!(mbufs.in_use(), 32);
    drop((out, rx));
    assert!(port.stats().expect("stats").ipackets >= 32);
    port.stop().expect("stop");
    assert_eq!((mbufs.in_use(), dpdk_pool.in_use()), (0, 0), "both pools are back to baseline");
}
