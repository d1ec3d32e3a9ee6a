//! The cable end of a port: how a switch or a peer moves frames in and out.
//!
//! A port's queues face the stack; its [`Wire`] faces the network. Whoever
//! owns the wire end (a bridge, a peer port, a replay driver) pulls what the
//! port transmitted and pushes what arrived for it. Frames travel as
//! [`Mbuf`]s, so crossing a wire copies nothing. The wire end is a unique,
//! `&mut` handle: one driver per cable. A port may send a TCP segment larger
//! than the MTU whole (a super-frame, see [`Wire::takes_super_frames`]) to
//! a wire whose every receiver takes or cuts it, as Linux passes a GSO
//! packet across a veth pair unsegmented.

use crate::mbuf::Mbuf;
#[cfg(doc)]
use crate::mbuf::OlFlags;

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
    /// Whether `put_rx` takes TCP super-frames: segments larger than the
    /// MTU that still carry their TSO request ([`OlFlags::TX_TCP_SEG`] and
    /// `tso_segsz`), as a Linux veth's peer takes a GSO packet whole. Such
    /// a port cuts them into segments itself or, with large receive
    /// offload, hands them up whole. A switch cuts a super-frame bound for
    /// a wire that does not take them ([`crate::offload::segment_tcp`]).
    /// False unless a port says otherwise.
    fn takes_super_frames(&self) -> bool {
        false
    }
}
