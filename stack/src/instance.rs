//! One stack instance: a smoltcp interface and socket set on one NIC queue.
//!
//! [`Instance::poll`] is the whole life of a stack, sans-IO: execute the
//! application calls waiting in its RPC ring, take a burst from its NIC
//! queue and its soft ring, hand frames owned by other stacks to them, run
//! smoltcp's ingress one frame at a time (refilling listeners between
//! frames, since a smoltcp socket accepts exactly one connection), run
//! smoltcp's egress, reap closed sockets, and transmit. It never reads a
//! clock; the executor passes `now`.
//!
//! Sockets are addressed by instance-local [`SockId`]s. A listener keeps one
//! spare smoltcp socket in `Listen` state plus the connections that spare
//! sockets turned into, until `accept` takes them.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use ethdev::flow::{FlowAction, FlowAttr, FlowId, FlowItem, Ipv4Item, Ipv6Item, ItemSpec, TcpItem};
use ethdev::packet::PacketMeta;
use ethdev::{Instant, Mbuf, Owner};
use smoltcp::iface::{Config, Interface, PollIngressSingleResult, PollResult, SocketHandle, SocketSet};
use smoltcp::socket::{icmp, tcp, udp};
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};

use crate::device::{DeviceStats, QueueDevice};
use crate::dispatch::{discard, into_reply, opens_connection, src_ip, Bound, ConnKey, Discard, Route};
use crate::error;
use crate::group::{Fabric, Inbox, NicQueue, CONN_RULE_PRIORITY};
use crate::ports::Proto;
use crate::rpc::{BufSizes, Notify, Op, Readiness, Reply, Rpc};

/// A socket's id inside its stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SockId(u32);

/// Frames taken from the NIC queue per poll.
const RX_BURST: usize = 64;
/// RPCs executed per poll.
const RPC_BURST: usize = 256;
/// Datagrams a UDP or ICMP socket buffers.
const DGRAM_SLOTS: usize = 64;
/// Idle time after which a TCP socket sends a keep-alive (see `tcp_socket`).
const KEEP_ALIVE: smoltcp::time::Duration = smoltcp::time::Duration::from_millis(500);
/// How long a closed connection stays in TIME-WAIT before it is freed: long
/// enough for smoltcp's delayed ACK (10 ms) of the peer's FIN to go out.
/// dtnet does not hold ports for 2MSL.
const TIME_WAIT_LINGER: std::time::Duration = std::time::Duration::from_millis(20);

/// Counters of one stack instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StackStats {
    /// Frames taken from the NIC queue.
    pub nic_rx: u64,
    /// Frames given to the NIC queue.
    pub nic_tx: u64,
    /// Frames handed to another stack's soft ring.
    pub forwarded_out: u64,
    /// Frames received through the soft ring.
    pub forwarded_in: u64,
    /// Copies of neighbour replies made for the other stacks.
    pub broadcast_copies: u64,
    /// Frames lost because a soft ring was full or no mbuf was left to copy into.
    pub soft_drops: u64,
    /// Duplicate SYNs for a connection that already exists, dropped.
    pub dup_syn_drops: u64,
    /// SYNs dropped because the listener's accept queue was full.
    pub backlog_drops: u64,
    /// IP fragments discarded: the stacks do not reassemble.
    pub fragment_drops: u64,
    /// Echo requests to a broadcast or multicast address, ignored as Linux does.
    pub broadcast_echo_ignored: u64,
    /// Connections accepted by the application.
    pub accepted: u64,
    /// Connections the application started.
    pub connected: u64,
    /// Application calls executed.
    pub rpcs: u64,
    /// smoltcp device counters.
    pub device: DeviceStats,
}

/// A TCP connection socket and the rules that steer to it.
#[derive(Debug)]
struct Conn {
    handle: SocketHandle,
    key: Option<ConnKey>,
    flow: Option<FlowId>,
    /// Ephemeral port to release when the connection is gone.
    ephemeral: Option<u16>,
    established: bool,
}

#[derive(Debug)]
struct Listener {
    port: u16,
    backlog: usize,
    bufs: BufSizes,
    spare: Option<SocketHandle>,
    pending: VecDeque<Conn>,
}

#[derive(Debug)]
enum Sock {
    Conn(Conn),
    Listener(Listener),
    Udp(SocketHandle, u16),
    Icmp(SocketHandle, u16),
}

/// One stack instance. See the module documentation.
pub struct Instance {
    id: usize,
    fabric: Arc<Fabric>,
    inbox: Inbox,
    nic: NicQueue,
    iface: Interface,
    sockets: SocketSet<'static>,
    device: QueueDevice,
    socks: HashMap<SockId, Sock>,
    next_sock: u32,
    listen_ports: HashMap<u16, SockId>,
    conn_index: HashMap<ConnKey, SocketHandle>,
    /// Connections the application closed, with when each entered TIME-WAIT.
    closing: Vec<(Conn, Option<Instant>)>,
    waiters: Vec<Arc<Notify>>,
    burst: Vec<Mbuf>,
    now: Instant,
    changed: bool,
    stats: StackStats,
}

fn smol(now: Instant) -> SmolInstant {
    SmolInstant::from_micros((now.as_nanos() / 1000) as i64)
}

fn from_smol(t: SmolInstant) -> Instant {
    Instant::from_nanos(t.total_micros().max(0) as u64 * 1000)
}

impl Instance {
    /// Stack `id` of the group sharing `fabric`, reading its rings through
    /// `inbox` and polling its NIC queue through `nic`.
    pub(crate) fn new(id: usize, fabric: Arc<Fabric>, inbox: Inbox, nic: NicQueue) -> Instance {
        let cfg = &fabric.config;
        let owner = Owner(cfg.owner_base + id as u32);
        let mut device = QueueDevice::new(fabric.pool.clone(), fabric.tso_pool.clone(), owner, usize::from(cfg.mtu));
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(cfg.mac)));
        config.random_seed = cfg.seed ^ (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut iface = Interface::new(config, &mut device, SmolInstant::ZERO);
        iface.update_ip_addrs(|addrs| {
            let v4 = cfg.ipv4.map(|(a, len)| IpCidr::new(IpAddress::Ipv4(a), len));
            let v6 = cfg.ipv6.map(|(a, len)| IpCidr::new(IpAddress::Ipv6(a), len));
            addrs.extend(v4.into_iter().chain(v6));
        });
        if let Some(gw) = cfg.gateway {
            // Only fails when the route table is full, which a new one is not.
            let _ = iface.routes_mut().add_default_ipv4_route(gw);
        }
        Instance {
            id,
            fabric,
            inbox,
            nic,
            iface,
            sockets: SocketSet::new(Vec::new()),
            device,
            socks: HashMap::new(),
            next_sock: 1,
            listen_ports: HashMap::new(),
            conn_index: HashMap::new(),
            closing: Vec::new(),
            waiters: Vec::new(),
            burst: Vec::with_capacity(RX_BURST),
            now: Instant::ZERO,
            changed: false,
            stats: StackStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> StackStats {
        StackStats { device: self.device.stats, ..self.stats }
    }

    /// Does everything due at `now`; true if anything moved or changed.
    pub fn poll(&mut self, now: Instant) -> bool {
        self.now = self.now.max(now);
        let ts = smol(self.now);
        let mut worked = self.run_rpcs();
        worked |= self.receive();
        self.iface.poll_maintenance(ts);
        self.ingress(ts);
        self.changed |=
            self.iface.poll_egress(ts, &mut self.device, &mut self.sockets) == PollResult::SocketStateChanged;
        self.reap_closed();
        worked |= self.transmit();
        let changed = std::mem::take(&mut self.changed);
        if changed {
            self.waiters.drain(..).for_each(|n| n.fire());
        }
        worked || changed
    }

    /// When the stack next has something to do: now while frames or calls
    /// wait, else smoltcp's next timer. `None` when idle.
    pub fn poll_at(&mut self) -> Option<Instant> {
        let queued = !self.device.rx.is_empty()
            || !self.device.tx.is_empty()
            || !self.inbox.rpc.is_empty()
            || !self.inbox.soft.is_empty();
        if queued {
            return Some(self.now);
        }
        let timers = self.iface.poll_at(smol(self.now), &self.sockets).map(from_smol);
        timers.into_iter().chain(self.reap_at()).min()
    }

    /// Runs one application call now: a call that succeeds marks the stack
    /// changed (waiters are woken at the end of the next poll); one that
    /// would block leaves `notify` to be fired at the next change.
    pub(crate) fn run_call(
        &mut self,
        notify: Option<Arc<Notify>>,
        call: impl FnOnce(&mut Instance) -> io::Result<Reply>,
    ) -> io::Result<Reply> {
        let result = call(self);
        match (&result, notify) {
            (Err(e), Some(notify)) if e.kind() == io::ErrorKind::WouldBlock => self.waiters.push(notify),
            (Ok(_), _) => self.changed = true,
            _ => {}
        }
        result
    }

    fn run_rpcs(&mut self) -> bool {
        let mut n = 0;
        while let Some(Rpc { op, reply, notify }) = self.inbox.rpc.dequeue() {
            reply.set(self.run_call(notify, |s| s.execute(op)));
            n += 1;
            if n == RPC_BURST {
                break;
            }
        }
        self.stats.rpcs += n as u64;
        n > 0
    }

    // ---- receive side -------------------------------------------------

    fn receive(&mut self) -> bool {
        let mut burst = std::mem::take(&mut self.burst);
        let from_nic = self.nic.rx.rx_burst(&mut burst, RX_BURST);
        self.stats.nic_rx += from_nic as u64;
        for mbuf in burst.drain(..) {
            self.route(mbuf);
        }
        let from_soft = self.inbox.soft.dequeue_burst(&mut burst, RX_BURST);
        self.stats.forwarded_in += from_soft as u64;
        for mbuf in burst.drain(..) {
            let meta = PacketMeta::parse(mbuf.data()).ok();
            self.accept_local(mbuf, meta.as_ref());
        }
        self.burst = burst;
        from_nic + from_soft > 0
    }

    fn route(&mut self, mbuf: Mbuf) {
        let Ok(meta) = PacketMeta::parse(mbuf.data()) else {
            return self.device.rx.push_back(mbuf); // smoltcp counts and drops it
        };
        match discard(&meta, mbuf.data(), self.fabric.config.ipv4) {
            Some(Discard::Fragment) => return self.stats.fragment_drops += 1,
            Some(Discard::BroadcastEcho) => return self.stats.broadcast_echo_ignored += 1,
            None => {}
        }
        match self.fabric.tables.route(self.fabric.steers_tcp(), &meta, mbuf.data()) {
            Route::Owner(owner) if owner != self.id => self.hand_over(owner, mbuf),
            Route::Everyone => {
                self.copy_to_others(&mbuf, None);
                self.accept_local(mbuf, Some(&meta));
            }
            Route::EveryoneAsReply => {
                self.copy_to_others(&mbuf, Some(&meta));
                self.accept_local(mbuf, Some(&meta));
            }
            _ => self.accept_local(mbuf, Some(&meta)),
        }
    }

    fn hand_over(&mut self, owner: usize, mbuf: Mbuf) {
        match self.fabric.soft[owner].enqueue(mbuf) {
            Ok(()) => self.stats.forwarded_out += 1,
            Err(_dropped) => self.stats.soft_drops += 1,
        }
    }

    /// Copies a neighbour message to every other stack; with `as_reply`
    /// (the message's headers), the copies of a request become replies.
    fn copy_to_others(&mut self, mbuf: &Mbuf, as_reply: Option<&PacketMeta>) {
        let owner = Owner(self.fabric.config.owner_base + self.id as u32);
        let me = self.id;
        for other in (0..self.fabric.soft.len()).filter(|&o| o != me) {
            match mbuf.copy_to(&self.fabric.pool, owner) {
                Some(mut copy) => {
                    if let Some(meta) = as_reply {
                        into_reply(copy.data_mut(), meta);
                    }
                    self.stats.broadcast_copies += 1;
                    self.hand_over(other, copy);
                }
                None => self.stats.soft_drops += 1,
            }
        }
    }

    /// Queues a frame for smoltcp, unless it is a SYN that must not reach a
    /// listener: a duplicate for a connection that exists (smoltcp would give
    /// it to a fresh listening socket) or one beyond a full accept queue
    /// (Linux drops those too; the peer retransmits).
    fn accept_local(&mut self, mbuf: Mbuf, meta: Option<&PacketMeta>) {
        if let Some(stat) = meta.and_then(|m| self.syn_filter(m)) {
            *stat += 1;
            return;
        }
        self.device.rx.push_back(mbuf);
    }

    fn syn_filter(&mut self, meta: &PacketMeta) -> Option<&mut u64> {
        let (true, Some((sport, dport))) = (opens_connection(meta), meta.ports) else { return None };
        let peer = SocketAddr::new(src_ip(meta)?, sport);
        if self.conn_index.contains_key(&ConnKey { peer, local_port: dport }) {
            return Some(&mut self.stats.dup_syn_drops);
        }
        let id = self.listen_ports.get(&dport)?;
        match self.socks.get(id) {
            Some(Sock::Listener(l)) if l.spare.is_none() => Some(&mut self.stats.backlog_drops),
            _ => None,
        }
    }

    fn ingress(&mut self, ts: SmolInstant) {
        loop {
            match self.iface.poll_ingress_single(ts, &mut self.device, &mut self.sockets) {
                PollIngressSingleResult::None => break,
                PollIngressSingleResult::PacketProcessed => {}
                PollIngressSingleResult::SocketStateChanged => {
                    self.changed = true;
                    self.refill_listeners();
                }
            }
        }
    }

    /// Moves listening sockets that took a SYN to their listener's pending
    /// queue, registers the new connection, and opens a fresh spare.
    fn refill_listeners(&mut self) {
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

    // ---- transmit side ------------------------------------------------

    fn transmit(&mut self) -> bool {
        if self.device.tx.is_empty() {
            return false;
        }
        let sent = self.nic.tx.tx_burst(&mut self.device.tx);
        self.stats.nic_tx += sent as u64;
        sent > 0
    }

    // ---- sockets ------------------------------------------------------

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
        if self.fabric.config.mode == crate::config::ForwardMode::FlowDirector {
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
    fn reap_closed(&mut self) {
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
    fn reap_at(&self) -> Option<Instant> {
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
