//! The memory a pool is laid out in, and where that memory comes from.
//!
//! A [`Region`] is a 64-byte aligned run of bytes with a *backing*: the heap
//! (a zeroed allocation freed with the region) or a [`Zone`] of a
//! shared-memory domain (kept mapped while the region lives). Whoever lays
//! out an object in a region (`mempool::layout`) addresses everything by
//! byte offset from its start, so the same object can sit at different
//! addresses in different processes.
//!
//! The region hands out memory in two ways only: [`Region::words`], slices
//! of atomics at offsets it checks against its length and alignment (sound
//! whatever another process writes, since atomics accept every bit pattern
//! and concurrent access), and the `unsafe` [`Region::ptr`] for the raw
//! slot bytes, whose caller states why nobody else touches them.

#![allow(unsafe_code)]

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;
use std::sync::Arc;

use crate::shm::map::Mapping;
use crate::shm::words::{words_at, Word};
use crate::shm::Zone;

/// Alignment of every region and of every object laid out in one: a cache line.
pub(crate) const ALIGN: usize = 64;

/// An aligned run of bytes and what keeps it alive.
pub(crate) struct Region {
    base: NonNull<u8>,
    len: usize,
    backing: Backing,
}

enum Backing {
    Heap(Layout),
    /// The mapping stays while the region lives.
    Zone {
        _map: Arc<Mapping>,
    },
}

// SAFETY: the region is plain bytes reached through atomics or through
// `ptr`, whose callers decide which thread touches which bytes.
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

impl Region {
    /// `len` zeroed bytes (at least one) on the heap.
    pub(crate) fn heap(len: usize) -> Region {
        let layout = Layout::from_size_align(len.max(1), ALIGN).expect("region size validated to fit a Layout");
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc_zeroed(layout) };
        let base = NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        Region { base, len, backing: Backing::Heap(layout) }
    }

    /// The bytes of `zone`, or `None` if the zone does not start on a cache line.
    pub(crate) fn zone(zone: &Zone) -> Option<Region> {
        let (map, base, len) = zone.raw()?;
        base.as_ptr().align_offset(ALIGN).eq(&0).then_some(Region { base, len, backing: Backing::Zone { _map: map } })
    }

    /// Bytes in the region.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// `count` atomics at byte `offset`, or `None` if out of bounds or misaligned.
    #[cfg_attr(loom, allow(dead_code, reason = "loom keeps a pool's words apart"))]
    pub(crate) fn words<A: Word>(&self, offset: usize, count: usize) -> Option<&[A]> {
        words_at(self.base, self.len, offset, count)
    }

    /// The byte at `offset`.
    ///
    /// # Safety
    /// `offset` is at most the region's length; whoever reads or writes
    /// through the pointer has the bytes to itself (see the caller's
    /// ownership rule).
    pub(crate) unsafe fn ptr(&self, offset: usize) -> *mut u8 {
        // SAFETY: the caller keeps `offset` inside the allocation.
        unsafe { self.base.as_ptr().add(offset) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if let Backing::Heap(layout) = self.backing {
            // SAFETY: allocated in `Region::heap` with this layout.
            unsafe { dealloc(self.base.as_ptr(), layout) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, AtomicU64};

    #[test]
    fn heap_regions_are_zeroed_aligned_and_bounds_checked() {
        let region = Region::heap(256);
        assert_eq!(region.len(), 256);
        let words = region.words::<AtomicU64>(0, 32).unwrap();
        assert!(words.iter().all(|w| w.load(std::sync::atomic::Ordering::Relaxed) == 0));
        assert!(region.words::<AtomicU64>(8, 32).is_none(), "one word past the end");
        assert!(region.words::<AtomicU32>(2, 1).is_none(), "misaligned");
        assert!(region.words::<AtomicU32>(usize::MAX, 1).is_none(), "overflowing offset");
    }
}
