//! Fault injection: drop and corrupt frames on any port's queues, the way
//! smoltcp's `FaultInjector` does on a `phy::Device`.
//!
//! [`FaultInjector`] wraps a port; each queue handle it hands out draws
//! from its own seeded ChaCha stream (derived from the seed, the queue and
//! the direction), so the same seed and the same traffic give the same
//! faults whatever the thread timing. On receive, a frame the inner queue
//! returned is dropped (its buffer goes back to the pool) or has one bit
//! flipped (and loses what was known of its checksums,
//! [`crate::Mbuf::distrust_checksums`], so its receiver verifies them); on
//! transmit, the same happens before the inner queue sees it,
//! to the frames the inner queue has room for, and a dropped frame counts
//! as taken, as a lossy cable takes what it loses. Every fault is counted
//! ([`FaultStats`]), so accounting still closes: the inner port's own
//! counters never see what was dropped on the way in, and count what was
//! dropped on the way out as delivered. As on a lossy NIC, a receive burst
//! whose frames were all dropped returns 0 although more may wait.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::dev::EthDev;
use crate::error::{ConfigError, DevError};
use crate::mbuf::Mbuf;
use crate::queue::{RxQueue, TxQueue};

use super::forward_control;

/// Fault rates of one direction, each a probability per frame.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Faults {
    /// Chance that a frame is dropped.
    pub drop: f64,
    /// Chance that a frame (not dropped) has one bit flipped.
    pub corrupt: f64,
}

/// What a [`FaultInjector`] does.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FaultConfig {
    /// Seed of every queue's random stream.
    pub seed: u64,
    /// Faults on frames `rx_burst` returns.
    pub rx: Faults,
    /// Faults on frames given to `tx_burst`.
    pub tx: Faults,
}

impl FaultConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let rates = [("rx.drop", self.rx.drop), ("rx.corrupt", self.rx.corrupt)];
        let rates = rates.into_iter().chain([("tx.drop", self.tx.drop), ("tx.corrupt", self.tx.corrupt)]);
        for (field, p) in rates {
            if !(0.0..=1.0).contains(&p) {
                return Err(ConfigError::new(field, format!("{p} is not a probability between 0 and 1")));
            }
        }
        Ok(())
    }
}

/// Faults injected so far, over every queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Received frames dropped.
    pub rx_dropped: u64,
    /// Received frames corrupted.
    pub rx_corrupted: u64,
    /// Transmitted frames dropped.
    pub tx_dropped: u64,
    /// Transmitted frames corrupted.
    pub tx_corrupted: u64,
}

/// Fault counters of one direction.
#[derive(Debug, Default)]
struct Counted {
    dropped: AtomicU64,
    corrupted: AtomicU64,
}

/// A port whose queues drop and corrupt frames; see the module docs.
/// Clones share the port and the counters.
#[derive(Clone)]
pub struct FaultInjector<D> {
    dev: D,
    config: FaultConfig,
    counts: Arc<[Counted; 2]>,
}

const RX: usize = 0;
const TX: usize = 1;

impl<D: EthDev> FaultInjector<D> {
    /// Wraps `dev`; refuses rates that are not probabilities.
    pub fn new(dev: D, config: FaultConfig) -> Result<FaultInjector<D>, ConfigError> {
        config.validate()?;
        Ok(FaultInjector { dev, config, counts: Arc::default() })
    }

    /// The wrapped port.
    pub fn inner(&self) -> &D {
        &self.dev
    }

    /// Faults injected so far.
    pub fn fault_stats(&self) -> FaultStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let [rx, tx] = &*self.counts;
        FaultStats {
            rx_dropped: get(&rx.dropped),
            rx_corrupted: get(&rx.corrupted),
            tx_dropped: get(&tx.dropped),
            tx_corrupted: get(&tx.corrupted),
        }
    }

    fn faulty(&self, queue: u16, dir: usize) -> Faulty {
        let mut rng = ChaCha8Rng::seed_from_u64(self.config.seed);
        rng.set_stream(u64::from(queue) * 2 + dir as u64);
        let faults = if dir == RX { self.config.rx } else { self.config.tx };
        Faulty { faults, rng, counts: Arc::clone(&self.counts), dir }
    }
}

impl<D: EthDev> EthDev for FaultInjector<D> {
    forward_control!(inner);

    fn rx_queue(&self, queue: u16) -> Result<Box<dyn RxQueue>, DevError> {
        let inner = self.dev.rx_queue(queue)?;
        Ok(Box::new(FaultRx { inner, faulty: self.faulty(queue, RX) }))
    }

    fn tx_queue(&self, queue: u16) -> Result<Box<dyn TxQueue>, DevError> {
        let inner = self.dev.tx_queue(queue)?;
        Ok(Box::new(FaultTx { inner, faulty: self.faulty(queue, TX) }))
    }
}

/// One queue's random stream and where it counts.
struct Faulty {
    faults: Faults,
    rng: ChaCha8Rng,
    counts: Arc<[Counted; 2]>,
    dir: usize,
}

impl Faulty {
    /// Applies faults to `frames[from..to]` in place: drops some (their
    /// buffers go back to the pool), corrupts some of the rest, and keeps
    /// the survivors in order; returns how many were dropped.
    fn apply(&mut self, frames: &mut Vec<Mbuf>, from: usize, to: usize) -> usize {
        let (mut kept, mut corrupted) = (from, 0);
        for i in from..to {
            if self.rng.random_bool(self.faults.drop) {
                continue;
            }
            if self.rng.random_bool(self.faults.corrupt) && self.flip_bit(&mut frames[i]) {
                corrupted += 1;
            }
            frames.swap(kept, i);
            kept += 1;
        }
        frames.drain(kept..to);
        let dropped = to - kept;
        let counts = &self.counts[self.dir];
        counts.dropped.fetch_add(dropped as u64, Ordering::Relaxed);
        counts.corrupted.fetch_add(corrupted, Ordering::Relaxed);
        dropped
    }

    /// Flips one random bit of `mbuf`; false if it has no byte to flip.
    fn flip_bit(&mut self, mbuf: &mut Mbuf) -> bool {
        if mbuf.is_empty() {
            return false;
        }
        let at = self.rng.random_range(0..mbuf.len());
        let bit = self.rng.random_range(0..8u32);
        mbuf.data_mut()[at] ^= 1 << bit;
        mbuf.distrust_checksums();
        true
    }
}

struct FaultRx {
    inner: Box<dyn RxQueue>,
    faulty: Faulty,
}

impl RxQueue for FaultRx {
    fn rx_burst(&mut self, out: &mut Vec<Mbuf>, max: usize) -> usize {
        let start = out.len();
        self.inner.rx_burst(out, max);
        let end = out.len();
        self.faulty.apply(out, start, end);
        out.len() - start
    }
}

struct FaultTx {
    inner: Box<dyn TxQueue>,
    faulty: Faulty,
}

impl TxQueue for FaultTx {
    fn tx_burst(&mut self, pkts: &mut Vec<Mbuf>) -> usize {
        let room = self.inner.free_count().min(pkts.len());
        let dropped = self.faulty.apply(pkts, 0, room);
        dropped + self.inner.tx_burst(pkts)
    }

    fn free_count(&self) -> usize {
        self.inner.free_count()
    }
}
