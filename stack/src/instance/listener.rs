//! TCP listeners with Linux's two queues.
//!
//! A smoltcp socket in `Listen` state turns into the connection of the
//! first SYN it takes, so a listener keeps one spare listening socket and
//! opens another each time the spare takes a SYN. The connections it makes
//! wait in two queues, as in Linux: the SYN queue while the handshake runs,
//! the accept queue once it is done, until `accept` takes them. The accept
//! queue holds at most the `listen` backlog. While it is full, the stack
//! behaves as Linux does with `tcp_abort_on_overflow = 0`: a new SYN finds
//! no spare and is dropped, and so is the segment that would complete a
//! handshake (the final ACK, or data after it); each drop is counted in
//! `backlog_drops` (Linux's `ListenOverflows`). The peers retransmit, and
//! once `accept` makes room their next try gets through: no connection is
//! refused. The SYN queue holds up to [`SYN_BACKLOG`] connections.

use std::collections::{BTreeMap, VecDeque};
use std::io;

use smoltcp::socket::tcp;

use ethdev::flow::FlowId;
use smoltcp::iface::SocketHandle;

use crate::dispatch::{Bound, ConnKey};
use crate::error;
use crate::rpc::{BufSizes, Reply, SockId};

use super::tcp_sets::Slot;
use super::Instance;

/// Connections a listener keeps in the handshake at once: Linux's default
/// `tcp_max_syn_backlog` on a machine with some memory (Linux answers
/// beyond it with SYN cookies where dtnet drops the SYN).
pub(crate) const SYN_BACKLOG: usize = 4096;

/// A TCP connection socket and the rules that steer to it.
#[derive(Debug)]
pub(super) struct Conn {
    pub(super) slot: Slot,
    pub(super) key: Option<ConnKey>,
    pub(super) flow: Option<FlowId>,
    /// Ephemeral port to release when the connection is gone.
    pub(super) ephemeral: Option<u16>,
    pub(super) established: bool,
}

/// What a [`SockId`] names.
#[derive(Debug)]
pub(super) enum Sock {
    Conn(Conn),
    Listener(Listener),
    Udp(SocketHandle, u16),
    Icmp(SocketHandle, u16),
}

/// The connection has completed its handshake (and may since have closed).
pub(super) fn is_synchronized(state: tcp::State) -> bool {
    !matches!(state, tcp::State::Closed | tcp::State::Listen | tcp::State::SynSent | tcp::State::SynReceived)
}

/// A TCP listener: its spare listening socket and its two queues.
#[derive(Debug)]
pub(super) struct Listener {
    pub(super) port: u16,
    /// Most connections the accept queue holds.
    pub(super) backlog: usize,
    pub(super) bufs: BufSizes,
    /// The socket the next SYN goes to; `None` while a queue is full.
    pub(super) spare: Option<Slot>,
    /// Connections in the handshake.
    syn_queue: BTreeMap<Slot, Conn>,
    /// Connections done with the handshake, oldest first.
    accept_queue: VecDeque<Conn>,
    /// Flow rules steering the port's new connections to this stack
    /// (tuple_filter across processes, see [`Instance::listen_rules`]).
    flows: Vec<FlowId>,
}

impl Listener {
    fn has_room(&self) -> bool {
        self.syn_queue.len() < SYN_BACKLOG && self.accept_queue.len() < self.backlog
    }
}

impl Instance {
    fn open_listening(&mut self, port: u16, bufs: BufSizes) -> Slot {
        let mut socket = Self::tcp_socket(bufs);
        // A fresh socket with a non-zero port always accepts `listen`.
        let _ = socket.listen(port);
        self.tcp.add(socket, self.now)
    }

    fn listener_mut(&mut self, id: SockId) -> Option<&mut Listener> {
        match self.socks.get_mut(&id) {
            Some(Sock::Listener(l)) => Some(l),
            _ => None,
        }
    }

    pub(super) fn listen(&mut self, port: u16, backlog: usize, bufs: BufSizes) -> SockId {
        let spare = Some(self.open_listening(port, bufs));
        let flows = self.listen_rules(port);
        let id = self.new_sock(Sock::Listener(Listener {
            port,
            backlog: backlog.max(1),
            bufs,
            spare,
            syn_queue: BTreeMap::new(),
            accept_queue: VecDeque::new(),
            flows,
        }));
        self.listen_ports.insert(port, id);
        self.fabric.tables.add_bound(Bound::TcpListen(port), self.id);
        id
    }

    /// Opens a spare listening socket for listener `id` if it has none and
    /// its queues have room.
    fn refill(&mut self, id: SockId) {
        let Some(l) = self.listener_mut(id) else { return };
        if l.spare.is_some() || !l.has_room() {
            return;
        }
        let (port, bufs) = (l.port, l.bufs);
        let spare = self.open_listening(port, bufs);
        if let Some(l) = self.listener_mut(id) {
            l.spare = Some(spare);
        }
    }

    /// After a frame reached the spare socket of listener `id`: if it took
    /// a SYN, its connection joins the SYN queue and a new spare opens.
    pub(super) fn spare_took_frame(&mut self, id: SockId) {
        let Some(Sock::Listener(l)) = self.socks.get_mut(&id) else { return };
        let Some(spare) = l.spare else { return };
        if self.tcp.get(spare).state() == tcp::State::Listen {
            return;
        }
        l.spare = None;
        let mut conn = Conn { slot: spare, key: None, flow: None, ephemeral: None, established: false };
        self.register_conn(&mut conn);
        self.half_open.insert(spare, id);
        if let Some(l) = self.listener_mut(id) {
            l.syn_queue.insert(spare, conn);
        }
        self.refill(id);
    }

    /// Whether a segment for connection `slot` must be dropped because it
    /// would complete a handshake while the listener's accept queue is full.
    pub(super) fn accept_queue_full(&self, slot: Slot) -> bool {
        let listener = self.half_open.get(&slot).and_then(|id| self.socks.get(id));
        matches!(listener, Some(Sock::Listener(l)) if l.accept_queue.len() >= l.backlog)
    }

    /// After a frame or a timer changed connection `slot`: if it completed
    /// the handshake, the connection moves to its listener's accept queue;
    /// if it was reset or timed out in the SYN queue, it leaves the queue
    /// and is freed, and the answer is true.
    pub(super) fn handshake_progress(&mut self, slot: Slot) -> bool {
        let Some(&id) = self.half_open.get(&slot) else { return false };
        let state = self.tcp.get(slot).state();
        if state == tcp::State::Closed {
            let conn = self.listener_mut(id).and_then(|l| l.syn_queue.remove(&slot));
            if let Some(conn) = conn {
                self.unregister_conn(&conn);
                self.refill(id);
                return true;
            }
            return false;
        }
        if !is_synchronized(state) {
            return false;
        }
        self.half_open.remove(&slot);
        if let Some(l) = self.listener_mut(id) {
            if let Some(conn) = l.syn_queue.remove(&slot) {
                l.accept_queue.push_back(conn);
            }
        }
        false
    }

    /// Whether `accept` on `l` would find a connection.
    pub(super) fn acceptable(&self, l: &Listener) -> bool {
        l.accept_queue.iter().any(|c| is_synchronized(self.tcp.get(c.slot).state()))
    }

    pub(super) fn accept(&mut self, id: SockId) -> io::Result<Reply> {
        self.prune_reset(id);
        let Some(l) = self.listener_mut(id) else {
            return Err(error::wrong_state("accept on a socket that is not listening"));
        };
        let mut conn = l.accept_queue.pop_front().ok_or_else(error::would_block)?;
        self.refill(id);
        conn.established = true;
        let socket = self.tcp.get(conn.slot);
        let (Some(peer), Some(local)) = (socket.remote_endpoint(), socket.local_endpoint()) else {
            return Err(error::not_connected());
        };
        self.stats.accepted += 1;
        tracing::debug!(stack = self.id, %peer, %local, "tcp accept");
        Ok(Reply::Accepted(self.new_sock(Sock::Conn(conn)), peer.into(), local.into()))
    }

    /// Drops queued connections that were reset before `accept` took them
    /// (the SYN queue's are dropped as they close, in `handshake_progress`:
    /// scanning it here made each accept cost the whole SYN queue).
    fn prune_reset(&mut self, id: SockId) {
        let Some(Sock::Listener(l)) = self.socks.get_mut(&id) else { return };
        let tcp = &self.tcp;
        let closed = |c: &Conn| tcp.get(c.slot).state() == tcp::State::Closed;
        let (live, dead): (VecDeque<Conn>, VecDeque<Conn>) = l.accept_queue.drain(..).partition(|c| !closed(c));
        l.accept_queue = live;
        dead.iter().for_each(|c| self.unregister_conn(c));
        self.refill(id);
    }

    pub(super) fn close_listener(&mut self, l: Listener) {
        for &flow in &l.flows {
            let _ = self.fabric.port.flow_destroy(flow);
        }
        self.listen_ports.remove(&l.port);
        self.fabric.tables.remove_bound(Bound::TcpListen(l.port), self.id);
        if let Some(spare) = l.spare {
            self.tcp.remove(spare);
        }
        for conn in l.syn_queue.into_values().chain(l.accept_queue) {
            self.half_open.remove(&conn.slot);
            self.tcp.get_mut(conn.slot, self.now).abort();
            self.closing.insert(conn.slot, (conn, None));
        }
    }
}
