//! The `EthDev` trait: what every port backend offers, `rte_ethdev` style.
//!
//! DPDK splits a port into its fast-path ops (`rte_eth_fp_ops`: rx/tx
//! burst per queue) and its control ops (`eth_dev_ops`), most of which a
//! driver may leave out. So does this trait. A port is configured (queues,
//! ring sizes, RSS, offloads, MTU) and started through control calls that
//! take `&self`, so it can be shared as `Arc<dyn EthDev>` between queue
//! threads and a control thread; then each polling thread takes the
//! [`RxQueue`]/[`TxQueue`] handles of its queues once and bursts through
//! them with `&mut self`, taking no lock and allocating nothing per burst.
//! Only [`EthDev::info`] and the two handle getters are required: every
//! control operation defaults to [`DevError::Unsupported`], so a new
//! backend (a DPDK port, a shared-memory port) implements only what it
//! has. Behaviour that applies to any port, such as capture and fault
//! injection, is middleware wrapping an `EthDev` ([`crate::middleware`]),
//! not a feature of one backend.

use crate::error::DevError;
use crate::flow::{FlowAction, FlowAttr, FlowCounters, FlowId, FlowItem};
use crate::mac::MacAddr;
use crate::queue::{RxQueue, TxQueue};
use crate::rss::{Reta, RssHashTypes, RssKey};

bitflags::bitflags! {
    /// Receive offloads a port can perform (`RTE_ETH_RX_OFFLOAD_*`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct RxOffloads: u32 {
        /// Verify IPv4 header and TCP/UDP checksums and report them in the mbuf flags.
        const CHECKSUM = 1 << 0;
        /// Deliver the RSS hash in the mbuf.
        const RSS_HASH = 1 << 1;
        /// Large receive offload: take TCP super-frames (segments larger
        /// than the MTU, see [`crate::wire::Wire::takes_super_frames`])
        /// whole, flagged [`OlFlags::RX_LRO`](crate::mbuf::OlFlags::RX_LRO)
        /// with their segment size in `tso_segsz`, as a NIC's LRO hands up
        /// the segments it merged.
        const TCP_LRO = 1 << 2;
    }
}

bitflags::bitflags! {
    /// Transmit offloads a port can perform (`RTE_ETH_TX_OFFLOAD_*`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct TxOffloads: u32 {
        /// Fill in IPv4 header checksums on request.
        const IPV4_CKSUM = 1 << 0;
        /// Fill in TCP and UDP checksums on request.
        const L4_CKSUM = 1 << 1;
        /// Segment large TCP frames (TSO) on request.
        const TCP_TSO = 1 << 2;
    }
}

/// How a port is to be set up before it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortConf {
    /// Number of receive queues.
    pub rx_queues: u16,
    /// Number of transmit queues.
    pub tx_queues: u16,
    /// Slots per receive ring (a power of two).
    pub rx_ring_size: u32,
    /// Slots per transmit ring (a power of two).
    pub tx_ring_size: u32,
    /// Hash types RSS spreads over the queues; empty sends everything to queue 0.
    pub rss_types: RssHashTypes,
    /// Toeplitz key.
    pub rss_key: RssKey,
    /// Number of RETA entries (64, 128, 256 or 512).
    pub reta_size: u16,
    /// Enabled receive offloads.
    pub rx_offloads: RxOffloads,
    /// Enabled transmit offloads.
    pub tx_offloads: TxOffloads,
    /// Largest IP packet (L3 MTU) the port sends or accepts.
    pub mtu: u16,
}

impl PortConf {
    /// `queues` rx and tx queues of 1024 slots, RSS over every IPv4/IPv6
    /// TCP/UDP type with the default key, a 128-entry RETA, MTU 1500, no
    /// offloads.
    pub fn new(queues: u16) -> Self {
        Self {
            rx_queues: queues,
            tx_queues: queues,
            rx_ring_size: 1024,
            tx_ring_size: 1024,
            rss_types: RssHashTypes::all(),
            rss_key: RssKey::DEFAULT,
            reta_size: 128,
            rx_offloads: RxOffloads::empty(),
            tx_offloads: TxOffloads::empty(),
            mtu: 1500,
        }
    }
}

/// What a port can do (`rte_eth_dev_info`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevInfo {
    /// Name of the driver behind the port.
    pub driver: &'static str,
    /// Most receive queues.
    pub max_rx_queues: u16,
    /// Most transmit queues.
    pub max_tx_queues: u16,
    /// Largest ring size.
    pub max_ring_size: u32,
    /// Supported RETA sizes.
    pub reta_sizes: &'static [u16],
    /// Supported RSS key lengths in bytes.
    pub rss_key_sizes: &'static [usize],
    /// Hash types RSS can use.
    pub rss_types: RssHashTypes,
    /// Receive offloads available.
    pub rx_offloads: RxOffloads,
    /// Transmit offloads available.
    pub tx_offloads: TxOffloads,
    /// Smallest and largest MTU.
    pub mtu_range: (u16, u16),
}

/// Link state as the port reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkStatus {
    /// Whether the link is up.
    pub up: bool,
    /// Nominal speed in Mbit/s.
    pub speed_mbps: u32,
}

/// Basic counters of a port and its queues (`rte_eth_stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Frames received into rx queues.
    pub ipackets: u64,
    /// Frames sent to the wire.
    pub opackets: u64,
    /// Bytes received into rx queues.
    pub ibytes: u64,
    /// Bytes sent to the wire.
    pub obytes: u64,
    /// Frames dropped because an rx ring was full.
    pub imissed: u64,
    /// Frames refused on receive for any other reason.
    pub ierrors: u64,
    /// Frames refused on transmit.
    pub oerrors: u64,
    /// Per rx queue frames received.
    pub q_ipackets: Vec<u64>,
    /// Per tx queue frames sent.
    pub q_opackets: Vec<u64>,
}

/// One named extended counter (`rte_eth_xstat`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XStat {
    /// Counter name, e.g. `rx_q3_packets` or `rx_drop_mac_filter`.
    pub name: String,
    /// Counter value.
    pub value: u64,
}

/// `Err(Unsupported)` naming the operation: what every control operation
/// a backend does not implement returns.
fn unsupported<T>(op: &str) -> Result<T, DevError> {
    Err(DevError::Unsupported(op.to_string()))
}

/// A port backend: a software NIC, a DPDK port, or a model of either.
///
/// Only [`EthDev::info`] and the queue handles are required; every control
/// operation has a body returning [`DevError::Unsupported`], so a backend
/// implements exactly what it has (see the module docs).
pub trait EthDev: Send + Sync {
    /// What the port supports.
    fn info(&self) -> DevInfo;
    /// The fast-path handle of receive queue `queue`, for the thread that
    /// polls it; take it once the port is configured.
    fn rx_queue(&self, queue: u16) -> Result<Box<dyn RxQueue>, DevError>;
    /// The fast-path handle of transmit queue `queue`, as [`EthDev::rx_queue`].
    fn tx_queue(&self, queue: u16) -> Result<Box<dyn TxQueue>, DevError>;

    /// A short name for reports and captures, e.g. `veth0`; the driver's
    /// name unless the backend names its ports.
    fn name(&self) -> &str {
        self.info().driver
    }
    /// Applies a configuration; the port must be stopped.
    fn configure(&self, _conf: &PortConf) -> Result<(), DevError> {
        unsupported("configure")
    }
    /// Starts the port: queues begin to pass frames.
    fn start(&self) -> Result<(), DevError> {
        unsupported("start")
    }
    /// Stops the port; frames arriving meanwhile are dropped as link down.
    fn stop(&self) -> Result<(), DevError> {
        unsupported("stop")
    }

    /// Replaces the RSS key and hash types.
    fn rss_hash_update(&self, _key: RssKey, _types: RssHashTypes) -> Result<(), DevError> {
        unsupported("rss_hash_update")
    }
    /// Replaces the redirection table.
    fn reta_update(&self, _reta: Reta) -> Result<(), DevError> {
        unsupported("reta_update")
    }
    /// The current redirection table.
    fn reta_query(&self) -> Result<Reta, DevError> {
        unsupported("reta_query")
    }

    /// Checks that a flow rule could be created.
    fn flow_validate(&self, _attr: &FlowAttr, _pattern: &[FlowItem], _actions: &[FlowAction]) -> Result<(), DevError> {
        unsupported("flow_validate")
    }
    /// Creates a flow rule.
    fn flow_create(
        &self,
        _attr: &FlowAttr,
        _pattern: &[FlowItem],
        _actions: &[FlowAction],
    ) -> Result<FlowId, DevError> {
        unsupported("flow_create")
    }
    /// Destroys a flow rule.
    fn flow_destroy(&self, _id: FlowId) -> Result<(), DevError> {
        unsupported("flow_destroy")
    }
    /// Destroys every flow rule.
    fn flow_flush(&self) -> Result<(), DevError> {
        unsupported("flow_flush")
    }
    /// Reads a rule's COUNT action.
    fn flow_query(&self, _id: FlowId) -> Result<FlowCounters, DevError> {
        unsupported("flow_query")
    }
    /// In isolate mode only traffic matched by a rule is received.
    fn flow_isolate(&self, _on: bool) -> Result<(), DevError> {
        unsupported("flow_isolate")
    }

    /// Link state.
    fn link(&self) -> Result<LinkStatus, DevError> {
        unsupported("link")
    }
    /// Brings the link up or down.
    fn set_link(&self, _up: bool) -> Result<(), DevError> {
        unsupported("set_link")
    }
    /// The port's MAC address.
    fn mac_addr(&self) -> Result<MacAddr, DevError> {
        unsupported("mac_addr")
    }
    /// The current MTU.
    fn mtu(&self) -> Result<u16, DevError> {
        unsupported("mtu")
    }
    /// Changes the MTU.
    fn set_mtu(&self, _mtu: u16) -> Result<(), DevError> {
        unsupported("set_mtu")
    }
    /// Whether the port accepts unicast frames for other MACs.
    fn promiscuous(&self) -> Result<bool, DevError> {
        unsupported("promiscuous")
    }
    /// Turns promiscuous mode on or off.
    fn set_promiscuous(&self, _on: bool) -> Result<(), DevError> {
        unsupported("set_promiscuous")
    }

    /// Basic counters.
    fn stats(&self) -> Result<PortStats, DevError> {
        unsupported("stats")
    }
    /// Every named counter, including drops by reason.
    fn xstats(&self) -> Result<Vec<XStat>, DevError> {
        unsupported("xstats")
    }
    /// Zeroes every counter.
    fn stats_reset(&self) -> Result<(), DevError> {
        unsupported("stats_reset")
    }
    /// Checks that every frame the port was offered is accounted for
    /// (passed on, dropped under a reason, or still queued); the error
    /// names the first imbalance.
    fn check_accounting(&self) -> Result<(), DevError> {
        unsupported("check_accounting")
    }
}
