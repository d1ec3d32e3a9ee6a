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
use crate::ffi;

/// The most frames one DPDK burst call moves.
pub const MAX_BURST: usize = 64;

/// What the device said about a received frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxInfo {
    /// The RSS hash, if the device computed one.
    pub rss_hash: Option<u32>,
    /// The device's IPv4 header checksum verdict: good, bad, or not checked.
    pub ip_cksum_good: Option<bool>,
    /// The device's TCP/UDP checksum verdict: good, bad, or not checked.
    pub l4_cksum_good: Option<bool>,
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
            let (len, info) = unsafe { (sys::dtnet_rte_pktmbuf_pkt_len(mbuf), rx_info(mbuf)) };
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
                sink(frame, info);
            }
            // SAFETY: the mbuf is ours and no reference to it outlives this.
            unsafe { sys::dtnet_rte_pktmbuf_free(mbuf) };
        }
        got
    }
}

/// What the device stored in `mbuf`: the RSS hash and checksum verdicts.
///
/// # Safety
/// `mbuf` must be a valid mbuf.
unsafe fn rx_info(mbuf: *const sys::rte_mbuf) -> RxInfo {
    let mut hash = 0;
    // SAFETY: the caller passes a valid mbuf; hash is a valid out-pointer.
    let rss_hash = (unsafe { sys::dtnet_rte_mbuf_rss_hash(mbuf, &mut hash) } != 0).then_some(hash);
    // SAFETY: as above; the call reads the mbuf's flags.
    let bits = unsafe { sys::dtnet_rte_mbuf_rx_cksum(mbuf) };
    let verdict =
        |good: u32, bad: u32| (bits & good != 0).then_some(true).or_else(|| (bits & bad != 0).then_some(false));
    RxInfo {
        rss_hash,
        ip_cksum_good: verdict(sys::DTNET_RX_IP_CKSUM_GOOD, sys::DTNET_RX_IP_CKSUM_BAD),
        l4_cksum_good: verdict(sys::DTNET_RX_L4_CKSUM_GOOD, sys::DTNET_RX_L4_CKSUM_BAD),
    }
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
        self.tx_burst_offload(frames, &[])
    }

    /// [`TxQueue::tx_burst`], asking the device for `offloads[i]` on
    /// `frames[i]` (an empty `offloads` asks for none). The port must have
    /// been configured with the offloads asked for; the driver's
    /// `rte_eth_tx_prepare` runs first, and a frame it refuses ends the
    /// burst there ([`Error::Dpdk`] if it is the first).
    pub fn tx_burst_offload<B: AsRef<[u8]>>(&mut self, frames: &[B], offloads: &[TxOffload]) -> Result<usize> {
        let frames = &frames[..frames.len().min(MAX_BURST)];
        if !offloads.is_empty() && offloads.len() < frames.len() {
            return Err(Error::BadArgument(format!("{} offloads for {} frames", offloads.len(), frames.len())));
        }
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
        for (i, (&mbuf, frame)) in mbufs.iter().zip(frames).enumerate() {
            let frame = frame.as_ref();
            // SAFETY: a fresh mbuf has `room` bytes of tailroom, and the frame
            // is no longer (checked above), so append returns non-NULL.
            let dst = unsafe { sys::dtnet_rte_pktmbuf_append(mbuf, frame.len() as u16) };
            // COPY (transmit): the frame is copied from the caller's memory
            // into the DPDK mbuf the device sends from.
            // SAFETY: dst has frame.len() writable bytes inside the mbuf, which
            // cannot overlap the caller's slice.
            unsafe { ptr::copy_nonoverlapping(frame.as_ptr(), dst.cast::<u8>(), frame.len()) };
            if let Some(offload) = offloads.get(i).filter(|o| o.request() != 0) {
                // SAFETY: the mbuf is ours; the call sets plain fields of it.
                unsafe {
                    sys::dtnet_rte_mbuf_tx_offload(
                        mbuf,
                        offload.request(),
                        offload.l2_len,
                        offload.l3_len,
                        offload.l4_len,
                        offload.tso_segsz,
                    );
                }
            }
        }
        let mut count = frames.len();
        if !offloads.is_empty() {
            // SAFETY: this handle is the queue's only user; the first `count`
            // mbufs are ours and filled in; the driver only edits them.
            let ready = usize::from(unsafe {
                sys::dtnet_rte_eth_tx_prepare(self.port.0, self.queue, mbufs.as_mut_ptr(), count as u16)
            });
            if ready == 0 && count > 0 {
                let err = ffi::errno_error(format!("rte_eth_tx_prepare(port {}, queue {})", self.port.0, self.queue));
                free_all(&mbufs[..count]);
                return Err(err);
            }
            free_all(&mbufs[ready..count]);
            count = ready;
        }
        // SAFETY: this handle is the queue's only user; the device takes
        // ownership of the first `sent` mbufs.
        let sent = usize::from(unsafe {
            sys::dtnet_rte_eth_tx_burst(self.port.0, self.queue, mbufs.as_mut_ptr(), count as u16)
        });
        free_all(&mbufs[sent..count]);
        Ok(sent)
    }
}

/// Frees mbufs the device did not take.
fn free_all(mbufs: &[*mut sys::rte_mbuf]) {
    for &mbuf in mbufs {
        // SAFETY: callers pass mbufs they allocated and still own.
        unsafe { sys::dtnet_rte_pktmbuf_free(mbuf) };
    }
}

/// The offloads one transmitted frame asks the device for, with the header
/// lengths the device needs to find the fields (DPDK's `l2_len`, `l3_len`,
/// `l4_len`, `tso_segsz`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxOffload {
    /// The frame is IPv4 (else IPv6, when any offload is asked for).
    pub ipv4: bool,
    /// Fill in the IPv4 header checksum.
    pub ip_cksum: bool,
    /// Fill in the TCP checksum.
    pub tcp_cksum: bool,
    /// Fill in the UDP checksum.
    pub udp_cksum: bool,
    /// Cut the TCP payload into segments of this size (0: no TSO).
    pub tso_segsz: u16,
    /// Ethernet (and VLAN) header bytes.
    pub l2_len: u16,
    /// IP header bytes (with IPv6 extension headers).
    pub l3_len: u16,
    /// TCP or UDP header bytes.
    pub l4_len: u16,
}

impl TxOffload {
    /// The request as the shim's `dtnet_tx_request` bits (0: nothing asked).
    fn request(&self) -> u32 {
        let mut bits = 0;
        for (on, bit) in [
            (self.ip_cksum, sys::DTNET_TX_IP_CKSUM),
            (self.tcp_cksum, sys::DTNET_TX_TCP_CKSUM),
            (self.udp_cksum, sys::DTNET_TX_UDP_CKSUM),
            (self.tso_segsz != 0, sys::DTNET_TX_TCP_SEG),
        ] {
            if on {
                bits |= bit;
            }
        }
        if bits != 0 {
            bits |= if self.ipv4 { sys::DTNET_TX_IPV4 } else { sys::DTNET_TX_IPV6 };
        }
        bits
    }
}
