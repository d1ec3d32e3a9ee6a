//! DPDK's multi-process samples, run as real processes sharing a domain.
//!
//! Each sample keeps DPDK's object names, so a DPDK user recognises them,
//! and replaces what DPDK leaves to luck with what dtnet proves: every
//! message's content is checked, the processes register on the domain's
//! control channel, and when one is killed its buffers come back.
//!
//! - [`simple`]: `simple_mp`, a primary and a secondary exchanging messages
//!   both ways through rings `PRI_2_SEC` and `SEC_2_PRI`, from pool
//!   `MSG_POOL`.
//!
//! A sample is a loop of non-blocking steps over shared-memory rings; the
//! process itself (the `dtnet mp` command) is its executor.
//!
//! This crate is the multi-process room of the `harness/` directory: it
//! depends only on the shared-memory domains of `ethdev`; the `dtnet mp`
//! command runs its samples and the `bench` crate's cross-process ring
//! benchmark drives [`ring_peer`].

pub mod message;
pub mod ring_peer;
pub mod simple;
