//! Per-queue receive and transmit handles, and where frames are copied.
//!
//! dtnet's frames live in dtnet's own mbufs (index-addressed pools that may
//! sit in shared memory), DPDK's in DPDK's memory, so a frame crossing the
//! boundary is copied once, at the points marked "COPY" below: on receive
//! from the DPDK mbuf into whatever the caller's sink writes to (a dtnet
//! mbuf, a `Vec`), on transmit from the caller's bytes into a fresh DPDK
//! mbuf. The DPDK mbufs never leave this module, so each goes back to its
//! pool within the call and the device's queues never starve for buffers.
//!
//! Each handle is unique ([`crate::Port::start`] hands it out once) and
//! needs `&mut` to burst, because DPDK requires one thread at a time per
//! queue; handles are `Send`, so each may move to its polling thread.

#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use dpdk_sys as sys;

use crate::eal::PortId;
use crate::error::{Error, Result};

/// The most frames one DPDK burst call moves.
pub const MAX_BURST: usize = 64;

/// What the device said about a received frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxInfo {
    /// The RSS hash, if the device computed one.
    pub rss_hash: Option<u32>,
}

/// The receive side of one queue of a started port.
#[derive(Debug)]
pub struct RxQueue<'p> {
    port: PortId,
    queue: u16,
    /// Gathers multi-segment frames (most are one segment and not copied here).
    scratch: Vec<u8>,
    _port: PhantomData<fn() -> &'p ()>,
}

impl RxQueue<'_> {
    pub(crate) fn new(port: PortId, queue: u16) -> Self {
        RxQueue { port, queue, scratch: Vec::new(), _port: PhantomData }
    }

    /// The queue index.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Receives up to `max` frames (at most [`MAX_BURST`]), passing each to
    /// `sink` with its [`RxInfo`], and returns how many arrived. The bytes
    /// are valid only during the call.
    pub fn rx_burst(&mut self, max: usize, mut sink: impl FnMut(&[u8], RxInfo)) -> usize {
        let mut mbufs = [ptr::null_mut::<sys::rte_mbuf>(); MAX_BURST];
        let want = max.min(MAX_BURST) as u16;
        // SAFETY: this handle is the queue's only user (unique, &mut self);
        // mbufs has room for `want` pointers.
        let got =
            usize::from(unsafe { sys::dtnet_rte_eth_rx_burst(self.port.0, self.queue, mbufs.as_mut_ptr(), want) });
        for &mbuf in &mbufs[..got] {
            // SAFETY: the device handed us `got` valid mbufs, now ours.
            let (len, hash) = unsafe { (sys::dtnet_rte_pktmbuf_pkt_len(mbuf), rx_hash(mbuf)) };
            self.scratch.resize(self.scratch.len().max(len as usize), 0);
            // SAFETY: [0, len) is the frame; rte_pktmbuf_read returns a
            // pointer into the mbuf if the bytes are contiguous, else copies
            // them into scratch (at least len bytes) and returns that.
            let data = unsafe { sys::dtnet_rte_pktmbuf_read(mbuf, 0, len, self.scratch.as_mut_ptr().cast()) };
            if !data.is_null() {
                // SAFETY: data points at len readable bytes (in the mbuf or in
                // scratch), which stay valid until the mbuf is freed below.
                let frame = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len as usize) };
                // COPY (receive): the sink copies the frame out of the DPDK
                // mbuf into dtnet's memory; the mbuf is freed right after.
                sink(frame, RxInfo { rss_hash: hash });
            }
            // SAFETY: the mbuf is ours and no reference to it outlives this.
            unsafe { sys::dtnet_rte_pktmbuf_free(mbuf) };
        }
        got
    }
}

/// The RSS hash the device stored in `mbuf`, if any.
///
/// # Safety
/// `mbuf` must be a valid mbuf.
unsafe fn rx_hash(mbuf: *const sys::rte_mbuf) -> Option<u32> {
    let mut hash = 0;
    // SAFETY: the caller passes a valid mbuf; hash is a valid out-pointer.
    (unsafe { sys::dtnet_rte_mbuf_rss_hash(mbuf, &mut hash) } != 0).then_some(hash)
}

/// The transmit side of one queue of a started port.
#[derive(Debug)]
pub struct TxQueue<'p> {
    port: PortId,
    queue: u16,
    pool: NonNull<sys::rte_mempool>,
    room: u16,
    _port: PhantomData<fn() -> &'p ()>,
}

// SAFETY: the handle is unique per queue and bursts need &mut self, so one
// thread at a time uses the queue, as DPDK requires; the pool it allocates
// from is multi-thread safe and outlives the port ('p).
unsafe impl Send for TxQueue<'_> {}

impl<'p> TxQueue<'p> {
    /// A handle of `queue` allocating from `pool`, which outlives it.
    pub(crate) fn new(port: PortId, queue: u16, pool: NonNull<sys::rte_mempool>) -> Self {
        // SAFETY: the caller passes a live pktmbuf pool.
        let room = unsafe { sys::dtnet_rte_pktmbuf_data_room(pool.as_ptr()) };
        TxQueue { port, queue, pool, room, _port: PhantomData }
    }

    /// The queue index.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// The longest frame one burst entry may be.
    pub fn data_room(&self) -> u16 {
        self.room
    }

    /// Sends `frames` (at most [`MAX_BURST`] are taken) and returns how
    /// many the device accepted; the rest were not sent and the caller may
    /// retry them. A frame longer than one mbuf is refused, before anything
    /// is sent, as is a burst the pool has no mbufs for.
    pub fn tx_burst<B: AsRef<[u8]>>(&mut self, frames: &[B]) -> Result<usize> {
        let frames = &frames[..frames.len().min(MAX_BURST)];
        if let Some((index, frame)) = frames.iter().enumerate().find(|(_, f)| f.as_ref().len() > usize::from(self.room))
        {
            return Err(Error::FrameTooLong { index, len: frame.as_ref().len(), room: self.room });
        }
        let mut mbufs = [ptr::null_mut::<sys::rte_mbuf>(); MAX_BURST];
        // SAFETY: the pool is live for 'p; mbufs has room for frames.len().
        let ret =
            unsafe { sys::dtnet_rte_pktmbuf_alloc_bulk(self.pool.as_ptr(), mbufs.as_mut_ptr(), frames.len() as u32) };
        if ret != 0 {
            return Err(Error::PoolExhausted(frames.len()));
        }
        for (&mbuf, frame) in mbufs.iter().zip(frames) {
            let frame = frame.as_ref();
            // SAFETY: a fresh mbuf has `room` bytes of tailroom, and the frame
            // is no longer (checked above), so append returns non-NULL.
            let dst = unsafe { sys::dtnet_rte_pktmbuf_append(mbuf, frame.len() as u16) };
            // COPY (transmit): the frame is copied from the caller's memory
            // into the DPDK mbuf the device sends from.
            // SAFETY: dst has frame.len() writable bytes inside the mbuf, which
            // cannot overlap the caller's slice.
            unsafe { ptr::copy_nonoverlapping(frame.as_ptr(), dst.cast::<u8>(), frame.len()) };
        }
        // SAFETY: this handle is the queue's only user; the device takes
        // ownership of the first `sent` mbufs.
        let sent = usize::from(unsafe {
            sys::dtnet_rte_eth_tx_burst(self.port.0, self.queue, mbufs.as_mut_ptr(), frames.len() as u16)
        });
        for &mbuf in &mbufs[sent..frames.len()] {
            // SAFETY: the device did not take these; they are still ours.
            unsafe { sys::dtnet_rte_pktmbuf_free(mbuf) };
        }
        Ok(sent)
    }
}
