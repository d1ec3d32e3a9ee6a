//! Fixed-size packet-buffer pools, DPDK `rte_mempool` style.
//!
//! A pool is one cache-line aligned [`Region`] laid out as `layout` says: a
//! `repr(C)` header, an owner word and a free-list link per slot, then the
//! slots, each a 64-byte [`Mbuf`] header followed by headroom and data room.
//! Everything in it is an index or an offset, never a pointer, so the same
//! layout lives on the heap ([`Mempool::new`]) or in a zone of a
//! shared-memory domain ([`Mempool::create_in`], [`Mempool::attach`]) that
//! processes map at different addresses. Free slots sit on a lock-free free
//! list (`freelist`, DPDK's `stack` mempool handler: one CAS per operation,
//! so a preempted or killed thread holds nobody up and a free never fails).
//!
//! Every slot's owner word says where it is, so a supervisor can find what a
//! dead process held by walking the pool:
//!
//! | word | the slot is |
//! |---|---|
//! | `u32::MAX` | on the free list |
//! | `CACHED \| n` | in the stash of a [`PoolCache`] of owner `n` |
//! | `TRANSIT \| n` | in a ring as an [`MbufRef`], sent by owner `n` |
//! | `n` (below `TRANSIT`) | held by owner `n` through an [`Mbuf`] |
//!
//! Who owns a buffer that sits in a ring, perhaps another process's: the
//! ring's consumer, never its sender. The sender gave the buffer up when it
//! made the [`MbufRef`] (the word keeps its id only to say where the buffer
//! came from); the consumer takes it with [`PoolTable::claim`], a CAS out of
//! the transit state, so a reference claimed twice, forged or left over is
//! refused rather than handed out again. Reclaiming a dead owner therefore
//! frees what it held and what its caches stashed, and drains the rings it
//! consumed; it never touches buffers it sent, which are its consumers'.
//!
//! The word also guards the rule that makes this module sound: a slot index
//! is held by at most one [`Mbuf`] at a time (`take_slot` moves the word
//! with a CAS from the state the slot must be in, and refuses, counting it
//! in [`Mempool::corrupt_slots`], a slot found in any other state). The owner words and the
//! free list are [`crate::sync`] atomics, so `tests/loom.rs` model-checks
//! that rule across threads.
//!
//! An [`Mbuf`] is a raw pointer to the pool record (`shared`) and a slot
//! index: allocating and freeing touch the free list and the slot's owner
//! word, never a reference count. The record lives while any handle or
//! buffer of the pool does (see `Handle`).
//!
//! [`PoolCache`] is the per-thread cache: a private stash refilled from and
//! flushed to the shared free list in bursts, so the common alloc/free touches
//! no shared cache line.

#![allow(unsafe_code)]

mod cache;
mod layout;
mod shared;
mod table;

use std::ptr::NonNull;
use std::sync::Arc;

use crate::error::ConfigError;
use crate::mbuf_header::MbufHeader;
use crate::region::Region;
use crate::shm::Zone;
use crate::sync::Ordering;

use crate::owner::{check_owner, OWNER_MASK};
pub use crate::owner::{DeadOwner, Owner, FIRST_DOMAIN_OWNER};
pub use cache::PoolCache;
pub use table::{MbufRef, PoolTable, RefError};

use layout::PoolLayout;
use shared::PoolShared;

/// Bytes reserved for the header at the start of every slot.
pub const HEADER_SIZE: usize = 64;
/// Headroom a pool leaves in front of the data unless configured otherwise.
pub const DEFAULT_HEADROOM: u16 = 128;
/// Data room of a pool sized for standard 1500-byte MTU frames.
pub const DEFAULT_DATA_ROOM: u32 = 2048;

/// Owner word of a slot on the free list.
const FREE: u32 = u32::MAX;
/// Owner-word bit of a slot in a cache's stash.
const CACHED: u32 = 1 << 31;
/// Owner-word bit of a slot travelling in a ring as an [`MbufRef`].
const TRANSIT: u32 = 1 << 30;
const _: () = assert!(OWNER_MASK == TRANSIT - 1, "owner ids fill the bits below the pool's two");

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

    /// Bytes a pool of this shape needs, header included: what to reserve
    /// in a domain for [`Mempool::create_in`].
    pub fn region_size(&self) -> Result<usize, ConfigError> {
        self.validate()?;
        Ok(PoolLayout::of(self).total)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.capacity == 0 || self.capacity >= CACHED {
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
    handle: Arc<Handle>,
}

/// The pool record, freed with the last handle unless buffers are still out.
struct Handle(NonNull<PoolShared>);

// SAFETY: the record is `Send + Sync`; the pointer is only shared.
unsafe impl Send for Handle {}
// SAFETY: as above.
unsafe impl Sync for Handle {}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the record is alive: this handle keeps it.
        let pool = unsafe { self.0.as_ref() };
        // No handle is left, so no cache is and nobody can allocate; a
        // full free list (Acquire) means every free has finished with the
        // record. A buffer still out keeps the record (leaked, not freed).
        if pool.free().len() == pool.layout.capacity as usize {
            // SAFETY: boxed in `Mempool::from_shared`; no handle or buffer
            // of this pool is left to reach it.
            drop(unsafe { Box::from_raw(self.0.as_ptr()) });
        }
    }
}

/// A packet buffer taken from a [`Mempool`]; returns to it when dropped.
///
/// The handle is the only way to reach its slot, so holding `&mut Mbuf`
/// means exclusive access to the buffer's bytes and header.
pub struct Mbuf {
    pool: NonNull<PoolShared>,
    pub(crate) index: u32,
}

// SAFETY: an `Mbuf` is the only handle on its slot, and the record it points
// to is `Sync` and outlives it.
unsafe impl Send for Mbuf {}
// SAFETY: `&Mbuf` only reads the slot, which nobody else may write.
unsafe impl Sync for Mbuf {}

impl Mempool {
    /// Creates a pool on the heap with every buffer free.
    pub fn new(config: MempoolConfig) -> Result<Mempool, ConfigError> {
        let total = config.region_size()?;
        let shared = PoolShared::create(config, Region::heap(total)).expect("a heap region of the layout's size fits");
        Ok(Self::from_shared(shared))
    }

    /// Lays a fresh pool out in `zone` of a shared-memory domain (reserved
    /// with at least [`MempoolConfig::region_size`] bytes), every buffer free.
    pub fn create_in(zone: &Zone, config: MempoolConfig) -> Result<Mempool, ConfigError> {
        let total = config.region_size()?;
        let region =
            Region::zone(zone).ok_or_else(|| ConfigError::new("mempool.zone", "must start on a cache line"))?;
        let shared = PoolShared::create(config, region)
            .ok_or_else(|| ConfigError::new("mempool.zone", format!("needs {total} bytes, has {}", zone.len())))?;
        Ok(Self::from_shared(shared))
    }

    /// The pool another process laid out in `zone`, after checking its
    /// header (magic, layout version, shape against the zone's size).
    /// (Not in loom builds: loom cannot model atomics in shared memory.)
    #[cfg(not(loom))]
    pub fn attach(zone: &Zone) -> Result<Mempool, ConfigError> {
        let shared = PoolShared::attach(zone.name(), zone).map_err(|reason| ConfigError::new(zone.name(), reason))?;
        Ok(Self::from_shared(shared))
    }

    fn from_shared(shared: PoolShared) -> Mempool {
        Mempool { handle: Arc::new(Handle(NonNull::from(Box::leak(Box::new(shared))))) }
    }

    pub(crate) fn shared(&self) -> &PoolShared {
        // SAFETY: the record lives while this handle does.
        unsafe { self.handle.0.as_ref() }
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.shared().name
    }

    /// Total number of buffers.
    pub fn capacity(&self) -> usize {
        self.shared().layout.capacity as usize
    }

    /// Data room per buffer.
    pub fn data_room(&self) -> usize {
        self.shared().data_room as usize
    }

    /// Buffers not held by anyone: on the free list or in a cache's stash.
    pub fn avail(&self) -> usize {
        self.shared().free().len() + self.shared().cached()
    }

    /// Whether a buffer is left (`avail() > 0`), without visiting the
    /// caches while the free list has one: the stacks ask before every
    /// frame they build, and the cache count takes a lock.
    pub fn has_avail(&self) -> bool {
        self.shared().free().len() > 0 || self.shared().cached() > 0
    }

    /// Buffers currently allocated. Tests compare it with a baseline to
    /// prove that nothing leaked.
    pub fn in_use(&self) -> usize {
        self.capacity().saturating_sub(self.avail())
    }

    /// Allocation requests refused because the pool was empty.
    pub fn alloc_failures(&self) -> u64 {
        self.shared().header().alloc_failures.0.load(Ordering::Relaxed)
    }

    fn count_failure(&self) {
        self.shared().header().alloc_failures.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one buffer for `owner`, or `None` (counted) if the pool is empty.
    pub fn alloc(&self, owner: Owner) -> Option<Mbuf> {
        let Some(index) = self.shared().free().pop_one() else {
            self.count_failure();
            return None;
        };
        let taken = self.take_slot(index, FREE, owner);
        if taken.is_none() {
            self.count_failure();
        }
        taken
    }

    /// Appends exactly `n` buffers for `owner` to `out`, or none (counted)
    /// if fewer are free; returns whether they were allocated.
    pub fn alloc_bulk(&self, out: &mut Vec<Mbuf>, n: usize, owner: Owner) -> bool {
        let mut indices = Vec::with_capacity(n);
        if n > 0 && self.shared().free().pop(&mut indices, n, true) == 0 {
            self.count_failure();
            return false;
        }
        let start = out.len();
        out.extend(indices.into_iter().filter_map(|i| self.take_slot(i, FREE, owner)));
        if out.len() - start < n {
            Self::free_bulk(&mut out.split_off(start));
            self.count_failure();
            return false;
        }
        true
    }

    /// Returns every buffer in `mbufs` to its pool in one burst per pool run.
    pub fn free_bulk(mbufs: &mut Vec<Mbuf>) {
        let mut indices: Vec<u32> = Vec::with_capacity(mbufs.len());
        let mut current: Option<NonNull<PoolShared>> = None;
        for mbuf in mbufs.drain(..) {
            let (pool, index) = mbuf.into_parts();
            if current != Some(pool) {
                if let Some(previous) = current.replace(pool) {
                    Self::release(previous, &mut indices);
                }
            }
            indices.push(index);
        }
        if let Some(pool) = current {
            Self::release(pool, &mut indices);
        }
    }

    /// Marks `indices` free and puts them on `pool`'s free list.
    fn release(pool: NonNull<PoolShared>, indices: &mut Vec<u32>) {
        // SAFETY: the indices came from buffers of this pool, which kept the
        // record alive until they were given up just now.
        let pool = unsafe { pool.as_ref() };
        pool.mark(indices, FREE);
        pool.free().push_all(indices);
    }

    /// Calls `visit(index, owner)` for every buffer held through an
    /// [`Mbuf`]: how a supervisor finds what a dead owner held.
    pub fn walk(&self, visit: impl FnMut(u32, Owner)) {
        self.walk_words(visit, |word| word & (CACHED | TRANSIT) == 0);
    }

    /// Calls `visit(index, owner)` for every free buffer parked in the stash
    /// of a [`PoolCache`] of `owner`: what a dead owner's caches held.
    pub fn walk_cached(&self, visit: impl FnMut(u32, Owner)) {
        self.walk_words(visit, |word| word & (CACHED | TRANSIT) == CACHED);
    }

    /// Calls `visit(index, sender)` for every buffer travelling in a ring.
    pub fn walk_in_transit(&self, visit: impl FnMut(u32, Owner)) {
        self.walk_words(visit, |word| word != FREE && word & (CACHED | TRANSIT) == TRANSIT);
    }

    fn walk_words(&self, mut visit: impl FnMut(u32, Owner), wanted: impl Fn(u32) -> bool) {
        for (index, word) in (0..).zip(self.shared().owners()) {
            let word = word.load(Ordering::Acquire);
            if wanted(word) {
                visit(index, Owner(word & OWNER_MASK));
            }
        }
    }

    /// How many buffers still carry `owner`'s mark: held, stashed in its
    /// caches, or sent by it and not yet claimed. After [`Mempool::reclaim`]
    /// and [`Mempool::reclaim_unsent`] of a dead owner, whose rings were
    /// drained, this is 0: the check that nothing still belongs to the dead.
    pub fn owned_by(&self, owner: Owner) -> usize {
        let mine = owner.0 & OWNER_MASK;
        let words = self.shared().owners().iter().map(|w| w.load(Ordering::Acquire));
        words.filter(|&w| w != FREE && w & OWNER_MASK == mine).count()
    }

    /// Frees every buffer `dead` held and every buffer its caches stashed
    /// (not those it sent into rings: their consumers own them); returns
    /// how many of each. This is gazelle's "memp_free" and "mbuf reclaim"
    /// for a process the control channel saw die.
    pub fn reclaim(&self, dead: &DeadOwner) -> Reclaimed {
        let shared = self.shared();
        let (held, cached) = (dead.owner().0 & OWNER_MASK, CACHED | (dead.owner().0 & OWNER_MASK));
        let mut freed = Reclaimed::default();
        let mut indices = Vec::new();
        for (index, word) in (0..).zip(shared.owners()) {
            let seen = word.load(Ordering::Acquire);
            if (seen == held || seen == cached) && shared.move_slot(index, seen, FREE) {
                indices.push(index);
                if seen == held {
                    freed.held += 1
                } else {
                    freed.cached += 1
                }
            }
        }
        shared.free().push_all(&mut indices);
        freed
    }

    /// Frees the buffers `dead` had given up to rings that never got there
    /// (it died between marking them in transit and publishing them);
    /// returns how many. Call it only once every ring `dead` sent on has
    /// been drained by its consumer: a reference still in a ring then names
    /// a freed buffer, which its consumer's claim refuses (or, if the slot
    /// was taken again meanwhile, claims the wrong message) — never
    /// undefined behaviour, but not what anyone wants.
    pub fn reclaim_unsent(&self, dead: &DeadOwner) -> usize {
        let shared = self.shared();
        let sent = TRANSIT | (dead.owner().0 & OWNER_MASK);
        let mut indices: Vec<u32> = (0..)
            .zip(shared.owners())
            .filter(|&(i, word)| word.load(Ordering::Acquire) == sent && shared.move_slot(i, sent, FREE))
            .map(|(i, _)| i)
            .collect();
        let count = indices.len();
        shared.free().push_all(&mut indices);
        count
    }

    /// Puts back on the free list every slot marked free but missing from
    /// it, and recounts the list; returns how many were put back.
    ///
    /// A process killed between taking a slot off the free list and marking
    /// it with its owner leaves such a slot (and a count one off), which no
    /// owner walk can find. Call this only when no other thread or process
    /// uses the pool, as a primary whose secondaries are all gone: then the
    /// list is still and the sweep exact. Called while others run, it
    /// cannot cause undefined behaviour (every take is a CAS on the owner
    /// word), but it can corrupt the list, and slots then show up in
    /// [`Mempool::corrupt_slots`].
    pub fn sweep_lost(&self) -> usize {
        let shared = self.shared();
        let free = shared.free();
        let mut listed = vec![false; self.capacity()];
        for index in free.recount() {
            listed[index as usize] = true;
        }
        let mut lost: Vec<u32> = (0..)
            .zip(shared.owners())
            .filter(|&(i, word)| !listed[i as usize] && word.load(Ordering::Acquire) == FREE)
            .map(|(i, _)| i)
            .collect();
        let count = lost.len();
        free.push_all(&mut lost);
        count
    }

    /// Counts every slot by where its owner word says it is: what `dtnet
    /// stats` shows of a pool any process of the domain uses.
    pub fn census(&self) -> Census {
        let mut census =
            Census { capacity: self.capacity(), free_listed: self.shared().free().len(), ..Census::default() };
        for word in self.shared().owners() {
            let word = word.load(Ordering::Acquire);
            if word == FREE {
                continue;
            }
            let counts = census.owners.entry(Owner(word & OWNER_MASK)).or_default();
            match word & (CACHED | TRANSIT) {
                0 => counts.held += 1,
                CACHED => counts.cached += 1,
                _ => counts.sent += 1,
            }
        }
        census
    }

    /// A private cache of up to `size` free buffers for one thread, whose
    /// allocations are recorded as `owner`'s.
    pub fn cache(&self, owner: Owner, size: usize) -> PoolCache {
        PoolCache::new(self.clone(), owner, size)
    }

    /// Whether `mbuf` is a buffer of this pool's memory, through this
    /// handle or another one of the same mapping: a process that attached
    /// a domain's pool once per port holds one handle per port, and a frame
    /// received on one port and sent on another must not be taken for a
    /// stranger (it was copied, and a process killed between the copy and
    /// freeing the original held two buffers for one frame).
    pub fn owns(&self, mbuf: &Mbuf) -> bool {
        mbuf.pool == self.handle.0 || mbuf.shared().same_memory(self.shared())
    }

    /// Slots found in a state they cannot be in when taken off the free
    /// list or a stash (another process wrote their owner word): each is
    /// left where it is, out of circulation, and counted here. Zero unless
    /// something outside this code wrote the pool's memory.
    pub fn corrupt_slots(&self) -> u64 {
        self.shared().header().corrupt.0.load(Ordering::Relaxed)
    }

    /// Moves slot `index` from owner word `from` to `owner`, resets its
    /// header and wraps it in a handle; `None` (counted) if the word was
    /// not `from`, so no slot is ever handed out twice.
    fn take_slot(&self, index: u32, from: u32, owner: Owner) -> Option<Mbuf> {
        check_owner(owner);
        let shared = self.shared();
        if !shared.move_slot(index, from, owner.0 & OWNER_MASK) {
            shared.header().corrupt.0.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let mut mbuf = Mbuf { pool: self.handle.0, index };
        mbuf.header_mut().reset(shared.headroom);
        Some(mbuf)
    }
}

/// Where a pool's slots are, by owner ([`Mempool::census`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Census {
    /// Slots in the pool.
    pub capacity: usize,
    /// Slots on the free list.
    pub free_listed: usize,
    /// Per owner: slots held, stashed in its caches, and sent into rings.
    pub owners: std::collections::BTreeMap<Owner, OwnerSlots>,
}

/// One owner's slots in a [`Census`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OwnerSlots {
    /// Held through a buffer handle.
    pub held: usize,
    /// Free, in a cache's stash.
    pub cached: usize,
    /// In transit in a ring (sent by this owner, its consumer's now).
    pub sent: usize,
}

/// Buffers [`Mempool::reclaim`] gave back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reclaimed {
    /// Buffers the dead owner held.
    pub held: usize,
    /// Free buffers its caches had stashed.
    pub cached: usize,
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

impl Mbuf {
    /// The record of the buffer's pool.
    pub(crate) fn shared(&self) -> &PoolShared {
        // SAFETY: the record outlives every buffer of its pool (`Handle`).
        unsafe { self.pool.as_ref() }
    }

    /// The slot's header.
    pub(crate) fn header(&self) -> &MbufHeader {
        // SAFETY: this handle holds the slot (see module docs), whose index
        // came from the free list and so is below capacity; the header is
        // 64-byte aligned, initialised by `reset` at allocation and only
        // mutated through `&mut self`.
        unsafe { &*(self.shared().slot(self.index) as *const MbufHeader) }
    }

    /// The slot's header, mutably.
    pub(crate) fn header_mut(&mut self) -> &mut MbufHeader {
        // SAFETY: as for `header`, and `&mut self` makes the access exclusive.
        unsafe { &mut *(self.shared().slot(self.index) as *mut MbufHeader) }
    }

    /// The whole buffer: headroom, data and tailroom.
    pub(crate) fn buffer(&self) -> &[u8] {
        let shared = self.shared();
        // SAFETY: the index is in bounds as for `header`; the buffer follows
        // the header inside this handle's slot and the region was
        // zero-initialised.
        unsafe { std::slice::from_raw_parts(shared.slot(self.index).add(HEADER_SIZE), shared.buffer_len()) }
    }

    /// The whole buffer, mutably.
    pub(crate) fn buffer_mut(&mut self) -> &mut [u8] {
        let shared = self.shared();
        // SAFETY: as for `buffer`, exclusive through `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(shared.slot(self.index).add(HEADER_SIZE), shared.buffer_len()) }
    }

    /// Gives the buffer up to a ring: its owner word says "in transit, sent
    /// by" its owner, and the returned reference is all that is left of it
    /// until a consumer claims it ([`PoolTable::claim`]). `id` is the pool's
    /// number in the [`PoolTable`] the consumer resolves it with.
    pub fn into_ref(self, id: u16) -> MbufRef {
        let shared = self.shared();
        let index = self.index;
        let word = TRANSIT | shared.owner(index).0;
        shared.mark(&[index], word);
        let _ = self.into_parts();
        MbufRef { pool: id, index }
    }

    /// Gives up the handle without freeing the slot.
    fn into_parts(self) -> (NonNull<PoolShared>, u32) {
        let this = std::mem::ManuallyDrop::new(self);
        (this.pool, this.index)
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        let shared = self.shared();
        shared.mark(&[self.index], FREE);
        shared.free().push(self.index);
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
        assert!(pool.has_avail());
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
        assert!(pool.shared().free().len() < 64, "stash kept buffers out of the free list");
        drop(cache);
        assert_eq!(pool.shared().free().len(), 64);
    }

    #[test]
    fn has_avail_sees_the_free_list_and_the_stashes() {
        let pool = pool(8);
        let mut cache = pool.cache(Owner(7), 8);
        let mut held: Vec<Mbuf> = std::iter::from_fn(|| cache.alloc()).collect();
        assert_eq!((held.len(), pool.has_avail()), (8, false));
        cache.free(held.pop().unwrap());
        assert_eq!(pool.shared().free().len(), 0, "the one free buffer sits in the stash");
        assert!(pool.has_avail());
        drop(held);
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
    fn stashed_slots_are_marked_cached_by_their_owner() {
        let pool = pool(16);
        let mut cache = pool.cache(Owner(3), 4);
        let m = cache.alloc().unwrap();
        let mut cached = Vec::new();
        pool.walk_cached(|i, o| cached.push((i, o)));
        assert_eq!(cached.len(), 3, "a refill of 4, one handed out");
        assert!(cached.iter().all(|&(i, o)| o == Owner(3) && i != m.index));
        let mut held = Vec::new();
        pool.walk(|i, o| held.push((i, o)));
        assert_eq!(held, [(m.index, Owner(3))]);
        cache.free(m);
        drop(cache);
        pool.walk_cached(|i, o| panic!("slot {i} still cached by {o:?}"));
    }

    /// What a killed process leaves: buffers it held and a cache's stash,
    /// their handles gone without running a destructor.
    #[test]
    fn reclaim_frees_what_a_dead_owner_held_and_stashed_only() {
        let pool = pool(16);
        let mut held = Vec::new();
        assert!(pool.alloc_bulk(&mut held, 3, Owner(4)));
        let mut cache = pool.cache(Owner(4), 4);
        let m = cache.alloc().unwrap();
        cache.free(m);
        let survivor = pool.alloc(Owner(5)).unwrap();
        let sent = pool.alloc(Owner(4)).unwrap().into_ref(0);
        held.into_iter().for_each(std::mem::forget);
        let mut stashed = 0;
        pool.walk_cached(|_, _| stashed += 1);
        std::mem::forget(cache);

        assert_eq!(pool.owned_by(Owner(4)), 3 + stashed + 1, "held, stashed and sent");
        let freed = pool.reclaim(&DeadOwner::new(Owner(4)));
        assert_eq!(freed, Reclaimed { held: 3, cached: stashed });
        assert_eq!(pool.owned_by(Owner(4)), 1, "only what it sent is still marked its");
        assert!(stashed > 0);
        assert_eq!(pool.shared().free().len(), 16 - 2, "all but the survivor's and the one in transit");
        let mut transit = Vec::new();
        pool.walk_in_transit(|i, o| transit.push((i, o)));
        assert_eq!(transit, [(sent.index, Owner(4))], "a sent buffer is its consumer's, not reclaimed");
        assert_eq!(pool.reclaim_unsent(&DeadOwner::new(Owner(4))), 1, "unless no consumer takes it");
        assert_eq!((pool.owned_by(Owner(4)), pool.owned_by(Owner(5))), (0, 1));
        assert_eq!(survivor.owner(), Owner(5));
        assert_eq!(pool.reclaim(&DeadOwner::new(Owner(4))), Reclaimed::default(), "nothing twice");
    }

    /// A slot taken off the free list by an owner that died before marking
    /// it: no walk finds it, the sweep does.
    #[test]
    fn sweep_puts_back_what_a_death_mid_allocation_lost() {
        let pool = pool(8);
        let index = pool.shared().free().pop_one().unwrap();
        assert_eq!((pool.in_use(), pool.sweep_lost()), (1, 1));
        assert_eq!(pool.in_use(), 0);
        assert_eq!(pool.sweep_lost(), 0, "nothing twice");
        let mut all = Vec::new();
        assert!(pool.alloc_bulk(&mut all, 8, Owner(1)));
        assert!(all.iter().any(|m| m.index == index));
    }

    #[test]
    #[should_panic(expected = "is a domain owner id")]
    fn a_domain_owner_id_that_is_not_ours_is_refused() {
        let _ = pool(2).alloc(Owner(FIRST_DOMAIN_OWNER + 7));
    }

    #[test]
    fn buffers_outlive_their_pool_handles() {
        let pool = pool(2);
        let mut m = pool.alloc(Owner(1)).unwrap();
        drop(pool);
        assert!(m.extend_from_slice(b"still here"));
        assert_eq!(m.data(), b"still here");
    }

    #[test]
    fn invalid_config_names_the_field() {
        let err = Mempool::new(MempoolConfig::new("x", 0)).unwrap_err();
        assert_eq!(err.field, "mempool.capacity");
        let err = Mempool::new(MempoolConfig::new("x", 4).data_room(0)).unwrap_err();
        assert_eq!(err.field, "mempool.data_room");
    }
}
