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
//!
//! Super-frames: a wire end told to send them ([`VethWire::send_super_frames`])
//! lets a TSO request larger than the MTU cross whole, checksums filled in,
//! as Linux passes a GSO packet across a veth pair; its counters count the
//! segments it stands for. On receive a veth always takes super-frames
//! ([`Wire::takes_super_frames`]): whole, flagged `RX_LRO`, when large
//! receive offload is on, else cut into MTU-sized segments from the port's
//! own pool, as the segments a NIC without LRO would have received.

use std::sync::Arc;

use ethdev::dev::{RxOffloads, TxOffloads};
use ethdev::mac::MacAddr;
use ethdev::mbuf::{Mbuf, OlFlags};
use ethdev::mempool::Mempool;
use ethdev::packet::{Ipv4Flow, PacketMeta};
use ethdev::proto::ETHERNET_HEADER;
use ethdev::stats::DropReason;
use ethdev::Wire;

use crate::classify::{classify, classify_ipv4, rss_only, Placement};
use crate::port::{Shared, State, TxRing};
use ethdev::offload;

/// The wire end of a veth port (see [`crate::Veth::new`]).
pub struct VethWire {
    shared: Arc<Shared>,
    staged: Vec<Vec<Mbuf>>,
    staged_bytes: Vec<u64>,
    drained: Vec<Mbuf>,
    /// Segments cut from received super-frames, waiting to be classified.
    cut: Vec<Mbuf>,
    next_txq: usize,
    /// Whether TSO requests larger than the MTU leave whole.
    super_frames: bool,
}

impl VethWire {
    pub(crate) fn new(shared: Arc<Shared>) -> VethWire {
        VethWire {
            shared,
            staged: Vec::new(),
            staged_bytes: Vec::new(),
            drained: Vec::new(),
            cut: Vec::new(),
            next_txq: 0,
            super_frames: false,
        }
    }

    /// Sends TSO requests larger than the MTU whole, as super-frames (see
    /// the module doc), if `on`; for a wire whose receivers take them
    /// (a bridge cuts them for a port that does not). Off by default.
    pub fn send_super_frames(&mut self, on: bool) {
        self.super_frames = on;
    }
}

/// Receive classification for one burst: the port settings it reads,
/// fetched once.
struct Receiver<'a> {
    state: &'a State,
    mac: &'a MacAddr,
    promiscuous: bool,
    checksum: bool,
    /// Large receive offload: super-frames go up whole.
    lro: bool,
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
            lro: state.conf.rx_offloads.contains(RxOffloads::TCP_LRO),
            fixed_parser: rss_only(state) && !checksum,
        }
    }

    /// Classifies `mbuf`, whose part from layer 3 on may be up to `max_l3`
    /// bytes, and records its queue, hash, mark and checksum flags; returns
    /// the queue, or why the frame is dropped.
    #[inline(always)]
    fn receive(&self, mbuf: &mut Mbuf, max_l3: usize) -> Result<u16, DropReason> {
        // The sender's word on its checksums is for this port alone.
        let filled = mbuf.flags().contains(OlFlags::CKSUM_FILLED);
        if filled {
            mbuf.set_flags(mbuf.flags() - OlFlags::CKSUM_FILLED);
        }
        let flow = if self.fixed_parser { Ipv4Flow::parse(mbuf.data()) } else { None };
        let placement = match flow {
            Some(flow) => classify_ipv4(self.state, self.mac, self.promiscuous, mbuf.data(), &flow, max_l3)?,
            None => self.classify_parsed(mbuf, max_l3, filled)?,
        };
        mbuf.set_queue(placement.queue);
        placement.hash.inspect(|&h| mbuf.set_rss_hash(h));
        placement.mark.inspect(|&m| mbuf.set_mark(m));
        Ok(placement.queue)
    }

    /// The full walk: parse, classify, and verify checksums if asked to
    /// (believing them if the sending port `filled` them all in).
    fn classify_parsed(&self, mbuf: &mut Mbuf, max_l3: usize, filled: bool) -> Result<Placement, DropReason> {
        let meta = PacketMeta::parse(mbuf.data()).map_err(|_| DropReason::Malformed)?;
        let placement = classify(self.state, self.mac, self.promiscuous, mbuf.len(), &meta, max_l3)?;
        if self.checksum {
            let flags = mbuf.flags() | offload::receive_checksums(mbuf.data(), &meta, filled);
            mbuf.set_flags(flags);
        }
        Ok(placement)
    }

    /// A super-frame from the wire: whole, as one large segment, with large
    /// receive offload (returns it), else cut into MTU-sized segments from
    /// the port's pool and appended to `cut` (returns `None`).
    fn take_super(&self, pool: &Mempool, mut mbuf: Mbuf, cut: &mut Vec<Mbuf>) -> Result<Option<Mbuf>, DropReason> {
        let meta = PacketMeta::parse(mbuf.data()).map_err(|_| DropReason::Malformed)?;
        let wire_flags = OlFlags::TX_IP_CKSUM | OlFlags::TX_L4_CKSUM | OlFlags::TX_TCP_SEG;
        if self.lro {
            // Its segments must each fit this port's MTU, as on the wire.
            offload::tso_segments(&mbuf, &meta, self.state.conf.mtu)?;
            mbuf.set_flags((mbuf.flags() - wire_flags) | OlFlags::RX_LRO);
            return Ok(Some(mbuf));
        }
        let start = cut.len();
        offload::segment_tcp(&mbuf, &meta, pool, self.state.conf.mtu, cut)?;
        for segment in &mut cut[start..] {
            segment.set_flags(segment.flags() - wire_flags);
        }
        offload::inherit_checksum_trust(mbuf.flags(), &mut cut[start..]);
        Ok(None)
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
        let mut stage = Stager { receiver: &receiver, shared, staged: &mut self.staged, bytes: &mut self.staged_bytes };
        for mbuf in frames.drain(..) {
            if !mbuf.flags().contains(OlFlags::TX_TCP_SEG) {
                stage.stage(mbuf, state.conf.mtu as usize);
                continue;
            }
            match receiver.take_super(&shared.pool, mbuf, &mut self.cut) {
                Ok(Some(whole)) => stage.stage(whole, LRO_MAX_L3),
                Ok(None) => {
                    shared.counters.rx_cut_extra.add(self.cut.len() as u64 - 1);
                    self.cut.drain(..).for_each(|segment| stage.stage(segment, state.conf.mtu as usize));
                }
                Err(reason) => shared.counters.rx_drops.add(reason, 1),
            }
        }
        enqueue_staged(shared, &state, &mut self.staged, &mut self.staged_bytes);
    }

    fn take_tx(&mut self, out: &mut Vec<Mbuf>, max: usize) -> usize {
        let Self { shared, drained, next_txq, super_frames, .. } = self;
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
            transmit_drained(shared, &state, queue, drained, out, *super_frames);
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

    fn takes_super_frames(&self) -> bool {
        true
    }
}

/// Largest layer-3 part of a super-frame taken whole: what an IPv4 total
/// length can say.
const LRO_MAX_L3: usize = u16::MAX as usize;

/// Classifies received frames into per-queue staging.
struct Stager<'a> {
    receiver: &'a Receiver<'a>,
    shared: &'a Shared,
    staged: &'a mut [Vec<Mbuf>],
    bytes: &'a mut [u64],
}

impl Stager<'_> {
    /// Stages `mbuf` (layer 3 up to `max_l3` bytes) on its queue, or counts
    /// why it is dropped.
    #[inline(always)]
    fn stage(&mut self, mut mbuf: Mbuf, max_l3: usize) {
        match self.receiver.receive(&mut mbuf, max_l3) {
            Ok(queue) => {
                self.bytes[queue as usize] += mbuf.len() as u64;
                self.staged[queue as usize].push(mbuf);
            }
            Err(reason) => self.shared.counters.rx_drops.add(reason, 1),
        }
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
/// appends what reaches the wire to `out` (super-frames whole if
/// `super_frames`); counters are added once per burst, a super-frame
/// counting as the segments it stands for.
fn transmit_drained(
    shared: &Shared,
    state: &State,
    queue: &TxRing,
    drained: &mut Vec<Mbuf>,
    out: &mut Vec<Mbuf>,
    super_frames: bool,
) {
    let counters = &shared.counters;
    let running = shared.running();
    let (start, mut done, mut segments) = (out.len(), 0, 0);
    for mbuf in drained.drain(..) {
        let result =
            if running { transmit_one(state, shared, mbuf, out, super_frames) } else { Err(DropReason::LinkDown) };
        match result {
            Ok(n) => {
                done += 1;
                segments += n as u64;
            }
            Err(reason) => counters.tx_drops.add(reason, 1),
        }
    }
    counters.tx_done.add(done);
    counters.tso_extra.add(segments - done);
    queue.counters.packets.add(segments);
    queue.counters.bytes.add(out[start..].iter().map(|m| m.len() as u64).sum());
}

/// Sends one frame (or its TSO segments, or it whole as a super-frame if
/// `super_frames`) to `out`, or says why not; returns the number of wire
/// segments it makes.
fn transmit_one(
    state: &State,
    shared: &Shared,
    mut mbuf: Mbuf,
    out: &mut Vec<Mbuf>,
    super_frames: bool,
) -> Result<usize, DropReason> {
    let flags = mbuf.flags();
    if flags.contains(OlFlags::TX_LOOPBACK) {
        return Err(DropReason::BadOffload);
    }
    let needs = offload::required(flags);
    let mtu = state.conf.mtu as usize;
    if needs.is_empty() && mbuf.len() <= mtu + ETHERNET_HEADER {
        out.push(mbuf);
        return Ok(1);
    }
    if !state.conf.tx_offloads.contains(needs) {
        return Err(DropReason::BadOffload);
    }
    let meta = PacketMeta::parse(mbuf.data()).map_err(|_| DropReason::Malformed)?;
    if needs.contains(TxOffloads::TCP_TSO) {
        if super_frames && mbuf.len() > mtu + ETHERNET_HEADER {
            let segments = offload::ready_super_frame(&mut mbuf, &meta, state.conf.mtu)?;
            out.push(mbuf);
            return Ok(segments);
        }
        let before = out.len();
        offload::segment_tcp(&mbuf, &meta, &shared.pool, state.conf.mtu, out)?;
        return Ok(out.len() - before);
    }
    if mbuf.len() - meta.l3_offset as usize > mtu {
        return Err(DropReason::Oversize);
    }
    offload::fill_mbuf_checksums(&mut mbuf, &meta, flags)?;
    out.push(mbuf);
    Ok(1)
}
