//! A topology: hosts (a veth port and a stack group each) on one bridge.
//!
//! A [`World`] is what executors run: it owns the bridge and the hosts, and
//! knows how to poll all of them, when they next need polling, and whether
//! everything is back to rest (accounting closed, no buffer in use).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use ethdev::mempool::{Mempool, MempoolConfig};
use ethdev::Instant;
use stack::{GroupConfig, StackGroup};
use user_vbridge::{Bridge, BridgeConfig, Impairments, PortConfig, PortId};
use user_veth::{Veth, VethPort};

/// Buffers per host pool.
const HOST_POOL: u32 = 8192;

/// One host: a NIC port and the stack group of the process using it.
pub struct Host {
    /// Name, used for the port and in reports.
    pub name: String,
    /// The host's NIC.
    pub port: VethPort,
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

/// Hosts on a bridge.
pub struct World {
    /// The switch joining the hosts.
    pub bridge: Bridge,
    /// The hosts, in the order they were added.
    pub hosts: Vec<Host>,
}

impl World {
    /// An empty world whose bridge impairments draw from `seed`.
    pub fn new(seed: u64) -> Result<World, String> {
        let bridge = Bridge::new(BridgeConfig { name: "br0".into(), seed, ..BridgeConfig::default() })
            .map_err(|e| e.to_string())?;
        Ok(World { bridge, hosts: Vec::new() })
    }

    /// Adds host `name` with stacks `config` on a port whose links carry
    /// `impairments` in both directions; returns its index.
    pub fn add_host(&mut self, name: &str, config: GroupConfig, impairments: Impairments) -> Result<usize, String> {
        let index = self.hosts.len();
        let pool = Mempool::new(MempoolConfig::new(format!("{name}-pool"), HOST_POOL)).map_err(|e| e.to_string())?;
        let (port, wire) = Veth::new(name, config.mac, pool.clone());
        let link = PortConfig { ingress: impairments.clone(), egress: impairments, ..PortConfig::default() };
        let bridge_port = self.bridge.add_port(Box::new(wire), link).map_err(|e| e.to_string())?;
        let group = StackGroup::new(Arc::new(port.clone()), pool.clone(), config).map_err(|e| e.to_string())?;
        self.hosts.push(Host { name: name.to_string(), port, group, bridge_port, pool });
        Ok(index)
    }

    /// Polls the bridge and every stack at `now`; true if any stack worked
    /// or the bridge still has frames to move now.
    pub fn poll(&mut self, now: Instant) -> bool {
        self.bridge.poll(now);
        let mut busy = false;
        for host in &self.hosts {
            for i in 0..host.group.len() {
                busy |= host.group.poll(i, now);
            }
        }
        busy || self.bridge.poll_at().is_some_and(|t| t <= now)
    }

    /// The earliest deadline of the bridge and the stacks.
    pub fn poll_at(&self) -> Option<Instant> {
        let stacks = self.hosts.iter().flat_map(|h| (0..h.group.len()).filter_map(|i| h.group.poll_at(i)));
        stacks.chain(self.bridge.poll_at()).min()
    }

    /// Buffers in use across the hosts' pools and the bridge's.
    pub fn buffers_in_use(&self) -> usize {
        self.hosts.iter().map(|h| h.pool.in_use()).sum::<usize>() + self.bridge.pool().in_use()
    }

    /// Checks every port's and the bridge's accounting.
    pub fn check_accounting(&self) -> Result<(), String> {
        for host in &self.hosts {
            host.port.check_accounting().map_err(|e| format!("{}: {e}", host.name))?;
        }
        self.bridge.check_accounting()
    }
}
