//! The smoltcp side of one NIC queue: a `phy::Device` over staged mbufs.
//!
//! The stack instance moves frames between its NIC queue and two staging
//! areas: `rx` holds mbufs taken by `rx_burst` (or handed over by another
//! stack) for smoltcp to read, `tx` collects the mbufs smoltcp writes until
//! the instance passes them to `tx_burst`. smoltcp reads a received frame in
//! place, inside its mbuf, and writes a transmitted frame straight into a
//! freshly allocated mbuf, so no frame is copied on the way through.

use std::collections::VecDeque;

use ethdev::{Mbuf, Mempool, Owner};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant as SmolInstant;

/// Counters of the device layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceStats {
    /// Frames handed to smoltcp.
    pub rx_frames: u64,
    /// Frames smoltcp produced.
    pub tx_frames: u64,
    /// Frames smoltcp produced that were lost because the pool was empty.
    pub tx_no_mbuf: u64,
}

/// A smoltcp device whose frames live in mbufs of one pool.
pub(crate) struct QueueDevice {
    pool: Mempool,
    owner: Owner,
    mtu: usize,
    /// Received frames waiting for smoltcp.
    pub(crate) rx: VecDeque<Mbuf>,
    /// Frames smoltcp wrote, waiting for `tx_burst`.
    pub(crate) tx: Vec<Mbuf>,
    pub(crate) stats: DeviceStats,
}

impl QueueDevice {
    /// A device allocating from `pool` as `owner`, for IP packets up to `mtu` bytes.
    pub(crate) fn new(pool: Mempool, owner: Owner, mtu: usize) -> Self {
        Self { pool, owner, mtu, rx: VecDeque::new(), tx: Vec::new(), stats: DeviceStats::default() }
    }
}

/// A received frame: smoltcp reads it where it lies; dropping the token frees the mbuf.
pub(crate) struct MbufRx(Mbuf);

/// The right to transmit one frame.
pub(crate) struct MbufTx<'a> {
    pool: &'a Mempool,
    owner: Owner,
    out: &'a mut Vec<Mbuf>,
    stats: &'a mut DeviceStats,
}

impl phy::Device for QueueDevice {
    type RxToken<'a> = MbufRx;
    type TxToken<'a> = MbufTx<'a>;

    fn receive(&mut self, _now: SmolInstant) -> Option<(MbufRx, MbufTx<'_>)> {
        let mbuf = self.rx.pop_front()?;
        self.stats.rx_frames += 1;
        let tx = MbufTx { pool: &self.pool, owner: self.owner, out: &mut self.tx, stats: &mut self.stats };
        Some((MbufRx(mbuf), tx))
    }

    fn transmit(&mut self, _now: SmolInstant) -> Option<MbufTx<'_>> {
        (self.pool.avail() > 0).then(|| MbufTx {
            pool: &self.pool,
            owner: self.owner,
            out: &mut self.tx,
            stats: &mut self.stats,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu + 14;
        caps
    }
}

impl phy::RxToken for MbufRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0.data())
    }
}

impl phy::TxToken for MbufTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut mbuf = self.pool.alloc(self.owner);
        match mbuf.as_mut().and_then(|m| m.append(len)) {
            Some(buf) => {
                let r = f(buf);
                self.stats.tx_frames += 1;
                self.out.extend(mbuf);
                r
            }
            None => {
                // smoltcp must still be given a buffer; the frame is lost
                // and counted, exactly like a NIC dropping it for lack of
                // descriptors. TCP retransmits it.
                self.stats.tx_no_mbuf += 1;
                f(&mut vec![0; len])
            }
        }
    }
}
