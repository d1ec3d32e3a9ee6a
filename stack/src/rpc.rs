//! Control calls from application threads to the stack that owns a socket.
//!
//! A stack instance is single-owner state: only the thread polling it may
//! touch its smoltcp sockets. Under run-to-wakeup an application call
//! therefore becomes an [`Rpc`] pushed onto the owning stack's MPSC ring
//! (under run-to-completion the caller holds the stack and runs it inline); the stack executes it
//! during its next poll and fills the call's [`ReplySlot`]. A call that would
//! block may carry a [`Notify`], which the stack keeps and fires the next time
//! a socket's state changes, so the caller knows when to try again without
//! spinning. Both slots wake the caller's task waker, which is how the same
//! calls work under a threaded executor (the waker unparks a thread) and the
//! simulation (the waker marks a task runnable).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Waker;

/// A socket's id inside the stack that owns it, as calls name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SockId(pub(crate) u32);

/// Socket buffer sizes, in bytes, for the smoltcp sockets a call creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufSizes {
    /// Receive buffer (`SO_RCVBUF`).
    pub rx: usize,
    /// Send buffer (`SO_SNDBUF`).
    pub tx: usize,
}

/// Readiness of a socket, as an epoll-like wait reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// Data (or a connection, or end of stream) can be read / accepted.
    pub readable: bool,
    /// Data can be written.
    pub writable: bool,
    /// The peer closed or reset the connection.
    pub hangup: bool,
}

impl Readiness {
    /// Nothing is ready.
    pub fn is_empty(&self) -> bool {
        !(self.readable || self.writable || self.hangup)
    }

    /// The events of `self` that `interest` asks about (hang-up is always reported).
    pub fn filter(self, interest: Interest) -> Readiness {
        Readiness {
            readable: self.readable && interest.readable,
            writable: self.writable && interest.writable,
            hangup: self.hangup,
        }
    }
}

/// What a waiter wants to know about a socket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Interest {
    /// Wake when readable.
    pub readable: bool,
    /// Wake when writable.
    pub writable: bool,
}

impl Interest {
    /// Readable only.
    pub const READ: Interest = Interest { readable: true, writable: false };
    /// Writable only.
    pub const WRITE: Interest = Interest { readable: false, writable: true };
    /// Both.
    pub const BOTH: Interest = Interest { readable: true, writable: true };
}

/// One operation on a stack's sockets.
#[derive(Debug)]
pub(crate) enum Op {
    /// Open a TCP listener on `port`.
    Listen { port: u16, backlog: usize, bufs: BufSizes },
    /// Start a TCP connection from `local` to `remote`.
    Connect { local: SocketAddr, remote: SocketAddr, bufs: BufSizes, nodelay: bool },
    /// Has a connection started by `Connect` completed?
    ConnectStatus(SockId),
    /// Take an established connection from a listener.
    Accept(SockId),
    /// Queue bytes for sending.
    Send(SockId, Vec<u8>),
    /// Take up to `n` received bytes; an empty reply is end of stream.
    Recv(SockId, usize),
    /// Send FIN once queued data is out; the socket stays readable.
    ShutdownWrite(SockId),
    /// Release the socket (graceful close for TCP connections).
    Close(SockId),
    /// Disable or enable Nagle's algorithm.
    NoDelay(SockId, bool),
    /// Abort the connection after this long without an acknowledgement.
    UserTimeout(SockId, Option<std::time::Duration>),
    /// Open a UDP socket bound to `port`.
    UdpBind { port: u16, bufs: BufSizes },
    /// Send one datagram.
    UdpSend(SockId, Vec<u8>, SocketAddr),
    /// Take one datagram, truncated to `n` bytes.
    UdpRecv(SockId, usize),
    /// Open an ICMP echo socket bound to identifier `ident`.
    IcmpBind(u16),
    /// Send one ICMP packet (an echo request built by the caller).
    IcmpSend(SockId, Vec<u8>, std::net::IpAddr),
    /// Take one ICMP packet.
    IcmpRecv(SockId),
    /// Report readiness for `Interest`; would-block when nothing is ready.
    Poll(SockId, Interest),
}

impl Op {
    /// The socket a call of this kind may wait on (its readiness changes
    /// only with that socket's state), or `None` for calls whose readiness
    /// is the stack's (opening sockets, accepting, datagrams).
    pub(crate) fn waits_on(&self) -> Option<SockId> {
        match *self {
            Op::ConnectStatus(id)
            | Op::Send(id, _)
            | Op::Recv(id, _)
            | Op::ShutdownWrite(id)
            | Op::Close(id)
            | Op::Poll(id, _) => Some(id),
            _ => None,
        }
    }
}

/// What a stack answers.
#[derive(Debug)]
pub(crate) enum Reply {
    /// Done, nothing to return.
    Done,
    /// A socket was created.
    Sock(SockId),
    /// A connection was accepted: its socket, peer and local address.
    Accepted(SockId, SocketAddr, SocketAddr),
    /// A byte count.
    Len(usize),
    /// Received bytes.
    Data(Vec<u8>),
    /// A received datagram and its sender.
    From(Vec<u8>, SocketAddr),
    /// Readiness of a socket.
    Ready(Readiness),
}

/// An operation in flight: what to do, where to answer, whom to notify later.
pub(crate) struct Rpc {
    pub(crate) op: Op,
    pub(crate) reply: Arc<ReplySlot>,
    pub(crate) notify: Option<Arc<Notify>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where a stack puts its answer to one call.
#[derive(Default)]
pub(crate) struct ReplySlot {
    value: Mutex<Option<io::Result<Reply>>>,
    waker: Mutex<Option<Waker>>,
}

impl ReplySlot {
    /// Stores the answer and wakes the caller.
    pub(crate) fn set(&self, value: io::Result<Reply>) {
        *lock(&self.value) = Some(value);
        if let Some(w) = lock(&self.waker).take() {
            w.wake();
        }
    }

    /// The answer, if it is there; otherwise remembers `waker`.
    pub(crate) fn take_or_register(&self, waker: &Waker) -> Option<io::Result<Reply>> {
        *lock(&self.waker) = Some(waker.clone());
        lock(&self.value).take()
    }
}

/// A one-shot "something changed" signal a stack fires for waiting callers.
#[derive(Default)]
pub(crate) struct Notify {
    fired: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Notify {
    /// Marks the signal and wakes the caller.
    pub(crate) fn fire(&self) {
        self.fired.store(true, Ordering::Release);
        if let Some(w) = lock(&self.waker).take() {
            w.wake();
        }
    }

    /// Whether the signal fired.
    pub(crate) fn fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }

    /// Whether the signal fired; otherwise remembers `waker`.
    pub(crate) fn fired_or_register(&self, waker: &Waker) -> bool {
        *lock(&self.waker) = Some(waker.clone());
        self.fired.load(Ordering::Acquire)
    }
}
