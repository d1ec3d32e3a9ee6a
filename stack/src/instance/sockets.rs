//! The socket operations of a stack instance: what application calls do.
//!
//! [`Instance::execute`] runs one [`Op`] on the instance's smoltcp sockets
//! and answers with a [`Reply`], or fails with `WouldBlock` when the caller
//! must wait. Sockets are addressed by [`SockId`]; each names a TCP
//! connection (with the rule-table entry and flow rule that steer its
//! frames here), a listener, or a UDP or ICMP socket. Connections the
//! application closed are kept until TCP is done with them and reaped by
//! the poll loop.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;

use ethdev::flow::{FlowAction, FlowAttr, FlowId, FlowItem, Ipv4Item, Ipv6Item, ItemSpec, TcpItem};
use ethdev::Instant;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::{icmp, tcp, udp};

use crate::config::ForwardMode;
use crate::dispatch::{Bound, ConnKey};
use crate::error;
use crate::fabric::CONN_RULE_PRIORITY;
use crate::ports::Proto;
use crate::rpc::{BufSizes, Op, Readiness, Reply, SockId};

use super::Instance;

/// Datagrams a UDP or ICMP socket buffers.
const DGRAM_SLOTS: usize = 64;
/// Idle time after which a TCP socket sends a keep-alive (see `tcp_socket`).
const KEEP_ALIVE: smoltcp::time::Duration = smoltcp::time::Duration::from_millis(500);
/// How long a closed connection stays in TIME-WAIT before it is freed: long
/// enough for smoltcp's delayed ACK (10 ms) of the peer's FIN to go out.
/// dtnet does not hold ports for 2MSL.
const TIME_WAIT_LINGER: std::time::Duration = std::time::Duration::from_millis(20);

/// A TCP connection socket and the rules that steer to it.
#[derive(Debug)]
pub(super) struct Conn {
    pub(super) handle: SocketHandle,
    pub(super) key: Option<ConnKey>,
    pub(super) flow: Option<FlowId>,
    /// Ephemeral port to release when the connection is gone.
    pub(super) ephemeral: Option<u16>,
    pub(super) established: bool,
}

/// A TCP listener: its spare listening socket and the connections waiting
/// for `accept`.
#[derive(Debug)]
pub(super) struct Listener {
    pub(super) port: u16,
    pub(super) backlog: usize,
    pub(super) bufs: BufSizes,
    pub(super) spare: Option<SocketHandle>,
    pub(super) pending: VecDeque<Conn>,
}

/// What a [`SockId`] names.
#[derive(Debug)]
pub(super) enum Sock {
    Conn(Conn),
    Listener(Listener),
    Udp(SocketHandle, u16),
    Icmp(SocketHandle, u16),
}

impl Instance {
    fn new_sock(&mut self, sock: Sock) -> SockId {
        let id = SockId(self.next_sock);
        self.next_sock += 1;
        self.socks.insert(id, sock);
        id
    }

    fn tcp_socket(bufs: BufSizes) -> tcp::Socket<'static> {
        let mut socket =
            tcp::Socket::new(tcp::SocketBuffer::new(vec![0; bufs.rx]), tcp::SocketBuffer::new(vec![0; bufs.tx]));
        // smoltcp 0.14 probes a zero window only while data is queued, not
        // when just a FIN is left to send: if the peer's window update is
        // lost, the close would wait forever. A keep-alive makes the peer
        // answer with its current window.
        socket.set_keep_alive(Some(KEEP_ALIVE));
        socket
    }

    fn open_listening(&mut self, port: u16, bufs: BufSizes) -> SocketHandle {
        let mut socket = Self::tcp_socket(bufs);
        // A fresh socket with a non-zero port always accepts `listen`.
        let _ = socket.listen(port);
        self.sockets.add(socket)
    }

    /// Moves listening sockets that took a SYN to their listener's pending
    /// queue, registers the new connection, and opens a fresh spare.
    pub(super) fn refill_listeners(&mut self) {
        let ids: Vec<SockId> = self.listen_ports.values().copied().collect();
        for id in ids {
            let Some(Sock::Listener(l)) = self.socks.get_mut(&id) else { continue };
            let Some(spare) = l.spare else { continue };
            if self.sockets.get::<tcp::Socket>(spare).state() == tcp::State::Listen {
                continue;
            }
            l.spare = None;
            let mut conn = Conn { handle: spare, key: None, flow: None, ephemeral: None, established: false };
            let (port, bufs, room) = (l.port, l.bufs, l.pending.len() + 1 < l.backlog);
            self.register_conn(&mut conn);
            let spare = room.then(|| self.open_listening(port, bufs));
            if let Some(Sock::Listener(l)) = self.socks.get_mut(&id) {
                l.pending.push_back(conn);
                l.spare = spare;
            }
        }
    }

    /// Records a connection's tuple so SYN duplicates are filtered and, in
    /// steering modes, frames reach this stack (rule table, flow rule).
    fn register_conn(&mut self, conn: &mut Conn) {
        let socket = self.sockets.get::<tcp::Socket>(conn.handle);
        let (Some(local), Some(remote)) = (socket.local_endpoint(), socket.remote_endpoint()) else { return };
        let key = ConnKey { peer: remote.into(), local_port: local.port };
        self.conn_index.insert(key, conn.handle);
        if self.fabric.steers_tcp() {
            self.fabric.tables.add_conn(key, self.id);
        }
        if self.fabric.config.mode == ForwardMode::FlowDirector {
            conn.flow = self.flow_rule(key, local.into());
        }
        conn.key = Some(key);
    }

    fn flow_rule(&self, key: ConnKey, local: SocketAddr) -> Option<FlowId> {
        let ip = match (key.peer, local) {
            (SocketAddr::V4(p), SocketAddr::V4(l)) => {
                FlowItem::Ipv4(ItemSpec::new(Ipv4Item { src: p.ip().octets(), dst: l.ip().octets(), proto: 0 }))
            }
            (SocketAddr::V6(p), SocketAddr::V6(l)) => {
                FlowItem::Ipv6(ItemSpec::new(Ipv6Item { src: p.ip().octets(), dst: l.ip().octets(), proto: 0 }))
            }
            _ => return None,
        };
        let tcp =
            FlowItem::Tcp(ItemSpec::new(TcpItem { src_port: key.peer.port(), dst_port: key.local_port, flags: 0 }));
        let pattern = [FlowItem::Eth(ItemSpec::ANY), ip, tcp];
        let actions = [FlowAction::Queue(self.id as u16)];
        // A full flow table leaves the connection to software forwarding.
        self.fabric.port.flow_create(&FlowAttr::ingress(CONN_RULE_PRIORITY), &pattern, &actions).ok()
    }

    fn unregister_conn(&mut self, conn: &Conn) {
        if let Some(key) = conn.key {
            self.conn_index.remove(&key);
            if self.fabric.steers_tcp() {
                self.fabric.tables.remove_conn(&key);
            }
        }
        if let Some(flow) = conn.flow {
            let _ = self.fabric.port.flow_destroy(flow);
        }
        if let Some(port) = conn.ephemeral {
            self.fabric.ports().release(Proto::Tcp, port);
        }
        self.sockets.remove(conn.handle);
    }

    /// Frees connections the application closed once TCP is done with them:
    /// closed, or in TIME-WAIT for [`TIME_WAIT_LINGER`].
    pub(super) fn reap_closed(&mut self) {
        let mut i = 0;
        while i < self.closing.len() {
            let (conn, since) = &mut self.closing[i];
            let done = match self.sockets.get::<tcp::Socket>(conn.handle).state() {
                tcp::State::Closed => true,
                tcp::State::TimeWait => *since.get_or_insert(self.now) + TIME_WAIT_LINGER <= self.now,
                _ => false,
            };
            if done {
                let (conn, _) = self.closing.swap_remove(i);
                self.unregister_conn(&conn);
            } else {
                i += 1;
            }
        }
    }

    /// When the next lingering TIME-WAIT connection is due to be freed.
    pub(super) fn reap_at(&self) -> Option<Instant> {
        self.closing.iter().filter_map(|(_, since)| since.map(|t| t + TIME_WAIT_LINGER)).min()
    }

    pub(crate) fn execute(&mut self, op: Op) -> io::Result<Reply> {
        match op {
            Op::Listen { port, backlog, bufs } => Ok(Reply::Sock(self.listen(port, backlog, bufs))),
            Op::Connect { local, remote, bufs, nodelay } => self.connect(local, remote, bufs, nodelay),
            Op::ConnectStatus(id) => self.connect_status(id),
            Op::Accept(id) => self.accept(id),
            Op::Send(id, data) => self.send(id, &data),
            Op::Recv(id, n) => self.recv(id, n),
            Op::ShutdownWrite(id) => self.with_conn(id, |s| s.close()).map(|()| Reply::Done),
            Op::Close(id) => self.close(id),
            Op::NoDelay(id, on) => self.with_conn(id, |s| s.set_nagle_enabled(!on)).map(|()| Reply::Done),
            Op::UdpBind { port, bufs } => Ok(Reply::Sock(self.udp_bind(port, bufs))),
            Op::UdpSend(id, data, to) => self.udp_send(id, &data, to),
            Op::UdpRecv(id, n) => self.udp_recv(id, n),
            Op::IcmpBind(ident) => Ok(Reply::Sock(self.icmp_bind(ident))),
            Op::IcmpSend(id, data, to) => self.icmp_send(id, &data, to),
            Op::IcmpRecv(id) => self.icmp_recv(id),
            Op::Poll(id, interest) => self.readiness(id).map(|r| r.filter(interest)).and_then(ready_or_block),
        }
    }

    fn listen(&mut self, port: u16, backlog: usize, bufs: BufSizes) -> SockId {
        let spare = Some(self.open_listening(port, bufs));
        let id = self.new_sock(Sock::Listener(Listener {
            port,
            backlog: backlog.max(1),
            bufs,
            spare,
            pending: VecDeque::new(),
        }));
        self.listen_ports.insert(port, id);
        self.fabric.tables.add_bound(Bound::TcpListen(port), self.id);
        id
    }

    fn connect(&mut self, local: SocketAddr, remote: SocketAddr, bufs: BufSizes, nodelay: bool) -> io::Result<Reply> {
        let mut socket = Self::tcp_socket(bufs);
        socket.set_nagle_enabled(!nodelay);
        socket.connect(self.iface.context(), remote, local).map_err(|e| error::invalid(&format!("connect: {e}")))?;
        let handle = self.sockets.add(socket);
        let mut conn = Conn { handle, key: None, flow: None, ephemeral: Some(local.port()), established: false };
        self.register_conn(&mut conn);
        self.stats.connected += 1;
        tracing::debug!(stack = self.id, %local, %remote, "tcp connect");
        Ok(Reply::Sock(self.new_sock(Sock::Conn(conn))))
    }

    fn conn_socket(&mut self, id: SockId) -> io::Result<(&mut Conn, &mut tcp::Socket<'static>)> {
        match self.socks.get_mut(&id) {
            Some(Sock::Conn(c)) => {
                let handle = c.handle;
                Ok((c, self.sockets.get_mut::<tcp::Socket>(handle)))
            }
            Some(_) => Err(error::wrong_state("not a connected TCP socket")),
            None => Err(error::bad_fd()),
        }
    }

    fn with_conn<R>(&mut self, id: SockId, f: impl FnOnce(&mut tcp::Socket<'static>) -> R) -> io::Result<R> {
        self.conn_socket(id).map(|(_, s)| f(s))
    }

    fn connect_status(&mut self, id: SockId) -> io::Result<Reply> {
        let (conn, socket) = self.conn_socket(id)?;
        match socket.state() {
            tcp::State::SynSent | tcp::State::SynReceived => Err(error::would_block()),
            tcp::State::Closed if !conn.established => Err(error::refused()),
            _ => {
                conn.established = true;
                Ok(Reply::Done)
            }
        }
    }

    fn accept(&mut self, id: SockId) -> io::Result<Reply> {
        self.prune_reset(id);
        let Some(Sock::Listener(l)) = self.socks.get_mut(&id) else {
            return Err(error::wrong_state("accept on a socket that is not listening"));
        };
        let sockets = &self.sockets;
        let ready = l.pending.iter().position(|c| is_synchronized(sockets.get::<tcp::Socket>(c.handle).state()));
        let Some(pos) = ready else { return Err(error::would_block()) };
        let mut conn = l.pending.remove(pos).ok_or_else(error::would_block)?;
        let refill = l.spare.is_none().then_some((l.port, l.bufs));
        if let Some((port, bufs)) = refill {
            let spare = self.open_listening(port, bufs);
            if let Some(Sock::Listener(l)) = self.socks.get_mut(&id) {
                l.spare = Some(spare);
            }
        }
        conn.established = true;
        let socket = self.sockets.get::<tcp::Socket>(conn.handle);
        let (Some(peer), Some(local)) = (socket.remote_endpoint(), socket.local_endpoint()) else {
            return Err(error::not_connected());
        };
        self.stats.accepted += 1;
        tracing::debug!(stack = self.id, %peer, %local, "tcp accept");
        Ok(Reply::Accepted(self.new_sock(Sock::Conn(conn)), peer.into(), local.into()))
    }

    /// Drops pending connections that were reset before `accept` took them.
    fn prune_reset(&mut self, id: SockId) {
        let Some(Sock::Listener(l)) = self.socks.get_mut(&id) else { return };
        let sockets = &self.sockets;
        let (dead, live): (VecDeque<Conn>, VecDeque<Conn>) =
            l.pending.drain(..).partition(|c| sockets.get::<tcp::Socket>(c.handle).state() == tcp::State::Closed);
        l.pending = live;
        dead.iter().for_each(|c| self.unregister_conn(c));
    }

    pub(crate) fn send(&mut self, id: SockId, data: &[u8]) -> io::Result<Reply> {
        let (_, socket) = self.conn_socket(id)?;
        if !socket.may_send() {
            return Err(match socket.state() {
                tcp::State::SynSent | tcp::State::SynReceived => error::would_block(),
                tcp::State::Closed | tcp::State::Listen => error::not_connected(),
                _ => error::broken_pipe(),
            });
        }
        match socket.send_slice(data) {
            Ok(0) if !data.is_empty() => Err(error::would_block()),
            Ok(n) => Ok(Reply::Len(n)),
            Err(_) => Err(error::broken_pipe()),
        }
    }

    fn recv(&mut self, id: SockId, max: usize) -> io::Result<Reply> {
        let (conn, socket) = self.conn_socket(id)?;
        if socket.can_recv() {
            let mut buf = vec![0; max.min(socket.recv_queue())];
            let n = socket.recv_slice(&mut buf).map_err(|_| error::reset())?;
            buf.truncate(n);
            return Ok(Reply::Data(buf));
        }
        match socket.state() {
            tcp::State::SynSent | tcp::State::SynReceived => Err(error::would_block()),
            tcp::State::Closed if !conn.established => Err(error::not_connected()),
            _ if socket.may_recv() => Err(error::would_block()),
            _ => Ok(Reply::Data(Vec::new())),
        }
    }

    fn close(&mut self, id: SockId) -> io::Result<Reply> {
        match self.socks.remove(&id).ok_or_else(error::bad_fd)? {
            Sock::Conn(conn) => {
                let socket = self.sockets.get_mut::<tcp::Socket>(conn.handle);
                tracing::debug!(stack = self.id, state = %socket.state(), "tcp close");
                if socket.state() == tcp::State::SynSent {
                    socket.abort();
                } else {
                    socket.close();
                }
                self.closing.push((conn, None));
            }
            Sock::Listener(l) => self.close_listener(l),
            Sock::Udp(handle, port) => {
                self.sockets.remove(handle);
                self.fabric.tables.remove_bound(Bound::Udp(port), self.id);
            }
            Sock::Icmp(handle, ident) => {
                self.sockets.remove(handle);
                self.fabric.tables.remove_bound(Bound::IcmpIdent(ident), self.id);
            }
        }
        Ok(Reply::Done)
    }

    fn close_listener(&mut self, l: Listener) {
        self.listen_ports.remove(&l.port);
        self.fabric.tables.remove_bound(Bound::TcpListen(l.port), self.id);
        if let Some(spare) = l.spare {
            self.sockets.remove(spare);
        }
        for conn in l.pending {
            self.sockets.get_mut::<tcp::Socket>(conn.handle).abort();
            self.closing.push((conn, None));
        }
    }

    fn udp_bind(&mut self, port: u16, bufs: BufSizes) -> SockId {
        let buffer = |bytes| udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; DGRAM_SLOTS], vec![0; bytes]);
        let mut socket = udp::Socket::new(buffer(bufs.rx), buffer(bufs.tx));
        // A fresh socket with a non-zero port always binds.
        let _ = socket.bind(port);
        let handle = self.sockets.add(socket);
        self.fabric.tables.add_bound(Bound::Udp(port), self.id);
        self.new_sock(Sock::Udp(handle, port))
    }

    fn udp_socket(&mut self, id: SockId) -> io::Result<&mut udp::Socket<'static>> {
        match self.socks.get(&id) {
            Some(Sock::Udp(h, _)) => Ok(self.sockets.get_mut::<udp::Socket>(*h)),
            Some(_) => Err(error::wrong_state("not a UDP socket")),
            None => Err(error::bad_fd()),
        }
    }

    fn udp_send(&mut self, id: SockId, data: &[u8], to: SocketAddr) -> io::Result<Reply> {
        let socket = self.udp_socket(id)?;
        match socket.send_slice(data, smoltcp::wire::IpEndpoint::from(to)) {
            Ok(()) => Ok(Reply::Len(data.len())),
            Err(udp::SendError::BufferFull) => Err(error::would_block()),
            Err(e) => Err(error::invalid(&format!("sendto: {e}"))),
        }
    }

    fn udp_recv(&mut self, id: SockId, max: usize) -> io::Result<Reply> {
        let socket = self.udp_socket(id)?;
        let (data, meta) = socket.recv().map_err(|_| error::would_block())?;
        Ok(Reply::From(data[..data.len().min(max)].to_vec(), meta.endpoint.into()))
    }

    fn icmp_bind(&mut self, ident: u16) -> SockId {
        let buffer = || icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; DGRAM_SLOTS], vec![0; 64 * 1024]);
        let mut socket = icmp::Socket::new(buffer(), buffer());
        let _ = socket.bind(icmp::Endpoint::Ident(ident));
        let handle = self.sockets.add(socket);
        self.fabric.tables.add_bound(Bound::IcmpIdent(ident), self.id);
        self.new_sock(Sock::Icmp(handle, ident))
    }

    fn icmp_socket(&mut self, id: SockId) -> io::Result<&mut icmp::Socket<'static>> {
        match self.socks.get(&id) {
            Some(Sock::Icmp(h, _)) => Ok(self.sockets.get_mut::<icmp::Socket>(*h)),
            Some(_) => Err(error::wrong_state("not an ICMP socket")),
            None => Err(error::bad_fd()),
        }
    }

    fn icmp_send(&mut self, id: SockId, data: &[u8], to: std::net::IpAddr) -> io::Result<Reply> {
        let socket = self.icmp_socket(id)?;
        match socket.send_slice(data, to.into()) {
            Ok(()) => Ok(Reply::Len(data.len())),
            Err(icmp::SendError::BufferFull) => Err(error::would_block()),
            Err(e) => Err(error::invalid(&format!("icmp send: {e}"))),
        }
    }

    fn icmp_recv(&mut self, id: SockId) -> io::Result<Reply> {
        let socket = self.icmp_socket(id)?;
        let (data, from) = socket.recv().map_err(|_| error::would_block())?;
        Ok(Reply::From(data.to_vec(), SocketAddr::new(from.into(), 0)))
    }

    fn readiness(&self, id: SockId) -> io::Result<Readiness> {
        Ok(match self.socks.get(&id).ok_or_else(error::bad_fd)? {
            Sock::Conn(c) => {
                let s = self.sockets.get::<tcp::Socket>(c.handle);
                let connecting = matches!(s.state(), tcp::State::SynSent | tcp::State::SynReceived);
                let hangup = !connecting && !s.may_recv();
                Readiness { readable: s.can_recv() || hangup, writable: s.can_send(), hangup }
            }
            Sock::Listener(l) => {
                let ready =
                    l.pending.iter().any(|c| is_synchronized(self.sockets.get::<tcp::Socket>(c.handle).state()));
                Readiness { readable: ready, ..Readiness::default() }
            }
            Sock::Udp(h, _) => {
                let s = self.sockets.get::<udp::Socket>(*h);
                Readiness { readable: s.can_recv(), writable: s.can_send(), hangup: false }
            }
            Sock::Icmp(h, _) => {
                let s = self.sockets.get::<icmp::Socket>(*h);
                Readiness { readable: s.can_recv(), writable: s.can_send(), hangup: false }
            }
        })
    }
}

fn ready_or_block(r: Readiness) -> io::Result<Reply> {
    if r.is_empty() {
        Err(error::would_block())
    } else {
        Ok(Reply::Ready(r))
    }
}

/// The connection has completed its handshake (and may since have closed).
fn is_synchronized(state: tcp::State) -> bool {
    !matches!(state, tcp::State::Closed | tcp::State::Listen | tcp::State::SynSent | tcp::State::SynReceived)
}
