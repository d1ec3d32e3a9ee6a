//! The cable end of a port: how a switch or a peer moves frames in and out.
//!
//! A port's queues face the stack; its [`Wire`] faces the network. Whoever
//! owns the wire end (a bridge, a peer port, a replay driver) pulls what the
//! port transmitted and pushes what arrived for it. Frames travel as
//! [`Mbuf`]s, so crossing a wire copies nothing. The wire end is a unique,
//! `&mut` handle: one driver per cable.

use crate::mbuf::Mbuf;

/// The network-facing end of a port.
pub trait Wire: Send {
    /// Appends up to `max` frames the port has transmitted to `out` (with
    /// transmit offloads such as TSO and checksums already applied);
    /// returns how many.
    fn take_tx(&mut self, out: &mut Vec<Mbuf>, max: usize) -> usize;
    /// Hands over frames arriving from the cable; the port classifies and
    /// queues each or counts it as a drop. Drains `frames`.
    fn put_rx(&mut self, frames: &mut Vec<Mbuf>);
    /// Whether the port's link is up.
    fn link_up(&self) -> bool;
    /// A short name for reports and captures, e.g. `veth0`.
    fn name(&self) -> &str;
}
