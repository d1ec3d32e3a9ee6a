//! The per-thread pool cache, `rte_mempool_cache` style.
//!
//! A cache keeps a private stash of free slot indices, refilled from the
//! pool's free list `size` at a time and flushed back when it holds twice
//! that, so most allocations and frees touch no shared cache line. Unlike
//! DPDK's cache, a stashed slot is not invisible: its owner word says
//! "cached by owner N", so a supervisor walking the pool after N died
//! ([`Mempool::walk_cached`]) finds the stash too.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use crossbeam_utils::CachePadded;

use super::shared::PoolShared;
use super::{Mbuf, Mempool, Owner, FREE};

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
    /// The owner word of a slot in this stash.
    cached: u32,
    /// How many slots the stash holds, for [`Mempool::avail`].
    count: Arc<CachePadded<AtomicUsize>>,
}

impl PoolCache {
    pub(super) fn new(pool: Mempool, owner: Owner, size: usize) -> PoolCache {
        let count = Arc::new(CachePadded::new(AtomicUsize::new(0)));
        let mut caches = pool.shared().caches.lock().unwrap_or_else(|e| e.into_inner());
        caches.retain(|c| c.strong_count() > 0);
        caches.push(Arc::downgrade(&count));
        drop(caches);
        let size = size.max(1);
        let cached = PoolShared::cached_word(owner);
        PoolCache { pool, stash: Vec::with_capacity(size * 2), size, owner, cached, count }
    }

    /// Takes one buffer, or `None` (counted in the pool) if the pool is empty.
    pub fn alloc(&mut self) -> Option<Mbuf> {
        if self.stash.is_empty() && !self.refill() {
            self.pool.count_failure();
            return None;
        }
        let index = self.stash.pop()?;
        self.publish_count();
        self.pool.take_slot(index, self.cached, self.owner)
    }

    /// Returns a buffer to the stash (or to its own pool, if it is another's).
    pub fn free(&mut self, mbuf: Mbuf) {
        if !self.pool.owns(&mbuf) {
            drop(mbuf);
            return;
        }
        let (_, index) = mbuf.into_parts();
        self.pool.shared().mark(&[index], self.cached);
        self.stash.push(index);
        if self.stash.len() >= 2 * self.size {
            let mut spill = self.stash.split_off(self.size);
            self.flush(&mut spill);
        }
        self.publish_count();
    }

    /// The pool behind this cache.
    pub fn pool(&self) -> &Mempool {
        &self.pool
    }

    /// Moves up to `size` slots from the free list into the stash, marking
    /// them cached; whether any came.
    fn refill(&mut self) -> bool {
        let shared = self.pool.shared();
        let taken = shared.free().pop(&mut self.stash, self.size, false);
        shared.mark(&self.stash[self.stash.len() - taken..], self.cached);
        taken > 0
    }

    /// Marks `indices` free and puts them back on the free list.
    fn flush(&self, indices: &mut Vec<u32>) {
        let shared = self.pool.shared();
        shared.mark(indices, FREE);
        shared.free().push_all(indices);
    }

    fn publish_count(&self) {
        self.count.store(self.stash.len(), std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for PoolCache {
    fn drop(&mut self) {
        let mut stash = std::mem::take(&mut self.stash);
        self.flush(&mut stash);
        self.publish_count();
    }
}
