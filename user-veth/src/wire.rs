//! The network-facing end of a veth: frames in from the cable, frames out.
//!
//! `put_rx` parses and classifies a burst, stages frames per queue, then
//! enqueues each queue's batch with one ring operation; what does not fit is
//! counted as `ring_full` (imissed). `take_tx` drains the transmit rings
//! round-robin and applies the transmit offloads each frame asks for.

use std::sync::Arc;

use ethdev::dev::{RxOffloads, TxOffloads};
use ethdev::mbuf::Mbuf;
use ethdev::packet::PacketMeta;
use ethdev::stats::DropReason;
use ethdev::Wire;

use crate::classify::classify;
use crate::offload;
use crate::port::{Shared, State, TxQueue};

/// An untagged Ethernet header: frames no longer than MTU plus this need no
/// parsing to pass the MTU check.
const ETHERNET_HEADER: usize = 14;

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

impl Wire for VethWire {
    fn put_rx(&mut self, frames: &mut Vec<Mbuf>) {
        let shared = &*self.shared;
        shared.counters.rx_offered.add(frames.len() as u64);
        let state = shared.read();
        if !shared.running(&state) {
            shared.counters.rx_drops.add(DropReason::LinkDown, frames.len() as u64);
            frames.clear();
            return;
        }
        let queues = state.rxq.len();
        self.staged.resize_with(queues.max(self.staged.len()), Vec::new);
        self.staged_bytes.resize(self.staged.len(), 0);
        let promiscuous = shared.promiscuous.load(std::sync::atomic::Ordering::Relaxed);
        let checksum = state.conf.rx_offloads.contains(RxOffloads::CHECKSUM);
        for mut mbuf in frames.drain(..) {
            let placed = PacketMeta::parse(mbuf.data())
                .map_err(|_| DropReason::Malformed)
                .and_then(|meta| Ok((classify(&state, &shared.mac, promiscuous, mbuf.len(), &meta)?, meta)));
            match placed {
                Ok((placement, meta)) => {
                    mbuf.set_queue(placement.queue);
                    placement.hash.inspect(|&h| mbuf.set_rss_hash(h));
                    placement.mark.inspect(|&m| mbuf.set_mark(m));
                    if checksum {
                        let flags = mbuf.flags() | offload::verify_checksums(mbuf.data(), &meta);
                        mbuf.set_flags(flags);
                    }
                    self.staged_bytes[placement.queue as usize] += mbuf.len() as u64;
                    self.staged[placement.queue as usize].push(mbuf);
                }
                Err(reason) => shared.counters.rx_drops.add(reason, 1),
            }
        }
        for (q, (staged, bytes)) in self.staged.iter_mut().zip(&mut self.staged_bytes).enumerate().take(queues) {
            if staged.is_empty() {
                continue;
            }
            let queue = &state.rxq[q];
            let moved = queue.ring.enqueue_burst(staged) as u64;
            let refused: u64 = staged.iter().map(|m| m.len() as u64).sum();
            queue.counters.packets.add(moved);
            queue.counters.bytes.add(*bytes - refused);
            shared.counters.rx_drops.add(DropReason::RingFull, staged.len() as u64);
            staged.clear();
            *bytes = 0;
        }
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
        *next_txq = (*next_txq + 1) % queues.max(1);
        out.len() - before
    }

    fn link_up(&self) -> bool {
        self.shared.running(&self.shared.read())
    }

    fn name(&self) -> &str {
        &self.shared.name
    }
}

/// Applies transmit offloads to the frames just drained from `queue` and
/// appends what reaches the wire to `out`; counters are added once per burst.
fn transmit_drained(shared: &Shared, state: &State, queue: &TxQueue, drained: &mut Vec<Mbuf>, out: &mut Vec<Mbuf>) {
    let counters = &shared.counters;
    let running = shared.running(state);
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
