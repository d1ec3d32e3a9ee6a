//! The bridge: ports, FDB, taps and counters, and the control API.
//!
//! The data path itself (`poll` and the per-frame decisions) lives in
//! [`crate::forward`]; this module holds the state and everything a caller
//! configures or reads.

use std::time::Duration;

use ethdev::error::ConfigError;
use ethdev::mac::MacAddr;
use ethdev::{Instant, Mbuf, Mempool, MempoolConfig, Wire};

use crate::config::{BridgeConfig, PortConfig};
use crate::fdb::{self, Fdb, FdbEntry, FdbStats};
use crate::frame::mac48;
use crate::impair::Impairments;
use crate::link::{Copier, Link};
use crate::port::{Direction, PortId};
use crate::stats::{LinkStats, SwitchStats};
use crate::tap::{Captured, TapFilter, TapId, Taps};

/// Frames taken from a port per `take_tx` call.
pub(crate) const BURST: usize = 32;
const MAX_VLAN: u16 = 4095;

/// A software L2 switch with impaired links; see the crate docs.
pub struct Bridge {
    pub(crate) name: String,
    pub(crate) seed: u64,
    pub(crate) copier: Copier,
    pub(crate) fdb: Fdb,
    pub(crate) ports: Vec<Port>,
    /// Ports that are up, in port order: the flood candidates.
    pub(crate) up_ports: Vec<PortId>,
    pub(crate) taps: Taps,
    pub(crate) stats: SwitchStats,
    /// Latest time seen by `poll` or `set_port_up`.
    pub(crate) now: Instant,
    /// A port still had frames when `poll` stopped taking from it.
    pub(crate) backlog: bool,
    pub(crate) burst: Vec<Mbuf>,
    pub(crate) ready: Vec<Mbuf>,
    pub(crate) targets: Vec<PortId>,
    pub(crate) dirty: Vec<PortId>,
    /// Segments of a super-frame being cut for a port that does not take it.
    pub(crate) cut: Vec<Mbuf>,
}

impl Bridge {
    /// A bridge with no ports and its own pool of `pool_capacity` buffers
    /// for flood copies, duplicates and the segments of super-frames it
    /// cuts for ports that do not take them.
    pub fn new(config: BridgeConfig) -> Result<Bridge, ConfigError> {
        let pool_name = format!("{}-copies", config.name);
        let pool = Mempool::new(MempoolConfig::new(pool_name, config.pool_capacity))?;
        Bridge::with_pool(config, pool)
    }

    /// A bridge that takes its copies from `pool` (e.g. one in a shared
    /// memory domain, so copies can reach ports of other processes).
    pub fn with_pool(config: BridgeConfig, pool: Mempool) -> Result<Bridge, ConfigError> {
        config.validate()?;
        Ok(Bridge {
            fdb: Fdb::new(config.ageing_time, config.fdb_limit, config.limit_policy),
            copier: Copier { pool, owner: config.owner },
            name: config.name,
            seed: config.seed,
            ports: Vec::new(),
            up_ports: Vec::new(),
            taps: Taps::default(),
            stats: SwitchStats::default(),
            now: Instant::ZERO,
            backlog: false,
            burst: Vec::with_capacity(BURST),
            ready: Vec::with_capacity(BURST),
            targets: Vec::new(),
            dirty: Vec::new(),
            cut: Vec::new(),
        })
    }

    /// Attaches a device's wire end as a new port (up, unless the wire's
    /// link is down).
    pub fn add_port(&mut self, wire: Box<dyn Wire>, config: PortConfig) -> Result<PortId, ConfigError> {
        let id = u16::try_from(self.ports.len())
            .map(PortId)
            .map_err(|_| ConfigError::new(format!("{}.ports", self.name), "at most 65536 ports"))?;
        config.ingress.validate(&self.link_field(id, Direction::Ingress))?;
        config.egress.validate(&self.link_field(id, Direction::Egress))?;
        let up = wire.link_up();
        self.ports.push(Port {
            wire,
            hairpin: config.hairpin,
            admin_up: true,
            up,
            ingress: Link::new(self.seed, id, Direction::Ingress, config.ingress, self.now),
            egress: Link::new(self.seed, id, Direction::Egress, config.egress, self.now),
            out: Vec::with_capacity(BURST),
        });
        self.rebuild_up_ports();
        self.taps.refresh(self.ports.len());
        Ok(id)
    }

    /// Number of ports.
    pub fn port_count(&self) -> usize {
        self.ports.len()
    }

    /// The name of the port's wire.
    pub fn port_name(&self, port: PortId) -> Option<&str> {
        self.ports.get(port.index()).map(|p| p.wire.name())
    }

    /// Sets a port administratively up or down at `now`. A down port
    /// neither sends nor receives, and its learned entries are flushed.
    pub fn set_port_up(&mut self, port: PortId, up: bool, now: Instant) -> Result<(), ConfigError> {
        self.port_mut(port)?.admin_up = up;
        self.now = self.now.max(now);
        self.refresh_ports(self.now);
        Ok(())
    }

    /// Whether a port is up (administratively and by its wire's link).
    pub fn port_up(&self, port: PortId) -> Option<bool> {
        self.ports.get(port.index()).map(|p| p.up)
    }

    /// Replaces the impairments of one direction of a port's link. Frames
    /// in flight keep their release times; the RNG stream continues.
    pub fn set_impairments(
        &mut self,
        port: PortId,
        direction: Direction,
        impairments: Impairments,
    ) -> Result<(), ConfigError> {
        impairments.validate(&self.link_field(port, direction))?;
        let now = self.now;
        self.port_mut(port)?.link_mut(direction).configure(impairments, now);
        Ok(())
    }

    /// Adds a static FDB entry: never aged, never moved by learning, kept
    /// when the port goes down. Replaces any entry for the address.
    pub fn add_static(&mut self, mac: impl Into<MacAddr>, vlan: u16, port: PortId) -> Result<(), ConfigError> {
        if vlan > MAX_VLAN {
            return Err(ConfigError::new("fdb.vlan", "must be 0..=4095"));
        }
        self.port_mut(port)?;
        self.fdb.add_static(fdb::key(mac48(&mac.into().0), vlan), port);
        Ok(())
    }

    /// Removes the FDB entry for (`mac`, `vlan`), static or learned;
    /// whether there was one.
    pub fn remove_fdb_entry(&mut self, mac: impl Into<MacAddr>, vlan: u16) -> bool {
        vlan <= MAX_VLAN && self.fdb.remove(fdb::key(mac48(&mac.into().0), vlan))
    }

    /// The FDB entry for (`mac`, `vlan`).
    pub fn fdb_entry(&self, mac: impl Into<MacAddr>, vlan: u16) -> Option<FdbEntry> {
        let key = fdb::key(mac48(&mac.into().0), vlan);
        (vlan <= MAX_VLAN).then(|| self.fdb.get(key)).flatten()
    }

    /// Every FDB entry as (MAC, VLAN, entry), sorted by VLAN then MAC.
    pub fn fdb_entries(&self) -> Vec<(MacAddr, u16, FdbEntry)> {
        self.fdb.entries()
    }

    /// FDB counters: learned, moved, aged, evicted, refused, flushed, size.
    pub fn fdb_stats(&self) -> FdbStats {
        self.fdb.stats()
    }

    /// Counters of the switching stage.
    pub fn switch_stats(&self) -> &SwitchStats {
        &self.stats
    }

    /// Counters of one direction of a port's link.
    pub fn link_stats(&self, port: PortId, direction: Direction) -> Option<&LinkStats> {
        self.ports.get(port.index()).map(|p| p.link(direction).stats())
    }

    /// Frames in flight (delayed) on one direction of a port's link.
    pub fn in_flight(&self, port: PortId, direction: Direction) -> usize {
        self.ports.get(port.index()).map_or(0, |p| p.link(direction).in_flight())
    }

    /// The pool flood copies and duplicates come from.
    pub fn pool(&self) -> &Mempool {
        &self.copier.pool
    }

    /// Starts recording the frames that match `filter`.
    pub fn add_tap(&mut self, filter: TapFilter) -> TapId {
        self.taps.add(filter, self.ports.len())
    }

    /// The frames a tap recorded since the last call, in crossing order.
    pub fn take_captures(&mut self, tap: TapId) -> Vec<Captured> {
        self.taps.take(tap)
    }

    /// Stops a tap and discards its records; whether it existed.
    pub fn remove_tap(&mut self, tap: TapId) -> bool {
        self.taps.remove(tap, self.ports.len())
    }

    /// Checks that every frame is accounted for: on every link
    /// `in + duplicated = out + dropped + in flight`; the switch took what
    /// the ingress links passed and forwarded, flooded or dropped each
    /// frame; and the egress links took exactly what the switch offered.
    pub fn check_accounting(&self) -> Result<(), String> {
        let (mut ingress_out, mut egress_in) = (0, 0);
        for (index, port) in self.ports.iter().enumerate() {
            for direction in Direction::BOTH {
                let link = port.link(direction);
                link.stats().check(link.in_flight(), &format!("port{index} {direction}"))?;
            }
            ingress_out += port.ingress.stats().frames_out;
            egress_in += port.egress.stats().frames_in;
        }
        self.stats.check(ingress_out, egress_in)
    }

    /// The ageing time in force.
    pub fn ageing_time(&self) -> Duration {
        self.fdb.ageing()
    }

    /// Re-reads every port's state at `now`: admin state, wire link and
    /// flap windows; flushes the learned entries of ports that went down.
    pub(crate) fn refresh_ports(&mut self, now: Instant) {
        let mut changed = false;
        for (index, port) in self.ports.iter_mut().enumerate() {
            let up = port.admin_up && port.wire.link_up();
            let flapped = port.ingress.flap_began(now) | port.egress.flap_began(now);
            let went_down = port.up && !up;
            changed |= port.up != up;
            port.up = up;
            if went_down || flapped {
                self.fdb.flush_port(PortId(index as u16));
            }
        }
        if changed {
            self.rebuild_up_ports();
        }
    }

    fn rebuild_up_ports(&mut self) {
        let up = self.ports.iter().enumerate().filter(|(_, p)| p.up);
        self.up_ports = up.map(|(index, _)| PortId(index as u16)).collect();
    }

    fn port_mut(&mut self, port: PortId) -> Result<&mut Port, ConfigError> {
        let name = &self.name;
        self.ports.get_mut(port.index()).ok_or_else(|| ConfigError::new(format!("{name}.{port}"), "no such port"))
    }

    fn link_field(&self, port: PortId, direction: Direction) -> String {
        format!("{}.{port}.{direction}", self.name)
    }
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("name", &self.name)
            .field("ports", &self.ports.len())
            .field("fdb", &self.fdb.stats())
            .field("now", &self.now)
            .finish()
    }
}

/// A port as the bridge holds it: the wire, its state and both links.
pub(crate) struct Port {
    /// The network-facing end of the attached device.
    pub wire: Box<dyn Wire>,
    /// Frames may leave through the port they came in on.
    pub hairpin: bool,
    /// Set by `Bridge::set_port_up`.
    pub admin_up: bool,
    /// Administratively up and the wire's link is up.
    pub up: bool,
    /// Port-to-bridge link.
    pub ingress: Link,
    /// Bridge-to-port link.
    pub egress: Link,
    /// Frames waiting to be handed to the wire in one burst.
    pub out: Vec<Mbuf>,
}

impl Port {
    /// One direction's link.
    pub fn link(&self, direction: Direction) -> &Link {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }

    /// One direction's link, mutably.
    pub fn link_mut(&mut self, direction: Direction) -> &mut Link {
        match direction {
            Direction::Ingress => &mut self.ingress,
            Direction::Egress => &mut self.egress,
        }
    }
}
