//! stack: gazelle-style TCP/IP stack instances over smoltcp.
//!
//! A gazelle process runs one stack per configured CPU, each a complete
//! TCP/IP stack polling its own NIC queue; applications reach them through
//! a POSIX-like socket API whose calls are routed to the stack owning each
//! socket. This crate builds that shape from smoltcp: an
//! [`Instance`](instance::Instance) is one smoltcp interface and socket set
//! on one queue of an [`ethdev::EthDev`], a [`StackGroup`] is the stacks of
//! one process with what they share (rule tables, soft rings between
//! stacks, RPC rings, the fd table), and an [`Api`] is an application
//! thread's handle. Which stack serves a frame follows the group's
//! [`ForwardMode`]; who polls the stacks follows its [`ThreadModel`].
//! Everything is sans-IO: executors pass the time and own the threads.
//!
//! Modules depend downwards only: [`api`] on [`group`], the group on
//! [`instance`], an instance on the `fabric` its group shares (config,
//! port, pools, rule tables, ring ends, the fd table) and on [`rpc`], where
//! the calls, their replies and the [`rpc::SockId`]s they name live.

pub mod api;
pub mod config;
pub mod device;
mod dispatch;
mod error;
mod fabric;
mod fds;
pub mod group;
pub mod instance;
mod kernel_share;
mod ports;
pub mod rpc;

pub use api::{Api, Epoll, Fd, Shutdown, SockOpt, SockType};
pub use config::{ForwardMode, ThreadModel};
/// The time source an [`Api`] reads when it polls a stack itself
/// (run-to-completion); it lives in [`ethdev::time`], beside the instants it
/// returns, since captures stamp records with it too.
pub use ethdev::time::Clock;
pub use fabric::ProcessSlot;
pub use group::{GroupConfig, GroupError, StackGroup};
pub use instance::StackStats;
pub use rpc::{BufSizes, Interest, Readiness};
