//! The `EthDev` trait: what every port backend offers, `rte_ethdev` style.
//!
//! A port is configured (queues, ring sizes, RSS, offloads, MTU), started,
//! then polled: each receive queue by [`EthDev::rx_burst`], each transmit
//! queue by [`EthDev::tx_burst`], from whichever thread owns that queue.
//! Control calls (RSS and RETA updates, flow rules, link, MTU, promiscuous
//! mode, stats) take `&self` too, so a port can be shared as
//! `Arc<dyn EthDev>` between the queue threads and a control thread.

use crate::error::DevError;
use crate::flow::{FlowAction, FlowAttr, FlowCounters, FlowId, FlowItem};
use crate::mbuf::Mbuf;
use crate::rss::{Reta, RssHashTypes, RssKey};

/// A MAC address.
pub type MacAddr = [u8; 6];

bitflags::bitflags! {
    /// Receive offloads a port can perform (`RTE_ETH_RX_OFFLOAD_*`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct RxOffloads: u32 {
        /// Verify IPv4 header and TCP/UDP checksums and report them in the mbuf flags.
        const CHECKSUM = 1 << 0;
        /// Deliver the RSS hash in the mbuf.
        const RSS_HASH = 1 << 1;
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

/// A port backend: a software NIC, a DPDK port, or a model of either.
pub trait EthDev: Send + Sync {
    /// What the port supports.
    fn info(&self) -> DevInfo;
    /// Applies a configuration; the port must be stopped.
    fn configure(&self, conf: &PortConf) -> Result<(), DevError>;
    /// Starts the port: queues begin to pass frames.
    fn start(&self) -> Result<(), DevError>;
    /// Stops the port; frames arriving meanwhile are dropped as link down.
    fn stop(&self);

    /// Appends up to `max` received frames from `queue` to `out`; returns how many.
    fn rx_burst(&self, queue: u16, out: &mut Vec<Mbuf>, max: usize) -> usize;
    /// Queues frames from the front of `pkts` for transmission on `queue`,
    /// leaving those that did not fit in `pkts`; returns how many were taken.
    fn tx_burst(&self, queue: u16, pkts: &mut Vec<Mbuf>) -> usize;

    /// Replaces the RSS key and hash types.
    fn rss_hash_update(&self, key: RssKey, types: RssHashTypes) -> Result<(), DevError>;
    /// Replaces the redirection table.
    fn reta_update(&self, reta: Reta) -> Result<(), DevError>;
    /// The current redirection table.
    fn reta_query(&self) -> Reta;

    /// Checks that a flow rule could be created.
    fn flow_validate(&self, attr: &FlowAttr, pattern: &[FlowItem], actions: &[FlowAction]) -> Result<(), DevError>;
    /// Creates a flow rule.
    fn flow_create(&self, attr: &FlowAttr, pattern: &[FlowItem], actions: &[FlowAction]) -> Result<FlowId, DevError>;
    /// Destroys a flow rule.
    fn flow_destroy(&self, id: FlowId) -> Result<(), DevError>;
    /// Destroys every flow rule.
    fn flow_flush(&self);
    /// Reads a rule's COUNT action.
    fn flow_query(&self, id: FlowId) -> Result<FlowCounters, DevError>;
    /// In isolate mode only traffic matched by a rule is received.
    fn flow_isolate(&self, on: bool) -> Result<(), DevError>;

    /// Link state.
    fn link(&self) -> LinkStatus;
    /// Brings the link up or down.
    fn set_link(&self, up: bool);
    /// The port's MAC address.
    fn mac_addr(&self) -> MacAddr;
    /// The current MTU.
    fn mtu(&self) -> u16;
    /// Changes the MTU.
    fn set_mtu(&self, mtu: u16) -> Result<(), DevError>;
    /// Whether the port accepts unicast frames for other MACs.
    fn promiscuous(&self) -> bool;
    /// Turns promiscuous mode on or off.
    fn set_promiscuous(&self, on: bool);

    /// Basic counters.
    fn stats(&self) -> PortStats;
    /// Every named counter, including drops by reason.
    fn xstats(&self) -> Vec<XStat>;
    /// Zeroes every counter.
    fn stats_reset(&self);
}
