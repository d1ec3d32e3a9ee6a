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
//! runs (see the crate's README.md for the hardware set-up).

#![cfg(feature = "dpdk")]

pub mod eal;
pub mod error;
pub mod ethdev;
mod ffi;
mod flow;
pub mod mempool;
pub mod port;
pub mod queue;
pub mod realnic;
pub mod thash;

pub use crate::ethdev::{DpdkEthDev, DpdkRxQueue, DpdkTxQueue, DpdkWire};
pub use eal::{Eal, PortId};
pub use error::{Error, Result};
pub use mempool::{PktPool, PoolConf};
pub use port::{DevInfo, Link, Offloads, Port, PortConf, PortCtl, Queues, RssSetup};
pub use queue::{RxInfo, RxQueue, TxOffload, TxQueue};
