//! The stack-facing side of a veth: configuration, queues and `EthDev`.
//!
//! Queue rings and the classification tables live in a [`State`] behind a
//! read-write lock: the data path (queue polling, the wire end) takes it for
//! reading once per burst, control calls (configure, RETA, flow rules) for
//! writing. Queue rings are multi-producer, multi-consumer [`Ring`]s: the
//! wire end alone fills the receive rings and drains the transmit rings, but
//! it reaches them, as the port does, through the shared `State`, so no side
//! can hold a single-thread ring end; sharing a `VethPort` between threads is
//! safe whatever they poll.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use ethdev::dev::{DevInfo, LinkStatus, MacAddr, PortConf, PortStats, RxOffloads, TxOffloads, XStat};
use ethdev::error::{ConfigError, DevError};
use ethdev::flow::{FlowAction, FlowAttr, FlowCounters, FlowId, FlowItem, FlowTable};
use ethdev::mbuf::Mbuf;
use ethdev::mempool::Mempool;
use ethdev::ring::Ring;
use ethdev::rss::{Reta, RssConf, RssHashTypes, RssKey};
use ethdev::EthDev;

use crate::counters::{PortCounters, QueueCounters};
use crate::hook::{BurstHook, HookPoint};

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
    pub(crate) link_up: AtomicBool,
    pub(crate) promiscuous: AtomicBool,
    pub(crate) counters: PortCounters,
}

/// Configuration-dependent state: rings, RSS and flow tables.
pub(crate) struct State {
    pub(crate) conf: PortConf,
    pub(crate) started: bool,
    pub(crate) rss: RssConf,
    pub(crate) flows: FlowTable,
    pub(crate) rxq: Vec<RxQueue>,
    pub(crate) txq: Vec<TxQueue>,
    /// The burst hook, if one is set (kept across reconfiguration).
    pub(crate) hook: Option<Arc<dyn BurstHook>>,
}

/// One receive queue: its ring and counters.
pub(crate) struct RxQueue {
    pub(crate) ring: Ring<Mbuf>,
    pub(crate) counters: QueueCounters,
}

/// One transmit queue: its ring and counters.
pub(crate) struct TxQueue {
    pub(crate) ring: Ring<Mbuf>,
    pub(crate) counters: QueueCounters,
}

impl State {
    pub(crate) fn build(conf: &PortConf) -> Result<State, ConfigError> {
        validate(conf)?;
        let reta = Reta::new(conf.reta_size as usize, conf.rx_queues)?;
        let rxq = (0..conf.rx_queues)
            .map(|_| ring(conf.rx_ring_size, "rx_ring_size"))
            .map(|r| r.map(|ring| RxQueue { ring, counters: QueueCounters::default() }))
            .collect::<Result<_, _>>()?;
        let txq = (0..conf.tx_queues)
            .map(|_| ring(conf.tx_ring_size, "tx_ring_size"))
            .map(|r| r.map(|ring| TxQueue { ring, counters: QueueCounters::default() }))
            .collect::<Result<_, _>>()?;
        Ok(State {
            conf: conf.clone(),
            started: false,
            rss: RssConf::from_parts(conf.rss_key, conf.rss_types, reta),
            flows: FlowTable::new(),
            rxq,
            txq,
            hook: None,
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
    pub(crate) fn running(&self, state: &State) -> bool {
        state.started && self.link_up.load(Ordering::Relaxed)
    }
}

impl VethPort {
    /// The port's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Checks that every frame is accounted for: on receive, frames offered
    /// by the wire = frames queued + frames dropped; on transmit, frames
    /// accepted by `tx_burst` = frames sent + frames dropped + frames still
    /// in a ring. Returns the first imbalance found.
    pub fn check_accounting(&self) -> Result<(), String> {
        let state = self.shared.read();
        self.shared
            .counters
            .check(state.rxq.iter().map(|q| &q.counters), state.txq.iter().map(|q| (&q.counters, q.ring.len() as u64)))
    }

    /// Sets (or with `None` removes) the port's burst hook and returns the
    /// one it replaces; see [`crate::hook`].
    pub fn set_burst_hook(&self, hook: Option<Arc<dyn BurstHook>>) -> Option<Arc<dyn BurstHook>> {
        std::mem::replace(&mut self.shared.write().hook, hook)
    }

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

/// `tx_burst` with a hook: shows the hook the frames that fit in the ring,
/// then enqueues them. Each stack owns its transmit queue, so no other
/// producer takes the room in between; if one did, the frames it left out
/// stay in `pkts` (in order) although the hook saw them.
fn enqueue_hooked(ring: &Ring<Mbuf>, queue: u16, pkts: &mut Vec<Mbuf>, hook: &dyn BurstHook) -> usize {
    let room = ring.free_count().min(pkts.len());
    if room == 0 {
        return 0;
    }
    let mut rest = pkts.split_off(room);
    hook.burst(HookPoint::TxQueue(queue), pkts);
    let n = ring.enqueue_burst(pkts);
    pkts.append(&mut rest);
    n
}

impl EthDev for VethPort {
    fn info(&self) -> DevInfo {
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

    fn configure(&self, conf: &PortConf) -> Result<(), DevError> {
        let mut state = self.shared.write();
        if state.started {
            return Err(DevError::State { actual: "started", needed: "stopped" });
        }
        let mut built = State::build(conf)?;
        built.hook = state.hook.take();
        *state = built;
        Ok(())
    }

    fn start(&self) -> Result<(), DevError> {
        self.shared.write().started = true;
        Ok(())
    }

    fn stop(&self) {
        self.shared.write().started = false;
    }

    fn rx_burst(&self, queue: u16, out: &mut Vec<Mbuf>, max: usize) -> usize {
        let state = self.shared.read();
        let Some(q) = state.rxq.get(queue as usize) else { return 0 };
        let n = q.ring.dequeue_burst(out, max);
        if let Some(hook) = state.hook.as_ref().filter(|_| n > 0) {
            hook.burst(HookPoint::RxQueue(queue), &out[out.len() - n..]);
        }
        n
    }

    fn tx_burst(&self, queue: u16, pkts: &mut Vec<Mbuf>) -> usize {
        let state = self.shared.read();
        let Some(q) = state.txq.get(queue as usize).filter(|_| self.shared.running(&state)) else {
            return 0;
        };
        let n = match &state.hook {
            None => q.ring.enqueue_burst(pkts),
            Some(hook) => enqueue_hooked(&q.ring, queue, pkts, hook.as_ref()),
        };
        q.counters.accepted.add(n as u64);
        n
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

    fn reta_query(&self) -> Reta {
        self.shared.read().rss.reta().clone()
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

    fn flow_flush(&self) {
        self.shared.write().flows.flush();
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

    fn link(&self) -> LinkStatus {
        LinkStatus { up: self.shared.link_up.load(Ordering::Relaxed), speed_mbps: 100_000 }
    }

    fn set_link(&self, up: bool) {
        self.shared.link_up.store(up, Ordering::Relaxed);
    }

    fn mac_addr(&self) -> MacAddr {
        self.shared.mac
    }

    fn mtu(&self) -> u16 {
        self.shared.read().conf.mtu
    }

    fn set_mtu(&self, mtu: u16) -> Result<(), DevError> {
        check_mtu(mtu)?;
        self.shared.write().conf.mtu = mtu;
        Ok(())
    }

    fn promiscuous(&self) -> bool {
        self.shared.promiscuous.load(Ordering::Relaxed)
    }

    fn set_promiscuous(&self, on: bool) {
        self.shared.promiscuous.store(on, Ordering::Relaxed);
    }

    fn stats(&self) -> PortStats {
        let state = self.shared.read();
        self.shared.counters.stats(state.rxq.iter().map(|q| &q.counters), state.txq.iter().map(|q| &q.counters))
    }

    fn xstats(&self) -> Vec<XStat> {
        let state = self.shared.read();
        self.shared.counters.xstats(state.rxq.iter().map(|q| &q.counters), state.txq.iter().map(|q| &q.counters))
    }

    fn stats_reset(&self) {
        let state = self.shared.read();
        self.shared.counters.reset();
        state.rxq.iter().for_each(|q| q.counters.reset());
        state.txq.iter().for_each(|q| q.counters.reset());
    }
}
