//! The fast path: per-queue handles, as DPDK's `rte_eth_fp_ops` are to
//! `eth_dev_ops`.
//!
//! A port hands out one [`RxQueue`] and one [`TxQueue`] per queue (see
//! [`crate::EthDev::rx_queue`]); the thread that polls a queue owns its
//! handle and calls it with `&mut self`, so a burst takes no lock, and a
//! backend keeps in the handle whatever it needs per burst (its ring, its
//! counters) rather than looking it up behind the port's control state.
//! A handle is obtained once, after the port is configured; a backend
//! whose queues a later `configure` replaces makes older handles inert
//! (they receive what was left in their queue and transmit nothing),
//! never unsound.

use crate::mbuf::Mbuf;

/// The receive side of one queue.
pub trait RxQueue: Send {
    /// Appends up to `max` received frames to `out`; returns how many.
    fn rx_burst(&mut self, out: &mut Vec<Mbuf>, max: usize) -> usize;
}

/// The transmit side of one queue.
pub trait TxQueue: Send {
    /// Queues frames from the front of `pkts` for transmission, leaving
    /// those that did not fit in `pkts` (in order); returns how many were
    /// taken.
    fn tx_burst(&mut self, pkts: &mut Vec<Mbuf>) -> usize;

    /// How many frames the queue would take now, if the backend knows
    /// (`usize::MAX` if it does not). Middleware that must see exactly the
    /// frames a burst takes ([`crate::middleware::Capture`]) reads it
    /// first; the thread owning the handle is the queue's only producer,
    /// so the room cannot shrink in between.
    fn free_count(&self) -> usize {
        usize::MAX
    }
}

impl<Q: RxQueue + ?Sized> RxQueue for Box<Q> {
    #[inline]
    fn rx_burst(&mut self, out: &mut Vec<Mbuf>, max: usize) -> usize {
        (**self).rx_burst(out, max)
    }
}

impl<Q: TxQueue + ?Sized> TxQueue for Box<Q> {
    #[inline]
    fn tx_burst(&mut self, pkts: &mut Vec<Mbuf>) -> usize {
        (**self).tx_burst(pkts)
    }

    fn free_count(&self) -> usize {
        (**self).free_count()
    }
}
