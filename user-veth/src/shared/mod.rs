//! A veth port whose queues and pool live in a shared-memory domain.
//!
//! This is DPDK's multi-process model for one port. The primary process
//! makes the port ([`SharedVeth::create`]): it alone configures it (queues
//! are fixed at creation; RSS, RETA, flow rules, MTU and link may change)
//! and drives its wire end ([`SharedWire`]). Any process of the domain, the
//! primary included, attaches ([`SharedPort::attach`]) and receives and
//! sends on the queues it takes, one holder per queue side.
//!
//! The primary keeps an ordinary [`Veth`](crate::Veth) whose pool is a
//! domain pool, so classification, offloads, counters and flow rules are
//! the veth's own, and exports each queue as two single-producer rings of
//! [`MbufRef`] words in the domain (`<port>.rx<q>`: the wire end produces,
//! the holder consumes; `<port>.tx<q>`: the holder produces, the wire end
//! consumes). The wire end moves frames between the veth's rings and the
//! domain's once per poll. A frame from a pool outside the domain (another
//! host's, on the bridge) is copied into the port's pool once, on its way
//! in, as a NIC writes what it receives into its own pool; frames of the
//! domain pool cross without a copy, so ports sharing a pool forward
//! between each other by reference.
//!
//! Who owns a buffer that sits in a ring: its sender, in transit (the slot's
//! owner word says "in transit by N"), and nobody holds it. The consumer
//! claims it with a CAS before it publishes its tail. When a holder dies
//! the primary ([`SharedWire::reclaim`]) sends on what it had published on
//! its tx rings, drains its rx rings (buffers in transit by the primary,
//! claimed by the drain and freed), frees what the pool says it held or
//! stashed, then what it was still sending, and frees its queues for the
//! next taker. Nothing is freed twice: each step only moves a slot from the
//! one state it must be in.
//!
//! A secondary that asks to reconfigure the port is refused with an error
//! naming the primary. Flow rules are the exception, as gazelle's
//! tuple_filter mode needs: a secondary given its control connection
//! ([`SharedPort::with_rules_from`]) asks the primary for connection rules,
//! and the primary's [`PortRules`] creates them on queues the asker holds
//! and destroys them when it leaves or dies.

mod layout;
mod rules;
mod wire;

use std::sync::Arc;

use ethdev::dev::{DevInfo, LinkStatus, PortConf, PortStats, XStat};
use ethdev::error::{ConfigError, DevError, FlowError, FlowErrorCause};
use ethdev::flow::{FlowAction, FlowAttr, FlowCounters, FlowId, FlowItem};
use ethdev::mac::MacAddr;
use ethdev::mbuf::Mbuf;
use ethdev::mempool::{MbufRef, Mempool, MempoolConfig, Owner, PoolTable};
use ethdev::queue::{RxQueue, TxQueue};
use ethdev::rss::{Reta, RssHashTypes, RssKey};
use ethdev::shm::control::ControlClient;
use ethdev::shm::ring::{self, ShmConsumer, ShmProducer};
use ethdev::shm::rules::TupleRule;
use ethdev::shm::{Domain, ShmError, Zone};
use ethdev::EthDev;

pub use layout::{PortTotals, Shape, Side};
pub use rules::PortRules;
pub use wire::{PortReclaim, SharedWire};

use crate::port::VethPort;
use layout::{Header, QueueCounter};

/// Why a shared port could not be made or attached.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// The domain refused (missing object, no room, another layout version).
    #[error(transparent)]
    Shm(#[from] ShmError),
    /// A configuration value was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The port refused an operation.
    #[error(transparent)]
    Dev(#[from] DevError),
    /// The port's header holds values that cannot be right.
    #[error("{0}")]
    Corrupt(String),
}

/// What the primary needs to make a shared port.
#[derive(Clone, Debug)]
pub struct PortSpec {
    /// The port's name: its header's zone name, and the prefix of its rings'.
    pub name: String,
    /// Its MAC.
    pub mac: MacAddr,
    /// Its configuration; the queue counts are fixed for the port's life.
    pub conf: PortConf,
    /// Words in each queue's domain ring (a power of two).
    pub ring_words: u32,
    /// The domain pool its buffers come from: attached if a zone of that
    /// name exists, otherwise made with this configuration.
    pub pool: MempoolConfig,
    /// The primary's owner id for the buffers its wire end holds.
    pub owner: Owner,
}

/// Constructor namespace for the primary's side of a shared port.
pub struct SharedVeth;

impl SharedVeth {
    /// Makes port `spec.name` in `domain` (whose primary this process is):
    /// its header, its rings and, unless it exists, its pool; returns the
    /// port (configured, stopped) and its wire end.
    #[allow(clippy::new_ret_no_self, reason = "a port is made together with its wire end")]
    pub fn create(domain: &Domain, spec: &PortSpec) -> Result<(SharedPort, SharedWire), PortError> {
        let pool = pool_in(domain, &spec.pool)?;
        let shape = Shape {
            rx_queues: spec.conf.rx_queues,
            tx_queues: spec.conf.tx_queues,
            ring_words: spec.ring_words,
            mac: spec.mac,
            primary_pid: std::process::id(),
            pool: spec.pool.name.clone(),
        };
        let (veth, veth_wire) = crate::Veth::new(spec.name.as_str(), spec.mac, pool.clone());
        veth.configure(&spec.conf)?;
        if !(1..=crate::MAX_QUEUES).contains(&shape.rx_queues) || !(1..=crate::MAX_QUEUES).contains(&shape.tx_queues) {
            return Err(ConfigError::new("rx_queues", "queue counts must be between 1 and 64").into());
        }
        for (side, count) in [(Side::Rx, shape.rx_queues), (Side::Tx, shape.tx_queues)] {
            for queue in 0..count {
                let zone = domain.reserve(&ring_name(&spec.name, side, queue), ring::ring_bytes(spec.ring_words))?;
                ring::create(&zone, spec.ring_words)?;
            }
        }
        let zone = domain.reserve(&spec.name, layout::header_bytes(shape.rx_queues, shape.tx_queues))?;
        Header::create(&zone, &shape)?;
        let attached = Arc::new(Attached::new(domain, &spec.name, spec.owner)?);
        let wire = SharedWire::new(veth.clone(), veth_wire, Arc::clone(&attached))?;
        Ok((SharedPort { attached, control: Some(veth), rules: None }, wire))
    }
}

/// The pool named in `config`: attached if it exists, otherwise made.
fn pool_in(domain: &Domain, config: &MempoolConfig) -> Result<Mempool, PortError> {
    match domain.lookup(&config.name) {
        Ok(zone) => Ok(Mempool::attach(&zone)?),
        Err(ShmError::NotFound { .. }) => {
            let zone = domain.reserve(&config.name, config.region_size()?)?;
            Ok(Mempool::create_in(&zone, config.clone())?)
        }
        Err(e) => Err(e.into()),
    }
}

/// The zone name of a queue's ring: `<port>.rx<q>` or `<port>.tx<q>`.
pub fn ring_name(port: &str, side: Side, queue: u16) -> String {
    format!("{port}.{}{queue}", side.name())
}

/// What a process attached to a port shares between its handles.
#[derive(Debug)]
struct Attached {
    name: String,
    header: Header,
    pool: Mempool,
    table: PoolTable,
    owner: Owner,
    rx_rings: Vec<Zone>,
    tx_rings: Vec<Zone>,
}

impl Attached {
    fn new(domain: &Domain, name: &str, owner: Owner) -> Result<Attached, PortError> {
        let header = Header::open(&domain.lookup(name)?)?;
        let pool = Mempool::attach(&domain.lookup(&header.shape().pool)?)?;
        let mut table = PoolTable::new();
        table.add(pool.clone());
        let rings = |side: Side| -> Result<Vec<Zone>, ShmError> {
            (0..header.queues(side)).map(|q| domain.lookup(&ring_name(name, side, q))).collect()
        };
        let (rx_rings, tx_rings) = (rings(Side::Rx)?, rings(Side::Tx)?);
        Ok(Attached { name: name.to_owned(), header, pool, table, owner, rx_rings, tx_rings })
    }

    /// Takes `queue` on `side` for this process, or says who holds it.
    fn take(&self, side: Side, queue: u16) -> Result<(), DevError> {
        if !self.header.has(side, queue) {
            let count = self.header.queues(side);
            let field = format!("{}_queue", side.name());
            return Err(ConfigError::new(field, format!("queue {queue} does not exist (the port has {count})")).into());
        }
        self.header.take(side, queue, self.owner).map_err(|holder| {
            let field = format!("{}_queue", side.name());
            ConfigError::new(field, format!("queue {queue} of port {:?} is held by owner {}", self.name, holder.0))
                .into()
        })
    }

    /// Takes `queue` and attaches this process's side of its ring; lets go
    /// of the queue again if the ring cannot be attached.
    fn open<T>(
        &self,
        side: Side,
        queue: u16,
        attach: impl FnOnce(&Zone) -> Result<T, ShmError>,
    ) -> Result<T, DevError> {
        self.take(side, queue)?;
        let zones = match side {
            Side::Rx => &self.rx_rings,
            Side::Tx => &self.tx_rings,
        };
        attach(&zones[usize::from(queue)]).map_err(|e| {
            self.header.release(side, queue, self.owner);
            DevError::Unsupported(format!("port {:?}: {e}", self.name))
        })
    }

    /// Claims the buffer a ring word names, or counts the word as refused.
    fn claim(&self, side: Side, queue: u16, word: u64) -> Option<Mbuf> {
        let claimed = self.table.claim(MbufRef::from_word(word), self.owner).ok();
        if claimed.is_none() {
            self.header.count(side, queue, QueueCounter::Dropped, 1);
        }
        claimed
    }
}

/// A shared port as one process sees it: an [`EthDev`] whose queues are
/// the domain's. On the primary it also carries the port's control.
#[derive(Clone, Debug)]
pub struct SharedPort {
    attached: Arc<Attached>,
    control: Option<VethPort>,
    /// A secondary's control connection, which carries its flow rules.
    rules: Option<Arc<ControlClient>>,
}

impl SharedPort {
    /// Attaches to port `name` of `domain`, taking queues as `owner` (the
    /// id the domain's control channel gave this process).
    pub fn attach(domain: &Domain, name: &str, owner: Owner) -> Result<SharedPort, PortError> {
        Ok(SharedPort { attached: Arc::new(Attached::new(domain, name, owner)?), control: None, rules: None })
    }

    /// The same port, whose connection rules (as tuple_filter makes them)
    /// this secondary asks of the primary over `client`, its control
    /// connection; other rules are still refused.
    #[must_use]
    pub fn with_rules_from(self, client: Arc<ControlClient>) -> SharedPort {
        SharedPort { rules: Some(client), ..self }
    }

    /// The control connection that carries a secondary's flow rules, if
    /// this is a secondary given one.
    fn rule_client(&self) -> Option<&ControlClient> {
        self.control.is_none().then_some(self.rules.as_deref()).flatten()
    }

    /// What the primary said, as a port error.
    fn primary_said(&self, e: ethdev::shm::ShmError) -> DevError {
        match e {
            ethdev::shm::ShmError::Denied(why) => FlowError::new(FlowErrorCause::Rule, why).into(),
            other => DevError::Unsupported(format!("port {:?}: asking the primary: {other}", self.attached.name)),
        }
    }

    /// The port's shape, as its header says.
    pub fn shape(&self) -> &Shape {
        self.attached.header.shape()
    }

    /// Who holds `queue` on `side`, if anybody (`None` also for a queue
    /// the port does not have).
    pub fn holder(&self, side: Side, queue: u16) -> Option<Owner> {
        let header = &self.attached.header;
        header.has(side, queue).then(|| header.holder(side, queue)).flatten()
    }

    /// The port's pool.
    pub fn pool(&self) -> &Mempool {
        &self.attached.pool
    }

    /// The port totals as the primary last published them, and per queue
    /// (rx, then tx) the packets, bytes, copies and drops of its ring.
    pub fn totals(&self) -> PortTotals {
        self.attached.header.totals()
    }

    /// One queue's ring counters: packets, bytes, copied, dropped.
    pub fn queue_counters(&self, side: Side, queue: u16) -> Option<[u64; 4]> {
        let header = &self.attached.header;
        header.has(side, queue).then(|| {
            [QueueCounter::Packets, QueueCounter::Bytes, QueueCounter::Copied, QueueCounter::Dropped]
                .map(|c| header.counter(side, queue, c))
        })
    }

    /// The primary's control of the port, or the refusal a secondary gets.
    fn ctl(&self, op: &str) -> Result<&VethPort, DevError> {
        self.control.as_ref().ok_or_else(|| {
            DevError::Unsupported(format!(
                "{op} on port {:?}: the port is configured by the primary process (pid {}); \
                 a secondary receives and sends on its queues only",
                self.attached.name,
                self.shape().primary_pid
            ))
        })
    }
}

impl EthDev for SharedPort {
    fn info(&self) -> DevInfo {
        let shape = self.shape();
        DevInfo {
            driver: "user-veth-shared",
            max_rx_queues: shape.rx_queues,
            max_tx_queues: shape.tx_queues,
            ..crate::port::info()
        }
    }

    fn rx_queue(&self, queue: u16) -> Result<Box<dyn RxQueue>, DevError> {
        let ring = self.attached.open(Side::Rx, queue, ShmConsumer::attach)?;
        Ok(Box::new(SharedRxQueue { attached: Arc::clone(&self.attached), queue, ring }))
    }

    fn tx_queue(&self, queue: u16) -> Result<Box<dyn TxQueue>, DevError> {
        let ring = self.attached.open(Side::Tx, queue, ShmProducer::attach)?;
        Ok(Box::new(SharedTxQueue { attached: Arc::clone(&self.attached), queue, ring, words: Vec::new() }))
    }

    fn name(&self) -> &str {
        &self.attached.name
    }

    fn configure(&self, conf: &PortConf) -> Result<(), DevError> {
        let control = self.ctl("configure")?;
        let shape = self.shape();
        for (field, asked, fixed) in
            [("rx_queues", conf.rx_queues, shape.rx_queues), ("tx_queues", conf.tx_queues, shape.tx_queues)]
        {
            if asked != fixed {
                let why = format!("a shared port keeps the {fixed} queues its domain rings were laid out for");
                return Err(ConfigError::new(field, why).into());
            }
        }
        control.configure(conf)
    }

    fn start(&self) -> Result<(), DevError> {
        self.ctl("start")?.start()
    }

    fn stop(&self) -> Result<(), DevError> {
        self.ctl("stop")?.stop()
    }

    fn rss_hash_update(&self, key: RssKey, types: RssHashTypes) -> Result<(), DevError> {
        self.ctl("rss_hash_update")?.rss_hash_update(key, types)
    }

    fn reta_update(&self, reta: Reta) -> Result<(), DevError> {
        self.ctl("reta_update")?.reta_update(reta)
    }

    fn reta_query(&self) -> Result<Reta, DevError> {
        self.ctl("reta_query")?.reta_query()
    }

    fn flow_validate(&self, attr: &FlowAttr, pattern: &[FlowItem], actions: &[FlowAction]) -> Result<(), DevError> {
        self.ctl("flow_validate")?.flow_validate(attr, pattern, actions)
    }

    fn flow_create(&self, attr: &FlowAttr, pattern: &[FlowItem], actions: &[FlowAction]) -> Result<FlowId, DevError> {
        let Some(client) = self.rule_client() else {
            return self.ctl("flow_create")?.flow_create(attr, pattern, actions);
        };
        let rule = TupleRule::from_flow(&self.attached.name, attr, pattern, actions).map_err(DevError::Unsupported)?;
        client.flow_add(&rule).map_err(|e| self.primary_said(e))
    }

    fn flow_destroy(&self, id: FlowId) -> Result<(), DevError> {
        let Some(client) = self.rule_client() else { return self.ctl("flow_destroy")?.flow_destroy(id) };
        client.flow_del(&self.attached.name, id).map_err(|e| self.primary_said(e))
    }

    fn flow_flush(&self) -> Result<(), DevError> {
        self.ctl("flow_flush")?.flow_flush()
    }

    fn flow_query(&self, id: FlowId) -> Result<FlowCounters, DevError> {
        self.ctl("flow_query")?.flow_query(id)
    }

    fn flow_isolate(&self, on: bool) -> Result<(), DevError> {
        self.ctl("flow_isolate")?.flow_isolate(on)
    }

    fn link(&self) -> Result<LinkStatus, DevError> {
        self.ctl("link")?.link()
    }

    fn set_link(&self, up: bool) -> Result<(), DevError> {
        self.ctl("set_link")?.set_link(up)
    }

    fn mac_addr(&self) -> Result<MacAddr, DevError> {
        Ok(self.shape().mac)
    }

    fn mtu(&self) -> Result<u16, DevError> {
        self.ctl("mtu")?.mtu()
    }

    fn set_mtu(&self, mtu: u16) -> Result<(), DevError> {
        self.ctl("set_mtu")?.set_mtu(mtu)
    }

    fn promiscuous(&self) -> Result<bool, DevError> {
        self.ctl("promiscuous")?.promiscuous()
    }

    fn set_promiscuous(&self, on: bool) -> Result<(), DevError> {
        self.ctl("set_promiscuous")?.set_promiscuous(on)
    }

    /// The primary's exact counters on the primary; elsewhere what it last
    /// published, with per-queue packets from the rings' counters.
    fn stats(&self) -> Result<PortStats, DevError> {
        if let Some(control) = &self.control {
            return control.stats();
        }
        let totals = self.totals();
        let packets = |side: Side| {
            (0..self.attached.header.queues(side))
                .map(|q| self.attached.header.counter(side, q, QueueCounter::Packets))
                .collect()
        };
        Ok(PortStats {
            ipackets: totals.ipackets,
            opackets: totals.opackets,
            imissed: totals.imissed,
            ierrors: totals.ierrors,
            oerrors: totals.oerrors,
            q_ipackets: packets(Side::Rx),
            q_opackets: packets(Side::Tx),
            ..PortStats::default()
        })
    }

    fn xstats(&self) -> Result<Vec<XStat>, DevError> {
        self.ctl("xstats")?.xstats()
    }

    fn stats_reset(&self) -> Result<(), DevError> {
        self.ctl("stats_reset")?.stats_reset()
    }

    fn check_accounting(&self) -> Result<(), DevError> {
        self.ctl("check_accounting")?.check_accounting()
    }
}

/// A receive queue taken from the domain: claims what the wire end sent.
struct SharedRxQueue {
    attached: Arc<Attached>,
    queue: u16,
    ring: ShmConsumer,
}

impl RxQueue for SharedRxQueue {
    fn rx_burst(&mut self, out: &mut Vec<Mbuf>, max: usize) -> usize {
        let (attached, queue, before) = (&*self.attached, self.queue, out.len());
        // Each buffer is claimed before the ring publishes its tail, so a
        // holder killed mid-burst leaves every buffer findable.
        self.ring.consume(max, |word| out.extend(attached.claim(Side::Rx, queue, word)));
        out.len() - before
    }
}

impl Drop for SharedRxQueue {
    fn drop(&mut self) {
        self.attached.header.release(Side::Rx, self.queue, self.attached.owner);
    }
}

/// A transmit queue taken from the domain: hands buffers to the wire end.
struct SharedTxQueue {
    attached: Arc<Attached>,
    queue: u16,
    ring: ShmProducer,
    words: Vec<u64>,
}

impl SharedTxQueue {
    /// Puts every frame of `pkts[..room]` into the port's pool, copying
    /// those from other pools; returns how many are ready (a copy that
    /// finds the pool empty stops there).
    fn move_into_pool(&self, pkts: &mut [Mbuf]) -> usize {
        let attached = &*self.attached;
        for (ready, slot) in pkts.iter_mut().enumerate() {
            if attached.pool.owns(slot) {
                continue;
            }
            let Some(copy) = slot.copy_to(&attached.pool, attached.owner) else { return ready };
            attached.header.count(Side::Tx, self.queue, QueueCounter::Copied, 1);
            *slot = copy;
        }
        pkts.len()
    }
}

impl TxQueue for SharedTxQueue {
    fn tx_burst(&mut self, pkts: &mut Vec<Mbuf>) -> usize {
        let room = self.ring.free_count().min(pkts.len());
        let ready = self.move_into_pool(&mut pkts[..room]);
        self.words.clear();
        self.words.extend(pkts.drain(..ready).map(|m| m.into_ref(0).to_word()));
        let sent = self.ring.enqueue_burst(&self.words);
        // Only a consumer writing a tail it never reached shrinks the room:
        // take back what did not go, and leave it to the caller.
        let (attached, queue) = (&*self.attached, self.queue);
        let back: Vec<Mbuf> = self.words[sent..].iter().filter_map(|&w| attached.claim(Side::Tx, queue, w)).collect();
        pkts.splice(0..0, back);
        sent
    }

    fn free_count(&self) -> usize {
        self.ring.free_count()
    }
}

impl Drop for SharedTxQueue {
    fn drop(&mut self) {
        self.attached.header.release(Side::Tx, self.queue, self.attached.owner);
    }
}
