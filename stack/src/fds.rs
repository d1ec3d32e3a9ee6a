//! The process-wide fd table: which socket of which stack a descriptor names.
//!
//! gazelle keeps one descriptor space per process over all its stacks. An
//! [`FdTable`] maps each [`Fd`] to what the application asked for (its
//! [`SockType`], options and local address) and to where the socket lives:
//! nowhere yet, a listener's sockets on one or every stack, a connection or
//! a datagram socket on one stack. The table lives in the group's
//! [`Fabric`](crate::fabric::Fabric); the [`Api`](crate::Api) reads and
//! updates it.

use rustc_hash::FxHashMap;
use std::net::SocketAddr;

use crate::ports::Proto;
use crate::rpc::{BufSizes, SockId};

/// A socket descriptor, valid in the stack group that issued it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fd(u32);

/// The kind of socket `socket()` creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockType {
    /// TCP (`SOCK_STREAM`).
    Stream,
    /// UDP (`SOCK_DGRAM`).
    Dgram,
    /// ICMP echo (`SOCK_DGRAM` with `IPPROTO_ICMP`); `bind`'s port is the echo identifier.
    Icmp,
}

impl SockType {
    /// The protocol whose port space `bind` claims from (ICMP identifiers are not ports).
    pub(crate) fn proto(self) -> Option<Proto> {
        match self {
            SockType::Stream => Some(Proto::Tcp),
            SockType::Dgram => Some(Proto::Udp),
            SockType::Icmp => None,
        }
    }
}

/// Socket options an entry keeps (see [`SockOpt`](crate::SockOpt)).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Opts {
    /// `TCP_NODELAY`.
    pub(crate) nodelay: bool,
    /// `SO_RCVBUF` and `SO_SNDBUF`.
    pub(crate) bufs: BufSizes,
    /// `SO_REUSEADDR`.
    pub(crate) reuse: bool,
    /// `O_NONBLOCK`.
    pub(crate) nonblocking: bool,
}

/// Where a descriptor's sockets live.
#[derive(Clone, Debug)]
pub(crate) enum FdState {
    /// Nowhere yet: not listening, connected or bound to a datagram socket.
    Fresh,
    /// A listener: its socket on each stack it listens on.
    Listening(Vec<(usize, SockId)>),
    /// A TCP connection on `stack`, to `peer`.
    Connected { stack: usize, sock: SockId, peer: SocketAddr },
    /// A UDP or ICMP socket on a stack.
    Dgram(usize, SockId),
}

/// What a descriptor names.
#[derive(Clone, Debug)]
pub(crate) struct FdEntry {
    /// The kind of socket.
    pub(crate) ty: SockType,
    /// Its options.
    pub(crate) opts: Opts,
    /// The address it is bound to.
    pub(crate) local: Option<SocketAddr>,
    /// Where its sockets live.
    pub(crate) state: FdState,
}

/// The process-wide table from descriptors to sockets.
#[derive(Debug, Default)]
pub(crate) struct FdTable {
    entries: FxHashMap<Fd, FdEntry>,
    next: u32,
}

impl FdTable {
    /// Files `entry` under a new descriptor.
    pub(crate) fn open(&mut self, entry: FdEntry) -> Fd {
        self.next += 1;
        let fd = Fd(self.next);
        self.entries.insert(fd, entry);
        fd
    }

    /// The entry of `fd`.
    pub(crate) fn get(&self, fd: Fd) -> Option<&FdEntry> {
        self.entries.get(&fd)
    }

    /// The entry of `fd`, to change.
    pub(crate) fn get_mut(&mut self, fd: Fd) -> Option<&mut FdEntry> {
        self.entries.get_mut(&fd)
    }

    /// Removes `fd`, returning its entry.
    pub(crate) fn remove(&mut self, fd: Fd) -> Option<FdEntry> {
        self.entries.remove(&fd)
    }
}

impl FdEntry {
    /// Every (stack, socket) the descriptor names.
    pub(crate) fn socks(&self) -> Vec<(usize, SockId)> {
        match &self.state {
            FdState::Fresh => Vec::new(),
            FdState::Listening(m) => m.clone(),
            FdState::Connected { stack, sock, .. } => vec![(*stack, *sock)],
            FdState::Dgram(stack, sock) => vec![(*stack, *sock)],
        }
    }
}
