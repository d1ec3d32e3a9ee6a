//! The data path of a stack instance: frames from the NIC queue and the
//! soft ring to smoltcp, and from smoltcp to the NIC queue.
//!
//! Each received frame is routed by the group's rule tables: kept, handed
//! over to the stack that owns it through that stack's soft ring, or (a
//! neighbour message) copied to every stack. SYNs that must not reach a
//! listener (duplicates of an existing connection, or beyond a full accept
//! queue) are counted and dropped here, before smoltcp sees them.

use std::net::SocketAddr;

use ethdev::packet::PacketMeta;
use ethdev::{Mbuf, Owner};
use smoltcp::iface::PollIngressSingleResult;
use smoltcp::time::Instant as SmolInstant;

use crate::dispatch::{discard, into_reply, opens_connection, src_ip, ConnKey, Discard, Route};

use super::sockets::Sock;
use super::{Instance, RX_BURST};

impl Instance {
    pub(super) fn receive(&mut self) -> bool {
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

    pub(super) fn ingress(&mut self, ts: SmolInstant) {
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

    pub(super) fn transmit(&mut self) -> bool {
        if self.device.tx.is_empty() {
            return false;
        }
        let sent = self.nic.tx.tx_burst(&mut self.device.tx);
        self.stats.nic_tx += sent as u64;
        sent > 0
    }
}
