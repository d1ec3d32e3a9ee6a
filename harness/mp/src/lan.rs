//! The hosts' network for samples whose traffic comes from bridge hosts:
//! host p's NIC and port p's cable on bridge p.
//!
//! ```text
//! host0 ── bridge0 ── port0 ⇄ (the sample's processes) ⇄ port1 ── bridge1 ── host1
//! ```
//!
//! Each host is a user-veth NIC with one queue on its own
//! [`user_vbridge::Bridge`]; the shared port's wire end (the domain's
//! [`SharedWire`]) is the bridge's other port. Two bridges, not one:
//! symmetric_mp sends frames out unchanged, so on one bridge a frame leaving
//! port1 addressed to a host behind port0 would be switched back into port0
//! and loop. Host p addresses its frames to host p^1, whose MAC bridge p
//! learns on port p's cable once the first frame comes back the other way
//! (until then it floods, which on a two-port bridge is the same port).
//!
//! The primary drives everything in one thread: the bridges switch on each
//! [`Links`] call, with real time as their clock, and own the shared wire
//! ends, which the primary still reaches to reclaim a dead process's queues
//! ([`BridgedWires`]).

use ethdev::dev::PortConf;
use ethdev::mbuf::Mbuf;
use ethdev::mempool::{DeadOwner, Mempool, MempoolConfig};
use ethdev::queue::{RxQueue, TxQueue};
use ethdev::time::Instant;
use ethdev::{EthDev, MacAddr};
use user_vbridge::{Bridge, BridgeConfig, PortConfig};
use user_veth::shared::{PortReclaim, SharedWire};
use user_veth::{Veth, VethPort};

use crate::bridged::{bridge_drops, BridgedWires};
use crate::hosts::{host_mac, Links, PORTS};

/// Buffers of each host NIC's pool (frames it receives from its bridge).
const NIC_BUFFERS: u32 = 2048;

/// One host's NIC: its port (kept alive) and its queue handles.
struct Nic {
    _port: VethPort,
    rx: Box<dyn RxQueue>,
    tx: Box<dyn TxQueue>,
}

impl Nic {
    /// Host `p`'s NIC, started, its wire end plugged into `bridge`.
    fn plug(p: usize, bridge: &mut Bridge) -> Result<Nic, String> {
        let err = |e: &dyn std::fmt::Display| format!("host{p}'s NIC: {e}");
        let pool = Mempool::new(MempoolConfig::new(format!("host{p}"), NIC_BUFFERS)).map_err(|e| err(&e))?;
        let (port, wire) = Veth::new(format!("host{p}"), MacAddr(host_mac(p)), pool);
        let conf = PortConf { rx_ring_size: 1024, tx_ring_size: 1024, ..PortConf::new(1) };
        port.configure(&conf).map_err(|e| err(&e))?;
        port.start().map_err(|e| err(&e))?;
        let (rx, tx) = (port.rx_queue(0).map_err(|e| err(&e))?, port.tx_queue(0).map_err(|e| err(&e))?);
        bridge.add_port(Box::new(wire), PortConfig::default()).map_err(|e| err(&e))?;
        Ok(Nic { _port: port, rx, tx })
    }
}

/// Two bridges, each joining one host to one shared port.
pub struct Lan {
    bridges: Vec<Bridge>,
    nics: Vec<Nic>,
    wires: BridgedWires,
    started: std::time::Instant,
}

impl Lan {
    /// Plugs the shared ports' wire ends `wires` (port0, port1) into a
    /// bridge each, beside a host.
    pub fn new(wires: Vec<SharedWire>) -> Result<Lan, String> {
        let started = std::time::Instant::now();
        let mut lan = Lan { bridges: Vec::new(), nics: Vec::new(), wires: BridgedWires::default(), started };
        for (p, wire) in wires.into_iter().enumerate() {
            let config = BridgeConfig { name: format!("bridge{p}"), ..BridgeConfig::default() };
            let mut bridge = Bridge::new(config).map_err(|e| e.to_string())?;
            lan.nics.push(Nic::plug(p, &mut bridge)?);
            let name = PORTS.get(p).map_or_else(|| format!("port{p}"), |n| (*n).to_owned());
            lan.wires.plug(&mut bridge, wire, name)?;
            lan.bridges.push(bridge);
        }
        Ok(lan)
    }

    /// Reclaims what `dead` held of the shared ports ([`SharedWire::reclaim`]).
    pub fn reclaim(&mut self, dead: &DeadOwner) -> PortReclaim {
        self.wires.reclaim(dead)
    }

    /// Frames the bridges dropped, on their links or in the switch.
    pub fn drops(&self) -> u64 {
        self.bridges.iter().map(bridge_drops).sum()
    }

    /// Frames the bridges switched: each frame twice, into its port and out
    /// of the other.
    pub fn switched(&self) -> u64 {
        self.bridges.iter().map(|b| b.switch_stats().switched).sum()
    }

    /// Checks every bridge's counters add up.
    pub fn check_accounting(&self) -> Result<(), String> {
        self.bridges.iter().try_for_each(Bridge::check_accounting)
    }

    fn switch(&mut self) {
        let now = Instant::ZERO + self.started.elapsed();
        for bridge in &mut self.bridges {
            bridge.poll(now);
        }
    }
}

impl Links for Lan {
    fn send(&mut self, port: usize, frames: &mut Vec<Mbuf>) {
        if let Some(nic) = self.nics.get_mut(port) {
            nic.tx.tx_burst(frames);
        }
        self.switch();
    }

    fn take(&mut self, port: usize, out: &mut Vec<Mbuf>, max: usize) -> usize {
        self.switch();
        self.nics.get_mut(port).map_or(0, |nic| nic.rx.rx_burst(out, max))
    }
}
