//! The pool record: a region laid out by [`super::layout`], and the
//! accessors that turn its offsets into atomics and slot pointers.
//!
//! A record is boxed once and reached through a raw pointer by every
//! [`Mempool`](super::Mempool) handle and every [`Mbuf`](super::Mbuf), so
//! no buffer carries a reference count. It is freed when the last pool
//! handle goes and no buffer is out; if buffers are still out then, it is
//! leaked instead, so they stay valid (see `Handle`'s `Drop`).

use std::ptr::NonNull;
use std::sync::atomic::AtomicUsize;
use std::sync::{Mutex, Weak};

use crossbeam_utils::CachePadded;

use crate::freelist::FreeList;
use crate::region::Region;
#[cfg(not(loom))]
use crate::shm::Zone;
use crate::sync::{AtomicU32, Ordering};

use super::layout::{PoolHeader, PoolLayout};
use super::{MempoolConfig, Owner, CACHED, FREE, OWNER_MASK};

/// One pool's memory and what this process knows about it.
pub(crate) struct PoolShared {
    pub(crate) name: String,
    pub(crate) layout: PoolLayout,
    pub(crate) headroom: u16,
    pub(crate) data_room: u32,
    region: Region,
    /// Under loom the control words cannot live in raw memory (loom's
    /// atomics carry model state), so they live here instead; the code that
    /// uses them is the same.
    #[cfg(loom)]
    _words: Box<(PoolHeader, Box<[AtomicU32]>, Box<[AtomicU32]>)>,
    header: NonNull<PoolHeader>,
    owners: NonNull<AtomicU32>,
    links: NonNull<AtomicU32>,
    /// This process's pool caches, whose stashes count as available.
    pub(crate) caches: Mutex<Vec<Weak<CachePadded<AtomicUsize>>>>,
}

// SAFETY: the pointers lead into `region` (or `_words`), owned by the record
// and reached only as atomics or through the slot ownership rule.
unsafe impl Send for PoolShared {}
// SAFETY: as above.
unsafe impl Sync for PoolShared {}

impl PoolShared {
    /// A fresh pool of `config`'s shape (validated) in `region`, which is at
    /// least `PoolLayout::of(config).total` bytes: every slot free.
    pub(crate) fn create(config: MempoolConfig, region: Region) -> Option<PoolShared> {
        let layout = PoolLayout::of(&config);
        let shared = Self::over(region, layout, config.headroom, config.data_room, config.name.clone())?;
        layout.init(shared.header(), &config);
        shared.owners().iter().for_each(|w| w.store(FREE, Ordering::Relaxed));
        shared.free().fill();
        Some(shared)
    }

    /// The pool another process laid out in `zone`, after checking its header.
    #[cfg(not(loom))]
    pub(crate) fn attach(name: &str, zone: &Zone) -> Result<PoolShared, String> {
        let region = Region::zone(zone).ok_or("zone is not cache-line aligned")?;
        let header =
            region.words::<PoolHeader>(0, 1).and_then(<[_]>::first).ok_or("zone too small for a pool header")?;
        let (layout, headroom, data_room) = PoolLayout::check(header, region.len())?;
        Self::over(region, layout, headroom, data_room, name.into()).ok_or_else(|| "pool does not fit its zone".into())
    }

    #[cfg(not(loom))]
    fn over(region: Region, layout: PoolLayout, headroom: u16, data_room: u32, name: String) -> Option<PoolShared> {
        let cap = layout.capacity as usize;
        if region.len() < layout.total {
            return None;
        }
        let header = NonNull::from(region.words::<PoolHeader>(0, 1)?.first()?);
        let owners = NonNull::from(region.words::<AtomicU32>(layout.owners, cap)?).cast();
        let links = NonNull::from(region.words::<AtomicU32>(layout.links, cap)?).cast();
        Some(PoolShared { name, layout, headroom, data_room, region, header, owners, links, caches: Mutex::default() })
    }

    #[cfg(loom)]
    fn over(region: Region, layout: PoolLayout, headroom: u16, data_room: u32, name: String) -> Option<PoolShared> {
        use super::layout::Line;
        use crate::sync::AtomicU64;
        let words = |n: u32| (0..n).map(|_| AtomicU32::new(0)).collect::<Box<[_]>>();
        let header = PoolHeader {
            magic: AtomicU64::new(0),
            version: AtomicU32::new(0),
            capacity: AtomicU32::new(0),
            stride: AtomicU32::new(0),
            headroom: AtomicU32::new(0),
            data_room: AtomicU32::new(0),
            free_top: Line(AtomicU64::new(0)),
            free_len: Line(AtomicU64::new(0)),
            alloc_failures: Line(AtomicU64::new(0)),
            corrupt: Line(AtomicU64::new(0)),
        };
        let words = Box::new((header, words(layout.capacity), words(layout.capacity)));
        let (header, owners, links) =
            (NonNull::from(&words.0), NonNull::from(&words.1[..]).cast(), NonNull::from(&words.2[..]).cast());
        (region.len() >= layout.total).then_some(PoolShared {
            name,
            layout,
            headroom,
            data_room,
            region,
            _words: words,
            header,
            owners,
            links,
            caches: Mutex::default(),
        })
    }

    /// The header at the start of the region.
    pub(crate) fn header(&self) -> &PoolHeader {
        // SAFETY: checked in bounds and aligned by `over`; the region lives
        // as long as the record; the header is all atomics.
        unsafe { self.header.as_ref() }
    }

    /// One owner word per slot.
    pub(crate) fn owners(&self) -> &[AtomicU32] {
        // SAFETY: `over` checked `capacity` words at this offset; atomics.
        unsafe { std::slice::from_raw_parts(self.owners.as_ptr(), self.layout.capacity as usize) }
    }

    /// The free list over the header's top and count and the link words.
    pub(crate) fn free(&self) -> FreeList<'_> {
        // SAFETY: as for `owners`.
        let links = unsafe { std::slice::from_raw_parts(self.links.as_ptr(), self.layout.capacity as usize) };
        let header = self.header();
        FreeList::new(&header.free_top.0, &header.free_len.0, links)
    }

    /// The first byte of slot `index`.
    ///
    /// # Safety
    /// `index` is below the capacity, and the caller holds the slot (one
    /// [`Mbuf`](super::Mbuf) per allocated index) for whatever it does
    /// through the pointer.
    pub(crate) unsafe fn slot(&self, index: u32) -> *mut u8 {
        // SAFETY: `over` checked that `slots + capacity * stride` fits the region.
        unsafe { self.region.ptr(self.layout.slots + index as usize * self.layout.stride) }
    }

    /// Bytes of headroom plus data room per slot.
    pub(crate) fn buffer_len(&self) -> usize {
        self.headroom as usize + self.data_room as usize
    }

    /// Moves slot `index`'s owner word from `from` to `to`; `false` if it
    /// was not `from` (the slot is not where the caller thinks).
    pub(crate) fn move_slot(&self, index: u32, from: u32, to: u32) -> bool {
        self.owners()[index as usize].compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Records that `index` (held by the caller) is now `owner`'s.
    pub(crate) fn set_owner(&self, index: u32, owner: Owner) {
        self.owners()[index as usize].store(owner.0 & OWNER_MASK, Ordering::Release);
    }

    /// The holder of `index`, if it is held (not free, not cached).
    pub(crate) fn owner(&self, index: u32) -> Owner {
        Owner(self.owners()[index as usize].load(Ordering::Acquire) & OWNER_MASK)
    }

    /// Marks each of `indices` with `word` (free, or cached by someone).
    pub(crate) fn mark(&self, indices: &[u32], word: u32) {
        let owners = self.owners();
        indices.iter().for_each(|&i| owners[i as usize].store(word, Ordering::Release));
    }

    /// Slots in this process's cache stashes.
    /// Whether `other` is a record of the same pool memory as mapped here.
    pub(crate) fn same_memory(&self, other: &PoolShared) -> bool {
        self.header == other.header
    }

    pub(crate) fn cached(&self) -> usize {
        let caches = self.caches.lock().unwrap_or_else(|e| e.into_inner());
        caches.iter().filter_map(Weak::upgrade).map(|c| c.load(std::sync::atomic::Ordering::Relaxed)).sum()
    }

    /// The owner word of a slot stashed in `owner`'s cache.
    pub(crate) fn cached_word(owner: Owner) -> u32 {
        CACHED | (owner.0 & OWNER_MASK)
    }
}
