//! kernel-peer: the Linux kernel's TCP/IP stack as a host on dtnet's wire.
//!
//! A [`KernelHost`] is a network namespace holding one TAP device that has
//! the host's MAC, MTU and addresses. dtnet keeps the TAP's file
//! descriptor: its [`TapWire`] is a bridge port like a veth's wire end, so
//! every frame the kernel sends is read from the descriptor into an mbuf
//! and crosses the bridge (with the link's impairments), and every frame
//! the bridge delivers is written to it. Applications reach the kernel's
//! sockets from threads that enter the namespace ([`KernelHost::spawn`]).
//!
//! The pieces, each in its own module: [`netns`] runs `ip` and owns named
//! namespaces (removed on drop, also while unwinding), and checks whether
//! this process may create them at all ([`netns::unavailable`]); `tun`
//! is the one module with `unsafe` code (the `TUNSETIFF` ioctl); [`wire`]
//! moves frames between the descriptor and the bridge; [`host`] puts them
//! together.

pub mod host;
pub mod netns;
mod tun;
pub mod wire;

pub use host::{KernelHost, KernelHostConfig, KernelHostError};
pub use netns::{Netns, Unavailable};
pub use wire::{TapCounters, TapWire};
