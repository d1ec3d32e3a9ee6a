//! dtnet's [`EthDev`] over a DPDK port: the adapter that lets a stack
//! group, a scenario host or the bridge drive a DPDK port like any other
//! backend.
//!
//! [`DpdkEthDev`] owns one port (claimed in the EAL, closed when the last
//! user is gone) and implements the control operations DPDK has here:
//! `info`, `configure` (queues, ring sizes, RSS types and key), `start`,
//! `stop`, `rss_hash_update`, `reta_update`/`reta_query`, `link`,
//! `mac_addr`, `stats` and `xstats`, the checksum offloads and TSO the
//! device lists (an offload it lacks is refused by name), and flow rules
//! (translated to rte_flow in the `flow` module). MTU and promiscuous control
//! are not translated and stay [`DevError::Unsupported`]; the port is
//! always promiscuous, as a bridge port must be.
//!
//! Offloads both ways: the device's receive checksum verdicts become
//! dtnet's `RX_*_CKSUM_*` mbuf flags. On transmit, what an mbuf asks for
//! (`TX_IP_CKSUM`, `TX_L4_CKSUM`, `TX_TCP_SEG`) goes to the device when
//! the port was configured with that offload, and is done in software
//! (user-veth's offload emulation) otherwise, and for TSO frames longer than
//! one DPDK mbuf, so a frame never leaves without the checksums it asked for.
//!
//! The queue handles move frames between DPDK mbufs and dtnet [`Mbuf`]s
//! from a dtnet [`Mempool`]. The two kinds of buffer live in different
//! memory (DPDK's memzones, dtnet's index-addressed pools that may sit in
//! shared memory between processes), so each frame is copied once per
//! crossing: on receive into a fresh dtnet mbuf ([`DpdkRxQueue`]), on
//! transmit into a fresh DPDK mbuf (in [`crate::queue`], which this
//! adapter wraps). [`DpdkEthDev::wire`] turns a started port into a
//! [`Wire`], so the bridge takes a DPDK port beside software ports. A frame
//! that cannot be carried (no dtnet mbuf free, or
//! longer than a DPDK mbuf) is a counted drop, reported in `xstats`.
//!
//! Soundness: a DPDK queue must have one poller and must not be polled
//! while the port starts, stops or is reconfigured. Handles are therefore
//! handed out only while the port runs, once per queue until dropped, and
//! `configure`/`start`/`stop` refuse while any handle is alive. Handles
//! keep the adapter's state alive, so the port closes only after the last
//! of them is gone; an [`EalUse`] keeps the EAL up until then.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ethdev::dev::{DevInfo, EthDev, LinkStatus, PortConf, PortStats, RxOffloads, TxOffloads, XStat};
use ethdev::error::{ConfigError, DevError};
use ethdev::flow::{FlowAction, FlowAttr, FlowId, FlowItem, FlowTable};
use std::collections::{BTreeMap, VecDeque};

use ethdev::mbuf::{Mbuf, OlFlags};
use ethdev::mempool::Mempool;
use ethdev::mempool::Owner;
use ethdev::packet::{IpAddrs, PacketMeta};
use ethdev::proto::{PROTO_TCP, PROTO_UDP};
use ethdev::queue::{RxQueue as EthRxQueue, TxQueue as EthTxQueue};
use ethdev::rss::{Reta, RssHashTypes, RssKey};
use ethdev::wire::Wire;
use ethdev::MacAddr;

use crate::eal::{Eal, EalUse, PortId};
use crate::error::Error;
use crate::flow::{self, RteFlow};
use crate::mempool::{PktPool, PoolRef};
use crate::port::{self, Offloads, PortCtl, RssSetup};
use crate::queue::{RxInfo, RxQueue, TxOffload, TxQueue, MAX_BURST};

/// DPDK's default MTU, the only one the adapter runs a port at so far.
const DEFAULT_MTU: u16 = 1500;

/// `errno` of `ENOTSUP`, which DPDK returns for an operation a driver lacks.
const ENOTSUP: i32 = 95;

/// A DPDK port behind dtnet's [`EthDev`] trait (see the module docs).
#[derive(Debug)]
pub struct DpdkEthDev {
    inner: Arc<Inner>,
}

/// What the port and its queue handles share.
#[derive(Debug)]
struct Inner {
    name: String,
    /// The driver's name, leaked once per adapter: [`DevInfo`] wants it `'static`.
    driver: &'static str,
    pool: PoolRef,
    mbufs: Mempool,
    state: Mutex<State>,
    drops: Drops,
    _eal: EalUse,
}

/// Control state, behind the mutex every control operation takes.
#[derive(Debug)]
struct State {
    ctl: PortCtl,
    tx_queues: u16,
    /// Transmit offloads the port was configured with.
    tx_offloads: TxOffloads,
    configured: bool,
    started: bool,
    rx_taken: Vec<bool>,
    tx_taken: Vec<bool>,
    /// The configured RSS key: drivers may read it as late as start.
    _rss_key: Option<Box<[u8]>>,
    /// The RETA size of a one-queue port: every hash goes to queue 0,
    /// whatever the device has (or lacks: net_tap hashes but has no RETA).
    single_queue_reta: Option<u16>,
    /// The rules created, in dtnet's model (which checks them and numbers
    /// them as dtnet's classifier would) ...
    flows: FlowTable,
    /// ... and on the device.
    rte_flows: BTreeMap<FlowId, RteFlow>,
}

/// Frames the adapter dropped, by reason.
#[derive(Debug, Default)]
struct Drops {
    rx_nombuf: AtomicU64,
    rx_too_long: AtomicU64,
    tx_too_long: AtomicU64,
    tx_full: AtomicU64,
    tx_bad_offload: AtomicU64,
}

impl DpdkEthDev {
    /// Takes port `id` (unconfigured until [`EthDev::configure`]); the
    /// device receives into DPDK mbufs of `dpdk_pool` and the queue
    /// handles copy frames into dtnet mbufs of `mbufs`.
    pub fn new(eal: &Eal, id: PortId, dpdk_pool: &PktPool<'_>, mbufs: Mempool) -> Result<DpdkEthDev, Error> {
        let info = port::dev_info(id)?;
        if !eal.claim(id) {
            return Err(Error::PortInUse(id.0));
        }
        let driver: &'static str = Box::leak(info.driver.clone().into_boxed_str());
        let state = State {
            ctl: PortCtl { id, info, rx_queues: 0 },
            tx_queues: 0,
            tx_offloads: TxOffloads::empty(),
            configured: false,
            started: false,
            rx_taken: Vec::new(),
            tx_taken: Vec::new(),
            _rss_key: None,
            single_queue_reta: None,
            flows: FlowTable::new(),
            rte_flows: BTreeMap::new(),
        };
        let inner = Inner {
            name: format!("dpdk{}", id.0),
            driver,
            pool: dpdk_pool.unbound(),
            mbufs,
            state: Mutex::new(state),
            drops: Drops::default(),
            _eal: EalUse::new(eal),
        };
        Ok(DpdkEthDev { inner: Arc::new(inner) })
    }

    /// The adapter under `name` (a scenario host's, as reports and captures
    /// show it) instead of `dpdk<port id>`; takes effect before any queue
    /// handle or wire is taken, which share the name.
    pub fn named(mut self, name: &str) -> DpdkEthDev {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.name = name.to_owned();
        }
        self
    }

    /// The DPDK port id.
    pub fn port_id(&self) -> PortId {
        self.inner.lock().ctl.id
    }

    /// Mbufs of the DPDK pool the port receives into that are in use now
    /// (frames in flight, and the buffers a device keeps in its receive
    /// rings): the baseline a run that leaks no DPDK mbufs comes back to.
    pub fn dpdk_pool_in_use(&self) -> u32 {
        self.inner.pool.in_use()
    }

    /// Runs `op` on the port's DPDK control handle, for what the `EthDev`
    /// trait does not cover (e.g. [`PortCtl::rss_conf`]).
    pub fn ctl<T>(&self, op: impl FnOnce(&PortCtl) -> crate::Result<T>) -> crate::Result<T> {
        op(&self.inner.lock().ctl)
    }

    /// [`DpdkEthDev::ctl`] with the error as the `EthDev` trait reports it.
    fn with_ctl<T>(&self, op: impl FnOnce(&PortCtl) -> crate::Result<T>) -> Result<T, DevError> {
        self.ctl(op).map_err(dev_error)
    }

    /// The state, if no queue handle is alive (which start, stop and
    /// configure need: a queue must not be polled meanwhile).
    fn lock_quiet(&self) -> Result<MutexGuard<'_, State>, DevError> {
        let state = self.inner.lock();
        // Handles are made (and Arc clones taken) only under this lock.
        if Arc::strong_count(&self.inner) > 1 {
            return Err(DevError::State {
                actual: "polled through live queue handles",
                needed: "without queue handles",
            });
        }
        Ok(state)
    }
}

impl DpdkEthDev {
    /// The receive handle of `queue`, concretely typed.
    fn take_rx(&self, queue: u16) -> Result<DpdkRxQueue, DevError> {
        let mut state = self.inner.lock();
        let id = state.ctl.id;
        take(&mut state, queue, |s| &mut s.rx_taken)?;
        Ok(DpdkRxQueue { inner: Arc::clone(&self.inner), q: RxQueue::new(id, queue), port: id.0 })
    }

    /// The transmit handle of `queue`, concretely typed.
    fn take_tx(&self, queue: u16) -> Result<DpdkTxQueue, DevError> {
        let mut state = self.inner.lock();
        let id = state.ctl.id;
        take(&mut state, queue, |s| &mut s.tx_taken)?;
        Ok(DpdkTxQueue {
            inner: Arc::clone(&self.inner),
            q: TxQueue::new(id, queue, self.inner.pool.raw()),
            offloads: state.tx_offloads,
            pending: VecDeque::new(),
        })
    }

    /// The started port as a switch port: a [`Wire`] that takes every rx
    /// queue and tx queue 0, so the bridge (or any wire driver) can plug a
    /// DPDK port in beside software ports. What the device receives is what
    /// the wire hands the switch ([`Wire::take_tx`]); what the switch puts
    /// on the wire the device transmits, and frames the tx ring has no room
    /// for are counted drops (`dtnet_tx_full`).
    pub fn wire(&self) -> Result<DpdkWire, DevError> {
        let queues = self.inner.lock().ctl.rx_queues;
        let rx = (0..queues).map(|q| self.take_rx(q)).collect::<Result<Vec<_>, _>>()?;
        Ok(DpdkWire { rx, tx: self.take_tx(0)?, next_rx: 0 })
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        // No handle is left (they hold this Arc); errors are ignored: a
        // stopped, closed port is the goal.
        if !state.rte_flows.is_empty() {
            let _ = flow::flush(state.ctl.id, &state.ctl.info);
        }
        if state.started {
            let _ = state.ctl.stop_device();
        }
        state.ctl.close_device();
        Eal::release(state.ctl.id);
    }
}

/// A DPDK error as the `EthDev` trait reports it: an operation the driver
/// lacks is `Unsupported`, anything else a refusal naming the call and cause.
fn dev_error(err: Error) -> DevError {
    match err {
        Error::Dpdk { errno: ENOTSUP, call, .. } => DevError::Unsupported(format!("{call} (unsupported by device)")),
        Error::TooManyQueues { kind, .. } => ConfigError::new(format!("{kind}_queues"), err.to_string()).into(),
        Error::RssUnsupported { .. } => ConfigError::new("rss_types", err.to_string()).into(),
        Error::RssKeyLength { .. } => ConfigError::new("rss_key", err.to_string()).into(),
        Error::OffloadUnsupported { .. } | Error::FlowUnsupported { .. } => DevError::Unsupported(err.to_string()),
        Error::RetaSize { port, driver, device: 0, .. } => {
            DevError::Unsupported(format!("port {port} ({driver}): a RETA (unsupported by device)"))
        }
        Error::RetaSize { .. } | Error::RetaQueue { .. } => ConfigError::new("reta", err.to_string()).into(),
        other => ConfigError::new("dpdk", other.to_string()).into(),
    }
}

/// dtnet's hash types the device hashes on (`RTE_ETH_RSS_*` bits).
fn rss_types(offloads: u64) -> RssHashTypes {
    RssHashTypes::all().iter().filter(|&t| port::rss_hf(t) & !offloads == 0).collect()
}

/// The DPDK receive offload bits and dtnet's names for them.
const RX_OFFLOADS: [(RxOffloads, u64); 2] =
    [(RxOffloads::CHECKSUM, Offloads::RX_CHECKSUM), (RxOffloads::RSS_HASH, Offloads::RX_RSS_HASH)];

/// The DPDK transmit offload bits and dtnet's names for them.
const TX_OFFLOADS: [(TxOffloads, u64); 3] = [
    (TxOffloads::IPV4_CKSUM, Offloads::TX_IPV4_CKSUM),
    (TxOffloads::L4_CKSUM, Offloads::TX_L4_CKSUM),
    (TxOffloads::TCP_TSO, Offloads::TX_TCP_TSO),
];

/// dtnet's receive offloads a device with `capa` can do (all of each one's bits).
fn rx_offloads(capa: u64) -> RxOffloads {
    RX_OFFLOADS.iter().filter(|(_, bits)| capa & bits == *bits).map(|(o, _)| *o).collect()
}

/// dtnet's transmit offloads a device with `capa` can do.
fn tx_offloads(capa: u64) -> TxOffloads {
    TX_OFFLOADS.iter().filter(|(_, bits)| capa & bits == *bits).map(|(o, _)| *o).collect()
}

/// `offloads` as DPDK's receive offload bits.
fn dpdk_rx_offloads(offloads: RxOffloads) -> u64 {
    RX_OFFLOADS.iter().filter(|(o, _)| offloads.contains(*o)).fold(0, |acc, (_, bits)| acc | bits)
}

/// `offloads` as DPDK's transmit offload bits.
fn dpdk_tx_offloads(offloads: TxOffloads) -> u64 {
    TX_OFFLOADS.iter().filter(|(o, _)| offloads.contains(*o)).fold(0, |acc, (_, bits)| acc | bits)
}

/// `size` as the one-element `'static` slice [`DevInfo`] wants, or none.
fn one_of<T: Copy + PartialEq>(size: T, known: &'static [T]) -> &'static [T] {
    known.iter().position(|&k| k == size).map_or(&[], |i| &known[i..=i])
}

/// A ring size as DPDK's descriptor count.
fn descs(field: &str, size: u32) -> Result<u16, DevError> {
    u16::try_from(size).map_err(|_| ConfigError::new(field, format!("{size} exceeds DPDK's 65535 descriptors")).into())
}

impl EthDev for DpdkEthDev {
    fn info(&self) -> DevInfo {
        let state = self.inner.lock();
        let info = &state.ctl.info;
        DevInfo {
            driver: self.inner.driver,
            max_rx_queues: info.max_rx_queues,
            max_tx_queues: info.max_tx_queues,
            // DPDK counts descriptors in a u16; a driver's own limit is checked
            // at queue setup, whose error names it.
            max_ring_size: 1 << 15,
            reta_sizes: one_of(info.reta_size, &[64, 128, 256, 512]),
            rss_key_sizes: one_of(usize::from(info.hash_key_size), &[40, 52]),
            rss_types: rss_types(info.rss_offloads),
            rx_offloads: rx_offloads(info.rx_offload_capa),
            tx_offloads: tx_offloads(info.tx_offload_capa),
            // MTU changes are not translated yet: the port keeps DPDK's default.
            mtu_range: (DEFAULT_MTU, DEFAULT_MTU),
        }
    }

    fn name(&self) -> &str {
        &self.inner.name
    }

    fn rx_queue(&self, queue: u16) -> Result<Box<dyn EthRxQueue>, DevError> {
        Ok(Box::new(self.take_rx(queue)?))
    }

    fn tx_queue(&self, queue: u16) -> Result<Box<dyn EthTxQueue>, DevError> {
        Ok(Box::new(self.take_tx(queue)?))
    }

    fn configure(&self, conf: &PortConf) -> Result<(), DevError> {
        if conf.mtu != DEFAULT_MTU {
            return Err(DevError::Unsupported(format!("MTU {} on a DPDK port (it runs at {DEFAULT_MTU})", conf.mtu)));
        }
        let mut state = self.lock_quiet()?;
        if state.started {
            return Err(DevError::State { actual: "started", needed: "stopped" });
        }
        let info = &state.ctl.info;
        let id = state.ctl.id;
        port::check_queues(id, info, "rx", conf.rx_queues, info.max_rx_queues).map_err(dev_error)?;
        port::check_queues(id, info, "tx", conf.tx_queues, info.max_tx_queues).map_err(dev_error)?;
        // With one rx queue RSS chooses nothing: a device without RSS (net_ring,
        // net_af_packet) takes the port as it is, and a one-queue port's RETA
        // (reta_query) sends every hash to queue 0, which is what it does.
        let spread = !conf.rss_types.is_empty() && (conf.rx_queues > 1 || info.rss_offloads != 0);
        let rss = spread.then_some(RssSetup { types: conf.rss_types, key: Some(conf.rss_key) });
        if rss.is_some() && info.reta_size != 0 && info.reta_size != conf.reta_size {
            let reason = format!("{} entries, the device's RETA has {}", conf.reta_size, info.reta_size);
            return Err(ConfigError::new("reta_size", reason).into());
        }
        let rss = rss.map(|rss| port::check_rss(id, info, &rss)).transpose().map_err(dev_error)?;
        let (hf, mut key) = rss.map_or((None, None), |(hf, key)| (Some(hf), key));
        let dpdk_conf = port::PortConf {
            rx_queues: conf.rx_queues,
            tx_queues: conf.tx_queues,
            rx_descs: descs("rx_ring_size", conf.rx_ring_size)?,
            tx_descs: descs("tx_ring_size", conf.tx_ring_size)?,
            rss: None,
            promiscuous: true,
            rx_offloads: dpdk_rx_offloads(conf.rx_offloads),
            tx_offloads: dpdk_tx_offloads(conf.tx_offloads),
        };
        port::check_offloads(id, info, &dpdk_conf).map_err(dev_error)?;
        state.configured = false;
        port::setup(id, self.inner.pool.raw(), &dpdk_conf, hf, key.as_deref_mut()).map_err(dev_error)?;
        state._rss_key = key;
        state.single_queue_reta = (conf.rx_queues == 1).then_some(conf.reta_size);
        state.ctl.rx_queues = conf.rx_queues;
        state.tx_queues = conf.tx_queues;
        state.tx_offloads = conf.tx_offloads;
        state.rx_taken = vec![false; usize::from(conf.rx_queues)];
        state.tx_taken = vec![false; usize::from(conf.tx_queues)];
        state.configured = true;
        Ok(())
    }

    fn start(&self) -> Result<(), DevError> {
        let mut state = self.lock_quiet()?;
        if !state.configured || state.started {
            let actual = if state.started { "started" } else { "not configured" };
            return Err(DevError::State { actual, needed: "configured and stopped" });
        }
        state.ctl.start_device().map_err(dev_error)?;
        state.started = true;
        Ok(())
    }

    fn stop(&self) -> Result<(), DevError> {
        let mut state = self.lock_quiet()?;
        if !state.started {
            return Err(DevError::State { actual: "stopped", needed: "started" });
        }
        state.ctl.stop_device().map_err(dev_error)?;
        state.started = false;
        Ok(())
    }

    fn rss_hash_update(&self, key: RssKey, types: RssHashTypes) -> Result<(), DevError> {
        self.with_ctl(|ctl| ctl.set_rss(&RssSetup { types, key: Some(key) }))
    }

    fn reta_update(&self, reta: Reta) -> Result<(), DevError> {
        self.with_ctl(|ctl| ctl.set_reta(reta.entries()))
    }

    fn reta_query(&self) -> Result<Reta, DevError> {
        let state = self.inner.lock();
        if let Some(size) = state.single_queue_reta {
            return Ok(Reta::new(usize::from(size), 1)?);
        }
        let entries = state.ctl.reta().map_err(dev_error)?;
        Ok(Reta::from_entries(entries, state.ctl.rx_queues)?)
    }

    /// Checked against dtnet's flow model first, then by the device
    /// (`rte_flow_validate`); a rule the device refuses is `Unsupported`.
    fn flow_validate(&self, attr: &FlowAttr, pattern: &[FlowItem], actions: &[FlowAction]) -> Result<(), DevError> {
        let state = self.inner.lock();
        state.flows.validate(attr, pattern, actions, state.ctl.rx_queues)?;
        flow::validate(state.ctl.id, &state.ctl.info, attr, pattern, actions).map_err(dev_error)
    }

    fn flow_create(&self, attr: &FlowAttr, pattern: &[FlowItem], actions: &[FlowAction]) -> Result<FlowId, DevError> {
        let mut state = self.inner.lock();
        let queues = state.ctl.rx_queues;
        state.flows.validate(attr, pattern, actions, queues)?;
        let rule = flow::create(state.ctl.id, &state.ctl.info, attr, pattern, actions).map_err(dev_error)?;
        let id = state.flows.create(attr, pattern, actions, queues)?;
        state.rte_flows.insert(id, rule);
        Ok(id)
    }

    fn flow_destroy(&self, id: FlowId) -> Result<(), DevError> {
        let mut state = self.inner.lock();
        state.flows.destroy(id)?;
        let rule = state.rte_flows.remove(&id);
        let (port, info) = (state.ctl.id, &state.ctl.info);
        rule.map_or(Ok(()), |rule| flow::destroy(port, info, rule)).map_err(dev_error)
    }

    fn flow_flush(&self) -> Result<(), DevError> {
        let mut state = self.inner.lock();
        flow::flush(state.ctl.id, &state.ctl.info).map_err(dev_error)?;
        state.rte_flows.clear();
        state.flows = FlowTable::new();
        Ok(())
    }

    fn link(&self) -> Result<LinkStatus, DevError> {
        let link = self.with_ctl(PortCtl::link)?;
        Ok(LinkStatus { up: link.up, speed_mbps: link.speed_mbps })
    }

    fn mac_addr(&self) -> Result<MacAddr, DevError> {
        self.with_ctl(PortCtl::mac)
    }

    /// DPDK's basic counters, plus the adapter's own drops in `ierrors`
    /// and `oerrors`; per-queue counts are in [`EthDev::xstats`].
    fn stats(&self) -> Result<PortStats, DevError> {
        let mut stats = self.with_ctl(PortCtl::stats)?;
        let drops = &self.inner.drops;
        stats.ierrors += drops.rx_nombuf.load(Ordering::Relaxed) + drops.rx_too_long.load(Ordering::Relaxed);
        stats.oerrors += drops.tx_too_long.load(Ordering::Relaxed)
            + drops.tx_full.load(Ordering::Relaxed)
            + drops.tx_bad_offload.load(Ordering::Relaxed);
        Ok(stats)
    }

    /// The driver's extended counters, then the adapter's drops by reason
    /// (`dtnet_rx_nombuf`, `dtnet_rx_too_long`, `dtnet_tx_too_long`,
    /// `dtnet_tx_full` for frames a [`DpdkWire`] could not queue, and
    /// `dtnet_tx_bad_offload` for frames whose offload request could not be
    /// met, by the device or in software).
    fn xstats(&self) -> Result<Vec<XStat>, DevError> {
        let mut xstats: Vec<XStat> =
            self.with_ctl(PortCtl::xstats)?.into_iter().map(|(name, value)| XStat { name, value }).collect();
        let drops = &self.inner.drops;
        for (name, counter) in [
            ("dtnet_rx_nombuf", &drops.rx_nombuf),
            ("dtnet_rx_too_long", &drops.rx_too_long),
            ("dtnet_tx_too_long", &drops.tx_too_long),
            ("dtnet_tx_full", &drops.tx_full),
            ("dtnet_tx_bad_offload", &drops.tx_bad_offload),
        ] {
            xstats.push(XStat { name: name.into(), value: counter.load(Ordering::Relaxed) });
        }
        Ok(xstats)
    }
}

/// Marks `queue` handed out, if the port runs, has it, and has not handed
/// it out already.
fn take(state: &mut State, queue: u16, taken: impl FnOnce(&mut State) -> &mut Vec<bool>) -> Result<(), DevError> {
    if !state.started {
        return Err(DevError::State { actual: "stopped", needed: "started before its queues are taken" });
    }
    let slot = taken(state).get_mut(usize::from(queue)).ok_or_else(|| {
        DevError::Config(ConfigError::new("queue", format!("queue {queue} is not configured on this DPDK port")))
    })?;
    if std::mem::replace(slot, true) {
        return Err(DevError::State { actual: "handed out already", needed: "a queue without a live handle" });
    }
    Ok(())
}

/// The receive handle of one queue of a [`DpdkEthDev`].
#[derive(Debug)]
pub struct DpdkRxQueue {
    inner: Arc<Inner>,
    q: RxQueue<'static>,
    port: u16,
}

impl EthRxQueue for DpdkRxQueue {
    fn rx_burst(&mut self, out: &mut Vec<Mbuf>, max: usize) -> usize {
        let (inner, queue, port) = (&self.inner, self.q.queue(), self.port);
        let mut got = 0;
        self.q.rx_burst(max.min(MAX_BURST), |frame, info| {
            let Some(mut mbuf) = inner.mbufs.alloc(Owner::NONE) else {
                inner.drops.rx_nombuf.fetch_add(1, Ordering::Relaxed);
                return;
            };
            // COPY (receive): DPDK mbuf -> dtnet mbuf. The DPDK mbuf goes back
            // to its pool as soon as this returns, so the device never runs
            // short of receive buffers, and the frame lives on in dtnet's
            // pool, which stacks (possibly in other processes) can address.
            if !mbuf.extend_from_slice(frame) {
                inner.drops.rx_too_long.fetch_add(1, Ordering::Relaxed);
                return;
            }
            mbuf.set_port(port);
            mbuf.set_queue(queue);
            set_rx_flags(&mut mbuf, &info);
            out.push(mbuf);
            got += 1;
        });
        got
    }
}

/// The device's verdicts in `info` as dtnet's mbuf metadata.
fn set_rx_flags(mbuf: &mut Mbuf, info: &RxInfo) {
    if let Some(hash) = info.rss_hash {
        mbuf.set_rss_hash(hash);
    }
    let mut flags = mbuf.flags();
    for (verdict, good, bad) in [
        (info.ip_cksum_good, OlFlags::RX_IP_CKSUM_GOOD, OlFlags::RX_IP_CKSUM_BAD),
        (info.l4_cksum_good, OlFlags::RX_L4_CKSUM_GOOD, OlFlags::RX_L4_CKSUM_BAD),
    ] {
        match verdict {
            Some(true) => flags |= good,
            Some(false) => flags |= bad,
            None => {}
        }
    }
    mbuf.set_flags(flags);
}

impl Drop for DpdkRxQueue {
    fn drop(&mut self) {
        if let Some(slot) = self.inner.lock().rx_taken.get_mut(usize::from(self.q.queue())) {
            *slot = false;
        }
    }
}

/// The transmit handle of one queue of a [`DpdkEthDev`].
///
/// Frames taken from the caller wait in `pending` (at most a burst of them,
/// or the segments of a burst cut in software) until the device has room;
/// they are dtnet mbufs until the copy into DPDK mbufs.
#[derive(Debug)]
pub struct DpdkTxQueue {
    inner: Arc<Inner>,
    q: TxQueue<'static>,
    /// Transmit offloads the device does for this port.
    offloads: TxOffloads,
    /// Frames taken, with what the device is asked to do for each.
    pending: VecDeque<(Mbuf, TxOffload)>,
}

impl EthTxQueue for DpdkTxQueue {
    fn tx_burst(&mut self, pkts: &mut Vec<Mbuf>) -> usize {
        let mut taken = 0;
        loop {
            self.flush();
            if !self.pending.is_empty() || pkts.is_empty() {
                return taken;
            }
            let burst = pkts.len().min(MAX_BURST);
            for mbuf in pkts.drain(..burst) {
                self.prepare(mbuf);
            }
            taken += burst;
        }
    }
}

impl DpdkTxQueue {
    /// Sends pending frames until the device takes no more.
    fn flush(&mut self) {
        while !self.pending.is_empty() {
            let burst = self.pending.len().min(MAX_BURST);
            let mut frames: [&[u8]; MAX_BURST] = [&[]; MAX_BURST];
            let mut offloads = [TxOffload::default(); MAX_BURST];
            for (i, (mbuf, offload)) in self.pending.iter().take(burst).enumerate() {
                frames[i] = mbuf.data();
                offloads[i] = *offload;
            }
            // COPY (transmit): dtnet mbuf -> DPDK mbuf, inside
            // `TxQueue::tx_burst_offload`; the device can only send from DPDK
            // memory. The dtnet mbufs of the frames taken are freed right after.
            match self.q.tx_burst_offload(&frames[..burst], &offloads[..burst]) {
                Ok(sent) => {
                    self.pending.drain(..sent);
                    if sent < burst {
                        return;
                    }
                }
                Err(Error::PoolExhausted(_)) => return, // DPDK's pool is empty for now.
                Err(_) => {
                    // The driver refused the first frame's offload request.
                    self.pending.pop_front();
                    self.inner.drops.tx_bad_offload.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Queues `mbuf` with the offloads the device does for it, after doing
    /// in software what it asks for and the device does not; a frame that
    /// cannot be sent is a counted drop.
    fn prepare(&mut self, mut mbuf: Mbuf) {
        let asked = mbuf.flags() & (OlFlags::TX_IP_CKSUM | OlFlags::TX_L4_CKSUM | OlFlags::TX_TCP_SEG);
        let room = usize::from(self.q.data_room());
        if asked.is_empty() {
            return self.push(mbuf, TxOffload::default(), room);
        }
        let drops = &self.inner.drops;
        let Ok(meta) = PacketMeta::parse(mbuf.data()) else {
            drops.tx_bad_offload.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if asked.contains(OlFlags::TX_TCP_SEG) && !(self.offloads.contains(TxOffloads::TCP_TSO) && mbuf.len() <= room) {
            // Software TSO: the device has none, or the frame is longer than
            // one DPDK mbuf (frames are not chained). The segments carry
            // their checksums.
            let mut segments = Vec::new();
            match user_veth::offload::segment_tcp(&mbuf, &meta, &self.inner.mbufs, DEFAULT_MTU, &mut segments) {
                Ok(()) => segments.into_iter().for_each(|s| self.push(s, TxOffload::default(), room)),
                Err(_) => drop(drops.tx_bad_offload.fetch_add(1, Ordering::Relaxed)),
            }
            return;
        }
        let mut software = asked - OlFlags::TX_TCP_SEG;
        if self.offloads.contains(TxOffloads::IPV4_CKSUM) {
            software -= OlFlags::TX_IP_CKSUM;
        }
        if self.offloads.contains(TxOffloads::L4_CKSUM) {
            software -= OlFlags::TX_L4_CKSUM;
        }
        if user_veth::offload::fill_checksums(mbuf.data_mut(), &meta, software).is_err() {
            drops.tx_bad_offload.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match device_offload(mbuf.data(), &meta, asked - software, mbuf.tso_segsz()) {
            Some(offload) => self.push(mbuf, offload, room),
            None => drop(drops.tx_bad_offload.fetch_add(1, Ordering::Relaxed)),
        }
    }

    /// Queues `mbuf`, or drops it (counted) if no DPDK mbuf holds it.
    fn push(&mut self, mbuf: Mbuf, offload: TxOffload, room: usize) {
        if mbuf.len() > room && offload.tso_segsz == 0 {
            self.inner.drops.tx_too_long.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.pending.push_back((mbuf, offload));
    }
}

/// What the device is asked to do for a frame that wants `hardware` done by
/// it, with the header lengths it needs; `None` if the frame lacks a header
/// an offload needs (the IPv4 header, or a TCP/UDP one).
fn device_offload(frame: &[u8], meta: &PacketMeta, hardware: OlFlags, tso_segsz: u16) -> Option<TxOffload> {
    if hardware.is_empty() {
        return Some(TxOffload::default());
    }
    let ipv4 = matches!(meta.ip, Some(IpAddrs::V4 { .. }));
    let l4 = usize::from(meta.l4_offset);
    let (l3_len, l4_len) = (
        meta.l4_offset.checked_sub(meta.l3_offset)?,
        match meta.ip_proto? {
            PROTO_TCP => u16::from(frame.get(l4 + 12)? >> 4) * 4,
            PROTO_UDP => 8,
            _ => 0,
        },
    );
    let l4_cksum = hardware.contains(OlFlags::TX_L4_CKSUM) || hardware.contains(OlFlags::TX_TCP_SEG);
    if (hardware.contains(OlFlags::TX_IP_CKSUM) && !ipv4) || (l4_cksum && l4_len == 0) {
        return None;
    }
    let tso = hardware.contains(OlFlags::TX_TCP_SEG);
    Some(TxOffload {
        ipv4,
        ip_cksum: hardware.contains(OlFlags::TX_IP_CKSUM) || (tso && ipv4),
        tcp_cksum: l4_cksum && meta.ip_proto == Some(PROTO_TCP),
        udp_cksum: l4_cksum && meta.ip_proto == Some(PROTO_UDP),
        tso_segsz: if tso { tso_segsz } else { 0 },
        l2_len: meta.l3_offset,
        l3_len,
        l4_len,
    })
}

impl Drop for DpdkTxQueue {
    fn drop(&mut self) {
        if let Some(slot) = self.inner.lock().tx_taken.get_mut(usize::from(self.q.queue())) {
            *slot = false;
        }
    }
}

/// A started [`DpdkEthDev`] as a switch port (see [`DpdkEthDev::wire`]).
#[derive(Debug)]
pub struct DpdkWire {
    rx: Vec<DpdkRxQueue>,
    tx: DpdkTxQueue,
    next_rx: usize,
}

impl Wire for DpdkWire {
    fn take_tx(&mut self, out: &mut Vec<Mbuf>, max: usize) -> usize {
        let queues = self.rx.len();
        let mut taken = 0;
        for i in 0..queues {
            if taken >= max {
                break;
            }
            taken += self.rx[(self.next_rx + i) % queues].rx_burst(out, max - taken);
        }
        self.next_rx = (self.next_rx + 1) % queues.max(1);
        taken
    }

    fn put_rx(&mut self, frames: &mut Vec<Mbuf>) {
        self.tx.tx_burst(frames);
        // What the tx queue could not take is dropped: a wire has no backlog.
        self.tx.inner.drops.tx_full.fetch_add(frames.len() as u64, Ordering::Relaxed);
        frames.clear();
    }

    fn link_up(&self) -> bool {
        self.tx.inner.lock().ctl.link().is_ok_and(|link| link.up)
    }

    fn name(&self) -> &str {
        &self.tx.inner.name
    }
}
