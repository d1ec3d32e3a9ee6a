//! The primary's wire end of a shared port: the veth's wire, plus the pumps
//! between the veth's queues and the domain's rings, plus reclamation.
//!
//! Every poll (`put_rx`, `take_tx`) first moves what the veth classified
//! into each queue's domain rx ring, as much as the ring has room for (what
//! does not fit waits in the veth's ring, which counts `ring_full` when it
//! overflows, as a NIC's unpolled queue does), and moves what holders sent
//! on the domain tx rings into the veth's tx queues, as much as they take.
//! The wire end is the only producer of the rx rings and the only consumer
//! of the tx rings, so each ring keeps one writer per side. A frame a holder
//! sends with [`OlFlags::TX_LOOPBACK`] never reaches the veth: the wire end
//! puts it on rx ring `queue()` of the same port (a hairpin), which is how
//! one process hands a frame to another's queue, by reference and with
//! every buffer accounted for as any received frame is.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use ethdev::handover;
use ethdev::mbuf::{Mbuf, OlFlags};
use ethdev::mempool::{DeadOwner, Owner};
use ethdev::queue::{RxQueue, TxQueue};
use ethdev::shm::ring::{ShmConsumer, ShmProducer};
use ethdev::{EthDev, Wire};

use super::layout::{PortTotals, QueueCounter, Side};
use super::{Attached, PortError};
use crate::port::VethPort;
use crate::VethWire;

/// Frames moved per queue and per poll at most.
const BURST: usize = 64;
/// Polls between two publications of the port counters.
const PUBLISH_EVERY: u64 = 64;

/// The primary's wire end of a shared port (see [`super::SharedVeth::create`]).
pub struct SharedWire {
    wire: VethWire,
    port: VethPort,
    attached: Arc<Attached>,
    /// The veth's configuration generation the local handles belong to.
    generation: u64,
    local_rx: Vec<Box<dyn RxQueue>>,
    local_tx: Vec<Box<dyn TxQueue>>,
    rx_rings: Vec<ShmProducer>,
    tx_rings: Vec<ShmConsumer>,
    frames: Vec<Mbuf>,
    words: Vec<u64>,
    polls: u64,
}

/// What [`SharedWire::reclaim`] took back from a dead process, over all the ports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortReclaim {
    /// Queues it held, now free for another taker.
    pub queues: usize,
    /// Frames it had published on its tx rings, sent on.
    pub sent_on: usize,
    /// Frames it had published on its tx rings that the veth had no room
    /// for, freed.
    pub dropped: usize,
    /// Frames waiting in its rx rings, kept there in order for the queue's
    /// next holder.
    pub kept: usize,
    /// Words of its rx rings naming buffers it had claimed but not yet
    /// released from the ring, removed (the buffers are among `held`).
    pub stale: usize,
    /// Buffers of the port's pool it held.
    pub held: usize,
    /// Buffers its pool caches had stashed.
    pub cached: usize,
    /// Buffers it marked for sending but never published.
    pub unsent: usize,
    /// What still belonged to it afterwards: pool buffers with its mark
    /// and queues it held. 0 unless reclamation missed something.
    pub left: usize,
}

impl SharedWire {
    pub(super) fn new(port: VethPort, wire: VethWire, attached: Arc<Attached>) -> Result<SharedWire, PortError> {
        let rx_rings = attached.rx_rings.iter().map(ShmProducer::attach).collect::<Result<_, _>>()?;
        let tx_rings = attached.tx_rings.iter().map(ShmConsumer::attach).collect::<Result<_, _>>()?;
        let mut shared = SharedWire {
            wire,
            port,
            attached,
            generation: u64::MAX,
            local_rx: Vec::new(),
            local_tx: Vec::new(),
            rx_rings,
            tx_rings,
            frames: Vec::with_capacity(BURST),
            words: Vec::with_capacity(BURST),
            polls: 0,
        };
        shared.refresh()?;
        Ok(shared)
    }

    /// Takes the veth's queue handles again after a `configure` replaced them.
    fn refresh(&mut self) -> Result<(), PortError> {
        let generation = self.port.shared.generation.load(std::sync::atomic::Ordering::Acquire);
        if generation != self.generation {
            let header = &self.attached.header;
            self.local_rx = (0..header.queues(Side::Rx)).map(|q| self.port.rx_queue(q)).collect::<Result<_, _>>()?;
            self.local_tx = (0..header.queues(Side::Tx)).map(|q| self.port.tx_queue(q)).collect::<Result<_, _>>()?;
            self.generation = generation;
        }
        Ok(())
    }

    /// Moves classified frames from the veth's rx queues to the domain's.
    fn pump_rx(&mut self) {
        for queue in 0..self.rx_rings.len() {
            let room = self.rx_rings[queue].free_count().min(BURST);
            if room > 0 && self.local_rx[queue].rx_burst(&mut self.frames, room) > 0 {
                self.send_rx(queue as u16);
            }
        }
    }

    /// Puts `self.frames` on rx ring `queue`, copying each frame from
    /// outside the domain pool into it.
    fn send_rx(&mut self, queue: u16) {
        let mut frames = std::mem::take(&mut self.frames);
        self.send_rx_frames(queue, &mut frames);
        self.frames = frames;
    }

    /// Puts `frames` on rx ring `queue` (see [`Self::send_rx`]).
    fn send_rx_frames(&mut self, queue: u16, frames: &mut Vec<Mbuf>) {
        let (attached, words) = (&*self.attached, &mut self.words);
        let (header, mut bytes) = (&attached.header, 0);
        words.clear();
        for frame in frames.drain(..) {
            let frame = if attached.pool.owns(&frame) {
                frame
            } else if let Some(copy) = frame.copy_to(&attached.pool, attached.owner) {
                header.count(Side::Rx, queue, QueueCounter::Copied, 1);
                copy
            } else {
                header.count(Side::Rx, queue, QueueCounter::Dropped, 1);
                continue;
            };
            bytes += frame.len() as u64;
            words.push(frame.into_ref(0).to_word());
        }
        let sent = self.rx_rings[usize::from(queue)].enqueue_burst(words);
        // Less room than `free_count` said only if the holder wrote a tail
        // it never reached: take those back and count them.
        for &word in &words[sent..] {
            attached.claim(Side::Rx, queue, word);
            header.count(Side::Rx, queue, QueueCounter::Dropped, 1);
        }
        header.count(Side::Rx, queue, QueueCounter::Packets, sent as u64);
        header.count(Side::Rx, queue, QueueCounter::Bytes, bytes);
    }

    /// Puts `frames` on rx ring `queue` as they are, past the veth's
    /// classification: for a software forwarder standing in for the NIC
    /// (gazelle's ltran), which picks each frame's queue itself. A frame
    /// from outside the port's pool is copied into it; one the pool cannot
    /// hold or the ring has no room for is dropped and counted on the
    /// queue, as [`Wire::put_rx`] does. Drains `frames`; returns `false`,
    /// having dropped them all, if the port has no rx queue `queue`.
    pub fn deliver(&mut self, queue: u16, frames: &mut Vec<Mbuf>) -> bool {
        if usize::from(queue) >= self.rx_rings.len() {
            frames.clear();
            return false;
        }
        self.send_rx_frames(queue, frames);
        true
    }

    /// Moves what holders sent from the domain's tx rings to the veth's
    /// tx queues; returns how many frames moved.
    fn pump_tx(&mut self) -> usize {
        (0..self.tx_rings.len() as u16).map(|q| self.pump_tx_queue(q, BURST)).sum()
    }

    fn pump_tx_queue(&mut self, queue: u16, max: usize) -> usize {
        let index = usize::from(queue);
        let room = self.local_tx[index].free_count().min(max);
        let (attached, frames) = (&*self.attached, &mut self.frames);
        let taken = self.tx_rings[index].consume(room, |word| frames.extend(attached.claim(Side::Tx, queue, word)));
        let bytes = frames.iter().map(|m| m.len() as u64).sum();
        attached.header.count(Side::Tx, queue, QueueCounter::Packets, frames.len() as u64);
        attached.header.count(Side::Tx, queue, QueueCounter::Bytes, bytes);
        self.loop_back(queue);
        self.local_tx[index].tx_burst(&mut self.frames);
        // `free_count` said they fit; if the port stopped meanwhile they
        // did not, and are dropped as a stopped port drops them.
        self.attached.header.count(Side::Tx, queue, QueueCounter::Dropped, self.frames.len() as u64);
        self.frames.clear();
        taken
    }

    /// Takes the frames flagged [`OlFlags::TX_LOOPBACK`] out of what tx
    /// queue `from` just gave, and puts each on the rx ring its `queue()`
    /// names; one naming no queue of the port is dropped and counted on `from`.
    fn loop_back(&mut self, from: u16) {
        if !self.frames.iter().any(|m| m.flags().contains(OlFlags::TX_LOOPBACK)) {
            return;
        }
        let (mut looped, wire): (Vec<Mbuf>, Vec<Mbuf>) =
            self.frames.drain(..).partition(|m| m.flags().contains(OlFlags::TX_LOOPBACK));
        self.frames = wire;
        let queues = self.rx_rings.len();
        let before = looped.len();
        looped.retain(|m| usize::from(m.queue()) < queues);
        self.attached.header.count(Side::Tx, from, QueueCounter::Dropped, (before - looped.len()) as u64);
        looped.sort_by_key(Mbuf::queue);
        let mut batch = Vec::new();
        while let Some(target) = looped.first().map(Mbuf::queue) {
            let end = looped.iter().position(|m| m.queue() != target).unwrap_or(looped.len());
            batch.extend(looped.drain(..end).map(|mut m| {
                m.set_flags(m.flags() - OlFlags::TX_LOOPBACK);
                m
            }));
            self.send_rx_frames(target, &mut batch);
        }
    }

    /// Copies the veth's counters into the header for `dtnet stats` and
    /// secondaries (done every few polls by the wire end itself).
    pub fn publish_stats(&self) {
        let Ok(stats) = self.port.stats() else { return };
        let counters = &self.port.shared.counters;
        let drops = ethdev::stats::DropReason::ALL
            .iter()
            .map(|&r| (r, counters.rx_drops.get(r) + counters.tx_drops.get(r)))
            .collect();
        self.attached.header.publish(&PortTotals {
            ipackets: stats.ipackets,
            opackets: stats.opackets,
            imissed: stats.imissed,
            ierrors: stats.ierrors,
            oerrors: stats.oerrors,
            drops,
        });
    }

    fn poll(&mut self) {
        if self.refresh().is_err() {
            // The veth refused its own queues: configure left it without
            // them, and nothing can be pumped until it has them again.
            return;
        }
        self.pump_rx();
        self.pump_tx();
        self.polls += 1;
        if self.polls.is_multiple_of(PUBLISH_EVERY) {
            self.publish_stats();
        }
    }

    /// Takes back everything a dead process held of these ports (the
    /// wire ends of one primary, sharing pools or not): their queues, the
    /// frames it left in their rings, and the pools' buffers it held,
    /// stashed or was sending. Call it when the domain's control channel
    /// reports the death; the pools' other users keep running.
    ///
    /// The order matters, and spans all the ports. Every tx ring it held
    /// is read to the end first, so every buffer it published is sent on
    /// and only unpublished ones are left in transit by it. Every rx ring it
    /// held is rewritten next: frames still in transit are put back in
    /// order for the next holder, and words naming buffers it had claimed
    /// but not yet released from the ring are removed, before any pool
    /// frees those buffers (a freed buffer's word left in a ring could
    /// later name a new buffer). Only then do the pools' walks free what it
    /// held and stashed, and what it was sending. If the dead process also
    /// sent buffers of these pools on rings other than the ports', drain
    /// those before calling this.
    ///
    /// `wires` may be the wire ends themselves or anything that reaches
    /// them (`&mut SharedWire`, a lock's guard).
    pub fn reclaim<W: DerefMut<Target = SharedWire>>(wires: &mut [W], dead: &DeadOwner) -> PortReclaim {
        let mut out = PortReclaim::default();
        for wire in wires.iter_mut() {
            wire.release_queues(dead, &mut out);
        }
        for wire in wires.iter() {
            // Ports sharing a pool: the first walk frees, the others find nothing.
            let freed = wire.attached.pool.reclaim(dead);
            (out.held, out.cached) = (out.held + freed.held, out.cached + freed.cached);
            out.unsent += wire.attached.pool.reclaim_unsent(dead);
            wire.publish_stats();
        }
        out.left = Self::still_owned(wires, dead.owner());
        out
    }

    /// Buffers of the wires' pools (each pool once) marked with `owner`,
    /// and queues of their ports it holds.
    fn still_owned<W: Deref<Target = SharedWire>>(wires: &[W], owner: Owner) -> usize {
        let mut pools = std::collections::BTreeSet::new();
        let mut left = 0;
        for wire in wires {
            let header = &wire.attached.header;
            if pools.insert(wire.attached.pool.name().to_owned()) {
                left += wire.attached.pool.owned_by(owner);
            }
            for side in [Side::Rx, Side::Tx] {
                left += (0..header.queues(side)).filter(|&q| header.holder(side, q) == Some(owner)).count();
            }
        }
        left
    }

    /// Sends on what `dead` published on its tx rings, rewrites its rx
    /// rings, and lets go of its queues.
    fn release_queues(&mut self, dead: &DeadOwner, out: &mut PortReclaim) {
        let header = self.attached.header.clone();
        for queue in 0..header.queues(Side::Tx) {
            if header.holder(Side::Tx, queue) == Some(dead.owner()) {
                let (sent_on, dropped) = self.flush_tx(queue);
                (out.sent_on, out.dropped) = (out.sent_on + sent_on, out.dropped + dropped);
                out.queues += usize::from(header.release(Side::Tx, queue, dead.owner()));
            }
        }
        for queue in 0..header.queues(Side::Rx) {
            if header.holder(Side::Rx, queue) == Some(dead.owner()) {
                let (kept, stale) = self.rewrite_rx(queue);
                (out.kept, out.stale) = (out.kept + kept, out.stale + stale);
                out.queues += usize::from(header.release(Side::Rx, queue, dead.owner()));
            }
        }
    }

    /// Reads tx ring `queue` to the end: into the veth as far as it has
    /// room, the rest freed; returns (sent on, freed).
    fn flush_tx(&mut self, queue: u16) -> (usize, usize) {
        let mut moved = 0;
        loop {
            let n = self.pump_tx_queue(queue, usize::MAX);
            moved += n;
            if n == 0 {
                break;
            }
        }
        let (attached, ring) = (&*self.attached, &mut self.tx_rings[usize::from(queue)]);
        let mut freed = 0;
        ring.consume(usize::MAX, |word| freed += usize::from(attached.claim(Side::Tx, queue, word).is_some()));
        attached.header.count(Side::Tx, queue, QueueCounter::Dropped, freed as u64);
        (moved, freed)
    }

    /// Takes rx ring `queue` over from its dead holder: what is still in
    /// transit goes back in order for the next holder, the dead's claimed
    /// words are removed; returns (kept, removed).
    fn rewrite_rx(&mut self, queue: u16) -> (usize, usize) {
        let (attached, index) = (&*self.attached, usize::from(queue));
        let (zone, producer) = (&attached.rx_rings[index], &mut self.rx_rings[index]);
        let found = handover::requeue(zone, producer, &attached.table, attached.owner, 0).unwrap_or_default();
        (found.in_transit, found.stale)
    }
}

impl Drop for SharedWire {
    /// Frees what waits in the rx rings of queues nobody holds: the port
    /// goes with its wire end, and its pool returns to its baseline once
    /// the holders have let go.
    fn drop(&mut self) {
        let (attached, header) = (&*self.attached, &self.attached.header);
        for queue in (0..header.queues(Side::Rx)).filter(|&q| header.holder(Side::Rx, q).is_none()) {
            drop(handover::drain(&attached.rx_rings[usize::from(queue)], &attached.table, attached.owner));
        }
    }
}

impl Wire for SharedWire {
    fn put_rx(&mut self, frames: &mut Vec<Mbuf>) {
        self.wire.put_rx(frames);
        self.poll();
    }

    fn take_tx(&mut self, out: &mut Vec<Mbuf>, max: usize) -> usize {
        self.poll();
        self.wire.take_tx(out, max)
    }

    fn link_up(&self) -> bool {
        self.wire.link_up()
    }

    fn name(&self) -> &str {
        self.wire.name()
    }
}
