//! A stack group: the stack instances of one process on one port.
//!
//! gazelle runs one stack per configured CPU, each polling its own NIC
//! queue. [`StackGroup::new`] configures the port with one queue pair per
//! stack, builds the instances, and owns what they share (the [`Fabric`]):
//! the port and pool, the RSS configuration (to choose connecting ports),
//! the rule tables, the producing ends of one MPSC soft ring per stack for
//! frames handed over between stacks and of one MPSC RPC ring per stack for
//! application calls, the port table and the fd table. Each stack owns the
//! consuming ends of its two rings (its `Inbox`), so only it can read them. Executors drive the group by calling
//! [`StackGroup::poll`] for each stack from whichever thread owns it, and
//! applications reach it through [`Api`] handles.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ethdev::dev::{MacAddr, PortConf, TxOffloads};
use ethdev::error::DevError;
use ethdev::flow::{FlowAction, FlowAttr, FlowItem, ItemSpec};
use ethdev::ring::{mpsc, Consumer, MpProducer};
use ethdev::rss::RssConf;
use ethdev::{EthDev, Instant, Mbuf, Mempool, MempoolConfig, RxQueue, TxQueue};

use crate::api::{Api, FdTable};
use crate::config::{ForwardMode, ThreadModel};
use crate::device::TSO_FRAME;
use crate::dispatch::Tables;
use crate::instance::{Instance, StackStats};
use crate::ports::PortTable;
use crate::rpc::{BufSizes, Rpc};

/// Everything a group needs to know to build its stacks.
#[derive(Clone, Debug)]
pub struct GroupConfig {
    /// Number of stack instances (gazelle `num_cpus`), one NIC queue each.
    pub stacks: usize,
    /// How frames reach the stack that owns their connection.
    pub mode: ForwardMode,
    /// Who polls the stacks.
    pub model: ThreadModel,
    /// The host's MAC address (gazelle `devices`).
    pub mac: MacAddr,
    /// IPv4 address and prefix length (gazelle `host_addr`, `mask_addr`).
    pub ipv4: Option<(Ipv4Addr, u8)>,
    /// Default IPv4 gateway (gazelle `gateway_addr`).
    pub gateway: Option<Ipv4Addr>,
    /// IPv6 address and prefix length (gazelle `host_addr6`).
    pub ipv6: Option<(Ipv6Addr, u8)>,
    /// IP MTU of the port.
    pub mtu: u16,
    /// Default socket buffer sizes.
    pub bufs: BufSizes,
    /// Seed for the stacks' random choices (TCP initial sequence numbers).
    pub seed: u64,
    /// Mbuf owner id of stack 0; stack `i` owns `owner_base + i`.
    pub owner_base: u32,
    /// Slots in each stack's RPC ring and soft ring.
    pub ring_size: usize,
    /// TCP segmentation offload, which gazelle turns on when the NIC offers
    /// it: the port is configured with TSO and checksum offloads, and each
    /// stack hands it IPv4 TCP segments of up to
    /// [`TSO_FRAME`](crate::device::TSO_FRAME) bytes, held in buffers of a
    /// pool of large buffers the group makes, to cut at the wire's MSS.
    /// IPv6 TCP gets checksum offload only: smoltcp 0.14 drops IPv6
    /// packets above the IP MTU whatever the device offers.
    pub tso: bool,
}

impl GroupConfig {
    /// `stacks` RSS stacks, run-to-wakeup, at `ipv4`/24 with MAC `mac`,
    /// 64 KiB socket buffers.
    pub fn new(stacks: usize, mac: MacAddr, ipv4: Ipv4Addr) -> Self {
        Self {
            stacks,
            mode: ForwardMode::Rss,
            model: ThreadModel::RunToWakeup,
            mac,
            ipv4: Some((ipv4, 24)),
            gateway: None,
            ipv6: None,
            mtu: 1500,
            bufs: BufSizes { rx: 64 * 1024, tx: 64 * 1024 },
            seed: 1,
            owner_base: 1,
            ring_size: 4096,
            tso: false,
        }
    }
}

/// Why a group could not be built.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// The configuration is unusable.
    #[error("stack group: {0}")]
    Config(String),
    /// The port refused its configuration.
    #[error("stack group: port: {0}")]
    Port(#[from] DevError),
}

/// What the stacks of a group share.
pub(crate) struct Fabric {
    pub(crate) config: GroupConfig,
    pub(crate) port: Arc<dyn EthDev>,
    pub(crate) pool: Mempool,
    /// Large buffers for TSO super-frames (with [`GroupConfig::tso`]).
    pub(crate) tso_pool: Option<Mempool>,
    pub(crate) rss: RssConf,
    pub(crate) tables: Tables,
    /// Producing ends of each stack's soft ring (its [`Inbox`] consumes).
    pub(crate) soft: Vec<MpProducer<Mbuf>>,
    /// Producing ends of each stack's RPC ring (its [`Inbox`] consumes).
    pub(crate) rpc: Vec<MpProducer<Rpc>>,
    pub(crate) ports: Mutex<PortTable>,
    pub(crate) fds: Mutex<FdTable>,
}

impl Fabric {
    /// The group's address of the same family as `peer`.
    pub(crate) fn local_ip_for(&self, peer: IpAddr) -> Option<IpAddr> {
        match peer {
            IpAddr::V4(_) => self.config.ipv4.map(|(a, _)| IpAddr::V4(a)),
            IpAddr::V6(_) => self.config.ipv6.map(|(a, _)| IpAddr::V6(a)),
        }
    }

    /// The queue RSS picks for a frame from `peer` to `local`.
    pub(crate) fn rss_queue(&self, peer: SocketAddr, local: SocketAddr) -> u16 {
        let ports = Some((peer.port(), local.port()));
        let hash = match (peer.ip(), local.ip()) {
            (IpAddr::V4(p), IpAddr::V4(l)) => self.rss.toeplitz().hash_v4(p.octets(), l.octets(), ports),
            (IpAddr::V6(p), IpAddr::V6(l)) => self.rss.toeplitz().hash_v6(p.octets(), l.octets(), ports),
            _ => 0,
        };
        self.rss.reta().queue(hash)
    }

    /// Whether TCP frames are steered by the rule tables (otherwise RSS
    /// placement is final).
    pub(crate) fn steers_tcp(&self) -> bool {
        matches!(self.config.mode, ForwardMode::SoftForward | ForwardMode::FlowDirector)
    }

    /// The port table, locked.
    pub(crate) fn ports(&self) -> MutexGuard<'_, PortTable> {
        self.ports.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The stacks of one process on one port, and what they share.
#[derive(Clone)]
pub struct StackGroup {
    pub(crate) fabric: Arc<Fabric>,
    pub(crate) stacks: Arc<[Mutex<Instance>]>,
}

impl StackGroup {
    /// Configures `port` with one queue pair per stack, starts it, and
    /// builds the stacks. Buffers come from `pool`.
    pub fn new(port: Arc<dyn EthDev>, pool: Mempool, config: GroupConfig) -> Result<StackGroup, GroupError> {
        check(&config)?;
        let queues = u16::try_from(config.stacks).map_err(|_| GroupError::Config("too many stacks".into()))?;
        let mut conf = PortConf::new(queues);
        conf.mtu = config.mtu;
        let tso_pool = config.tso.then(|| tso_offloads(port.as_ref(), &mut conf, &pool, queues)).transpose()?;
        port.configure(&conf)?;
        if config.mode == ForwardMode::FlowDirector {
            install_syn_catchall(port.as_ref())?;
        }
        port.start()?;
        let rss = RssConf::from_parts(conf.rss_key, conf.rss_types, port.reta_query()?);
        let nics = (0..queues).map(|q| Ok(NicQueue { rx: port.rx_queue(q)?, tx: port.tx_queue(q)? }));
        let nics = nics.collect::<Result<Vec<_>, DevError>>()?;
        let (soft, soft_ends) = rings(config.stacks, config.ring_size)?;
        let (rpc, rpc_ends) = rings(config.stacks, config.ring_size)?;
        let fabric = Arc::new(Fabric {
            soft,
            rpc,
            config,
            port,
            pool,
            tso_pool,
            rss,
            tables: Tables::default(),
            ports: Mutex::default(),
            fds: Mutex::default(),
        });
        let inboxes = soft_ends.into_iter().zip(rpc_ends).map(|(soft, rpc)| Inbox { soft, rpc });
        let stacks = inboxes
            .zip(nics)
            .enumerate()
            .map(|(i, (inbox, nic))| Mutex::new(Instance::new(i, Arc::clone(&fabric), inbox, nic)))
            .collect();
        Ok(StackGroup { fabric, stacks })
    }

    /// Number of stacks.
    pub fn len(&self) -> usize {
        self.stacks.len()
    }

    /// Whether the group has no stacks (never true for a built group).
    pub fn is_empty(&self) -> bool {
        self.stacks.is_empty()
    }

    /// The configuration the group was built with.
    pub fn config(&self) -> &GroupConfig {
        &self.fabric.config
    }

    /// Polls stack `i` at `now`; true if it did any work.
    pub fn poll(&self, i: usize, now: Instant) -> bool {
        self.stack(i).poll(now)
    }

    /// When stack `i` next needs a poll, if it has a deadline.
    pub fn poll_at(&self, i: usize) -> Option<Instant> {
        self.stack(i).poll_at()
    }

    /// Counters of stack `i`.
    pub fn stats(&self, i: usize) -> StackStats {
        self.stack(i).stats()
    }

    /// An application handle whose sockets live on stack `home` (the stack
    /// gazelle binds the calling thread to), calling the stacks as the
    /// group's thread model says and reading time from `clock`.
    pub fn api(&self, home: usize, clock: Arc<dyn crate::Clock>) -> Api {
        Api::new(self.clone(), home % self.len(), clock)
    }

    /// The stack the NIC's RSS sends frames from `peer` to `local` to.
    pub fn rss_stack(&self, peer: SocketAddr, local: SocketAddr) -> usize {
        usize::from(self.fabric.rss_queue(peer, local))
    }

    /// The group's pool of large buffers for TSO super-frames, if it has
    /// TSO; its buffers in use count towards a host's leak check.
    pub fn tso_pool(&self) -> Option<&Mempool> {
        self.fabric.tso_pool.as_ref()
    }

    /// Number of connection rules in the group's table.
    pub fn rule_count(&self) -> usize {
        self.fabric.tables.conn_count()
    }

    /// Stack `i`, locked.
    pub(crate) fn stack(&self, i: usize) -> MutexGuard<'_, Instance> {
        self.stacks[i].lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The consuming ends of one stack's rings, which only that stack reads.
pub(crate) struct Inbox {
    /// Frames other stacks hand over.
    pub(crate) soft: Consumer<Mbuf>,
    /// Application calls to run.
    pub(crate) rpc: Consumer<Rpc>,
}

/// The fast-path handles of one stack's NIC queue, which only that stack polls.
pub(crate) struct NicQueue {
    /// Frames from the NIC.
    pub(crate) rx: Box<dyn RxQueue>,
    /// Frames to the NIC.
    pub(crate) tx: Box<dyn TxQueue>,
}

/// A set of MPSC rings as their producing ends (for the fabric) and their
/// consuming ends (one per stack).
type RingEnds<T> = (Vec<MpProducer<T>>, Vec<Consumer<T>>);

/// `n` MPSC rings of `size` slots.
fn rings<T>(n: usize, size: usize) -> Result<RingEnds<T>, GroupError> {
    (0..n).map(|_| mpsc(size).map_err(|e| GroupError::Config(e.to_string()))).collect()
}

fn check(config: &GroupConfig) -> Result<(), GroupError> {
    let bad = |m: &str| Err(GroupError::Config(m.to_string()));
    if config.stacks == 0 {
        return bad("stacks: at least one stack is needed");
    }
    if config.ipv4.is_none() && config.ipv6.is_none() {
        return bad("no IPv4 or IPv6 address");
    }
    if config.mode == ForwardMode::Ltran {
        return bad("mode ltran needs a forwarder process, which a single-process group does not have");
    }
    if !config.ring_size.is_power_of_two() {
        return bad("ring_size must be a power of two");
    }
    Ok(())
}

/// Enables TSO and the checksum offloads it relies on in `conf`, if the
/// port offers them, and makes the pool of large buffers the stacks build
/// super-frames in: [`TSO_BUFFERS_PER_STACK`] for each of the `stacks`,
/// named after `pool`.
fn tso_offloads(port: &dyn EthDev, conf: &mut PortConf, pool: &Mempool, stacks: u16) -> Result<Mempool, GroupError> {
    let wanted = TxOffloads::TCP_TSO | TxOffloads::IPV4_CKSUM | TxOffloads::L4_CKSUM;
    let offered = port.info().tx_offloads;
    if !offered.contains(wanted) {
        let missing = wanted - offered;
        return Err(GroupError::Config(format!("tso: the port does not offer the transmit offloads {missing:?}")));
    }
    conf.tx_offloads |= wanted;
    let buffers = u32::from(stacks) * TSO_BUFFERS_PER_STACK;
    let config = MempoolConfig::new(format!("{}-tso", pool.name()), buffers).data_room(TSO_FRAME as u32);
    Mempool::new(config).map_err(|e| GroupError::Config(e.to_string()))
}

/// Large buffers per stack for TSO super-frames. They live only from the
/// stack's egress to the NIC's segmentation, so a few dozen cover a
/// socket's whole send buffer in 64 KiB frames several times over; when
/// they run out, the stack holds its frames back until the NIC frees some.
pub const TSO_BUFFERS_PER_STACK: u32 = 64;

/// Flow-director mode: TCP frames no connection rule claims go to queue 0,
/// whose stack dispatches new connections by the listen-port table.
fn install_syn_catchall(port: &dyn EthDev) -> Result<(), DevError> {
    let attr = FlowAttr::ingress(CATCHALL_PRIORITY);
    let to_zero = [FlowAction::Queue(0)];
    for ip in [FlowItem::Ipv4(ItemSpec::ANY), FlowItem::Ipv6(ItemSpec::ANY)] {
        port.flow_create(&attr, &[FlowItem::Eth(ItemSpec::ANY), ip, FlowItem::Tcp(ItemSpec::ANY)], &to_zero)?;
    }
    Ok(())
}

/// Priority of the flow-director catch-all: below every connection rule.
pub(crate) const CATCHALL_PRIORITY: u32 = 1;
/// Priority of per-connection flow-director rules.
pub(crate) const CONN_RULE_PRIORITY: u32 = 0;
