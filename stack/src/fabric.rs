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
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use ethdev::mac::MacAddr;
use ethdev::mempool::{Owner, FIRST_DOMAIN_OWNER};
use ethdev::ring::{Consumer, MpProducer};
use ethdev::rss::RssConf;
use ethdev::{EthDev, Mbuf, Mempool, RxQueue, TxQueue};

use crate::config::{ForwardMode, ThreadModel};
use crate::dispatch::Tables;
use crate::fds::FdTable;
use crate::kernel_share::KernelShare;
use crate::ports::{PortTable, EPHEMERAL_FIRST, EPHEMERAL_SPAN};
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
    /// Mbuf owner id of stack 0; stack `i` owns `owner_base + i`, unless
    /// this is a process's domain owner id (see [`GroupConfig::stack_owner`]).
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
    /// This process's place among the processes sharing one port in
    /// gazelle's tuple_filter mode (`num_process`, `process_idx`), if it is
    /// one of them: see [`ProcessSlot`]. `None` for a process alone on its port.
    pub process: Option<ProcessSlot>,
}

/// One of the processes sharing a port in tuple_filter mode, as gazelle
/// lays them out: process `index` of `count`, each with as many stacks
/// (and queues) as this one, its stack `i` on queue `index × stacks + i`.
/// Sharing one address, each process draws its ephemeral ports from its own
/// slice of the range, so two processes never pick one four-tuple. Process
/// 0's stack 0 gets what no connection rule claims (the port's RSS is
/// off) and hands a copy of every neighbour message to each other process's
/// first queue, through the port's hairpin ([`ethdev::OlFlags::TX_LOOPBACK`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessSlot {
    /// This process's number (gazelle `process_idx`).
    pub index: u16,
    /// How many processes share the port (gazelle `num_process`).
    pub count: u16,
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
            process: None,
        }
    }

    /// Whether ephemeral port `port` is in this process's slice of the
    /// range (every ephemeral port, for a process alone on its port).
    pub fn owns_ephemeral(&self, port: u16) -> bool {
        let (first, len) = self.ephemeral_slice();
        port >= EPHEMERAL_FIRST && (first..first + len).contains(&(port - EPHEMERAL_FIRST))
    }

    /// Where the ephemeral search starts, in ports from the range's start:
    /// [`Self::ephemeral_offset`] into this process's slice, so an heir
    /// starts elsewhere in the same slice than its predecessor.
    pub(crate) fn ephemeral_start(&self) -> u16 {
        let (first, len) = self.ephemeral_slice();
        first + self.ephemeral_offset % len
    }

    /// This process's slice of the ephemeral range: (first, length), in
    /// ports from the range's start.
    fn ephemeral_slice(&self) -> (u16, u16) {
        match self.process {
            Some(p) => {
                let len = EPHEMERAL_SPAN / p.count.max(1);
                (p.index.min(p.count.saturating_sub(1)) * len, len.max(1))
            }
            None => (0, EPHEMERAL_SPAN),
        }
    }

    /// The mbuf owner stack `i` allocates as: `owner_base + i`, except
    /// that a domain owner id (one a domain's control channel gave this
    /// process, [`FIRST_DOMAIN_OWNER`] and up) is the owner of every stack:
    /// a process has that one id in its domain, the ids after it are other
    /// processes', and reclaiming it after the process dies finds every
    /// stack's buffers.
    pub fn stack_owner(&self, i: usize) -> Owner {
        if self.owner_base >= FIRST_DOMAIN_OWNER {
            Owner(self.owner_base)
        } else {
            Owner(self.owner_base + i as u32)
        }
    }

    /// The queue of stack 0: 0, or in tuple_filter mode the first after
    /// the queues of the processes before this one.
    pub fn first_queue(&self) -> u16 {
        self.process.map_or(0, |p| p.index.saturating_mul(self.stacks as u16))
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
    /// The kernel's end, once the group shares its NIC with the kernel
    /// (flow bifurcation, see [`KernelShare`]).
    pub(crate) kernel: OnceLock<KernelShare>,
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

    /// The NIC queue of stack `stack`: its own number, or in tuple_filter
    /// mode its place after the queues of the processes before this one.
    pub(crate) fn queue_of(&self, stack: usize) -> u16 {
        self.config.first_queue() + stack as u16
    }

    /// The first queue of every other process sharing the port, if this
    /// is process 0 of several in tuple_filter mode (which copies neighbour
    /// messages to them; under ltran, the forwarder copies them).
    pub(crate) fn other_processes(&self) -> std::ops::Range<usize> {
        match self.config.process {
            Some(p) if p.index == 0 && self.config.mode == ForwardMode::FlowDirector => 1..usize::from(p.count),
            _ => 0..0,
        }
    }

    /// Whether each connection and listener registers a flow rule with the
    /// port (a shared port forwards it to the primary): tuple_filter's
    /// rules, or the ltran forwarder's connection and listener tables.
    pub(crate) fn registers_flows(&self) -> bool {
        matches!(self.config.mode, ForwardMode::FlowDirector | ForwardMode::Ltran)
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
/// Priority of a listener's rule across processes: below its connections'.
pub(crate) const LISTEN_RULE_PRIORITY: u32 = 1;

#[cfg(test)]
mod tests {
    use super::*;

    /// Three processes sharing an address split the ephemeral range into
    /// three disjoint slices that cover it but for the remainder, and each
    /// starts its search in its own; each process's queues follow the ones
    /// before it.
    #[test]
    fn processes_get_disjoint_ephemeral_slices_and_consecutive_queues() {
        let config = |index| GroupConfig {
            process: Some(ProcessSlot { index, count: 3 }),
            ..GroupConfig::new(2, [2, 0, 0, 0, 0, 1], Ipv4Addr::new(10, 0, 0, 1))
        };
        let owners = |port| (0..3).filter(|&i| config(i).owns_ephemeral(port)).count();
        assert!((EPHEMERAL_FIRST..=65534).all(|port| owners(port) == 1));
        assert_eq!(owners(65535), 0, "16384 ports do not split in three: the last one is nobody's");
        assert_eq!(owners(80), 0);
        assert_eq!((0..3).map(|i| config(i).first_queue()).collect::<Vec<_>>(), [0, 2, 4]);
        // Whatever its offset, a process starts its search in its own slice.
        for offset in (0..=u16::MAX).step_by(97) {
            let c = GroupConfig { ephemeral_offset: offset, ..config(1) };
            assert!(c.owns_ephemeral(EPHEMERAL_FIRST + c.ephemeral_start()), "offset {offset}");
        }
        let alone = GroupConfig::new(2, [2, 0, 0, 0, 0, 1], Ipv4Addr::new(10, 0, 0, 1));
        assert!(alone.owns_ephemeral(65535) && !alone.owns_ephemeral(1024) && alone.first_queue() == 0);
    }

    /// A group of its own gives each stack an owner id of its own; a
    /// process's domain owner id is every one of its stacks' (the ids after
    /// it are other processes').
    #[test]
    fn stacks_share_their_process_domain_owner_id() {
        let config =
            |owner_base| GroupConfig { owner_base, ..GroupConfig::new(3, [2, 0, 0, 0, 0, 1], Ipv4Addr::LOCALHOST) };
        let owners = |c: GroupConfig| (0..3).map(|i| c.stack_owner(i).0).collect::<Vec<_>>();
        assert_eq!(owners(config(1)), [1, 2, 3]);
        let process = FIRST_DOMAIN_OWNER + 5;
        assert_eq!(owners(config(process)), [process; 3]);
    }
}
