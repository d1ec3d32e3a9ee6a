//! What the modes whose processes share one port and one address have in
//! common (tuple_filter, ltran): the port, made by the primary with RSS
//! off and a queue pair per stack of every process; a process's stacks on
//! its consecutive queues; and
//! the LAN the port's cable goes to, with the peer host on it.

use std::net::Ipv4Addr;
use std::sync::Arc;

use ethdev::dev::PortConf;
use ethdev::mempool::{Mempool, MempoolConfig, Owner};
use ethdev::rss::{Reta, RssConf, RssHashTypes};
use ethdev::shm::Domain;
use ethdev::{EthDev, MacAddr};
use stack::{ForwardMode, GroupConfig, ProcessSlot, StackGroup};
use user_vbridge::{Bridge, BridgeConfig, PortConfig};
use user_veth::shared::{PortSpec, SharedPort, SharedVeth, SharedWire};
use user_veth::Veth;

use super::Options;
use crate::hosts::PRIMARY_OWNER;

/// Buffers of the port's pool, and of the peer's.
const PORT_BUFFERS: u32 = 8192;
const PEER_BUFFERS: u32 = 4096;

/// A mode's port and addresses.
pub(super) struct Layout {
    /// The shared port's name; its pool is `<name>_pool`.
    pub name: &'static str,
    /// Queue pairs of the port: a queue per stack of every process on it.
    pub queues: u16,
    /// The address every process shares.
    pub mac: MacAddr,
    pub ip: Ipv4Addr,
    /// The LAN peer's.
    pub peer_mac: MacAddr,
    pub peer_ip: Ipv4Addr,
}

impl Layout {
    /// The port: a queue pair per process, RSS off.
    fn conf(&self) -> PortConf {
        let rss_types = RssHashTypes::empty();
        PortConf { rx_ring_size: 1024, tx_ring_size: 1024, rss_types, ..PortConf::new(self.queues) }
    }

    /// RSS as [`Layout::conf`] sets it up, which a secondary cannot query.
    fn rss(&self) -> Result<RssConf, String> {
        let conf = self.conf();
        let reta = Reta::new(usize::from(conf.reta_size), conf.rx_queues).map_err(|e| e.to_string())?;
        Ok(RssConf::from_parts(conf.rss_key, conf.rss_types, reta))
    }

    /// The stacks (`opts.stacks`) of the process in `slot` on `port`, in
    /// `mode`, allocating as `owner`.
    pub fn group(
        &self,
        opts: &Options,
        (port, owner): (SharedPort, Owner),
        mode: ForwardMode,
        slot: ProcessSlot,
    ) -> Result<StackGroup, String> {
        let config = GroupConfig {
            model: opts.model,
            mode,
            owner_base: owner.0,
            process: Some(slot),
            // New sequence numbers and a new place in the process's port
            // slice for an heir (see `vf`).
            seed: u64::from(opts.place.proc_id) << 32 | u64::from(std::process::id()),
            ephemeral_offset: super::fresh_ports(),
            ..GroupConfig::new(usize::from(opts.stacks), self.mac, self.ip)
        };
        let pool = port.pool().clone();
        StackGroup::on_configured_port(Arc::new(port), pool, config, self.rss()?).map_err(|e| e.to_string())
    }

    /// Makes and starts the port in `domain` and the LAN bridge, with the
    /// peer host's stack on it; the port's wire end is the caller's to plug in.
    pub fn build(&self, domain: &Domain, opts: &Options) -> Result<OnLan, String> {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let spec = PortSpec {
            name: self.name.into(),
            mac: self.mac,
            conf: self.conf(),
            ring_words: 1024,
            pool: MempoolConfig::new(format!("{}_pool", self.name), PORT_BUFFERS),
            owner: PRIMARY_OWNER,
        };
        let (port, wire) = SharedVeth::create(domain, &spec).map_err(|e| err(&e))?;
        port.start().map_err(|e| err(&e))?;
        let mut lan =
            Bridge::new(BridgeConfig { name: "lan".into(), ..BridgeConfig::default() }).map_err(|e| err(&e))?;
        let peer_pool = Mempool::new(MempoolConfig::new("peer", PEER_BUFFERS)).map_err(|e| err(&e))?;
        let (peer_port, peer_wire) = Veth::new("peer", self.peer_mac, peer_pool.clone());
        lan.add_port(Box::new(peer_wire), PortConfig::default()).map_err(|e| err(&e))?;
        let config = GroupConfig { model: opts.model, ..GroupConfig::new(1, self.peer_mac, self.peer_ip) };
        let peer = StackGroup::new(Arc::new(peer_port), peer_pool.clone(), config).map_err(|e| err(&e))?;
        Ok(OnLan { port, wire, lan, peer, peer_pool })
    }
}

/// What [`Layout::build`] made.
pub(super) struct OnLan {
    /// The primary's handle of the port.
    pub port: SharedPort,
    /// Its wire end, not yet on the LAN.
    pub wire: SharedWire,
    pub lan: Bridge,
    /// The peer host's stack, on the LAN.
    pub peer: StackGroup,
    pub peer_pool: Mempool,
}
