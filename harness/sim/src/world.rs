//! A topology: hosts (a port and a stack group each) on one bridge.
//!
//! A [`World`] is what executors run: it owns the bridge and the hosts, and
//! knows how to poll all of them, when they next need polling, and whether
//! everything is back to rest (accounting closed, no buffer in use). A world
//! may also hold [`Replayer`]s, extra bridge ports that inject a capture;
//! they are polled right after the bridge, so they collect what it just
//! delivered to them, and what they inject crosses it in the next round at
//! the same instant. Bare [`Nic`]s are ports without stacks, whose queues raw-frame
//! traffic drives itself; the world counts their buffers and accounting.
//!
//! A port may be any [`EthDev`] backend with its [`Wire`] end: the world
//! holds it as a [`Port`], the backend behind a [`Capture`] (port and wire
//! end both), so a recording can tap every port whatever drives it. The
//! `add_*` methods build user-veth ports; [`World::add_host_port`] takes
//! any other.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use ethdev::dev::{PortConf, RxOffloads};
use ethdev::error::DevError;
use ethdev::mac::MacAddr;
use ethdev::mempool::{Mempool, MempoolConfig};
use ethdev::middleware::Capture;
use ethdev::{EthDev, Instant, Wire};
use stack::{GroupConfig, StackGroup};
use user_vbridge::{Bridge, BridgeConfig, Impairments, PortConfig, PortId};
use user_veth::Veth;

use crate::replayer::Replayer;

/// A port as the world holds it: any backend, behind a capture tap.
pub type Port = Capture<Arc<dyn EthDev>>;

/// Buffers per host pool.
pub const HOST_POOL: u32 = 8192;

/// One host: a NIC port and the stack group of the process using it.
pub struct Host {
    /// Name, used for the port and in reports.
    pub name: String,
    /// The host's NIC.
    pub port: Port,
    /// The host's stacks.
    pub group: StackGroup,
    /// The bridge port the NIC is plugged into.
    pub bridge_port: PortId,
    /// The host's buffer pool.
    pub pool: Mempool,
}

impl Host {
    /// The host's IPv4 address.
    pub fn ipv4(&self) -> Ipv4Addr {
        self.group.config().ipv4.map(|(a, _)| a).unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    /// The host's IPv4 address with `port`.
    pub fn addr(&self, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.ipv4()), port)
    }
}

/// A bare port: no stacks; whoever sends and receives raw frames on it
/// polls its queues.
pub struct Nic {
    /// Name, used for the port and in reports.
    pub name: String,
    /// The port, with RSS queues and receive checksum offload.
    pub port: Port,
    /// The address frames to this port carry.
    pub ipv4: Ipv4Addr,
    /// The bridge port it is plugged into.
    pub bridge_port: PortId,
    /// Its buffer pool.
    pub pool: Mempool,
}

/// Hosts on a bridge.
pub struct World {
    /// The switch joining the hosts.
    pub bridge: Bridge,
    /// The hosts, in the order they were added.
    pub hosts: Vec<Host>,
    /// Captures being injected (see [`Replayer::attach`]).
    pub replayers: Vec<Replayer>,
    /// Bare ports, in the order they were added.
    pub nics: Vec<Nic>,
}

impl World {
    /// An empty world whose bridge impairments draw from `seed`.
    pub fn new(seed: u64) -> Result<World, String> {
        World::with_bridge(BridgeConfig { name: "br0".into(), seed, ..BridgeConfig::default() })
    }

    /// An empty world around a bridge configured as `config`.
    pub fn with_bridge(config: BridgeConfig) -> Result<World, String> {
        let bridge = Bridge::new(config).map_err(|e| e.to_string())?;
        Ok(World { bridge, hosts: Vec::new(), replayers: Vec::new(), nics: Vec::new() })
    }

    /// Adds host `name` with stacks `config` on a port whose links carry
    /// `impairments` in both directions; returns its index.
    pub fn add_host(&mut self, name: &str, config: GroupConfig, impairments: Impairments) -> Result<usize, String> {
        let link = PortConfig { ingress: impairments.clone(), egress: impairments, ..PortConfig::default() };
        self.add_host_on(name, config, link)
    }

    /// Adds host `name` with stacks `config` on a bridge port configured as
    /// `link`; returns its index. A host with TSO sends its TCP super-frames
    /// whole, as Linux sends GSO packets across a veth: the bridge passes
    /// them to ports that take them (veths) over perfect links and cuts them
    /// into segments anywhere else.
    pub fn add_host_on(&mut self, name: &str, config: GroupConfig, link: PortConfig) -> Result<usize, String> {
        let pool = host_pool(name)?;
        let (port, mut wire) = Veth::new(name, config.mac, pool.clone());
        wire.send_super_frames(config.tso);
        self.add_host_port(name, Arc::new(port), wire, pool, config, link)
    }

    /// Adds host `name` with stacks `config` on `port`, any backend, whose
    /// wire end `wire` goes into a bridge port configured as `link`; `pool`
    /// is the host's buffer pool. Returns the host's index.
    pub fn add_host_port(
        &mut self,
        name: &str,
        port: Arc<dyn EthDev>,
        wire: impl Wire + 'static,
        pool: Mempool,
        config: GroupConfig,
        link: PortConfig,
    ) -> Result<usize, String> {
        let (port, bridge_port) = self.plug(port, wire, link)?;
        let group = StackGroup::new(Arc::new(port.clone()), pool.clone(), config).map_err(|e| e.to_string())?;
        self.hosts.push(Host { name: name.to_string(), port, group, bridge_port, pool });
        Ok(self.hosts.len() - 1)
    }

    /// Wraps `port` and `wire` in a capture and plugs the wire into the bridge.
    fn plug(
        &mut self,
        port: Arc<dyn EthDev>,
        wire: impl Wire + 'static,
        link: PortConfig,
    ) -> Result<(Port, PortId), String> {
        let port = Capture::new(port);
        let bridge_port = self.bridge.add_port(Box::new(port.wire(wire)), link).map_err(|e| e.to_string())?;
        Ok((port, bridge_port))
    }

    /// Adds bare port `name` with `queues` RSS queues and receive checksum
    /// offload on a bridge port configured as `link`; returns its index in
    /// [`World::nics`].
    pub fn add_nic(
        &mut self,
        name: &str,
        mac: MacAddr,
        ipv4: Ipv4Addr,
        queues: u16,
        link: PortConfig,
    ) -> Result<usize, String> {
        let pool = host_pool(name)?;
        let (port, wire) = Veth::new(name, mac, pool.clone());
        let conf = PortConf { rx_offloads: RxOffloads::CHECKSUM, ..PortConf::new(queues) };
        port.configure(&conf).map_err(|e| format!("{name}: {e}"))?;
        port.start().map_err(|e| format!("{name}: {e}"))?;
        let (port, bridge_port) = self.plug(Arc::new(port), wire, link)?;
        self.nics.push(Nic { name: name.to_string(), port, ipv4, bridge_port, pool });
        Ok(self.nics.len() - 1)
    }

    /// Polls the bridge, the replayers and every stack at `now`; true if
    /// any of them worked or the bridge still has frames to move now.
    pub fn poll(&mut self, now: Instant) -> bool {
        self.bridge.poll(now);
        let mut busy = self.replayers.iter_mut().fold(false, |busy, r| r.poll(now) | busy);
        for host in &self.hosts {
            for i in 0..host.group.len() {
                busy |= host.group.poll(i, now);
            }
        }
        busy || self.bridge.poll_at().is_some_and(|t| t <= now)
    }

    /// The earliest deadline of the bridge, the stacks and the replayers.
    pub fn poll_at(&self) -> Option<Instant> {
        let stacks = self.hosts.iter().flat_map(|h| (0..h.group.len()).filter_map(|i| h.group.poll_at(i)));
        let replayers = self.replayers.iter().filter_map(Replayer::poll_at);
        stacks.chain(replayers).chain(self.bridge.poll_at()).min()
    }

    /// Buffers in use across the hosts' (TSO pools included), the bare
    /// ports', the replayers' and the bridge's pools.
    pub fn buffers_in_use(&self) -> usize {
        let host = |h: &Host| h.pool.in_use() + h.group.tso_pool().map_or(0, Mempool::in_use);
        let hosts = self.hosts.iter().map(host).chain(self.nics.iter().map(|n| n.pool.in_use()));
        let hosts = hosts.sum::<usize>();
        hosts + self.replayers.iter().map(Replayer::buffers_in_use).sum::<usize>() + self.bridge.pool().in_use()
    }

    /// Checks every port's and the bridge's accounting; a backend that
    /// keeps no such counters has nothing to check.
    pub fn check_accounting(&self) -> Result<(), String> {
        let hosts = self.hosts.iter().map(|h| (h.name.as_str(), &h.port as &dyn EthDev));
        let replayers = self.replayers.iter().map(|r| (r.port().name(), r.port() as &dyn EthDev));
        let nics = self.nics.iter().map(|n| (n.port.name(), &n.port as &dyn EthDev));
        for (name, port) in hosts.chain(replayers).chain(nics) {
            match port.check_accounting() {
                Ok(()) | Err(DevError::Unsupported(_)) => {}
                Err(e) => return Err(format!("{name}: {e}")),
            }
        }
        self.bridge.check_accounting()
    }
}

/// A host's buffer pool, named after it ([`HOST_POOL`] buffers), for a
/// port built outside the world and added with [`World::add_host_port`].
pub fn host_pool(name: &str) -> Result<Mempool, String> {
    Mempool::new(MempoolConfig::new(format!("{name}-pool"), HOST_POOL)).map_err(|e| e.to_string())
}
