//! What the stacks of one group share, and what each owns of it.
//!
//! A [`Fabric`] is built once per group and reached by every stack
//! instance and every application handle through an `Arc`: the group's
//! [`GroupConfig`], its port and pools, the RSS configuration (to choose
//! connecting ports), the rule tables, the producing ends of one MPSC soft
//! ring per stack (frames handed over between stacks) and one MPSC RPC ring
//! per stack (application calls), the port table and the fd table. Each
//! stack owns the consuming ends of its two rings, its [`Inbox`], so only it
//! reads them. Keeping this in a module of its own lets the instances (which
//! read it) and the group (which builds it) depend on it without depending
//! on each other.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ethdev::mac::MacAddr;
use ethdev::ring::{Consumer, MpProducer};
use ethdev::rss::RssConf;
use ethdev::{EthDev, Mbuf, Mempool, RxQueue, TxQueue};

use crate::config::{ForwardMode, ThreadModel};
use crate::dispatch::Tables;
use crate::fds::FdTable;
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
    /// Where the search for ephemeral ports starts, in ports from the
    /// range's start (49152): 0 by default, so that runs are reproducible;
    /// a process restarted beside peers that may still hold its
    /// predecessor's connections sets its own, as Linux's randomised
    /// search (RFC 6056) keeps a new process off its predecessor's ports.
    pub ephemeral_offset: u16,
}

impl GroupConfig {
    /// `stacks` RSS stacks, run-to-wakeup, at `ipv4`/24 with MAC `mac`,
    /// 64 KiB socket buffers.
    pub fn new(stacks: usize, mac: impl Into<MacAddr>, ipv4: Ipv4Addr) -> Self {
        Self {
            stacks,
            mode: ForwardMode::Rss,
            model: ThreadModel::RunToWakeup,
            mac: mac.into(),
            ipv4: Some((ipv4, 24)),
            gateway: None,
            ipv6: None,
            mtu: 1500,
            bufs: BufSizes { rx: 64 * 1024, tx: 64 * 1024 },
            seed: 1,
            owner_base: 1,
            ring_size: 4096,
            tso: false,
            ephemeral_offset: 0,
        }
    }
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

    /// The fd table, locked.
    pub(crate) fn fds(&self) -> MutexGuard<'_, FdTable> {
        self.fds.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The fast-path handles of one stack's NIC queue, which only that stack polls.
pub(crate) struct NicQueue {
    /// Frames from the NIC.
    pub(crate) rx: Box<dyn RxQueue>,
    /// Frames to the NIC.
    pub(crate) tx: Box<dyn TxQueue>,
}

/// The consuming ends of one stack's rings, which only that stack reads.
pub(crate) struct Inbox {
    /// Frames other stacks hand over.
    pub(crate) soft: Consumer<Mbuf>,
    /// Application calls to run.
    pub(crate) rpc: Consumer<Rpc>,
}

/// Priority of the flow-director catch-all: below every connection rule.
pub(crate) const CATCHALL_PRIORITY: u32 = 1;
/// Priority of per-connection flow-director rules.
pub(crate) const CONN_RULE_PRIORITY: u32 = 0;
