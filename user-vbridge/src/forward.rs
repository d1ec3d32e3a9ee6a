//! The data path: `poll` and what happens to each frame.
//!
//! One `poll(now)` runs, in order: port state refresh (admin, wire link,
//! flap windows), FDB ageing, then for every port in turn its transmitted
//! frames in bursts (validate, ingress link, learn, look up, forward or
//! flood onto egress links) followed by the frames its ingress link releases,
//! then the releases of every egress link. Frames bound for a port are
//! handed to its wire in one `put_rx` per burst.
//!
//! On a perfect ingress link a frame goes from `take_tx` to `put_rx` without
//! touching the RNG, the delay queues or the allocator; a unicast frame is
//! the very buffer the sending port transmitted. A TCP super-frame (see
//! [`ethdev::Wire::takes_super_frames`]) crosses whole to a port whose wire
//! takes it over perfect links, and is cut into its segments, from the
//! bridge's pool, for one whose wire does not and before an impaired link,
//! so impairments act on wire segments as they always did. Taps record what
//! crosses each point: the super-frame from its port, the segments after a
//! cut.

use std::mem;

use ethdev::offload;
use ethdev::packet::PacketMeta;
use ethdev::stats::DropReason;
use ethdev::{Instant, Mbuf, OlFlags};

use crate::bridge::{Bridge, BURST};
use crate::frame::L2Header;
use crate::port::{Direction, PortId};

/// Bursts taken from one port per poll before moving on to the next.
const MAX_BURSTS_PER_POLL: usize = 16;

impl Bridge {
    /// Moves every frame that can move at `now` (the caller's clock; a time
    /// earlier than the last one seen counts as that one).
    pub fn poll(&mut self, now: Instant) {
        let now = self.now.max(now);
        self.now = now;
        self.refresh_ports(now);
        self.fdb.age(now);
        self.backlog = false;
        for index in 0..self.ports.len() {
            let port = PortId(index as u16);
            self.take_from(port, now);
            self.switch_released(port, now);
        }
        self.release_egress(now);
        self.deliver(now);
    }

    /// The earliest time something is pending: a delayed frame's release, a
    /// flap window opening, an FDB entry expiring, or now if a port still
    /// had frames to take. `None` when idle.
    pub fn poll_at(&self) -> Option<Instant> {
        let links = self.ports.iter().flat_map(|p| [&p.ingress, &p.egress]);
        let link_events = links.filter_map(|link| link.next_event(self.now));
        let backlog = self.backlog.then_some(self.now);
        link_events.chain(self.fdb.next_expiry()).chain(backlog).min()
    }

    /// Takes the port's transmitted frames burst by burst and starts each on
    /// its way.
    fn take_from(&mut self, port: PortId, now: Instant) {
        let mut burst = mem::take(&mut self.burst);
        for _ in 0..MAX_BURSTS_PER_POLL {
            let taken = self.ports[port.index()].wire.take_tx(&mut burst, BURST);
            for mbuf in burst.drain(..) {
                self.receive(port, mbuf, now);
            }
            self.deliver(now);
            if taken < BURST {
                self.burst = burst;
                return;
            }
        }
        self.burst = burst;
        self.backlog = true;
    }

    /// One frame from a port: capture, validate, then switch it at once
    /// (perfect link) or hand it to the impaired ingress link, which sees a
    /// super-frame as the segments it stands for.
    fn receive(&mut self, port: PortId, mbuf: Mbuf, now: Instant) {
        if self.taps.watches(port, Direction::Ingress) {
            self.taps.record(port, Direction::Ingress, now, mbuf.data());
        }
        if is_super(&mbuf) && !self.ports[port.index()].ingress.is_perfect() {
            let cut = self.cut_super(&mbuf);
            self.each_cut(cut, |bridge, segment| bridge.admit(port, segment, now));
            if let Err(reason) = cut {
                self.ports[port.index()].ingress.refuse(mbuf.len(), reason);
            }
            return;
        }
        self.admit(port, mbuf, now);
    }

    /// Validates a frame from a port, then switches it or hands it to the
    /// port's impaired ingress link.
    fn admit(&mut self, port: PortId, mbuf: Mbuf, now: Instant) {
        let state = &mut self.ports[port.index()];
        let verdict = match state.up {
            true => L2Header::accept(mbuf.data()),
            false => Err(DropReason::LinkDown),
        };
        match verdict {
            Err(reason) => state.ingress.refuse(mbuf.len(), reason),
            Ok(header) if state.ingress.is_perfect() => {
                let stats = state.ingress.stats_mut();
                stats.count_in(mbuf.len());
                stats.count_out(mbuf.len());
                self.switch(port, mbuf, header, now);
            }
            Ok(_) => state.ingress.send(mbuf, now, &self.copier, &mut self.ready),
        }
    }

    /// Switches what the port's impaired ingress link let through by `now`.
    fn switch_released(&mut self, port: PortId, now: Instant) {
        let mut ready = mem::take(&mut self.ready);
        self.ports[port.index()].ingress.release(now, true, &mut ready);
        for mbuf in ready.drain(..) {
            match L2Header::parse(mbuf.data()) {
                Some(header) => self.switch(port, mbuf, header, now),
                None => {
                    self.stats.switched += 1;
                    self.drop_in_switch(DropReason::Malformed);
                }
            }
        }
        self.ready = ready;
        self.deliver(now);
    }

    /// Learns the source, then forwards to the known port or floods.
    fn switch(&mut self, ingress: PortId, mbuf: Mbuf, header: L2Header, now: Instant) {
        self.stats.switched += 1;
        self.fdb.learn(header.src_key, ingress, now);
        let known = match header.group_destination() {
            true => None,
            false => self.fdb.lookup(header.dst_key),
        };
        match known {
            Some(egress) if egress == ingress && !self.ports[egress.index()].hairpin => {
                self.drop_in_switch(DropReason::NoEgress);
            }
            Some(egress) => {
                self.stats.forwarded += 1;
                self.offer(egress, mbuf, now);
            }
            None => self.flood(ingress, mbuf, now),
        }
    }

    /// Sends a frame to every up port but the ingress (unless it has
    /// hairpin): copies to all but the last, the original to the last.
    fn flood(&mut self, ingress: PortId, mbuf: Mbuf, now: Instant) {
        let hairpin = self.ports[ingress.index()].hairpin;
        let mut targets = mem::take(&mut self.targets);
        targets.clear();
        targets.extend(self.up_ports.iter().copied().filter(|&p| p != ingress || hairpin));
        match targets.split_last() {
            None => self.drop_in_switch(DropReason::NoEgress),
            Some((&last, others)) => {
                self.stats.flooded += 1;
                self.stats.flood_offers += targets.len() as u64;
                for &port in others {
                    self.offer_copy(port, &mbuf, now);
                }
                self.offer(last, mbuf, now);
            }
        }
        self.targets = targets;
    }

    fn offer_copy(&mut self, port: PortId, mbuf: &Mbuf, now: Instant) {
        match self.copier.copy(mbuf) {
            Some(copy) => self.offer(port, copy, now),
            None => self.ports[port.index()].egress.refuse(mbuf.len(), DropReason::NoMbuf),
        }
    }

    /// Puts a frame on a port's egress link; a super-frame bound for a wire
    /// that does not take them, or over an impaired egress link, is cut into
    /// its segments first.
    fn offer(&mut self, port: PortId, mbuf: Mbuf, now: Instant) {
        let state = &self.ports[port.index()];
        if is_super(&mbuf) && !(state.wire.takes_super_frames() && state.egress.is_perfect()) {
            let cut = self.cut_super(&mbuf);
            self.stats.cut_extra += self.cut.len().saturating_sub(1) as u64;
            self.each_cut(cut, |bridge, segment| bridge.offer_one(port, segment, now));
            if let Err(reason) = cut {
                self.ports[port.index()].egress.refuse(mbuf.len(), reason);
            }
            return;
        }
        self.offer_one(port, mbuf, now);
    }

    /// Cuts a super-frame into its segments, from the bridge's pool, into
    /// `self.cut` (the sender checked their size against its MTU).
    fn cut_super(&mut self, mbuf: &Mbuf) -> Result<(), DropReason> {
        let meta = PacketMeta::parse(mbuf.data()).map_err(|_| DropReason::Malformed)?;
        offload::segment_tcp(mbuf, &meta, &self.copier.pool, u16::MAX, &mut self.cut)
            .inspect_err(|_| self.cut.clear())?;
        offload::inherit_checksum_trust(mbuf.flags(), &mut self.cut);
        Ok(())
    }

    /// Hands each segment [`Bridge::cut_super`] made to `then`, if it cut any.
    fn each_cut(&mut self, cut: Result<(), DropReason>, mut then: impl FnMut(&mut Self, Mbuf)) {
        if cut.is_ok() {
            let mut segments = mem::take(&mut self.cut);
            segments.drain(..).for_each(|segment| then(self, segment));
            self.cut = segments;
        }
    }

    /// Puts one frame on a port's egress link.
    fn offer_one(&mut self, port: PortId, mbuf: Mbuf, now: Instant) {
        let state = &mut self.ports[port.index()];
        if !state.up {
            state.egress.refuse(mbuf.len(), DropReason::LinkDown);
            return;
        }
        let was_empty = state.out.is_empty();
        state.egress.send(mbuf, now, &self.copier, &mut state.out);
        if was_empty && !state.out.is_empty() {
            self.dirty.push(port);
        }
    }

    fn drop_in_switch(&mut self, reason: DropReason) {
        self.stats.drops.add(reason, 1);
    }

    /// Moves frames due on egress links to their ports' output bursts.
    fn release_egress(&mut self, now: Instant) {
        for (index, state) in self.ports.iter_mut().enumerate() {
            if state.egress.in_flight() == 0 {
                continue;
            }
            let was_empty = state.out.is_empty();
            state.egress.release(now, state.up, &mut state.out);
            if was_empty && !state.out.is_empty() {
                self.dirty.push(PortId(index as u16));
            }
        }
    }

    /// Hands every pending output burst to its port's wire.
    fn deliver(&mut self, now: Instant) {
        for port in self.dirty.drain(..) {
            let state = &mut self.ports[port.index()];
            if self.taps.watches(port, Direction::Egress) {
                for mbuf in &state.out {
                    self.taps.record(port, Direction::Egress, now, mbuf.data());
                }
            }
            state.wire.put_rx(&mut state.out);
            state.out.clear();
        }
    }
}

/// Whether a frame is a TCP super-frame, still carrying its TSO request.
fn is_super(mbuf: &Mbuf) -> bool {
    mbuf.flags().contains(OlFlags::TX_TCP_SEG)
}
