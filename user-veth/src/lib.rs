//! user-veth: a software poll-mode NIC.
//!
//! A [`Veth`] is a port with up to 64 receive and 64 transmit queues, each a
//! lock-free ring of [`ethdev::Mbuf`]s, and two faces. The stack-facing
//! [`VethPort`] implements [`ethdev::EthDev`]: queues are polled with
//! `rx_burst` / `tx_burst` on their handles exactly as a DPDK application polls a NIC. The
//! network-facing [`VethWire`] implements [`ethdev::Wire`]: a bridge (or a
//! [`Cable`] to a peer) pushes arriving frames in and pulls transmitted ones
//! out.
//!
//! Arriving frames are classified as NIC hardware would: MTU and MAC filter,
//! then flow rules, then Toeplitz RSS through the RETA; the mbuf gets its
//! queue, hash, mark and checksum flags. Transmitted frames get the offloads
//! they ask for (checksum insertion, TSO) on their way to the wire. Every
//! refused frame is counted under a [`ethdev::stats::DropReason`], and
//! [`ethdev::EthDev::check_accounting`] proves that nothing went missing.
//! The stack polls each queue through a lock-free handle
//! ([`ethdev::EthDev::rx_queue`]); capture and fault injection are
//! middleware over any port ([`ethdev::middleware`]), not part of this one.
//!
//! A port can also live in a shared-memory domain ([`shared`]): the primary
//! process configures it and drives its wire, and every process of the
//! domain receives and sends on the queues it takes.

mod cable;
mod classify;
mod counters;
mod port;
pub mod shared;
mod veth;
mod wire;

pub use cable::Cable;
/// Offload emulation (checksums, TSO), shared with the bridge and the DPDK backend.
pub use ethdev::offload;
pub use port::{VethPort, MAX_QUEUES, MTU_RANGE};
pub use veth::Veth;
pub use wire::VethWire;
