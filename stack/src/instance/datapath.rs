//! The data path of a stack instance: frames from the NIC queue and the
//! soft ring to smoltcp, and from smoltcp to the NIC queue.
//!
//! Each received frame is routed by the group's rule tables: kept, handed
//! over to the stack that owns it through that stack's soft ring, or (a
//! neighbour message) copied to every stack, and by process 0's stack 0 in
//! tuple_filter mode to every other process sharing the port. SYNs that must not reach a
//! listener (duplicates of an existing connection, or beyond a full accept
//! queue) are counted and dropped here, one at a time just before smoltcp
//! would read them.

use std::net::SocketAddr;

use ethdev::packet::PacketMeta;
use ethdev::proto::PROTO_TCP;
use ethdev::{Mbuf, OlFlags};
use smoltcp::iface::PollIngressSingleResult;
use smoltcp::time::Instant as SmolInstant;

use crate::device::{RxFrame, RxKind};
use crate::dispatch::{discard, into_reply, is_neighbor_message, opens_connection, src_ip, ConnKey, Discard, Route};
use crate::kernel_share::{KernelShare, Share};
use crate::rpc::SockId;

use super::listener::Listener;
use super::listener::Sock;
use super::tcp_sets::Slot;
use super::{Instance, RX_BURST};

impl Instance {
    /// Takes frames from the soft ring, then from the NIC queue. The soft
    /// ring goes first to keep cause before effect: a stack copies a
    /// neighbour message to the others before it answers it, so a frame
    /// the answer brings about (an echo request to this stack, say) can
    /// only be on this queue once the copy is in the soft ring, and
    /// smoltcp must learn the neighbour before it answers that frame (it
    /// drops a reply to a neighbour it does not know).
    pub(super) fn receive(&mut self) -> bool {
        let mut burst = std::mem::take(&mut self.burst);
        let from_soft = self.inbox.soft.dequeue_burst(&mut burst, RX_BURST);
        self.stats.forwarded_in += from_soft as u64;
        for mbuf in burst.drain(..) {
            let meta = PacketMeta::parse(mbuf.data()).ok();
            self.accept_local(mbuf, meta.as_ref());
        }
        let from_nic = self.nic.rx.rx_burst(&mut burst, RX_BURST);
        self.stats.nic_rx += from_nic as u64;
        for mbuf in burst.drain(..) {
            self.route(mbuf);
        }
        self.burst = burst;
        let from_kernel = self.fabric.kernel.get().map_or(0, |k| k.take(&mut self.device.tx));
        self.stats.from_kernel += from_kernel as u64;
        from_nic + from_soft + from_kernel > 0
    }

    /// With a kernel sharing the NIC, hands it `mbuf` (or, for a neighbour
    /// message, a copy) if it is the kernel's; returns the frame if the
    /// stacks are to have it.
    fn offer_to_kernel(&mut self, mbuf: Mbuf, meta: &PacketMeta) -> Option<Mbuf> {
        let Some(kernel) = self.fabric.kernel.get() else { return Some(mbuf) };
        let neighbour = is_neighbor_message(meta, mbuf.data());
        let share = KernelShare::share(meta, neighbour, &self.fabric.ports());
        let (to_kernel, keep) = match share {
            Share::Stacks => return Some(mbuf),
            Share::Kernel => (Some(mbuf), None),
            Share::Both => (mbuf.copy_to(&self.fabric.pool, self.fabric.config.stack_owner(self.id)), Some(mbuf)),
        };
        match to_kernel {
            Some(frame) => {
                self.stats.to_kernel += 1;
                kernel.deliver(frame);
            }
            None => self.stats.soft_drops += 1,
        }
        keep
    }

    fn route(&mut self, mbuf: Mbuf) {
        if mbuf.flags().intersects(OlFlags::RX_IP_CKSUM_BAD | OlFlags::RX_L4_CKSUM_BAD) {
            return self.stats.checksum_drops += 1;
        }
        let Ok(meta) = PacketMeta::parse(mbuf.data()) else {
            return self.device.rx.push_back(RxFrame { mbuf, kind: RxKind::Other });
            // smoltcp counts and drops it
        };
        match discard(&meta, mbuf.data(), self.fabric.config.ipv4) {
            Some(Discard::Fragment) => return self.stats.fragment_drops += 1,
            Some(Discard::BroadcastEcho) => return self.stats.broadcast_echo_ignored += 1,
            None => {}
        }
        let Some(mbuf) = self.offer_to_kernel(mbuf, &meta) else { return };
        match self.fabric.tables.route(self.fabric.steers_tcp(), &meta, mbuf.data()) {
            Route::Owner(owner) if owner != self.id => self.hand_over(owner, mbuf),
            Route::Everyone => {
                self.copy_to_others(&mbuf, None);
                self.copy_to_processes(&mbuf, None);
                self.accept_local(mbuf, Some(&meta));
            }
            Route::EveryoneAsReply => {
                self.copy_to_others(&mbuf, Some(&meta));
                self.copy_to_processes(&mbuf, Some(&meta));
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
        let owner = self.fabric.config.stack_owner(self.id);
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

    /// In tuple_filter mode, process 0's stack 0 hands a copy of a
    /// neighbour message (a request's as a reply, see `copy_to_others`) to
    /// the first queue of each other process sharing the port, through the
    /// port's hairpin: their stacks learn the neighbours that only queue 0
    /// hears from.
    fn copy_to_processes(&mut self, mbuf: &Mbuf, as_reply: Option<&PacketMeta>) {
        if self.id != 0 {
            return;
        }
        let owner = self.fabric.config.stack_owner(0);
        for process in self.fabric.other_processes() {
            let Some(mut copy) = mbuf.copy_to(&self.fabric.pool, owner) else {
                self.stats.soft_drops += 1;
                continue;
            };
            if let Some(meta) = as_reply {
                into_reply(copy.data_mut(), meta);
            }
            copy.set_flags(OlFlags::TX_LOOPBACK);
            copy.set_queue((process * self.fabric.config.stacks) as u16);
            self.device.tx.push(copy);
            self.stats.process_copies += 1;
        }
    }

    /// Queues a frame for smoltcp, noting what it is (see [`RxKind`]).
    fn accept_local(&mut self, mbuf: Mbuf, meta: Option<&PacketMeta>) {
        let kind = meta.map_or(RxKind::Other, |m| rx_kind(m, mbuf.data()));
        self.device.rx.push_back(RxFrame { mbuf, kind });
    }

    /// smoltcp's ingress, one frame at a time, each with the socket set it
    /// is for: a TCP segment with its connection's socket, or with its
    /// listener's spare socket; anything else with the datagram sockets
    /// (where a TCP segment for no socket gets smoltcp's reset). A SYN that
    /// must not reach a listener is dropped first (see `syn_verdict`).
    pub(super) fn ingress(&mut self, ts: SmolInstant) {
        while let Some(kind) = self.device.rx.front().map(|f| f.kind) {
            let target = match kind {
                RxKind::Tcp { key, opens } => self.tcp_target(&key, opens),
                RxKind::Neighbor | RxKind::Other => Some(Target::Datagram),
            };
            let set = match target {
                None => {
                    self.device.rx.pop_front();
                    continue;
                }
                Some(Target::Conn(slot) | Target::Spare(_, slot)) => self.tcp.set_mut(slot),
                Some(Target::Datagram) => &mut self.sockets,
            };
            let result = self.iface.poll_ingress_single(ts, &mut self.device, set);
            self.changed |= result == PollIngressSingleResult::SocketStateChanged;
            match target {
                Some(Target::Conn(slot)) => {
                    self.tcp.wake(slot, self.now);
                    self.touch(slot);
                    self.handshake_progress(slot);
                }
                Some(Target::Spare(listener, slot)) => {
                    self.tcp.wake(slot, self.now);
                    self.spare_took_frame(listener);
                }
                // Sockets that waited for this neighbour may send now.
                Some(Target::Datagram) if kind == RxKind::Neighbor => self.tcp.wake_all(self.now),
                _ => {}
            }
        }
    }

    /// The socket set a TCP segment of connection `key` goes to, or `None`
    /// if the stack drops it, counted by why: a SYN (`opens`) duplicating a
    /// connection that exists (smoltcp would give it to a fresh listening
    /// socket), or a SYN or a handshake's last segment while the listener's
    /// queues are full (see the `listener` module). The check runs just
    /// before smoltcp would read the segment, since the frames before it in
    /// the same burst may have filled a queue.
    fn tcp_target(&mut self, key: &ConnKey, opens: bool) -> Option<Target> {
        if let Some(&slot) = self.conn_index.get(key) {
            if opens {
                self.stats.dup_syn_drops += 1;
                return None;
            }
            if self.accept_queue_full(slot) {
                self.stats.backlog_drops += 1;
                return None;
            }
            return Some(Target::Conn(slot));
        }
        let listener = self.listen_ports.get(&key.local_port).map(|&id| (id, self.socks.get(&id)));
        match listener {
            Some((id, Some(Sock::Listener(Listener { spare: Some(slot), .. })))) => Some(Target::Spare(id, *slot)),
            Some((_, Some(Sock::Listener(_)))) if opens => {
                self.stats.backlog_drops += 1;
                None
            }
            _ => Some(Target::Datagram),
        }
    }

    pub(super) fn transmit(&mut self) -> bool {
        if self.device.tx.is_empty() {
            return false;
        }
        let sent = self.nic.tx.tx_burst(&mut self.device.tx);
        self.stats.nic_tx += sent as u64;
        sent > 0
    }
}

/// The socket set a received frame goes to.
#[derive(Clone, Copy)]
enum Target {
    /// A connection's.
    Conn(Slot),
    /// The spare listening socket of listener `SockId`.
    Spare(SockId, Slot),
    /// The datagram sockets'.
    Datagram,
}

/// What a received frame is.
fn rx_kind(meta: &PacketMeta, frame: &[u8]) -> RxKind {
    if is_neighbor_message(meta, frame) {
        return RxKind::Neighbor;
    }
    let peer = src_ip(meta);
    match (meta.ip_proto, meta.ports, peer) {
        (Some(PROTO_TCP), Some((sport, dport)), Some(ip)) => RxKind::Tcp {
            key: ConnKey { peer: SocketAddr::new(ip, sport), local_port: dport },
            opens: opens_connection(meta),
        },
        _ => RxKind::Other,
    }
}
