//! dpdk: a safe wrapper over the system's DPDK 22.11 for dtnet's DPDK port
//! backend, built only with the `dpdk` feature (which needs libdpdk;
//! without it this crate is empty).
//!
//! The layers follow DPDK's: the process-wide [`Eal`] (init from an argument
//! list, once per process; cleaned up on drop), [`PktPool`]s of mbufs that
//! borrow it, [`Port`]s configured with N rx/tx queues and RSS that borrow a
//! pool, and per-queue [`RxQueue`]/[`TxQueue`] handles that a started port
//! hands out once, so each queue has one poller. Frames are copied between
//! DPDK mbufs and the caller's bytes in [`queue`], nowhere else. [`thash`]
//! exposes DPDK's software Toeplitz hashes for cross-checks and benchmarks.
//!
//! `unsafe` lives in the FFI modules only ([`eal`], [`mempool`], [`port`],
//! [`queue`], [`thash`], and the private `flow` and `ffi`), each block with
//! its `// SAFETY:` note; no safe function here can cause undefined
//! behaviour. [`crate::ethdev`] puts a port behind dtnet's `EthDev` trait
//! ([`DpdkEthDev`]), copying frames between DPDK mbufs and dtnet's, with
//! checksum offloads and TSO (done in software where the device cannot) and
//! flow rules translated to rte_flow (the private `flow` module).
//! [`realnic`] is the real-NIC suite as a library, which `dtnet real-nic`
//! runs (see the crate's README.md for the hardware set-up); its TCP run
//! puts a dtnet stack group on each port and drives them with `sim`'s bulk
//! application and threaded executor, which is why the feature brings in
//! `stack` and `sim`.
//!
//! Crates that use this one whatever its feature (the `dtnet` CLI, the
//! benchmarks) put their DPDK code in [`if_dpdk!`]: it expands to its first
//! branch when this crate was built with `dpdk` and to its second when not.
//! Cargo unifies features, so `--features dpdk/dpdk` anywhere in a build
//! (e.g. `cargo nextest run --workspace --features dpdk/dpdk`) turns on the
//! DPDK code of every dependent, with no feature of their own to forget.

#[cfg(feature = "dpdk")]
pub mod eal;
#[cfg(feature = "dpdk")]
pub mod error;
#[cfg(feature = "dpdk")]
pub mod ethdev;
#[cfg(feature = "dpdk")]
mod ffi;
#[cfg(feature = "dpdk")]
mod flow;
#[cfg(feature = "dpdk")]
pub mod mempool;
#[cfg(feature = "dpdk")]
pub mod port;
#[cfg(feature = "dpdk")]
pub mod queue;
#[cfg(feature = "dpdk")]
pub mod realnic;
#[cfg(feature = "dpdk")]
pub mod thash;

#[cfg(feature = "dpdk")]
pub use crate::ethdev::{DpdkEthDev, DpdkRxQueue, DpdkTxQueue, DpdkWire};
#[cfg(feature = "dpdk")]
pub use eal::{Eal, PortId};
#[cfg(feature = "dpdk")]
pub use error::{Error, Result};
#[cfg(feature = "dpdk")]
pub use mempool::{PktPool, PoolConf};
#[cfg(feature = "dpdk")]
pub use port::{DevInfo, Link, Offloads, Port, PortConf, PortCtl, Queues, RssSetup};
#[cfg(feature = "dpdk")]
pub use queue::{RxInfo, RxQueue, TxOffload, TxQueue};

/// Expands to `{ yes }` if this crate was built with its `dpdk` feature (the
/// system's DPDK is linked and the modules above exist), else to `{ no }`.
/// Items only: `dpdk::if_dpdk! { { mod with_dpdk; } else { mod without; } }`.
#[cfg(feature = "dpdk")]
#[macro_export]
macro_rules! if_dpdk {
    ({ $($yes:item)* } else { $($no:item)* }) => { $($yes)* };
}

/// Expands to `{ yes }` if this crate was built with its `dpdk` feature (the
/// system's DPDK is linked and the modules above exist), else to `{ no }`.
/// Items only: `dpdk::if_dpdk! { { mod with_dpdk; } else { mod without; } }`.
#[cfg(not(feature = "dpdk"))]
#[macro_export]
macro_rules! if_dpdk {
    ({ $($yes:item)* } else { $($no:item)* }) => { $($no)* };
}
