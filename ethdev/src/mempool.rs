//! Fixed-size packet-buffer pools, DPDK `rte_mempool` style.
//!
//! A pool is one contiguous, cache-line aligned region cut into equal slots.
//! Each slot holds a 64-byte [`Mbuf`] header followed by headroom and data
//! room. Free slots are named by their index on a lock-free free list
//! (`freelist`, DPDK's `stack` mempool handler: one CAS per operation, so a
//! preempted thread holds nobody up and a free never fails), so the
//! pool itself contains no pointers: the same layout can later live in a
//! shared-memory domain mapped at different addresses by different
//! processes. A per-slot owner word records who holds each allocated buffer;
//! [`Mempool::walk`] reads it to find a dead owner's buffers, and doubles as
//! the guard that no slot is ever handed out twice.
//!
//! [`PoolCache`] is the per-thread cache: a private stash refilled from and
//! flushed to the shared free list in bursts, so the common alloc/free touches no
//! shared cache line.
//!
//! This is the only module besides [`crate::ring`] with `unsafe` code: the
//! raw region, and the accessors that turn a slot index into references.
//! Soundness rests on one rule, checked in `take_slot`: a slot index is held
//! by at most one [`Mbuf`] at a time. The owner words and the free list are
//! [`crate::sync`] atomics, so `tests/loom.rs` model-checks that rule across
//! threads.

#![allow(unsafe_code)]

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, Weak};

use crossbeam_utils::CachePadded;

use crate::error::ConfigError;
use crate::freelist::FreeList;
use crate::mbuf_header::MbufHeader;
use crate::sync::{AtomicU32, Ordering};

/// Bytes reserved for the header at the start of every slot.
pub const HEADER_SIZE: usize = 64;
const _: () = assert!(std::mem::size_of::<MbufHeader>() == HEADER_SIZE);
/// Headroom a pool leaves in front of the data unless configured otherwise.
pub const DEFAULT_HEADROOM: u16 = 128;
/// Data room of a pool sized for standard 1500-byte MTU frames.
pub const DEFAULT_DATA_ROOM: u32 = 2048;

const SLOT_FREE: u32 = u32::MAX;

/// Who holds an allocated buffer: a process, stack instance or port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Owner(pub u32);

impl Owner {
    /// Buffers allocated without naming an owner.
    pub const NONE: Owner = Owner(0);
}

/// Shape of a pool: how many buffers and how big.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MempoolConfig {
    /// Name shown in stats and errors.
    pub name: String,
    /// Number of buffers.
    pub capacity: u32,
    /// Bytes of data room per buffer (after the headroom).
    pub data_room: u32,
    /// Bytes reserved in front of the data for prepending headers.
    pub headroom: u16,
}

impl MempoolConfig {
    /// A pool of `capacity` buffers with the default data room and headroom.
    pub fn new(name: impl Into<String>, capacity: u32) -> Self {
        Self { name: name.into(), capacity, data_room: DEFAULT_DATA_ROOM, headroom: DEFAULT_HEADROOM }
    }

    /// The same pool with `data_room` bytes of data room per buffer.
    pub fn data_room(mut self, data_room: u32) -> Self {
        self.data_room = data_room;
        self
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.capacity == 0 || self.capacity >= SLOT_FREE / 2 {
            return Err(ConfigError::new("mempool.capacity", "must be between 1 and 2^31"));
        }
        if self.data_room == 0 || self.data_room > 1 << 20 {
            return Err(ConfigError::new("mempool.data_room", "must be between 1 and 1 MiB"));
        }
        Ok(())
    }
}

/// A pool of packet buffers. Cloning gives another handle to the same pool.
#[derive(Clone)]
pub struct Mempool {
    shared: Arc<PoolShared>,
}

/// A packet buffer taken from a [`Mempool`]; returns to it when dropped.
///
/// The handle is the only way to reach its slot, so holding `&mut Mbuf`
/// means exclusive access to the buffer's bytes and header.
pub struct Mbuf {
    pub(crate) pool: Arc<PoolShared>,
    pub(crate) index: u32,
}

pub(crate) struct PoolShared {
    config: MempoolConfig,
    region: Region,
    free: FreeList,
    owners: Box<[AtomicU32]>,
    caches: Mutex<Vec<Weak<CachePadded<AtomicUsize>>>>,
    alloc_failures: AtomicU64,
}

/// The raw slot memory of a pool.
struct Region {
    base: NonNull<u8>,
    layout: Layout,
    stride: usize,
}

// SAFETY: the region is plain bytes; which thread may touch which slot is
// decided by slot ownership (one `Mbuf` per allocated index).
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

impl Region {
    fn new(slots: u32, slot_bytes: usize) -> Region {
        let stride = slot_bytes.next_multiple_of(HEADER_SIZE);
        let layout =
            Layout::from_size_align(stride * slots as usize, HEADER_SIZE).expect("pool size validated to fit a Layout");
        // SAFETY: the layout has a non-zero size (at least one slot of at
        // least one header).
        let raw = unsafe { alloc_zeroed(layout) };
        let base = NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        Region { base, layout, stride }
    }

    /// The start of slot `index`.
    ///
    /// # Safety
    /// `index` is below the number of slots the region was made with, so
    /// the offset stays inside the allocation.
    unsafe fn slot(&self, index: u32) -> *mut u8 {
        // SAFETY: the caller keeps `index` in bounds.
        unsafe { self.base.as_ptr().add(index as usize * self.stride) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: allocated in `Region::new` with this layout.
        unsafe { dealloc(self.base.as_ptr(), self.layout) };
    }
}

impl Mempool {
    /// Creates a pool with every buffer free.
    pub fn new(config: MempoolConfig) -> Result<Mempool, ConfigError> {
        config.validate()?;
        let slot_bytes = HEADER_SIZE + config.headroom as usize + config.data_room as usize;
        let free = FreeList::full(config.capacity);
        let shared = PoolShared {
            region: Region::new(config.capacity, slot_bytes),
            owners: (0..config.capacity).map(|_| AtomicU32::new(SLOT_FREE)).collect(),
            caches: Mutex::new(Vec::new()),
            alloc_failures: AtomicU64::new(0),
            free,
            config,
        };
        Ok(Mempool { shared: Arc::new(shared) })
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.shared.config.name
    }

    /// Total number of buffers.
    pub fn capacity(&self) -> usize {
        self.shared.config.capacity as usize
    }

    /// Data room per buffer.
    pub fn data_room(&self) -> usize {
        self.shared.config.data_room as usize
    }

    /// Buffers not held by anyone: on the free list or in a cache's stash.
    pub fn avail(&self) -> usize {
        self.shared.free.len() + self.shared.cached()
    }

    /// Buffers currently allocated. Tests compare it with a baseline to
    /// prove that nothing leaked.
    pub fn in_use(&self) -> usize {
        self.capacity().saturating_sub(self.avail())
    }

    /// Allocation requests refused because the pool was empty.
    pub fn alloc_failures(&self) -> u64 {
        self.shared.alloc_failures.load(Ordering::Relaxed)
    }

    /// Takes one buffer for `owner`, or `None` (counted) if the pool is empty.
    pub fn alloc(&self, owner: Owner) -> Option<Mbuf> {
        match self.shared.free.pop_one() {
            Some(index) => Some(self.shared.take_slot(index, owner)),
            None => {
                self.shared.alloc_failures.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Appends exactly `n` buffers for `owner` to `out`, or none (counted)
    /// if fewer are free; returns whether they were allocated.
    pub fn alloc_bulk(&self, out: &mut Vec<Mbuf>, n: usize, owner: Owner) -> bool {
        let mut indices = Vec::with_capacity(n);
        if n > 0 && self.shared.free.pop(&mut indices, n, true) == 0 {
            self.shared.alloc_failures.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        out.extend(indices.into_iter().map(|i| self.shared.take_slot(i, owner)));
        true
    }

    /// Returns every buffer in `mbufs` to its pool in one burst per pool run.
    pub fn free_bulk(mbufs: &mut Vec<Mbuf>) {
        let mut indices: Vec<u32> = Vec::with_capacity(mbufs.len());
        let mut current: Option<Arc<PoolShared>> = None;
        for mbuf in mbufs.drain(..) {
            let (pool, index) = mbuf.into_parts();
            if !current.as_ref().is_some_and(|c| Arc::ptr_eq(c, &pool)) {
                if let Some(previous) = current.take() {
                    previous.release_all(&mut indices);
                }
                current = Some(Arc::clone(&pool));
            }
            pool.mark_free(index);
            indices.push(index);
        }
        if let Some(pool) = current {
            pool.release_all(&mut indices);
        }
    }

    /// Calls `visit(index, owner)` for every allocated buffer: how a
    /// supervisor finds what a dead owner held.
    pub fn walk(&self, mut visit: impl FnMut(u32, Owner)) {
        for (index, word) in self.shared.owners.iter().enumerate() {
            let owner = word.load(Ordering::Acquire);
            if owner != SLOT_FREE {
                visit(index as u32, Owner(owner));
            }
        }
    }

    /// A private cache of up to `size` free buffers for one thread, whose
    /// allocations are recorded as `owner`'s.
    pub fn cache(&self, owner: Owner, size: usize) -> PoolCache {
        let count = Arc::new(CachePadded::new(AtomicUsize::new(0)));
        let mut caches = self.shared.caches.lock().unwrap_or_else(|e| e.into_inner());
        caches.retain(|c| c.strong_count() > 0);
        caches.push(Arc::downgrade(&count));
        PoolCache { pool: self.clone(), stash: Vec::with_capacity(size * 2), size: size.max(1), owner, count }
    }

    /// Whether `mbuf` came from this pool.
    pub fn owns(&self, mbuf: &Mbuf) -> bool {
        Arc::ptr_eq(&self.shared, &mbuf.pool)
    }
}

impl std::fmt::Debug for Mempool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mempool")
            .field("name", &self.name())
            .field("capacity", &self.capacity())
            .field("in_use", &self.in_use())
            .finish()
    }
}

impl PoolShared {
    /// Marks `index` allocated to `owner` and wraps it in a handle, after
    /// resetting its header.
    fn take_slot(self: &Arc<Self>, index: u32, owner: Owner) -> Mbuf {
        let previous = self.owners[index as usize].swap(owner.0, Ordering::AcqRel);
        assert_eq!(previous, SLOT_FREE, "mempool {}: slot {index} handed out twice", self.config.name);
        let mut mbuf = Mbuf { pool: Arc::clone(self), index };
        mbuf.header_mut().reset(self.config.headroom);
        mbuf
    }

    fn mark_free(&self, index: u32) {
        self.owners[index as usize].store(SLOT_FREE, Ordering::Release);
    }

    /// Puts slot indices (already marked free) back on the free list.
    fn release_all(&self, indices: &mut Vec<u32>) {
        self.free.push_all(indices);
    }

    fn cached(&self) -> usize {
        let caches = self.caches.lock().unwrap_or_else(|e| e.into_inner());
        caches.iter().filter_map(Weak::upgrade).map(|c| c.load(Ordering::Relaxed)).sum()
    }

    pub(crate) fn buffer_len(&self) -> usize {
        self.config.headroom as usize + self.config.data_room as usize
    }

    pub(crate) fn set_owner(&self, index: u32, owner: Owner) {
        self.owners[index as usize].store(owner.0, Ordering::Release);
    }

    pub(crate) fn owner(&self, index: u32) -> Owner {
        Owner(self.owners[index as usize].load(Ordering::Acquire))
    }
}

impl Mbuf {
    /// The slot's header.
    pub(crate) fn header(&self) -> &MbufHeader {
        // SAFETY: this handle holds the slot (see module docs), whose index
        // came from the free list and so is below capacity; the header is
        // 64-byte aligned, initialised by `reset` at allocation and only
        // mutated through `&mut self`.
        unsafe { &*(self.pool.region.slot(self.index) as *const MbufHeader) }
    }

    /// The slot's header, mutably.
    pub(crate) fn header_mut(&mut self) -> &mut MbufHeader {
        // SAFETY: as for `header`, and `&mut self` makes the access exclusive.
        unsafe { &mut *(self.pool.region.slot(self.index) as *mut MbufHeader) }
    }

    /// The whole buffer: headroom, data and tailroom.
    pub(crate) fn buffer(&self) -> &[u8] {
        // SAFETY: the index is in bounds as for `header`; the buffer follows
        // the header inside this handle's slot and the region was
        // zero-initialised.
        unsafe {
            let start = self.pool.region.slot(self.index).add(HEADER_SIZE);
            std::slice::from_raw_parts(start, self.pool.buffer_len())
        }
    }

    /// The whole buffer, mutably.
    pub(crate) fn buffer_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `buffer`, exclusive through `&mut self`.
        unsafe {
            let start = self.pool.region.slot(self.index).add(HEADER_SIZE);
            std::slice::from_raw_parts_mut(start, self.pool.buffer_len())
        }
    }

    /// Gives up the handle without freeing the slot.
    fn into_parts(self) -> (Arc<PoolShared>, u32) {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so the Arc is moved
        // out exactly once.
        let pool = unsafe { std::ptr::read(&this.pool) };
        (pool, this.index)
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        self.pool.mark_free(self.index);
        self.pool.free.push(self.index);
    }
}

/// A per-thread stash of free buffers in front of a [`Mempool`].
///
/// Allocations come from the stash, refilled from the pool `size` buffers at
/// a time; frees go to the stash, flushed back when it holds twice `size`.
/// Dropping the cache returns its stash.
pub struct PoolCache {
    pool: Mempool,
    stash: Vec<u32>,
    size: usize,
    owner: Owner,
    count: Arc<CachePadded<AtomicUsize>>,
}

impl PoolCache {
    /// Takes one buffer, or `None` (counted in the pool) if the pool is empty.
    pub fn alloc(&mut self) -> Option<Mbuf> {
        if self.stash.is_empty() && self.pool.shared.free.pop(&mut self.stash, self.size, false) == 0 {
            self.pool.shared.alloc_failures.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let index = self.stash.pop()?;
        self.publish_count();
        Some(self.pool.shared.take_slot(index, self.owner))
    }

    /// Returns a buffer to the stash (or to its own pool, if it is another's).
    pub fn free(&mut self, mbuf: Mbuf) {
        if !self.pool.owns(&mbuf) {
            drop(mbuf);
            return;
        }
        let (pool, index) = mbuf.into_parts();
        pool.mark_free(index);
        self.stash.push(index);
        if self.stash.len() >= 2 * self.size {
            let mut spill = self.stash.split_off(self.size);
            self.pool.shared.release_all(&mut spill);
        }
        self.publish_count();
    }

    /// The pool behind this cache.
    pub fn pool(&self) -> &Mempool {
        &self.pool
    }

    fn publish_count(&self) {
        self.count.store(self.stash.len(), Ordering::Relaxed);
    }
}

impl Drop for PoolCache {
    fn drop(&mut self) {
        self.pool.shared.release_all(&mut self.stash);
        self.publish_count();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(capacity: u32) -> Mempool {
        Mempool::new(MempoolConfig::new("test", capacity)).unwrap()
    }

    #[test]
    fn alloc_and_drop_keep_in_use_exact() {
        let pool = pool(8);
        let a = pool.alloc(Owner(1)).unwrap();
        let b = pool.alloc(Owner(2)).unwrap();
        assert_eq!((pool.in_use(), pool.avail()), (2, 6));
        let mut seen = Vec::new();
        pool.walk(|i, o| seen.push((i, o)));
        seen.sort();
        assert_eq!(seen, vec![(a.index, Owner(1)), (b.index, Owner(2))]);
        drop((a, b));
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    fn exhaustion_is_counted_and_bulk_is_all_or_nothing() {
        let pool = pool(4);
        let mut held = Vec::new();
        assert!(!pool.alloc_bulk(&mut held, 5, Owner::NONE));
        assert!(held.is_empty());
        assert!(pool.alloc_bulk(&mut held, 4, Owner::NONE));
        assert!(pool.alloc(Owner::NONE).is_none());
        assert_eq!(pool.alloc_failures(), 2);
        Mempool::free_bulk(&mut held);
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    fn cache_counts_stash_as_available_and_returns_it_on_drop() {
        let pool = pool(64);
        let mut cache = pool.cache(Owner(7), 8);
        let m = cache.alloc().unwrap();
        assert_eq!(pool.in_use(), 1);
        cache.free(m);
        assert_eq!(pool.in_use(), 0);
        assert!(pool.shared.free.len() < 64, "stash kept buffers out of the ring");
        drop(cache);
        assert_eq!(pool.shared.free.len(), 64);
    }

    #[test]
    fn free_bulk_handles_buffers_of_several_pools() {
        let (p1, p2) = (pool(4), pool(4));
        let mut mixed =
            vec![p1.alloc(Owner::NONE).unwrap(), p2.alloc(Owner::NONE).unwrap(), p1.alloc(Owner::NONE).unwrap()];
        Mempool::free_bulk(&mut mixed);
        assert_eq!((p1.in_use(), p2.in_use()), (0, 0));
    }

    #[test]
    fn invalid_config_names_the_field() {
        let err = Mempool::new(MempoolConfig::new("x", 0)).unwrap_err();
        assert_eq!(err.field, "mempool.capacity");
        let err = Mempool::new(MempoolConfig::new("x", 4).data_room(0)).unwrap_err();
        assert_eq!(err.field, "mempool.data_room");
    }
}
