//! A pool of packet mbufs (`rte_pktmbuf_pool_create`).
//!
//! Ports take their receive buffers from a pool and transmit queues allocate
//! from it; [`PktPool::in_use`] is the baseline check every test ends with.
//!
//! A pool is never freed before the EAL is cleaned up: mbufs of a closed
//! port may still sit in a ring cable's rings (or any shared ring) that
//! another port reads, and freeing their pool early would hand that port
//! freed memory. Pool names are therefore used once per EAL.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::marker::PhantomData;
use std::ptr::NonNull;

use dpdk_sys as sys;

use crate::eal::Eal;
use crate::error::{Error, Result};
use crate::ffi;

/// Sizes of a [`PktPool`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConf {
    /// Number of mbufs.
    pub mbufs: u32,
    /// Per-lcore cache size (0 for none; at most 512).
    pub cache: u32,
    /// Bytes a frame may have in one mbuf (headroom is added on top).
    pub data_room: u16,
}

impl Default for PoolConf {
    /// 4096 mbufs, a cache of 64, and 2048-byte frames (DPDK's defaults).
    fn default() -> PoolConf {
        PoolConf { mbufs: 4096, cache: 64, data_room: 2048 }
    }
}

/// A DPDK pktmbuf pool; borrows the [`Eal`] it lives in, and lives as long.
#[derive(Debug)]
pub struct PktPool<'eal> {
    raw: NonNull<sys::rte_mempool>,
    _eal: PhantomData<fn() -> &'eal ()>,
}

// SAFETY: DPDK mempools are multi-producer multi-consumer: allocating and
// freeing from any thread is safe, and the pool is never freed while the EAL
// runs.
unsafe impl Send for PktPool<'_> {}
// SAFETY: as above; every operation through `&PktPool` is thread-safe.
unsafe impl Sync for PktPool<'_> {}

impl<'eal> PktPool<'eal> {
    /// Creates a pool named `name` (unique within the EAL).
    pub fn new(_eal: &'eal Eal, name: &str, conf: PoolConf) -> Result<PktPool<'eal>> {
        let cname = CString::new(name).map_err(|_| Error::BadArgument(format!("{name:?} contains a NUL byte")))?;
        let room = u32::from(conf.data_room) + sys::DTNET_PKTMBUF_HEADROOM as u32;
        let room = u16::try_from(room).map_err(|_| Error::BadArgument(format!("data_room {}", conf.data_room)))?;
        // SAFETY: EAL is initialised (an Eal exists); cname is NUL-terminated
        // and lives across the call.
        let raw = unsafe {
            sys::rte_pktmbuf_pool_create(cname.as_ptr(), conf.mbufs, conf.cache, 0, room, sys::DTNET_SOCKET_ID_ANY)
        };
        let raw = NonNull::new(raw).ok_or_else(|| ffi::errno_error(format!("rte_pktmbuf_pool_create({name})")))?;
        Ok(PktPool { raw, _eal: PhantomData })
    }

    /// Mbufs allocated (including those in per-lcore caches' complement).
    pub fn in_use(&self) -> u32 {
        // SAFETY: raw is a live pool; the count is a read.
        unsafe { sys::rte_mempool_in_use_count(self.raw.as_ptr()) }
    }

    /// Mbufs free (in the pool or in per-lcore caches).
    pub fn avail(&self) -> u32 {
        // SAFETY: raw is a live pool; the count is a read.
        unsafe { sys::rte_mempool_avail_count(self.raw.as_ptr()) }
    }

    /// The longest frame one mbuf holds.
    pub fn data_room(&self) -> u16 {
        // SAFETY: raw is a live pktmbuf pool.
        unsafe { sys::dtnet_rte_pktmbuf_data_room(self.raw.as_ptr()) }
    }

    /// The raw pool, for queue setup and transmit allocation.
    pub(crate) fn raw(&self) -> NonNull<sys::rte_mempool> {
        self.raw
    }

    /// The pool without its EAL lifetime, for the `EthDev` adapter, whose
    /// [`crate::eal::EalUse`] keeps the EAL (and so every pool) alive.
    pub(crate) fn unbound(&self) -> PoolRef {
        PoolRef(self.raw)
    }
}

/// A pool kept alive by an [`crate::eal::EalUse`] rather than a borrow:
/// pools are never freed before `rte_eal_cleanup`, which waits for every
/// `EalUse` (see [`crate::eal`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PoolRef(NonNull<sys::rte_mempool>);

// SAFETY: as for PktPool: DPDK mempools are multi-thread safe, and this one
// lives until the EAL is cleaned up, which no holder of a PoolRef outlives.
unsafe impl Send for PoolRef {}
// SAFETY: as above.
unsafe impl Sync for PoolRef {}

impl PoolRef {
    /// The raw pool.
    pub(crate) fn raw(self) -> NonNull<sys::rte_mempool> {
        self.0
    }

    /// Mbufs allocated, as [`PktPool::in_use`] counts them.
    pub(crate) fn in_use(self) -> u32 {
        // SAFETY: the pool lives until the EAL is cleaned up (see the type's
        // docs); the count is a read.
        unsafe { sys::rte_mempool_in_use_count(self.0.as_ptr()) }
    }
}
