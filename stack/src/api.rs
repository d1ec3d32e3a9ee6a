//! The POSIX-like socket API applications use.
//!
//! An [`Api`] is what gazelle gives one application thread: sockets it
//! creates live on its *home* stack (with `listen_shadow`, listeners live on
//! every stack), and a process-wide fd table routes every later call to the
//! stack that owns the socket: under run-to-wakeup as an RPC through that
//! stack's MPSC ring, under run-to-completion inline, under the stack's lock.
//!
//! Calls are `async`, so one application can run unchanged under the
//! single-threaded simulation (the executor polls the task) and on real
//! threads (a thread blocks on the task). A call that would block waits for
//! the owning stack to signal a state change, then tries again, unless the
//! socket is non-blocking, in which case it fails with `WouldBlock` as
//! `O_NONBLOCK` would. The thread model decides who runs the stack: under
//! run-to-wakeup, stack threads poll and the caller only waits; under
//! run-to-completion, the caller runs its call on the owning stack and polls
//! that stack itself while it waits, so the stack advances exactly when the
//! application is in a call.

use std::future::{poll_fn, ready, Future};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, MutexGuard, PoisonError};
use std::task::Poll;

use crate::config::{ForwardMode, ThreadModel};
use crate::error;
use crate::fds::{FdEntry, FdState, FdTable, Opts};
use crate::group::StackGroup;
use crate::instance::Instance;
use crate::ports::Proto;
use crate::rpc::{Interest, Notify, Op, Readiness, Reply, ReplySlot, Rpc, SockId};
use ethdev::time::Clock;

pub use crate::fds::{Fd, SockType};

/// Socket options (`setsockopt`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockOpt {
    /// `TCP_NODELAY`: disable Nagle's algorithm.
    NoDelay(bool),
    /// `SO_RCVBUF`, for sockets not yet connected or listening.
    RcvBuf(usize),
    /// `SO_SNDBUF`, for sockets not yet connected or listening.
    SndBuf(usize),
    /// `SO_REUSEADDR`: share a bound port with other sockets that set it.
    ReuseAddr(bool),
    /// `O_NONBLOCK`: calls that would block fail with `WouldBlock`.
    NonBlocking(bool),
    /// `TCP_USER_TIMEOUT`, for connected sockets: a connection whose data
    /// or keep-alive probes stay unacknowledged this long is aborted (a
    /// peer that vanished, such as a killed process). `None` waits forever.
    UserTimeout(Option<std::time::Duration>),
}

/// How `shutdown` closes a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// Stop sending: FIN once queued data is out.
    Write,
    /// Stop receiving (nothing is sent).
    Read,
    /// Both.
    Both,
}

/// An epoll-like interest list (`epoll_create` / `epoll_ctl`).
#[derive(Clone, Debug, Default)]
pub struct Epoll {
    interests: Vec<(Fd, Interest)>,
}

impl Epoll {
    /// An empty interest list.
    pub fn new() -> Epoll {
        Epoll::default()
    }

    /// Adds `fd` or changes its interest (`EPOLL_CTL_ADD` / `MOD`).
    pub fn add(&mut self, fd: Fd, interest: Interest) {
        self.delete(fd);
        self.interests.push((fd, interest));
    }

    /// Removes `fd` (`EPOLL_CTL_DEL`).
    pub fn delete(&mut self, fd: Fd) {
        self.interests.retain(|(f, _)| *f != fd);
    }

    /// Number of descriptors watched.
    pub fn len(&self) -> usize {
        self.interests.len()
    }

    /// Whether nothing is watched.
    pub fn is_empty(&self) -> bool {
        self.interests.is_empty()
    }
}

/// One application thread's view of a stack group. Cheap to clone.
#[derive(Clone)]
pub struct Api {
    group: StackGroup,
    home: usize,
    clock: Arc<dyn Clock>,
}

impl Api {
    /// An application handle on `group` whose sockets live on stack `home`
    /// (the stack gazelle binds the calling thread to; taken modulo the
    /// number of stacks), calling the stacks as the group's thread model
    /// says and reading time from `clock`.
    pub fn new(group: &StackGroup, home: usize, clock: Arc<dyn Clock>) -> Api {
        Api { group: group.clone(), home: home % group.len(), clock }
    }

    /// The stack this thread's new sockets live on.
    pub fn home(&self) -> usize {
        self.home
    }

    fn fds(&self) -> MutexGuard<'_, FdTable> {
        self.group.fabric.fds()
    }

    fn entry(&self, fd: Fd) -> io::Result<FdEntry> {
        self.fds().get(fd).cloned().ok_or_else(error::bad_fd)
    }

    fn update(&self, fd: Fd, f: impl FnOnce(&mut FdEntry)) -> io::Result<()> {
        self.fds().get_mut(fd).map(f).ok_or_else(error::bad_fd)
    }

    /// `socket()`: a new, unbound socket.
    pub fn socket(&self, ty: SockType) -> io::Result<Fd> {
        let bufs = self.group.config().bufs;
        let opts = Opts { nodelay: false, bufs, reuse: false, nonblocking: false };
        Ok(self.fds().open(FdEntry { ty, opts, local: None, state: FdState::Fresh }))
    }

    /// `setsockopt()`.
    pub async fn setsockopt(&self, fd: Fd, opt: SockOpt) -> io::Result<()> {
        let entry = self.entry(fd)?;
        match (opt, &entry.state) {
            (SockOpt::NoDelay(on), FdState::Connected { stack, sock, .. }) => {
                self.call(*stack, Op::NoDelay(*sock, on), None).await?;
            }
            (SockOpt::UserTimeout(after), FdState::Connected { stack, sock, .. }) => {
                return self.call(*stack, Op::UserTimeout(*sock, after), None).await.map(drop);
            }
            (SockOpt::UserTimeout(_), _) => {
                return Err(error::invalid(
                    "TCP_USER_TIMEOUT applies to a connected socket (set it after connect or accept)",
                ));
            }
            _ => {}
        }
        self.update(fd, |e| match opt {
            SockOpt::NoDelay(on) => e.opts.nodelay = on,
            SockOpt::RcvBuf(n) => e.opts.bufs.rx = n.max(1024),
            SockOpt::SndBuf(n) => e.opts.bufs.tx = n.max(1024),
            SockOpt::ReuseAddr(on) => e.opts.reuse = on,
            SockOpt::NonBlocking(on) => e.opts.nonblocking = on,
            SockOpt::UserTimeout(_) => {}
        })
    }

    /// `bind()`: claims the local port (`EADDRINUSE` if taken). A UDP or
    /// ICMP socket is opened on the home stack right away.
    pub async fn bind(&self, fd: Fd, addr: SocketAddr) -> io::Result<()> {
        let entry = self.entry(fd)?;
        if entry.local.is_some() {
            return Err(error::invalid("socket is already bound"));
        }
        if !addr.ip().is_unspecified() && self.group.fabric.local_ip_for(addr.ip()) != Some(addr.ip()) {
            return Err(error::addr_not_available("not a local address"));
        }
        if addr.port() == 0 {
            return Err(error::invalid("bind: port 0 is not supported"));
        }
        if let Some(proto) = entry.ty.proto() {
            self.group.fabric.ports().bind(proto, addr.port(), entry.opts.reuse)?;
        }
        let state = match entry.ty {
            SockType::Stream => FdState::Fresh,
            SockType::Dgram => self.open_dgram(Op::UdpBind { port: addr.port(), bufs: entry.opts.bufs }).await?,
            SockType::Icmp => self.open_dgram(Op::IcmpBind(addr.port())).await?,
        };
        self.update(fd, |e| {
            e.local = Some(addr);
            e.state = state;
        })
    }

    async fn open_dgram(&self, op: Op) -> io::Result<FdState> {
        match self.call(self.home, op, None).await? {
            Reply::Sock(sock) => Ok(FdState::Dgram(self.home, sock)),
            other => Err(unexpected(other)),
        }
    }

    /// `listen()`: on the home stack, or on every stack with `listen_shadow`.
    pub async fn listen(&self, fd: Fd, backlog: usize) -> io::Result<()> {
        let entry = self.entry(fd)?;
        let port = match (&entry.ty, &entry.state, entry.local) {
            (SockType::Stream, FdState::Fresh, Some(local)) => local.port(),
            (SockType::Stream, FdState::Fresh, None) => return Err(error::invalid("listen on an unbound socket")),
            _ => return Err(error::wrong_state("listen: not a fresh TCP socket")),
        };
        let stacks: Vec<usize> = match self.group.config().mode {
            ForwardMode::ListenShadow => (0..self.group.len()).collect(),
            _ => vec![self.home],
        };
        let mut members = Vec::new();
        for stack in stacks {
            match self.call(stack, Op::Listen { port, backlog, bufs: entry.opts.bufs }, None).await? {
                Reply::Sock(sock) => members.push((stack, sock)),
                other => return Err(unexpected(other)),
            }
        }
        self.update(fd, |e| e.state = FdState::Listening(members))
    }

    /// `accept()`: the next established connection, from whichever of the
    /// listener's stacks has one.
    pub async fn accept(&self, fd: Fd) -> io::Result<(Fd, SocketAddr)> {
        let entry = self.entry(fd)?;
        let FdState::Listening(members) = &entry.state else {
            return Err(error::wrong_state("accept on a socket that is not listening"));
        };
        loop {
            let notify = Arc::new(Notify::default());
            for &(stack, sock) in members {
                match self.call(stack, Op::Accept(sock), Some(Arc::clone(&notify))).await {
                    Ok(Reply::Accepted(conn, peer, local)) => {
                        return Ok((self.new_conn(&entry, stack, conn, peer, local), peer));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                    Ok(other) => return Err(unexpected(other)),
                }
            }
            if entry.opts.nonblocking {
                return Err(error::would_block());
            }
            let stacks: Vec<usize> = members.iter().map(|m| m.0).collect();
            self.wait(&notify, &stacks).await;
        }
    }

    fn new_conn(&self, listener: &FdEntry, stack: usize, sock: SockId, peer: SocketAddr, local: SocketAddr) -> Fd {
        let state = FdState::Connected { stack, sock, peer };
        self.fds().open(FdEntry { ty: SockType::Stream, opts: listener.opts, local: Some(local), state })
    }

    /// `connect()`: from the home stack; returns once established
    /// (`ConnectionRefused` on a reset). In RSS modes the local port is one
    /// whose reply hashes to the home stack's queue.
    pub async fn connect(&self, fd: Fd, remote: SocketAddr) -> io::Result<()> {
        let entry = self.entry(fd)?;
        if entry.ty != SockType::Stream || !matches!(entry.state, FdState::Fresh) {
            return Err(error::wrong_state("connect: not a fresh TCP socket"));
        }
        self.release_bound(&entry);
        let fabric = &self.group.fabric;
        let ip = fabric.local_ip_for(remote.ip()).ok_or_else(|| error::addr_not_available("no local address"))?;
        let rss = !fabric.steers_tcp() && self.group.len() > 1;
        let home = self.home;
        let fits = |port| {
            fabric.config.owns_ephemeral(port)
                && (!rss || usize::from(fabric.rss_queue(remote, SocketAddr::new(ip, port))) == home)
        };
        let port = fabric.ports().ephemeral(Proto::Tcp, fits)?;
        let local = SocketAddr::new(ip, port);
        let op = Op::Connect { local, remote, bufs: entry.opts.bufs, nodelay: entry.opts.nodelay };
        let sock = match self.call(home, op, None).await {
            Ok(Reply::Sock(sock)) => sock,
            other => {
                fabric.ports().release(Proto::Tcp, port);
                return Err(other.map_or_else(|e| e, unexpected));
            }
        };
        self.update(fd, |e| {
            e.local = Some(local);
            e.state = FdState::Connected { stack: home, sock, peer: remote };
        })?;
        self.blocking(home, entry.opts.nonblocking, || Op::ConnectStatus(sock)).await.map(|_| ())
    }

    fn conn(&self, fd: Fd) -> io::Result<(usize, SockId, bool)> {
        let entry = self.entry(fd)?;
        match entry.state {
            FdState::Connected { stack, sock, .. } => Ok((stack, sock, entry.opts.nonblocking)),
            _ => Err(error::not_connected()),
        }
    }

    /// `send()`: queues as much of `data` as fits; at least one byte unless
    /// the socket is non-blocking.
    pub async fn send(&self, fd: Fd, data: &[u8]) -> io::Result<usize> {
        let (stack, sock, nonblocking) = self.conn(fd)?;
        let reply = if self.runs_inline() {
            // Straight from the caller's buffer into the socket: no copy on the way.
            let attempt =
                |notify| ready(self.inline(stack, |s| s.run_call(Some(sock), Some(notify), |s| s.send(sock, data))));
            self.retrying(stack, nonblocking, attempt).await
        } else {
            self.blocking(stack, nonblocking, || Op::Send(sock, data.to_vec())).await
        };
        match reply? {
            Reply::Len(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }

    /// Sends all of `data`, waiting for buffer space as needed.
    pub async fn send_all(&self, fd: Fd, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = self.send(fd, data).await?;
            data = &data[n..];
        }
        Ok(())
    }

    /// `recv()`: up to `max` bytes; empty at end of stream.
    pub async fn recv(&self, fd: Fd, max: usize) -> io::Result<Vec<u8>> {
        let (stack, sock, nonblocking) = self.conn(fd)?;
        match self.blocking(stack, nonblocking, || Op::Recv(sock, max)).await? {
            Reply::Data(d) => Ok(d),
            other => Err(unexpected(other)),
        }
    }

    fn dgram(&self, fd: Fd) -> io::Result<(SockType, usize, SockId, bool)> {
        let entry = self.entry(fd)?;
        match entry.state {
            FdState::Dgram(stack, sock) => Ok((entry.ty, stack, sock, entry.opts.nonblocking)),
            _ => Err(error::invalid("datagram socket is not bound")),
        }
    }

    /// `sendto()`: one datagram (for ICMP sockets, a whole ICMP message).
    pub async fn sendto(&self, fd: Fd, data: &[u8], to: SocketAddr) -> io::Result<usize> {
        let (ty, stack, sock, nonblocking) = self.dgram(fd)?;
        let op = || match ty {
            SockType::Icmp => Op::IcmpSend(sock, data.to_vec(), to.ip()),
            _ => Op::UdpSend(sock, data.to_vec(), to),
        };
        match self.blocking(stack, nonblocking, op).await? {
            Reply::Len(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }

    /// `recvfrom()`: one datagram, truncated to `max` bytes, and its sender.
    pub async fn recvfrom(&self, fd: Fd, max: usize) -> io::Result<(Vec<u8>, SocketAddr)> {
        let (ty, stack, sock, nonblocking) = self.dgram(fd)?;
        let op = || match ty {
            SockType::Icmp => Op::IcmpRecv(sock),
            _ => Op::UdpRecv(sock, max),
        };
        match self.blocking(stack, nonblocking, op).await? {
            Reply::From(d, from) => Ok((d, from)),
            other => Err(unexpected(other)),
        }
    }

    /// `shutdown()`.
    pub async fn shutdown(&self, fd: Fd, how: Shutdown) -> io::Result<()> {
        let (stack, sock, _) = self.conn(fd)?;
        if how != Shutdown::Read {
            self.call(stack, Op::ShutdownWrite(sock), None).await?;
        }
        Ok(())
    }

    /// `close()`: releases the descriptor; TCP closes gracefully in the
    /// background. A second close of the same descriptor is `EBADF`.
    pub async fn close(&self, fd: Fd) -> io::Result<()> {
        let entry = self.fds().remove(fd).ok_or_else(error::bad_fd)?;
        // A connection's port belongs to its listener, or is ephemeral and
        // released by the stack once TCP is done with it.
        if !matches!(entry.state, FdState::Connected { .. }) {
            self.release_bound(&entry);
        }
        for (stack, sock) in entry.socks() {
            self.call(stack, Op::Close(sock), None).await?;
        }
        Ok(())
    }

    fn release_bound(&self, entry: &FdEntry) {
        if let (Some(local), Some(proto)) = (entry.local, entry.ty.proto()) {
            self.group.fabric.ports().release(proto, local.port());
        }
    }

    /// `getsockname()`.
    pub fn getsockname(&self, fd: Fd) -> io::Result<SocketAddr> {
        self.entry(fd)?.local.ok_or_else(|| error::invalid("socket is not bound"))
    }

    /// `getpeername()`.
    pub fn getpeername(&self, fd: Fd) -> io::Result<SocketAddr> {
        match self.entry(fd)?.state {
            FdState::Connected { peer, .. } => Ok(peer),
            _ => Err(error::not_connected()),
        }
    }

    /// The stack serving a connected or datagram socket.
    pub fn stack_of(&self, fd: Fd) -> io::Result<usize> {
        match self.entry(fd)?.state {
            FdState::Connected { stack, .. } | FdState::Dgram(stack, _) => Ok(stack),
            _ => Err(error::not_connected()),
        }
    }

    /// `epoll_wait()`: waits until at least one watched socket is ready and
    /// returns the ready ones (at most `max`).
    pub async fn epoll_wait(&self, ep: &Epoll, max: usize) -> io::Result<Vec<(Fd, Readiness)>> {
        loop {
            let notify = Arc::new(Notify::default());
            let mut ready = Vec::new();
            let mut stacks = Vec::new();
            for &(fd, interest) in &ep.interests {
                for (stack, sock) in self.entry(fd)?.socks() {
                    stacks.push(stack);
                    match self.call(stack, Op::Poll(sock, interest), Some(Arc::clone(&notify))).await {
                        Ok(Reply::Ready(r)) => ready.push((fd, r)),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                        Ok(other) => return Err(unexpected(other)),
                    }
                }
            }
            if !ready.is_empty() || ep.interests.is_empty() {
                ready.truncate(max);
                return Ok(ready);
            }
            self.wait(&notify, &stacks).await;
        }
    }

    /// Lends the calling application thread to its home stack for good:
    /// under run-to-completion the stack is polled every time the task is,
    /// which is how a gazelle thread idling in `epoll_wait` keeps its stack
    /// running; under run-to-wakeup it only waits. Never returns.
    pub async fn lend_thread(&self) {
        poll_fn(|_| {
            self.drive(self.home);
            Poll::<()>::Pending
        })
        .await
    }

    // ---- calling stacks ------------------------------------------------

    /// Repeats `op` on `stack` until it does not would-block, waiting for
    /// a state change between tries (or fails at once if `nonblocking`).
    async fn blocking(&self, stack: usize, nonblocking: bool, op: impl Fn() -> Op) -> io::Result<Reply> {
        self.retrying(stack, nonblocking, |notify| self.call(stack, op(), Some(notify))).await
    }

    /// Makes `attempt`s until one does not fail with `WouldBlock` (or the
    /// socket is non-blocking), waiting for `stack` to signal a change in
    /// between.
    async fn retrying<F>(
        &self,
        stack: usize,
        nonblocking: bool,
        attempt: impl Fn(Arc<Notify>) -> F,
    ) -> io::Result<Reply>
    where
        F: Future<Output = io::Result<Reply>>,
    {
        loop {
            let notify = Arc::new(Notify::default());
            match attempt(Arc::clone(&notify)).await {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && !nonblocking => self.wait(&notify, &[stack]).await,
                other => return other,
            }
        }
    }

    /// Runs one call on `stack`: inline under run-to-completion, else as an
    /// RPC whose answer it waits for.
    async fn call(&self, stack: usize, op: Op, notify: Option<Arc<Notify>>) -> io::Result<Reply> {
        if self.runs_inline() {
            return self.inline(stack, |s| s.run_call(op.waits_on(), notify, |s| s.execute(op)));
        }
        let reply = Arc::new(ReplySlot::default());
        let mut rpc = Some(Rpc { op, reply: Arc::clone(&reply), notify });
        poll_fn(|cx| {
            if let Some(r) = rpc.take() {
                if let Err(back) = self.group.fabric.rpc[stack].enqueue(r) {
                    rpc = Some(back); // ring full: try again on the next wake
                    cx.waker().wake_by_ref();
                }
            }
            self.drive(stack);
            match rpc.is_none().then(|| reply.take_or_register(cx.waker())).flatten() {
                Some(r) => Poll::Ready(r),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// Waits until `notify` fires.
    async fn wait(&self, notify: &Notify, stacks: &[usize]) {
        poll_fn(|cx| {
            // Woken because the signal fired: the call about to be retried
            // polls the stack itself, so driving it first would be a wasted
            // poll (one per wake-up, most of a receiver's polls).
            if notify.fired() {
                return Poll::Ready(());
            }
            stacks.iter().for_each(|&s| self.drive(s));
            if notify.fired_or_register(cx.waker()) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// Under run-to-completion the caller's thread is the stack's: calls run
    /// inline, as gazelle's do, with no RPC.
    fn runs_inline(&self) -> bool {
        self.group.config().model == ThreadModel::RunToCompletion
    }

    /// Runs `f` on `stack` under its lock, then polls the stack so that the
    /// call's effects go out at once.
    fn inline<R>(&self, stack: usize, f: impl FnOnce(&mut Instance) -> R) -> R {
        let mut s = self.group.stacks[stack].lock().unwrap_or_else(PoisonError::into_inner);
        let result = f(&mut s);
        s.poll(self.clock.now());
        result
    }

    /// Run-to-completion: the calling thread polls the stack itself (unless
    /// another thread is polling it right now).
    fn drive(&self, stack: usize) {
        if self.runs_inline() {
            if let Ok(mut s) = self.group.stacks[stack].try_lock() {
                s.poll(self.clock.now());
            }
        }
    }
}

fn unexpected(reply: Reply) -> io::Error {
    io::Error::other(format!("stack answered with an unexpected {reply:?}"))
}

/// The address family's unspecified address with `port`, for `bind`.
pub fn any_addr(ip: IpAddr, port: u16) -> SocketAddr {
    let any = match ip {
        IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    };
    SocketAddr::new(any, port)
}
