//! Burst hooks: a look at the frames crossing a port, in the spirit of
//! DPDK's rx/tx burst callbacks (the mechanism `rte_pdump` captures with).
//!
//! A port holds at most one [`BurstHook`]. Without one, each burst pays a
//! single branch on a field the burst already reads. With one, the hook is
//! called once per non-empty burst at four points ([`HookPoint`]): frames
//! arriving from the wire (before classification, so frames the port then
//! drops are seen too), frames leaving for the wire (after transmit
//! offloads), frames an `rx_burst` returns, and frames a `tx_burst` puts on
//! a queue (exactly those the ring takes). The hook borrows the mbufs for
//! the length of the call, under the port's read lock: a capture copies the
//! bytes and never keeps a buffer, and it must not call back into the port.
//! The port has no clock; a hook that needs time reads its own.

use ethdev::mbuf::Mbuf;

/// Where on a port a burst was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HookPoint {
    /// Frames arriving from the wire (what the port receives).
    FromWire,
    /// Frames leaving for the wire (what the port transmits).
    ToWire,
    /// Frames `rx_burst` returned from this receive queue.
    RxQueue(u16),
    /// Frames `tx_burst` put on this transmit queue.
    TxQueue(u16),
}

/// A callback on a port's bursts; see the module docs.
pub trait BurstHook: Send + Sync {
    /// Called with the frames of one burst seen at `point`, in order.
    fn burst(&self, point: HookPoint, frames: &[Mbuf]);
}
