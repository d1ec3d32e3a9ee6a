//! The network-facing end of a veth: frames in from the cable, frames out.
//!
//! `put_rx` parses and classifies a burst (plain IPv4 TCP/UDP frames with
//! the fixed-offset parser when the port allows it), stages frames per queue,
//! then enqueues each queue's batch with one ring operation; what does not
//! fit is counted as `ring_full` (imissed). `take_tx` drains the transmit rings
//! round-robin and applies the transmit offloads each frame asks for; the
//! queue it starts from moves on after each take that moved frames, so the
//! order of frames sent at one instant depends on nothing but the port's
//! own traffic (a replay into a host reproduces it). Wrapping the wire end
//! in an [`ethdev::middleware::CaptureWire`] shows each burst in and out
//! to a capture.

use std::sync::Arc;

use ethdev::dev::{RxOffloads, TxOffloads};
use ethdev::mac::MacAddr;
use ethdev::mbuf::Mbuf;
use ethdev::packet::{Ipv4Flow, PacketMeta};
use ethdev::proto::ETHERNET_HEADER;
use ethdev::stats::DropReason;
use ethdev::Wire;

use crate::classify::{classify, classify_ipv4, rss_only, Placement};
use crate::offload;
use crate::port::{Shared, State, TxRing};

/// The wire end of a veth port (see [`crate::Veth::new`]).
pub struct VethWire {
    shared: Arc<Shared>,
    staged: Vec<Vec<Mbuf>>,
    staged_bytes: Vec<u64>,
    drained: Vec<Mbuf>,
    next_txq: usize,
}

impl VethWire {
    pub(crate) fn new(shared: Arc<Shared>) -> VethWire {
        VethWire { shared, staged: Vec::new(), staged_bytes: Vec::new(), drained: Vec::new(), next_txq: 0 }
    }
}

/// Receive classification for one burst: the port settings it reads,
/// fetched once.
struct Receiver<'a> {
    state: &'a State,
    mac: &'a MacAddr,
    promiscuous: bool,
    checksum: bool,
    /// No flow rules and no checksum offload: plain IPv4 TCP/UDP frames may
    /// skip the full header walk.
    fixed_parser: bool,
}

impl<'a> Receiver<'a> {
    fn new(shared: &'a Shared, state: &'a State) -> Receiver<'a> {
        let checksum = state.conf.rx_offloads.contains(RxOffloads::CHECKSUM);
        Receiver {
            state,
            mac: &shared.mac,
            promiscuous: shared.promiscuous.load(std::sync::atomic::Ordering::Relaxed),
            checksum,
            fixed_parser: rss_only(state) && !checksum,
        }
    }

    /// Classifies `mbuf` and records its queue, hash, mark and checksum
    /// flags; returns the queue, or why the frame is dropped.
    #[inline(always)]
    fn receive(&self, mbuf: &mut Mbuf) -> Result<u16, DropReason> {
        let flow = if self.fixed_parser { Ipv4Flow::parse(mbuf.data()) } else { None };
        let placement = match flow {
            Some(flow) => classify_ipv4(self.state, self.mac, self.promiscuous, mbuf.data(), &flow)?,
            None => self.classify_parsed(mbuf)?,
        };
        mbuf.set_queue(placement.queue);
        placement.hash.inspect(|&h| mbuf.set_rss_hash(h));
        placement.mark.inspect(|&m| mbuf.set_mark(m));
        Ok(placement.queue)
    }

    /// The full walk: parse, classify, and verify checksums if asked to.
    fn classify_parsed(&self, mbuf: &mut Mbuf) -> Result<Placement, DropReason> {
        let meta = PacketMeta::parse(mbuf.data()).map_err(|_| DropReason::Malformed)?;
        let placement = classify(self.state, self.mac, self.promiscuous, mbuf.len(), &meta)?;
        if self.checksum {
            let flags = mbuf.flags() | offload::verify_checksums(mbuf.data(), &meta);
            mbuf.set_flags(flags);
        }
        Ok(placement)
    }
}

impl Wire for VethWire {
    fn put_rx(&mut self, frames: &mut Vec<Mbuf>) {
        let shared = &*self.shared;
        shared.counters.rx_offered.add(frames.len() as u64);
        let state = shared.read();
        if !shared.running() {
            shared.counters.rx_drops.add(DropReason::LinkDown, frames.len() as u64);
            frames.clear();
            return;
        }
        let queues = state.rxq.len();
        self.staged.resize_with(queues.max(self.staged.len()), Vec::new);
        self.staged_bytes.resize(self.staged.len(), 0);
        let receiver = Receiver::new(shared, &state);
        for mut mbuf in frames.drain(..) {
            match receiver.receive(&mut mbuf) {
                Ok(queue) => {
                    self.staged_bytes[queue as usize] += mbuf.len() as u64;
                    self.staged[queue as usize].push(mbuf);
                }
                Err(reason) => shared.counters.rx_drops.add(reason, 1),
            }
        }
        enqueue_staged(shared, &state, &mut self.staged, &mut self.staged_bytes);
    }

    fn take_tx(&mut self, out: &mut Vec<Mbuf>, max: usize) -> usize {
        let Self { shared, drained, next_txq, .. } = self;
        let state = shared.read();
        let queues = state.txq.len();
        let before = out.len();
        let mut taken = 0;
        for i in 0..queues {
            if taken >= max {
                break;
            }
            let queue = &state.txq[(*next_txq + i) % queues];
            taken += queue.ring.dequeue_burst(drained, max - taken);
            transmit_drained(shared, &state, queue, drained, out);
        }
        if out.len() > before {
            // Rotating only when frames moved keeps the interleaving of
            // queues a function of this port's traffic alone.
            *next_txq = (*next_txq + 1) % queues.max(1);
        }
        out.len() - before
    }

    fn link_up(&self) -> bool {
        self.shared.running()
    }

    fn name(&self) -> &str {
        &self.shared.name
    }
}

/// Enqueues each receive queue's staged frames with one ring operation;
/// what does not fit is counted as `ring_full` and dropped.
fn enqueue_staged(shared: &Shared, state: &State, staged: &mut [Vec<Mbuf>], staged_bytes: &mut [u64]) {
    for ((frames, bytes), queue) in staged.iter_mut().zip(staged_bytes).zip(&state.rxq) {
        if frames.is_empty() {
            continue;
        }
        let moved = queue.ring.enqueue_burst(frames) as u64;
        let refused_bytes: u64 = frames.iter().map(|m| m.len() as u64).sum();
        queue.counters.packets.add(moved);
        queue.counters.bytes.add(*bytes - refused_bytes);
        if !frames.is_empty() {
            shared.counters.rx_drops.add(DropReason::RingFull, frames.len() as u64);
            frames.clear();
        }
        *bytes = 0;
    }
}

/// Applies transmit offloads to the frames just drained from `queue` and
/// appends what reaches the wire to `out`; counters are added once per burst.
fn transmit_drained(shared: &Shared, state: &State, queue: &TxRing, drained: &mut Vec<Mbuf>, out: &mut Vec<Mbuf>) {
    let counters = &shared.counters;
    let running = shared.running();
    let (start, mut done) = (out.len(), 0);
    for mbuf in drained.drain(..) {
        let result = if running { transmit_one(state, shared, mbuf, out) } else { Err(DropReason::LinkDown) };
        match result {
            Ok(()) => done += 1,
            Err(reason) => counters.tx_drops.add(reason, 1),
        }
    }
    let frames = (out.len() - start) as u64;
    counters.tx_done.add(done);
    counters.tso_extra.add(frames - done);
    queue.counters.packets.add(frames);
    queue.counters.bytes.add(out[start..].iter().map(|m| m.len() as u64).sum());
}

/// Sends one frame (or its TSO segments) to `out`, or says why not.
fn transmit_one(state: &State, shared: &Shared, mut mbuf: Mbuf, out: &mut Vec<Mbuf>) -> Result<(), DropReason> {
    let flags = mbuf.flags();
    let needs = offload::required(flags);
    let mtu = state.conf.mtu as usize;
    if needs.is_empty() && mbuf.len() <= mtu + ETHERNET_HEADER {
        out.push(mbuf);
        return Ok(());
    }
    if !state.conf.tx_offloads.contains(needs) {
        return Err(DropReason::BadOffload);
    }
    let meta = PacketMeta::parse(mbuf.data()).map_err(|_| DropReason::Malformed)?;
    if needs.contains(TxOffloads::TCP_TSO) {
        return offload::segment_tcp(&mbuf, &meta, &shared.pool, state.conf.mtu, out);
    }
    if mbuf.len() - meta.l3_offset as usize > mtu {
        return Err(DropReason::Oversize);
    }
    offload::fill_checksums(mbuf.data_mut(), &meta, flags)?;
    out.push(mbuf);
    Ok(())
}
