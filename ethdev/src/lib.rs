//! ethdev: the core library of dtnet's data path.
//!
//! Everything a port backend and a switch need, and nothing that knows about
//! a particular backend: packet buffers ([`mbuf`]) carved from a fixed pool
//! ([`mempool`]), bounded lock-free [`ring`]s that move them between threads,
//! header parsing ([`packet`]), the workspace's one MAC address type
//! ([`mac`]), software Toeplitz RSS ([`rss`]), rte_flow-like
//! classification rules ([`flow`]), the [`EthDev`] trait that every port
//! implements with its lock-free per-queue handles ([`queue`]), taking over
//! a ring whose consumer died ([`handover`]), offload emulation a software
//! NIC or a switch applies to frames ([`offload`]: checksums, TSO), and
//! middleware that works over any port ([`middleware`]: capture, fault
//! injection).
//!
//! `unsafe` code lives in five modules only, which opt out of the
//! workspace's `unsafe_code` denial: [`ring`], [`mempool`], `region` (the
//! memory a pool is laid out in), `shm::map` (the domain's mapping) and
//! `shm::words` (atomics at checked offsets);
//! every `unsafe` block there states the invariant it relies on.

pub mod dev;
pub mod error;
pub mod flow;
pub mod frame;
mod freelist;
pub mod handover;
pub mod mac;
pub mod mbuf;
mod mbuf_header;
pub mod mempool;
pub mod middleware;
pub mod offload;
pub mod owner;
pub mod packet;
pub mod proto;
pub mod queue;
mod region;
pub mod ring;
pub mod rss;
pub mod shm;
pub mod stats;
mod sync;
pub mod time;
pub mod wire;

pub use dev::EthDev;
pub use mac::MacAddr;
pub use mbuf::{Mbuf, OlFlags};
pub use mempool::{Mempool, MempoolConfig, Owner};
pub use queue::{RxQueue, TxQueue};
pub use time::{Clock, Instant};
pub use wire::Wire;
