//! Port and queue counters, and the accounting check built on them.
//!
//! Counters are relaxed atomics updated once per burst by whichever thread
//! moves the frames; readers get a consistent-enough snapshot for stats and
//! an exact one once traffic has stopped, which is when tests check that
//! accounting closes.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;
use ethdev::dev::{PortStats, XStat};
use ethdev::stats::{DropCounters, DropReason};

/// A relaxed atomic counter on its own cache line.
#[derive(Debug, Default)]
pub(crate) struct Counter(CachePadded<AtomicU64>);

impl Counter {
    /// Adds `n`; adding nothing skips the locked read-modify-write.
    pub(crate) fn add(&self, n: u64) {
        if n != 0 {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

/// Counters of one queue. On receive, `packets`/`bytes` count frames put in
/// the ring; on transmit, `accepted` counts frames taken by `tx_burst` and
/// `packets`/`bytes` frames sent to the wire (TSO segments included).
#[derive(Debug, Default)]
pub(crate) struct QueueCounters {
    pub(crate) packets: Counter,
    pub(crate) bytes: Counter,
    pub(crate) accepted: Counter,
}

impl QueueCounters {
    pub(crate) fn reset(&self) {
        [&self.packets, &self.bytes, &self.accepted].iter().for_each(|c| c.reset());
    }
}

/// Port-wide counters.
#[derive(Debug, Default)]
pub(crate) struct PortCounters {
    /// Frames handed in by the wire.
    pub(crate) rx_offered: Counter,
    /// Receive drops by reason (`RingFull` is `imissed`).
    pub(crate) rx_drops: DropCounters,
    /// Transmit drops by reason, counted per frame taken by `tx_burst`.
    pub(crate) tx_drops: DropCounters,
    /// Frames taken by `tx_burst` that reached the wire (as one frame or as
    /// TSO segments).
    pub(crate) tx_done: Counter,
    /// Extra wire frames created by TSO (segments beyond the first); a
    /// super-frame sent whole counts the segments it stands for.
    pub(crate) tso_extra: Counter,
    /// Extra frames created by cutting received super-frames into segments
    /// (segments beyond the first), for a port without large receive offload.
    pub(crate) rx_cut_extra: Counter,
}

impl PortCounters {
    pub(crate) fn reset(&self) {
        [&self.rx_offered, &self.tx_done, &self.tso_extra, &self.rx_cut_extra].iter().for_each(|c| c.reset());
        self.rx_drops.reset();
        self.tx_drops.reset();
    }

    pub(crate) fn stats<'a>(
        &self,
        rxq: impl Iterator<Item = &'a QueueCounters>,
        txq: impl Iterator<Item = &'a QueueCounters>,
    ) -> PortStats {
        let mut stats = PortStats::default();
        for q in rxq {
            stats.ipackets += q.packets.get();
            stats.ibytes += q.bytes.get();
            stats.q_ipackets.push(q.packets.get());
        }
        for q in txq {
            stats.opackets += q.packets.get();
            stats.obytes += q.bytes.get();
            stats.q_opackets.push(q.packets.get());
        }
        stats.imissed = self.rx_drops.get(DropReason::RingFull);
        stats.ierrors = self.rx_drops.total() - stats.imissed;
        stats.oerrors = self.tx_drops.total();
        stats
    }

    pub(crate) fn xstats<'a>(
        &self,
        rxq: impl Iterator<Item = &'a QueueCounters>,
        txq: impl Iterator<Item = &'a QueueCounters>,
    ) -> Vec<XStat> {
        let mut out = vec![xstat("rx_wire_frames", self.rx_offered.get())];
        for (i, q) in rxq.enumerate() {
            out.push(xstat(format!("rx_q{i}_packets"), q.packets.get()));
            out.push(xstat(format!("rx_q{i}_bytes"), q.bytes.get()));
        }
        for (i, q) in txq.enumerate() {
            out.push(xstat(format!("tx_q{i}_accepted"), q.accepted.get()));
            out.push(xstat(format!("tx_q{i}_packets"), q.packets.get()));
            out.push(xstat(format!("tx_q{i}_bytes"), q.bytes.get()));
        }
        for &reason in DropReason::ALL {
            out.push(xstat(format!("rx_drop_{}", reason.name()), self.rx_drops.get(reason)));
            out.push(xstat(format!("tx_drop_{}", reason.name()), self.tx_drops.get(reason)));
        }
        out.push(xstat("tx_tso_extra_segments", self.tso_extra.get()));
        out.push(xstat("rx_cut_extra_segments", self.rx_cut_extra.get()));
        out
    }

    /// Receive: offered + extra segments cut from super-frames = queued +
    /// dropped. Transmit: accepted = done +
    /// dropped + still in a ring.
    pub(crate) fn check<'a>(
        &self,
        rxq: impl Iterator<Item = &'a QueueCounters>,
        txq: impl Iterator<Item = (&'a QueueCounters, u64)>,
    ) -> Result<(), String> {
        let queued: u64 = rxq.map(|q| q.packets.get()).sum();
        let (offered, rx_dropped) = (self.rx_offered.get() + self.rx_cut_extra.get(), self.rx_drops.total());
        if offered != queued + rx_dropped {
            return Err(format!(
                "rx: offered {offered} (cut segments included) != queued {queued} + dropped {rx_dropped}"
            ));
        }
        let (accepted, waiting) = txq.fold((0, 0), |(a, w), (q, len)| (a + q.accepted.get(), w + len));
        let (done, tx_dropped) = (self.tx_done.get(), self.tx_drops.total());
        if accepted != done + tx_dropped + waiting {
            return Err(format!("tx: accepted {accepted} != sent {done} + dropped {tx_dropped} + in rings {waiting}"));
        }
        Ok(())
    }
}

fn xstat(name: impl Into<String>, value: u64) -> XStat {
    XStat { name: name.into(), value }
}
