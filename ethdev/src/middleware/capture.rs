//! Capture: a look at the frames crossing any port, in the spirit of
//! DPDK's rx/tx burst callbacks (the mechanism `rte_pdump` captures with)
//! and smoltcp's `PcapWriter`.
//!
//! [`Capture`] wraps a port and, through [`Capture::wire`], the port's wire
//! end; both share one slot holding at most one [`BurstHook`]. Without a
//! hook each burst pays one atomic load. With one, the hook is called once
//! per non-empty burst at four points ([`HookPoint`]): frames arriving from
//! the wire (before the port classifies them, so frames it then drops are
//! seen too), frames leaving for the wire (after transmit offloads), frames
//! an `rx_burst` returns, and frames a `tx_burst` puts on a queue (exactly
//! those the queue takes, by its [`TxQueue::free_count`]). The hook
//! borrows the mbufs for the length of the call, under the slot's read
//! lock (taken only while a hook is set): a capture copies the bytes and
//! never keeps a buffer, and it must not set or clear hooks itself. The
//! port has no clock; a hook that needs time reads its own (an
//! [`crate::time::Clock`]). The hook can be set or cleared at any time,
//! also after the queue handles were taken.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use crate::dev::EthDev;
use crate::error::DevError;
use crate::mbuf::Mbuf;
use crate::queue::{RxQueue, TxQueue};
use crate::wire::Wire;

use super::forward_control;

/// Where on a port a burst was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HookPoint {
    /// Frames arriving from the wire (what the port receives).
    FromWire,
    /// Frames leaving for the wire (what the port transmits).
    ToWire,
    /// Frames `rx_burst` returned from this receive queue.
    RxQueue(u16),
    /// Frames `tx_burst` put on this transmit queue.
    TxQueue(u16),
}

/// A callback on a port's bursts; see the module docs.
pub trait BurstHook: Send + Sync {
    /// Called with the frames of one burst seen at `point`, in order.
    fn burst(&self, point: HookPoint, frames: &[Mbuf]);
}

/// A hook that keeps a copy of every frame it sees, by point: what a test
/// asserts a capture against, and a quick way to look at a port's bursts.
#[derive(Debug, Default)]
pub struct BurstLog(std::sync::Mutex<Vec<(HookPoint, Vec<u8>)>>);

impl BurstHook for BurstLog {
    fn burst(&self, point: HookPoint, frames: &[Mbuf]) {
        let mut log = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        log.extend(frames.iter().map(|m| (point, m.data().to_vec())));
    }
}

impl BurstLog {
    /// The frames seen at `point`, in order.
    pub fn at(&self, point: HookPoint) -> Vec<Vec<u8>> {
        let log = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        log.iter().filter(|(p, _)| *p == point).map(|(_, d)| d.clone()).collect()
    }

    /// Frames seen at every point together.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    /// Whether no frame was seen yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The hook a port's handles and wire end share.
#[derive(Default)]
struct HookSlot {
    /// Whether `hook` is set: the one load a burst pays without a hook.
    armed: AtomicBool,
    hook: RwLock<Option<Arc<dyn BurstHook>>>,
}

impl HookSlot {
    fn set(&self, hook: Option<Arc<dyn BurstHook>>) -> Option<Arc<dyn BurstHook>> {
        let mut slot = self.hook.write().unwrap_or_else(PoisonError::into_inner);
        self.armed.store(hook.is_some(), Ordering::Release);
        std::mem::replace(&mut *slot, hook)
    }

    #[inline(always)]
    fn armed(&self) -> bool {
        self.armed.load(Ordering::Acquire)
    }

    /// Shows `frames` to the hook, if there is one and a frame to show.
    #[inline(always)]
    fn show(&self, point: HookPoint, frames: &[Mbuf]) {
        if !frames.is_empty() && self.armed() {
            if let Some(hook) = self.hook.read().unwrap_or_else(PoisonError::into_inner).as_ref() {
                hook.burst(point, frames);
            }
        }
    }
}

/// A port whose bursts a [`BurstHook`] can watch; see the module docs.
/// Clones share the port and the hook.
#[derive(Clone)]
pub struct Capture<D> {
    dev: D,
    slot: Arc<HookSlot>,
}

impl<D: EthDev> Capture<D> {
    /// Wraps `dev`, with no hook set.
    pub fn new(dev: D) -> Capture<D> {
        Capture { dev, slot: Arc::default() }
    }

    /// The wrapped port.
    pub fn inner(&self) -> &D {
        &self.dev
    }

    /// Wraps the port's wire end, so the hook sees its bursts too.
    pub fn wire<W: Wire>(&self, wire: W) -> CaptureWire<W> {
        CaptureWire { wire, slot: Arc::clone(&self.slot) }
    }

    /// Sets (or with `None` removes) the hook and returns the one it replaces.
    pub fn set_burst_hook(&self, hook: Option<Arc<dyn BurstHook>>) -> Option<Arc<dyn BurstHook>> {
        self.slot.set(hook)
    }
}

impl<D: EthDev> EthDev for Capture<D> {
    forward_control!(inner);

    fn rx_queue(&self, queue: u16) -> Result<Box<dyn RxQueue>, DevError> {
        let inner = self.dev.rx_queue(queue)?;
        Ok(Box::new(CaptureRx { inner, point: HookPoint::RxQueue(queue), slot: Arc::clone(&self.slot) }))
    }

    fn tx_queue(&self, queue: u16) -> Result<Box<dyn TxQueue>, DevError> {
        let inner = self.dev.tx_queue(queue)?;
        Ok(Box::new(CaptureTx { inner, point: HookPoint::TxQueue(queue), slot: Arc::clone(&self.slot) }))
    }
}

struct CaptureRx {
    inner: Box<dyn RxQueue>,
    point: HookPoint,
    slot: Arc<HookSlot>,
}

impl RxQueue for CaptureRx {
    #[inline]
    fn rx_burst(&mut self, out: &mut Vec<Mbuf>, max: usize) -> usize {
        let n = self.inner.rx_burst(out, max);
        self.slot.show(self.point, &out[out.len() - n..]);
        n
    }
}

struct CaptureTx {
    inner: Box<dyn TxQueue>,
    point: HookPoint,
    slot: Arc<HookSlot>,
}

impl TxQueue for CaptureTx {
    #[inline]
    fn tx_burst(&mut self, pkts: &mut Vec<Mbuf>) -> usize {
        if !self.slot.armed() {
            return self.inner.tx_burst(pkts);
        }
        // Show the hook exactly the frames the queue will take; the rest
        // wait aside (an allocation paid only while capturing).
        let room = self.inner.free_count().min(pkts.len());
        if room == 0 {
            return 0;
        }
        let mut rest = pkts.split_off(room);
        self.slot.show(self.point, pkts);
        let n = self.inner.tx_burst(pkts);
        pkts.append(&mut rest);
        n
    }

    fn free_count(&self) -> usize {
        self.inner.free_count()
    }
}

/// A port's wire end whose bursts the port's [`Capture`] hook sees.
pub struct CaptureWire<W> {
    wire: W,
    slot: Arc<HookSlot>,
}

impl<W: Wire> Wire for CaptureWire<W> {
    fn take_tx(&mut self, out: &mut Vec<Mbuf>, max: usize) -> usize {
        let n = self.wire.take_tx(out, max);
        self.slot.show(HookPoint::ToWire, &out[out.len() - n..]);
        n
    }

    fn put_rx(&mut self, frames: &mut Vec<Mbuf>) {
        self.slot.show(HookPoint::FromWire, frames);
        self.wire.put_rx(frames);
    }

    fn link_up(&self) -> bool {
        self.wire.link_up()
    }

    fn name(&self) -> &str {
        self.wire.name()
    }

    fn takes_super_frames(&self) -> bool {
        self.wire.takes_super_frames()
    }
}
