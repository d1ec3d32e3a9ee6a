//! user-vbridge: dtnet's software L2 switch, sans-IO.
//!
//! A [`Bridge`] owns the [`Wire`](ethdev::Wire) ends of its ports and moves
//! frames between them when the caller runs [`Bridge::poll`] with its own
//! clock; [`Bridge::poll_at`] says when the next timed event is due, so a
//! simulation can jump straight to it. Switching follows the Linux bridge:
//! an FDB keyed by (MAC, VLAN) learns each frame's source before its
//! destination is looked up, entries age out in caller time, a size limit
//! either stops learning or evicts the least recently seen entry, static
//! entries stay put, a port going down loses its learned entries, and
//! unknown unicast, broadcast and multicast are flooded to every up port but
//! the ingress (no hairpin unless the port asks for it). Invalid source
//! addresses, link-local destinations and short frames are dropped, each
//! under its [`DropReason`](ethdev::stats::DropReason). Every port has two
//! links (ingress = port to bridge, egress = bridge to port), each with
//! seeded [`Impairments`] and its own RNG, so a run is reproducible from its
//! seed; a perfect link costs nothing: unicast frames go from `take_tx` to
//! `put_rx` as the same buffer, in bursts, with no allocation. Taps record
//! copies of the frames crossing chosen ports, and every counter adds up
//! ([`Bridge::check_accounting`]).

mod bridge;
mod config;
mod delay;
mod fdb;
mod forward;
mod frame;
mod hash;
mod impair;
mod link;
mod port;
mod stats;
mod tap;

pub use bridge::Bridge;
pub use config::{BridgeConfig, LimitPolicy, PortConfig, DEFAULT_AGEING_TIME, DEFAULT_POOL_CAPACITY};
pub use fdb::{FdbEntry, FdbStats};
pub use impair::{Flap, GilbertElliott, Impairments, RateLimit, Reorder};
pub use port::{Direction, PortId};
pub use stats::{LinkStats, SwitchStats};
pub use tap::{Captured, TapFilter, TapId};
