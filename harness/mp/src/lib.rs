//! DPDK's multi-process samples and gazelle's multi-process modes, run as
//! real processes sharing a domain.
//!
//! Each sample keeps DPDK's object names, so a DPDK user recognises them,
//! and replaces what DPDK leaves to luck with what dtnet proves: every
//! message's content is checked, the processes register on the domain's
//! control channel, and when one is killed its buffers come back.
//!
//! - [`simple`]: `simple_mp`, a primary and a secondary exchanging messages
//!   both ways through rings `PRI_2_SEC` and `SEC_2_PRI`, from pool
//!   `MSG_POOL`.
//! - [`symmetric`]: `symmetric_mp`, N processes sharing two ports of the
//!   domain, each forwarding its own RSS queue of one port to the other,
//!   from pool `MProc_pktmbuf_pool`, between hosts on two bridges
//!   ([`lan`]).
//! - [`client_server`]: `client_server_mp`, a server distributing what two
//!   ports receive to clients' rings `MProc_Client_<n>_RX`, round-robin or
//!   by flow hash, with heartbeats, counted drops, and clients that die
//!   and rejoin.
//! - [`gazelle`]: gazelle's modes across processes: one VF per process
//!   ([`gazelle::vf`]), and every process on one port with per-connection
//!   flow rules ([`gazelle::tuple_filter`]).
//!
//! A sample is a loop of non-blocking steps over shared-memory rings; the
//! process itself (the `dtnet mp` command) is its executor. The [`procs`]
//! executor runs a whole sample as real processes, with crash faults, for
//! scenarios with `executor = "procs"`.
//!
//! This crate is the multi-process room of the `harness/` directory: it
//! depends on `ethdev` (shared-memory domains), `user-veth` (shared
//! ports), `user-vbridge` (the hosts' bridges, the NIC's switch), `stack`
//! and `sim` (stacks and the apps and executor that run them); the `dtnet mp`
//! command runs its samples and the `bench` crate's cross-process ring
//! benchmark drives [`ring_peer`].

pub mod bridged;
pub mod client_server;
pub mod gazelle;
pub mod hosts;
pub mod lan;
pub mod message;
pub mod place;
pub mod procs;
pub mod ring_peer;
pub mod simple;
pub mod symmetric;
