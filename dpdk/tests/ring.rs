//! Two net_ring ports cabled back to back exchange frames on every queue,
//! both ways, byte for byte; counters, extended counters and link state
//! agree on the frames, and the pool is back to its baseline. A `--vdev=net_ring0` from
//! the EAL arguments loops its frames back.
#![cfg(feature = "dpdk")]

mod common;

use dpdk::{PktPool, PoolConf, Port, PortConf, RxQueue, TxQueue};
use etherparse::PacketBuilder;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Frames per queue and direction.
const FRAMES: usize = 200;

/// Sends `frames` on `tx` in bursts and receives them on `rx`, in order.
fn carry(tx: &mut TxQueue<'_>, rx: &mut RxQueue<'_>, frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut received = Vec::new();
    for burst in frames.chunks(32) {
        assert_eq!(tx.tx_burst(burst).expect("tx_burst"), burst.len(), "a ring with room takes the whole burst");
        while rx.rx_burst(64, |frame, info| {
            assert_eq!(info.rss_hash, None, "net_ring computes no RSS hash");
            received.push(frame.to_vec());
        }) > 0
        {}
    }
    received
}

#[test]
fn ring_cable_exchanges_frames_on_every_queue_both_ways() {
    let eal = common::eal("ring-cable", &[]);
    let pool = PktPool::new(&eal, "ring_cable_pool", PoolConf::default()).expect("pool");
    let (a, b) = eal.ring_cable("cable", 2).expect("ring cable");
    let conf = PortConf { rx_queues: 2, tx_queues: 2, ..PortConf::default() };
    let port_a = Port::configure(&eal, a, &pool, &conf).expect("configure a");
    let port_b = Port::configure(&eal, b, &pool, &conf).expect("configure b");
    assert_eq!(port_a.info().driver, "net_ring");
    let mut qa = port_a.start().expect("start a");
    let mut qb = port_b.start().expect("start b");
    assert!(port_a.link().expect("link").up && port_b.link().expect("link").up, "ring ports are up once started");

    let mut rng = ChaCha8Rng::seed_from_u64(12);
    for q in 0..2 {
        let to_b: Vec<Vec<u8>> = (0..FRAMES).map(|i| frame(&mut rng, &format!("a>b q{q} #{i}"), i % 1400)).collect();
        let to_a: Vec<Vec<u8>> = (0..FRAMES).map(|i| frame(&mut rng, &format!("b>a q{q} #{i}"), i % 900)).collect();
        assert_eq!(carry(&mut qa.tx[q], &mut qb.rx[q], &to_b), to_b, "a to b, queue {q}");
        assert_eq!(carry(&mut qb.tx[q], &mut qa.rx[q], &to_a), to_a, "b to a, queue {q}");
        let other = 1 - q;
        assert_eq!(qb.rx[other].rx_burst(64, |_, _| ()), 0, "nothing crosses to queue {other}");
    }

    let stats = port_a.stats().expect("stats");
    assert_eq!((stats.opackets, stats.ipackets), (2 * FRAMES as u64, 2 * FRAMES as u64));
    // net_ring counts frames, not bytes (its byte counters stay 0).
    let xstats = port_a.xstats().expect("xstats");
    let tx_good = xstats.iter().find(|(name, _)| name == "tx_good_packets").map(|&(_, v)| v);
    assert_eq!(tx_good, Some(stats.opackets), "xstats agree with stats: {xstats:?}");
    assert_eq!(pool.in_use(), 0, "every mbuf is back in the pool");
}

#[test]
fn queues_move_to_their_own_threads() {
    let eal = common::eal("ring-threads", &[]);
    let pool = PktPool::new(&eal, "ring_threads_pool", PoolConf::default()).expect("pool");
    let (a, b) = eal.ring_cable("threads", 1).expect("ring cable");
    let port_a = Port::configure(&eal, a, &pool, &PortConf::default()).expect("configure a");
    let port_b = Port::configure(&eal, b, &pool, &PortConf::default()).expect("configure b");
    let mut qa = port_a.start().expect("start a");
    let mut qb = port_b.start().expect("start b");
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let frames: Vec<Vec<u8>> = (0..5000).map(|i| frame(&mut rng, &format!("#{i}"), i % 300)).collect();

    let mut tx = qa.tx.remove(0);
    let mut rx = qb.rx.remove(0);
    let received = std::thread::scope(|s| {
        s.spawn(|| {
            let mut next = 0;
            while next < frames.len() {
                let end = (next + 32).min(frames.len());
                next += tx.tx_burst(&frames[next..end]).expect("tx_burst");
                std::thread::yield_now();
            }
        });
        s.spawn(|| {
            let mut received = Vec::new();
            while received.len() < frames.len() {
                if rx.rx_burst(64, |frame, _| received.push(frame.to_vec())) == 0 {
                    std::thread::yield_now();
                }
            }
            received
        })
        .join()
        .expect("receiver")
    });
    assert_eq!(received, frames, "every frame arrives once, in order, intact");
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn a_ring_vdev_from_the_eal_arguments_loops_frames_back() {
    let eal = common::eal("ring-vdev", &["--vdev=net_ring0"]);
    let id = eal.port_by_name("net_ring0").expect("the vdev is a port");
    assert_eq!(eal.ports(), vec![id]);
    let pool = PktPool::new(&eal, "ring_vdev_pool", PoolConf::default()).expect("pool");
    let port = Port::configure(&eal, id, &pool, &PortConf::default()).expect("configure");
    let mut queues = port.start().expect("start");
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let frames: Vec<Vec<u8>> = (0..64).map(|i| frame(&mut rng, &format!("loop #{i}"), 64 + i)).collect();
    let (tx, rx) = (&mut queues.tx[0], &mut queues.rx[0]);
    assert_eq!(carry(tx, rx, &frames), frames);
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn dropping_the_eal_removes_its_runtime_directory() {
    let eal = common::eal("ring-cleanup", &["--vdev=net_ring0"]);
    let dir = eal.runtime_dir().expect("primary").to_path_buf();
    assert!(dir.is_dir(), "EAL made {}", dir.display());
    drop(eal);
    assert!(!dir.exists(), "{} is gone after cleanup", dir.display());
}

/// A UDP/IPv4 frame whose payload is `len` seeded random bytes after a tag.
pub fn frame(rng: &mut ChaCha8Rng, tag: &str, len: usize) -> Vec<u8> {
    let mut payload = tag.as_bytes().to_vec();
    payload.extend((0..len).map(|_| rng.random::<u8>()));
    let builder = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(rng.random(), 9);
    let mut out = Vec::with_capacity(builder.size(payload.len()));
    builder.write(&mut out, &payload).expect("frame fits");
    out
}
