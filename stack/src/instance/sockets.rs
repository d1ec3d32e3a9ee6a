//! The socket operations of a stack instance: what application calls do.
//!
//! [`Instance::execute`] runs one [`Op`] on the instance's smoltcp sockets
//! and answers with a [`Reply`], or fails with `WouldBlock` when the caller
//! must wait. Sockets are addressed by [`SockId`]; each names a TCP
//! connection (with the rule-table entry and flow rule that steer its
//! frames here), a listener, or a UDP or ICMP socket. Connections the
//! application closed are kept until TCP is done with them and reaped by
//! the poll loop.

use std::io;
use std::net::{IpAddr, SocketAddr};

use ethdev::flow::{tcp_steering, FlowAction, FlowAttr, FlowId};
use ethdev::Instant;
use smoltcp::socket::{icmp, tcp, udp};

use crate::dispatch::{Bound, ConnKey};
use crate::error;
use crate::fabric::{CONN_RULE_PRIORITY, LISTEN_RULE_PRIORITY};
use crate::ports::Proto;
use crate::rpc::{BufSizes, Op, Readiness, Reply, SockId};

use super::listener::{Conn, Sock};
use super::tcp_sets::Slot;
use super::{from_smol, Instance};

/// Datagrams a UDP or ICMP socket buffers.
const DGRAM_SLOTS: usize = 64;
/// Idle time after which a TCP socket sends a keep-alive (see `tcp_socket`).
const KEEP_ALIVE: smoltcp::time::Duration = smoltcp::time::Duration::from_millis(500);
/// How long a closed connection stays in TIME-WAIT before it is freed: long
/// enough for smoltcp's delayed ACK (10 ms) of the peer's FIN to go out.
/// dtnet does not hold ports for 2MSL.
const TIME_WAIT_LINGER: std::time::Duration = std::time::Duration::from_millis(20);

impl Instance {
    pub(super) fn new_sock(&mut self, sock: Sock) -> SockId {
        let id = SockId(self.next_sock);
        self.next_sock += 1;
        self.socks.insert(id, sock);
        id
    }

    pub(super) fn tcp_socket(bufs: BufSizes) -> tcp::Socket<'static> {
        let mut socket =
            tcp::Socket::new(tcp::SocketBuffer::new(vec![0; bufs.rx]), tcp::SocketBuffer::new(vec![0; bufs.tx]));
        // smoltcp 0.14 probes a zero window only while data is queued, not
        // when just a FIN is left to send: if the peer's window update is
        // lost, the close would wait forever. A keep-alive makes the peer
        // answer with its current window.
        socket.set_keep_alive(Some(KEEP_ALIVE));
        socket
    }

    /// Records a connection's tuple so SYN duplicates are filtered and, in
    /// steering modes, frames reach this stack (rule table, flow rule).
    pub(super) fn register_conn(&mut self, conn: &mut Conn) {
        let socket = self.tcp.get(conn.slot);
        let (Some(local), Some(remote)) = (socket.local_endpoint(), socket.remote_endpoint()) else { return };
        let key = ConnKey { peer: remote.into(), local_port: local.port };
        self.conn_index.insert(key, conn.slot);
        if self.fabric.steers_tcp() {
            self.fabric.tables.add_conn(key, self.id);
        }
        if self.fabric.registers_flows() {
            conn.flow = self.flow_rule(key, local.into());
        }
        conn.key = Some(key);
    }

    fn flow_rule(&mut self, key: ConnKey, local: SocketAddr) -> Option<FlowId> {
        let pattern = tcp_steering(Some(key.peer), local)?;
        let actions = [FlowAction::Queue(self.fabric.queue_of(self.id))];
        // A full flow table leaves the connection to software forwarding.
        let rule = self.fabric.port.flow_create(&FlowAttr::ingress(CONN_RULE_PRIORITY), &pattern, &actions);
        if let Err(e) = &rule {
            tracing::debug!(stack = self.id, %e, "no flow rule for a connection");
            self.stats.flow_rules_refused += 1;
        }
        rule.ok()
    }

    /// Across processes (tuple_filter or ltran), rules steering SYNs for
    /// `port` (from anyone, to each of the group's addresses) to this
    /// stack's queue: the NIC hands new connections to the process that
    /// listens, where gazelle's process 0 would pass them on by software,
    /// and the ltran forwarder learns of one more listener to balance new
    /// connections over. A refused rule is counted, and leaves those SYNs
    /// to process 0 (tuple_filter) or to the other listeners (ltran).
    pub(super) fn listen_rules(&mut self, port: u16) -> Vec<FlowId> {
        if self.fabric.config.process.is_none() || !self.fabric.registers_flows() {
            return Vec::new();
        }
        let config = &self.fabric.config;
        let addrs = [config.ipv4.map(|(a, _)| IpAddr::V4(a)), config.ipv6.map(|(a, _)| IpAddr::V6(a))];
        let mut flows = Vec::new();
        for addr in addrs.into_iter().flatten() {
            let Some(pattern) = tcp_steering(None, SocketAddr::new(addr, port)) else { continue };
            let (attr, actions) =
                (FlowAttr::ingress(LISTEN_RULE_PRIORITY), [FlowAction::Queue(self.fabric.queue_of(self.id))]);
            match self.fabric.port.flow_create(&attr, &pattern, &actions) {
                Ok(flow) => flows.push(flow),
                Err(e) => {
                    tracing::debug!(stack = self.id, %e, "no flow rule for a listener");
                    self.stats.flow_rules_refused += 1;
                }
            }
        }
        flows
    }

    pub(super) fn unregister_conn(&mut self, conn: &Conn) {
        self.touch(conn.slot);
        self.half_open.remove(&conn.slot);
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
        self.tcp.remove(conn.slot);
    }

    /// After smoltcp's egress on `slot`: frees the connection if the
    /// application closed it and TCP is done with it (closed, or in
    /// TIME-WAIT for [`TIME_WAIT_LINGER`]) and answers `None`; else answers
    /// when it is next due: smoltcp's deadline, or the end of its linger.
    pub(super) fn next_due(&mut self, slot: Slot, ts: smoltcp::time::Instant) -> Option<Option<Instant>> {
        let due = self.tcp.poll_at(slot, &mut self.iface, ts).map(from_smol);
        let Some((_, since)) = self.closing.get_mut(&slot) else { return Some(due) };
        let linger_end = match self.tcp.get(slot).state() {
            tcp::State::Closed => self.now,
            tcp::State::TimeWait => *since.get_or_insert(self.now) + TIME_WAIT_LINGER,
            _ => return Some(due),
        };
        if linger_end > self.now {
            return Some(Some(due.map_or(linger_end, |t| t.min(linger_end))));
        }
        if let Some((conn, _)) = self.closing.remove(&slot) {
            self.unregister_conn(&conn);
        }
        None
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
            Op::UserTimeout(id, after) => {
                let after = after.map(|d| smoltcp::time::Duration::from_micros(d.as_micros() as u64));
                self.with_conn(id, |s| s.set_timeout(after)).map(|()| Reply::Done)
            }
            Op::UdpBind { port, bufs } => Ok(Reply::Sock(self.udp_bind(port, bufs))),
            Op::UdpSend(id, data, to) => self.udp_send(id, &data, to),
            Op::UdpRecv(id, n) => self.udp_recv(id, n),
            Op::IcmpBind(ident) => Ok(Reply::Sock(self.icmp_bind(ident))),
            Op::IcmpSend(id, data, to) => self.icmp_send(id, &data, to),
            Op::IcmpRecv(id) => self.icmp_recv(id),
            Op::Poll(id, interest) => self.readiness(id).map(|r| r.filter(interest)).and_then(ready_or_block),
        }
    }

    fn connect(&mut self, local: SocketAddr, remote: SocketAddr, bufs: BufSizes, nodelay: bool) -> io::Result<Reply> {
        let mut socket = Self::tcp_socket(bufs);
        socket.set_nagle_enabled(!nodelay);
        socket.connect(self.iface.context(), remote, local).map_err(|e| error::invalid(&format!("connect: {e}")))?;
        let slot = self.tcp.add(socket, self.now);
        let mut conn = Conn { slot, key: None, flow: None, ephemeral: Some(local.port()), established: false };
        self.register_conn(&mut conn);
        self.stats.connected += 1;
        tracing::debug!(stack = self.id, %local, %remote, "tcp connect");
        Ok(Reply::Sock(self.new_sock(Sock::Conn(conn))))
    }

    /// The slot of connection `id`, if it names one.
    pub(super) fn conn_slot(&self, id: SockId) -> Option<Slot> {
        match self.socks.get(&id) {
            Some(Sock::Conn(c)) => Some(c.slot),
            _ => None,
        }
    }

    fn conn_socket(&mut self, id: SockId) -> io::Result<(&mut Conn, &mut tcp::Socket<'static>)> {
        match self.socks.get_mut(&id) {
            Some(Sock::Conn(c)) => {
                let slot = c.slot;
                Ok((c, self.tcp.get_mut(slot, self.now)))
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
                let socket = self.tcp.get_mut(conn.slot, self.now);
                tracing::debug!(stack = self.id, state = %socket.state(), "tcp close");
                if socket.state() == tcp::State::SynSent {
                    socket.abort();
                } else {
                    socket.close();
                }
                self.closing.insert(conn.slot, (conn, None));
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
                let s = self.tcp.get(c.slot);
                let connecting = matches!(s.state(), tcp::State::SynSent | tcp::State::SynReceived);
                let hangup = !connecting && !s.may_recv();
                Readiness { readable: s.can_recv() || hangup, writable: s.can_send(), hangup }
            }
            Sock::Listener(l) => Readiness { readable: self.acceptable(l), ..Readiness::default() },
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
