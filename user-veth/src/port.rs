//! The stack-facing side of a veth: configuration, queues and `EthDev`.
//!
//! Queue rings and the classification tables live in a [`State`] behind a
//! read-write lock: the wire end takes it for reading once per burst,
//! control calls (configure, RETA, flow rules) for writing. The stack side
//! never takes it on the fast path: [`EthDev::rx_queue`] and
//! [`EthDev::tx_queue`] hand out handles holding their queue's ring and
//! counters directly (each queue is an `Arc` shared with the `State`), and
//! whether the port runs is read from atomics. `configure` builds new
//! queues and bumps the port's generation, so a handle taken before it
//! transmits nothing (its ring is no longer drained) and only drains what
//! was left in its receive ring. Queue rings are multi-producer,
//! multi-consumer [`Ring`]s, so sharing a `VethPort` between threads is
//! safe whatever they poll.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use ethdev::dev::{DevInfo, LinkStatus, PortConf, PortStats, RxOffloads, TxOffloads, XStat};
use ethdev::error::{ConfigError, DevError};
use ethdev::flow::{FlowAction, FlowAttr, FlowCounters, FlowId, FlowItem, FlowTable};
use ethdev::mac::MacAddr;
use ethdev::mbuf::Mbuf;
use ethdev::mempool::Mempool;
use ethdev::queue::{RxQueue, TxQueue};
use ethdev::ring::Ring;
use ethdev::rss::{Reta, RssConf, RssHashTypes, RssKey};
use ethdev::EthDev;

use crate::counters::{PortCounters, QueueCounters};

/// Most receive (and transmit) queues a veth port offers.
pub const MAX_QUEUES: u16 = 64;
const MAX_RING_SIZE: u32 = 1 << 15;
const RETA_SIZES: &[u16] = &[64, 128, 256, 512];
/// Smallest and largest IP MTU a veth port accepts.
pub const MTU_RANGE: (u16, u16) = (68, 9600);

/// The stack-facing side of a veth: an [`EthDev`]. Clones share the port.
#[derive(Clone)]
pub struct VethPort {
    pub(crate) shared: Arc<Shared>,
}

/// Everything both faces of a port share.
pub(crate) struct Shared {
    pub(crate) name: String,
    pub(crate) mac: MacAddr,
    pub(crate) pool: Mempool,
    pub(crate) state: RwLock<State>,
    /// Whether the port is started.
    pub(crate) started: AtomicBool,
    /// Bumped by every `configure`: queue handles of an older generation are stale.
    pub(crate) generation: AtomicU64,
    pub(crate) link_up: AtomicBool,
    pub(crate) promiscuous: AtomicBool,
    pub(crate) counters: PortCounters,
}

/// Configuration-dependent state: rings, RSS and flow tables.
pub(crate) struct State {
    pub(crate) conf: PortConf,
    pub(crate) rss: RssConf,
    pub(crate) flows: FlowTable,
    pub(crate) rxq: Vec<Arc<RxRing>>,
    pub(crate) txq: Vec<Arc<TxRing>>,
}

/// One receive queue: its ring and counters.
pub(crate) struct RxRing {
    pub(crate) ring: Ring<Mbuf>,
    pub(crate) counters: QueueCounters,
}

/// One transmit queue: its ring and counters.
pub(crate) struct TxRing {
    pub(crate) ring: Ring<Mbuf>,
    pub(crate) counters: QueueCounters,
}

impl State {
    pub(crate) fn build(conf: &PortConf) -> Result<State, ConfigError> {
        validate(conf)?;
        let reta = Reta::new(conf.reta_size as usize, conf.rx_queues)?;
        let rxq = (0..conf.rx_queues)
            .map(|_| ring(conf.rx_ring_size, "rx_ring_size"))
            .map(|r| r.map(|ring| Arc::new(RxRing { ring, counters: QueueCounters::default() })))
            .collect::<Result<_, _>>()?;
        let txq = (0..conf.tx_queues)
            .map(|_| ring(conf.tx_ring_size, "tx_ring_size"))
            .map(|r| r.map(|ring| Arc::new(TxRing { ring, counters: QueueCounters::default() })))
            .collect::<Result<_, _>>()?;
        Ok(State {
            conf: conf.clone(),
            rss: RssConf::from_parts(conf.rss_key, conf.rss_types, reta),
            flows: FlowTable::new(),
            rxq,
            txq,
        })
    }
}

fn ring(size: u32, field: &str) -> Result<Ring<Mbuf>, ConfigError> {
    if size > MAX_RING_SIZE {
        return Err(ConfigError::new(field, format!("{size} exceeds the maximum of {MAX_RING_SIZE}")));
    }
    Ring::mpmc(size as usize).map_err(|e| ConfigError::new(field, e.reason))
}

fn validate(conf: &PortConf) -> Result<(), ConfigError> {
    for (field, n) in [("rx_queues", conf.rx_queues), ("tx_queues", conf.tx_queues)] {
        if n == 0 || n > MAX_QUEUES {
            return Err(ConfigError::new(field, format!("{n} is not between 1 and {MAX_QUEUES}")));
        }
    }
    if !RETA_SIZES.contains(&conf.reta_size) {
        return Err(ConfigError::new("reta_size", format!("{} is not one of {RETA_SIZES:?}", conf.reta_size)));
    }
    check_mtu(conf.mtu)
}

fn check_mtu(mtu: u16) -> Result<(), ConfigError> {
    if !(MTU_RANGE.0..=MTU_RANGE.1).contains(&mtu) {
        return Err(ConfigError::new("mtu", format!("{mtu} is not between {} and {}", MTU_RANGE.0, MTU_RANGE.1)));
    }
    Ok(())
}

impl Shared {
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether frames flow: started and link up.
    #[inline]
    pub(crate) fn running(&self) -> bool {
        self.started.load(Ordering::Relaxed) && self.link_up.load(Ordering::Relaxed)
    }
}

impl VethPort {
    /// Frames waiting in receive queue `queue` (a snapshot).
    pub fn rx_queue_len(&self, queue: u16) -> usize {
        self.shared.read().rxq.get(queue as usize).map_or(0, |q| q.ring.len())
    }

    fn flow_op<T>(
        &self,
        op: impl FnOnce(&mut FlowTable, u16) -> Result<T, ethdev::error::FlowError>,
    ) -> Result<T, DevError> {
        let mut state = self.shared.write();
        let queues = state.conf.rx_queues;
        Ok(op(&mut state.flows, queues)?)
    }
}

/// The handle of one receive queue: its ring, no lock.
struct VethRxQueue {
    queue: Arc<RxRing>,
}

impl RxQueue for VethRxQueue {
    #[inline]
    fn rx_burst(&mut self, out: &mut Vec<Mbuf>, max: usize) -> usize {
        self.queue.ring.dequeue_burst(out, max)
    }
}

/// The handle of one transmit queue: its ring and the port's run state,
/// no lock.
struct VethTxQueue {
    shared: Arc<Shared>,
    queue: Arc<TxRing>,
    generation: u64,
}

impl VethTxQueue {
    /// Whether the port runs and this queue is still its queue.
    #[inline]
    fn live(&self) -> bool {
        self.shared.running() && self.shared.generation.load(Ordering::Acquire) == self.generation
    }
}

impl TxQueue for VethTxQueue {
    #[inline]
    fn tx_burst(&mut self, pkts: &mut Vec<Mbuf>) -> usize {
        if !self.live() {
            return 0;
        }
        let n = self.queue.ring.enqueue_burst(pkts);
        self.queue.counters.accepted.add(n as u64);
        n
    }

    fn free_count(&self) -> usize {
        if self.live() {
            self.queue.ring.free_count()
        } else {
            0
        }
    }
}

fn no_queue(kind: &str, queue: u16, count: usize) -> DevError {
    ConfigError::new(kind, format!("queue {queue} does not exist (the port has {count})")).into()
}

impl std::fmt::Debug for VethPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VethPort").field("name", &self.shared.name).finish_non_exhaustive()
    }
}

/// What a veth port can do, whatever its state.
pub(crate) fn info() -> DevInfo {
    DevInfo {
        driver: "user-veth",
        max_rx_queues: MAX_QUEUES,
        max_tx_queues: MAX_QUEUES,
        max_ring_size: MAX_RING_SIZE,
        reta_sizes: RETA_SIZES,
        rss_key_sizes: &[40, 52],
        rss_types: RssHashTypes::all(),
        rx_offloads: RxOffloads::all(),
        tx_offloads: TxOffloads::all(),
        mtu_range: MTU_RANGE,
    }
}

impl EthDev for VethPort {
    fn info(&self) -> DevInfo {
        info()
    }

    fn configure(&self, conf: &PortConf) -> Result<(), DevError> {
        let mut state = self.shared.write();
        if self.shared.started.load(Ordering::Relaxed) {
            return Err(DevError::State { actual: "started", needed: "stopped" });
        }
        *state = State::build(conf)?;
        self.shared.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }

    fn start(&self) -> Result<(), DevError> {
        let _state = self.shared.write();
        self.shared.started.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn stop(&self) -> Result<(), DevError> {
        let _state = self.shared.write();
        self.shared.started.store(false, Ordering::Relaxed);
        Ok(())
    }

    fn rx_queue(&self, queue: u16) -> Result<Box<dyn RxQueue>, DevError> {
        let state = self.shared.read();
        let found = state.rxq.get(usize::from(queue)).ok_or_else(|| no_queue("rx_queue", queue, state.rxq.len()))?;
        Ok(Box::new(VethRxQueue { queue: Arc::clone(found) }))
    }

    fn tx_queue(&self, queue: u16) -> Result<Box<dyn TxQueue>, DevError> {
        let state = self.shared.read();
        let found = state.txq.get(usize::from(queue)).ok_or_else(|| no_queue("tx_queue", queue, state.txq.len()))?;
        let generation = self.shared.generation.load(Ordering::Acquire);
        Ok(Box::new(VethTxQueue { shared: Arc::clone(&self.shared), queue: Arc::clone(found), generation }))
    }

    fn name(&self) -> &str {
        &self.shared.name
    }

    fn rss_hash_update(&self, key: RssKey, types: RssHashTypes) -> Result<(), DevError> {
        let mut state = self.shared.write();
        state.rss.set_key(key);
        state.rss.set_types(types);
        state.conf.rss_key = key;
        state.conf.rss_types = types;
        Ok(())
    }

    fn reta_update(&self, reta: Reta) -> Result<(), DevError> {
        let mut state = self.shared.write();
        let checked = Reta::from_entries(reta.entries().to_vec(), state.conf.rx_queues)?;
        if !RETA_SIZES.contains(&(checked.len() as u16)) {
            return Err(ConfigError::new("reta_size", format!("{} is not one of {RETA_SIZES:?}", checked.len())).into());
        }
        *state.rss.reta_mut() = checked;
        Ok(())
    }

    fn reta_query(&self) -> Result<Reta, DevError> {
        Ok(self.shared.read().rss.reta().clone())
    }

    fn flow_validate(&self, attr: &FlowAttr, pattern: &[FlowItem], actions: &[FlowAction]) -> Result<(), DevError> {
        let state = self.shared.read();
        Ok(state.flows.validate(attr, pattern, actions, state.conf.rx_queues)?)
    }

    fn flow_create(&self, attr: &FlowAttr, pattern: &[FlowItem], actions: &[FlowAction]) -> Result<FlowId, DevError> {
        self.flow_op(|flows, queues| flows.create(attr, pattern, actions, queues))
    }

    fn flow_destroy(&self, id: FlowId) -> Result<(), DevError> {
        self.flow_op(|flows, _| flows.destroy(id))
    }

    fn flow_flush(&self) -> Result<(), DevError> {
        self.shared.write().flows.flush();
        Ok(())
    }

    fn flow_query(&self, id: FlowId) -> Result<FlowCounters, DevError> {
        Ok(self.shared.read().flows.query(id)?)
    }

    fn flow_isolate(&self, on: bool) -> Result<(), DevError> {
        self.flow_op(|flows, _| {
            flows.set_isolate(on);
            Ok(())
        })
    }

    fn link(&self) -> Result<LinkStatus, DevError> {
        Ok(LinkStatus { up: self.shared.link_up.load(Ordering::Relaxed), speed_mbps: 100_000 })
    }

    fn set_link(&self, up: bool) -> Result<(), DevError> {
        self.shared.link_up.store(up, Ordering::Relaxed);
        Ok(())
    }

    fn mac_addr(&self) -> Result<MacAddr, DevError> {
        Ok(self.shared.mac)
    }

    fn mtu(&self) -> Result<u16, DevError> {
        Ok(self.shared.read().conf.mtu)
    }

    fn set_mtu(&self, mtu: u16) -> Result<(), DevError> {
        check_mtu(mtu)?;
        self.shared.write().conf.mtu = mtu;
        Ok(())
    }

    fn promiscuous(&self) -> Result<bool, DevError> {
        Ok(self.shared.promiscuous.load(Ordering::Relaxed))
    }

    fn set_promiscuous(&self, on: bool) -> Result<(), DevError> {
        self.shared.promiscuous.store(on, Ordering::Relaxed);
        Ok(())
    }

    fn stats(&self) -> Result<PortStats, DevError> {
        let state = self.shared.read();
        Ok(self.shared.counters.stats(state.rxq.iter().map(|q| &q.counters), state.txq.iter().map(|q| &q.counters)))
    }

    fn xstats(&self) -> Result<Vec<XStat>, DevError> {
        let state = self.shared.read();
        Ok(self.shared.counters.xstats(state.rxq.iter().map(|q| &q.counters), state.txq.iter().map(|q| &q.counters)))
    }

    fn stats_reset(&self) -> Result<(), DevError> {
        let state = self.shared.read();
        self.shared.counters.reset();
        state.rxq.iter().for_each(|q| q.counters.reset());
        state.txq.iter().for_each(|q| q.counters.reset());
        Ok(())
    }

    /// On receive, frames offered by the wire = frames queued + frames
    /// dropped; on transmit, frames accepted by `tx_burst` = frames sent +
    /// frames dropped + frames still in a ring.
    fn check_accounting(&self) -> Result<(), DevError> {
        let state = self.shared.read();
        let rxq = state.rxq.iter().map(|q| &q.counters);
        let txq = state.txq.iter().map(|q| (&q.counters, q.ring.len() as u64));
        self.shared.counters.check(rxq, txq).map_err(DevError::Accounting)
    }
}
