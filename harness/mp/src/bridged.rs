//! Shared ports' wire ends on bridges the primary drives.
//!
//! A bridge owns the wire ends of its ports, but the primary must still
//! reach a shared port's wire end to reclaim a dead process's queues
//! ([`SharedWire::reclaim`] spans every port, tx rings first), or the
//! ltran forwarder standing on one to serve its tables. So each
//! wire end sits behind a lock: the bridge gets a [`Wire`] that locks it
//! for each burst, and [`BridgedWires`] keeps the other key. The primary is
//! the only thread that touches either, so the lock is never contended.

use std::sync::{Arc, Mutex, MutexGuard};

use ethdev::mbuf::Mbuf;
use ethdev::mempool::DeadOwner;
use ethdev::Wire;
use user_vbridge::{Bridge, Direction, PortConfig, PortId};
use user_veth::shared::{PortReclaim, SharedWire};

/// A wire end owned by a bridge yet reachable by the primary.
struct Locked<W> {
    wire: Arc<Mutex<W>>,
    name: String,
}

/// Locks a wire; a panic elsewhere in this single-threaded primary cannot
/// leave it half-updated, so a poisoned lock is taken as it is.
pub fn lock<W>(wire: &Mutex<W>) -> MutexGuard<'_, W> {
    wire.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<W: Wire> Wire for Locked<W> {
    fn take_tx(&mut self, out: &mut Vec<Mbuf>, max: usize) -> usize {
        lock(&self.wire).take_tx(out, max)
    }

    fn put_rx(&mut self, frames: &mut Vec<Mbuf>) {
        lock(&self.wire).put_rx(frames);
    }

    fn link_up(&self) -> bool {
        lock(&self.wire).link_up()
    }

    fn name(&self) -> &str {
        &self.name
    }
}

/// Plugs `wire` into `bridge` as a port named `name`; the caller keeps
/// its own key to the lock.
pub fn plug_locked<W: Wire + 'static>(
    bridge: &mut Bridge,
    wire: &Arc<Mutex<W>>,
    name: String,
) -> Result<PortId, String> {
    let port = Locked { wire: Arc::clone(wire), name };
    bridge.add_port(Box::new(port), PortConfig::default()).map_err(|e| e.to_string())
}

/// The shared wire ends plugged into bridges, for reclamation.
#[derive(Default)]
pub struct BridgedWires(Vec<Arc<Mutex<SharedWire>>>);

impl BridgedWires {
    /// Plugs `wire` into `bridge` as a port named `name`.
    pub fn plug(&mut self, bridge: &mut Bridge, wire: SharedWire, name: String) -> Result<PortId, String> {
        let wire = Arc::new(Mutex::new(wire));
        let port = plug_locked(bridge, &wire, name)?;
        self.0.push(wire);
        Ok(port)
    }

    /// Reclaims what `dead` held of every plugged port ([`SharedWire::reclaim`]).
    pub fn reclaim(&self, dead: &DeadOwner) -> PortReclaim {
        let mut guards: Vec<_> = self.0.iter().map(|w| lock(w)).collect();
        SharedWire::reclaim(&mut guards, dead)
    }
}

/// Frames `bridge` dropped, on its links or in the switch.
pub fn bridge_drops(bridge: &Bridge) -> u64 {
    let links: u64 = (0..bridge.port_count())
        .flat_map(|i| Direction::BOTH.map(|d| (PortId(i as u16), d)))
        .filter_map(|(port, d)| bridge.link_stats(port, d))
        .map(|s| s.drops.total())
        .sum();
    bridge.switch_stats().drops.total() + links
}
