//! The split `EthDev` over a second, minimal backend: a loopback port that
//! implements only `info` and the queue handles. Its control operations are
//! the trait's defaults, and capture and fault injection work over it
//! exactly as over a full NIC, which proves the middleware generic.

use std::sync::Arc;

use ethdev::dev::{DevInfo, PortConf, RxOffloads, TxOffloads};
use ethdev::error::DevError;
use ethdev::mbuf::{Mbuf, OlFlags};
use ethdev::mempool::{Mempool, MempoolConfig, Owner};
use ethdev::middleware::{BurstLog, Capture, FaultConfig, FaultInjector, FaultStats, Faults, HookPoint};
use ethdev::ring::Ring;
use ethdev::rss::RssHashTypes;
use ethdev::{EthDev, RxQueue, TxQueue};

/// A port whose transmit queue `q` loops back into its receive queue `q`.
struct Loopback {
    rings: Vec<Arc<Ring<Mbuf>>>,
}

impl Loopback {
    fn new(queues: u16, ring_size: usize) -> Loopback {
        Loopback { rings: (0..queues).map(|_| Arc::new(Ring::mpmc(ring_size).unwrap())).collect() }
    }

    fn ring(&self, queue: u16) -> Result<Arc<Ring<Mbuf>>, DevError> {
        let ring = self.rings.get(usize::from(queue)).ok_or_else(|| DevError::Unsupported(format!("queue {queue}")))?;
        Ok(Arc::clone(ring))
    }
}

struct LoopRx(Arc<Ring<Mbuf>>);
struct LoopTx(Arc<Ring<Mbuf>>);

impl RxQueue for LoopRx {
    fn rx_burst(&mut self, out: &mut Vec<Mbuf>, max: usize) -> usize {
        self.0.dequeue_burst(out, max)
    }
}

impl TxQueue for LoopTx {
    fn tx_burst(&mut self, pkts: &mut Vec<Mbuf>) -> usize {
        self.0.enqueue_burst(pkts)
    }

    fn free_count(&self) -> usize {
        self.0.free_count()
    }
}

impl EthDev for Loopback {
    fn info(&self) -> DevInfo {
        DevInfo {
            driver: "loopback",
            max_rx_queues: self.rings.len() as u16,
            max_tx_queues: self.rings.len() as u16,
            max_ring_size: 1024,
            reta_sizes: &[],
            rss_key_sizes: &[],
            rss_types: RssHashTypes::empty(),
            rx_offloads: RxOffloads::empty(),
            tx_offloads: TxOffloads::empty(),
            mtu_range: (68, 1500),
        }
    }

    fn rx_queue(&self, queue: u16) -> Result<Box<dyn RxQueue>, DevError> {
        Ok(Box::new(LoopRx(self.ring(queue)?)))
    }

    fn tx_queue(&self, queue: u16) -> Result<Box<dyn TxQueue>, DevError> {
        Ok(Box::new(LoopTx(self.ring(queue)?)))
    }
}

fn pool() -> Mempool {
    Mempool::new(MempoolConfig::new("middleware-test", 1024)).unwrap()
}

/// `n` frames whose bytes say their index.
fn frames(pool: &Mempool, n: usize) -> Vec<Mbuf> {
    (0..n)
        .map(|i| {
            let mut m = pool.alloc(Owner::NONE).unwrap();
            assert!(m.extend_from_slice(format!("frame {i:04} of the burst").as_bytes()));
            m
        })
        .collect()
}

fn bytes(frames: &[Mbuf]) -> Vec<Vec<u8>> {
    frames.iter().map(|m| m.data().to_vec()).collect()
}

/// Sends `burst` on queue 0 of `dev` and receives everything looped back
/// (up to a ring of 1024).
fn through(dev: &dyn EthDev, burst: &mut Vec<Mbuf>) -> (usize, Vec<Mbuf>) {
    let taken = dev.tx_queue(0).unwrap().tx_burst(burst);
    let mut rx = dev.rx_queue(0).unwrap();
    let mut out = Vec::new();
    // Enough bursts for a full ring: a burst whose frames were all dropped
    // returns 0 although more wait behind it.
    for _ in 0..1024 / 16 {
        rx.rx_burst(&mut out, 16);
    }
    (taken, out)
}

#[test]
fn a_backend_with_only_the_fast_path_refuses_every_control_operation() {
    let dev = Loopback::new(1, 64);
    let unsupported = |r: Result<(), DevError>, op: &str| assert_eq!(r, Err(DevError::Unsupported(op.into())));
    unsupported(dev.configure(&PortConf::new(1)), "configure");
    unsupported(dev.start(), "start");
    unsupported(dev.stop(), "stop");
    unsupported(dev.set_mtu(1500), "set_mtu");
    unsupported(dev.set_promiscuous(true), "set_promiscuous");
    unsupported(dev.flow_flush(), "flow_flush");
    unsupported(dev.check_accounting(), "check_accounting");
    assert_eq!(dev.stats(), Err(DevError::Unsupported("stats".into())));
    assert_eq!(dev.reta_query().unwrap_err().to_string(), "not supported: reta_query");
    assert_eq!(dev.mac_addr(), Err(DevError::Unsupported("mac_addr".into())));
    assert_eq!(dev.name(), "loopback", "a port without names is called after its driver");
    assert!(dev.rx_queue(1).is_err(), "no such queue");
}

#[test]
fn the_fast_path_of_the_minimal_backend_moves_frames_in_order() {
    let pool = pool();
    let mut burst = frames(&pool, 40);
    let sent = bytes(&burst);
    let (taken, got) = through(&Loopback::new(1, 64), &mut burst);
    assert_eq!((taken, bytes(&got)), (40, sent));
    drop(got);
    assert_eq!(pool.in_use(), 0);
}

/// A hook keeping a copy of every frame with where it was seen.
#[test]
fn capture_over_any_port_sees_exactly_the_frames_each_queue_moves() {
    let pool = pool();
    let port = Capture::new(Loopback::new(2, 16));
    // Handles taken before the hook is set still report to it.
    let (mut tx, mut rx) = (port.tx_queue(1).unwrap(), port.rx_queue(1).unwrap());
    let seen = Arc::new(BurstLog::default());
    assert!(port.set_burst_hook(Some(seen.clone())).is_none());
    let mut burst = frames(&pool, 20);
    let offered = bytes(&burst);
    assert_eq!(tx.tx_burst(&mut burst), 16);
    assert_eq!(seen.at(HookPoint::TxQueue(1)), offered[..16], "only the frames the queue took");
    assert_eq!(bytes(&burst), offered[16..], "the rest stay, in order");
    let mut got = Vec::new();
    assert_eq!(rx.rx_burst(&mut got, 10), 10);
    assert_eq!(seen.at(HookPoint::RxQueue(1)), bytes(&got));
    assert!(seen.at(HookPoint::TxQueue(0)).is_empty() && seen.at(HookPoint::FromWire).is_empty());
    assert!(port.set_burst_hook(None).is_some());
    let before = seen.len();
    while rx.rx_burst(&mut got, 10) > 0 {}
    assert_eq!(tx.tx_burst(&mut burst), 4);
    assert_eq!(seen.len(), before, "a removed hook sees nothing");
    drop((got, burst, tx, rx, port));
    assert_eq!(pool.in_use(), 0);
}

fn faults(seed: u64, rx: Faults, tx: Faults) -> FaultConfig {
    FaultConfig { seed, rx, tx }
}

/// Frames through a fault injector over a loopback with `config`, and its counts.
fn faulty_run(config: FaultConfig, n: usize) -> (usize, Vec<Vec<u8>>, FaultStats) {
    let pool = pool();
    let port = FaultInjector::new(Loopback::new(1, 1024), config).unwrap();
    let mut burst = frames(&pool, n);
    let (taken, got) = through(&port, &mut burst);
    let out = (taken, bytes(&got), port.fault_stats());
    drop((got, burst));
    assert_eq!(pool.in_use(), 0, "dropped frames go back to the pool");
    out
}

/// A flipped bit takes away what was known of a frame's checksums, on
/// receive and on transmit, so its receiver verifies them again; a frame
/// left alone keeps it.
#[test]
fn corrupted_frames_lose_their_checksum_trust() {
    let known = OlFlags::CKSUM_FILLED | OlFlags::RX_IP_CKSUM_GOOD | OlFlags::RX_L4_CKSUM_GOOD;
    for (corrupt, kept) in [(0.0, known), (1.0, OlFlags::empty())] {
        let faulty = Faults { drop: 0.0, corrupt };
        for (rx, tx) in [(faulty, Faults::default()), (Faults::default(), faulty)] {
            let pool = pool();
            let port = FaultInjector::new(Loopback::new(1, 1024), faults(3, rx, tx)).unwrap();
            let mut burst = frames(&pool, 20);
            burst.iter_mut().for_each(|m| m.set_flags(m.flags() | known));
            let (taken, got) = through(&port, &mut burst);
            assert_eq!((taken, got.len()), (20, 20));
            assert!(
                got.iter().all(|m| m.flags() & known == kept),
                "corrupt {corrupt}, rx {rx:?}: {:?}",
                got[0].flags()
            );
        }
    }
}

#[test]
fn fault_injection_drops_and_corrupts_as_configured_and_counts_it() {
    let none = Faults::default();
    let (taken, got, stats) = faulty_run(faults(1, none, none), 100);
    assert_eq!((taken, got.len(), stats), (100, 100, FaultStats::default()), "no faults, no change");

    let (taken, got, stats) = faulty_run(faults(1, Faults { drop: 1.0, corrupt: 0.0 }, none), 50);
    assert_eq!((taken, got.len(), stats.rx_dropped), (50, 0, 50));

    let (taken, got, stats) = faulty_run(faults(1, none, Faults { drop: 1.0, corrupt: 0.0 }), 50);
    assert_eq!((taken, got.len(), stats.tx_dropped), (50, 0, 50), "a frame lost on transmit counts as taken");

    let (_, got, stats) = faulty_run(faults(1, Faults { drop: 0.0, corrupt: 1.0 }, none), 50);
    assert_eq!(stats.rx_corrupted, 50);
    let clean = bytes(&frames(&pool(), 50));
    for (bad, good) in got.iter().zip(&clean) {
        let flipped: u32 = bad.iter().zip(good).map(|(a, b)| (a ^ b).count_ones()).sum();
        assert_eq!(flipped, 1, "exactly one bit flipped");
    }

    let (taken, got, stats) = faulty_run(faults(7, Faults { drop: 0.3, corrupt: 0.0 }, none), 400);
    assert_eq!(taken, 400);
    assert_eq!(got.len() as u64 + stats.rx_dropped, 400, "every frame delivered or counted");
    assert!((60..=180).contains(&stats.rx_dropped), "about 30% dropped: {}", stats.rx_dropped);
    let survivors: Vec<&Vec<u8>> = got.iter().collect();
    let mut sorted = survivors.clone();
    sorted.sort();
    assert_eq!(survivors, sorted, "survivors keep their order");
}

#[test]
fn the_same_seed_gives_the_same_faults_and_another_seed_does_not() {
    let lossy = Faults { drop: 0.2, corrupt: 0.2 };
    let run = |seed| faulty_run(faults(seed, lossy, lossy), 300);
    assert_eq!(run(5), run(5));
    assert_ne!(run(5).1, run(6).1);
}

#[test]
fn a_rate_that_is_not_a_probability_is_refused_by_name() {
    for bad in [-0.1, 1.5, f64::NAN] {
        let config = faults(0, Faults::default(), Faults { drop: 0.0, corrupt: bad });
        let err = FaultInjector::new(Loopback::new(1, 16), config).err().expect("refused");
        assert_eq!(err.field, "tx.corrupt");
    }
}

#[test]
fn middleware_nests_and_shares_a_port_behind_an_arc() {
    let pool = pool();
    let lossy =
        FaultInjector::new(Loopback::new(1, 64), faults(3, Faults { drop: 0.5, corrupt: 0.0 }, Faults::default()));
    let shared: Arc<dyn EthDev> = Arc::new(lossy.unwrap());
    let port = Capture::new(Arc::clone(&shared));
    let seen = Arc::new(BurstLog::default());
    port.set_burst_hook(Some(seen.clone()));
    let mut burst = frames(&pool, 60);
    let offered = bytes(&burst);
    let (taken, got) = through(&port, &mut burst);
    assert_eq!(taken, 60);
    assert_eq!(seen.at(HookPoint::TxQueue(0)), offered, "the capture sees what it was given");
    assert_eq!(seen.at(HookPoint::RxQueue(0)), bytes(&got), "and what survived the faults below it");
    assert!(got.len() < 60);
    assert_eq!(port.name(), "loopback", "control calls reach the backend through both layers");
    assert_eq!(port.stats(), Err(DevError::Unsupported("stats".into())));
    drop((got, port, shared));
    assert_eq!(pool.in_use(), 0);
}
