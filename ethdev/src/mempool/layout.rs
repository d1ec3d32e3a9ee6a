//! Where a pool's parts lie in its region, as memif's header describes its
//! region: a `repr(C)` header, then the owner words, the free-list links and
//! the slots, each run starting on a cache line and named by its byte offset.
//!
//! ```text
//! 0            PoolHeader   magic, layout version, shape, offsets (line 0)
//!                           free-list top, free count, failures (a line each)
//! owners       [u32; capacity]   who holds each slot (see `mempool` docs)
//! links        [u32; capacity]   free-list link of each slot
//! slots        [stride; capacity] 64-byte mbuf header + headroom + data room
//! ```
//!
//! The header holds only atomics, so a process that maps a pool made by
//! another can read it whatever that process wrote, and checks it
//! (`PoolLayout::check`) before following any offset in it.

use crate::region::ALIGN;
use crate::sync::{AtomicU32, AtomicU64, Ordering};

use super::{MempoolConfig, HEADER_SIZE};

/// Identifies a pool header.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"dtnetmp\0");
/// Bumped whenever this layout changes.
pub(crate) const VERSION: u32 = 1;

/// One cache line holding one value, so writers of different words do not
/// share a line.
#[repr(C, align(64))]
pub(crate) struct Line<T>(pub(crate) T);

/// The start of every pool region.
#[repr(C, align(64))]
pub(crate) struct PoolHeader {
    pub(crate) magic: AtomicU64,
    pub(crate) version: AtomicU32,
    pub(crate) capacity: AtomicU32,
    pub(crate) stride: AtomicU32,
    pub(crate) headroom: AtomicU32,
    pub(crate) data_room: AtomicU32,
    /// Top of the free list: slot index and ABA tag (`freelist`).
    pub(crate) free_top: Line<AtomicU64>,
    /// Slots on the free list.
    pub(crate) free_len: Line<AtomicU64>,
    /// Allocations refused because the pool was empty.
    pub(crate) alloc_failures: Line<AtomicU64>,
    /// Slots refused because their owner word was not what it must be.
    pub(crate) corrupt: Line<AtomicU64>,
}

// SAFETY: the header is `repr(C)` and holds only atomic integers (`Line` is
// a `repr(C)` wrapper), so every bit pattern is valid and shared access sound.
#[cfg(not(loom))]
unsafe impl crate::shm::words::Word for PoolHeader {}

/// Byte offsets of a pool's parts, computed from its shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PoolLayout {
    pub(crate) capacity: u32,
    pub(crate) stride: usize,
    pub(crate) owners: usize,
    pub(crate) links: usize,
    pub(crate) slots: usize,
    /// Bytes the whole pool needs.
    pub(crate) total: usize,
}

impl PoolLayout {
    /// The layout of a pool of `config`'s shape (already validated).
    pub(crate) fn of(config: &MempoolConfig) -> PoolLayout {
        let slot_bytes = HEADER_SIZE + config.headroom as usize + config.data_room as usize;
        Self::from_shape(config.capacity, slot_bytes.next_multiple_of(HEADER_SIZE))
    }

    fn from_shape(capacity: u32, stride: usize) -> PoolLayout {
        let words = capacity as usize * 4;
        let owners = std::mem::size_of::<PoolHeader>().next_multiple_of(ALIGN);
        let links = (owners + words).next_multiple_of(ALIGN);
        let slots = (links + words).next_multiple_of(ALIGN);
        PoolLayout { capacity, stride, owners, links, slots, total: slots + capacity as usize * stride }
    }

    /// Writes the shape into a fresh header (the free list is set up apart).
    pub(crate) fn init(&self, header: &PoolHeader, config: &MempoolConfig) {
        header.capacity.store(self.capacity, Ordering::Relaxed);
        header.stride.store(self.stride as u32, Ordering::Relaxed);
        header.headroom.store(u32::from(config.headroom), Ordering::Relaxed);
        header.data_room.store(config.data_room, Ordering::Relaxed);
        header.version.store(VERSION, Ordering::Relaxed);
        header.magic.store(MAGIC, Ordering::Release);
    }

    /// Reads a header another process wrote and checks that it describes a
    /// pool of this layout version that fits in `len` bytes; returns the
    /// layout, headroom and data room.
    #[cfg_attr(loom, allow(dead_code, reason = "shared-memory pools are not built under loom"))]
    pub(crate) fn check(header: &PoolHeader, len: usize) -> Result<(PoolLayout, u16, u32), String> {
        if header.magic.load(Ordering::Acquire) != MAGIC {
            return Err("not a pool (bad magic)".into());
        }
        let version = header.version.load(Ordering::Relaxed);
        if version != VERSION {
            return Err(format!("pool layout version {version}, this dtnet reads version {VERSION}"));
        }
        let capacity = header.capacity.load(Ordering::Relaxed);
        let stride = header.stride.load(Ordering::Relaxed) as usize;
        let headroom = u16::try_from(header.headroom.load(Ordering::Relaxed)).map_err(|_| "headroom over 64 KiB")?;
        let data_room = header.data_room.load(Ordering::Relaxed);
        let config = MempoolConfig { name: String::new(), capacity, data_room, headroom };
        config.validate().map_err(|e| e.to_string())?;
        let layout = Self::of(&config);
        if layout.stride != stride || layout.total > len {
            return Err(format!("pool shape (capacity {capacity}, stride {stride}) does not fit its {len} bytes"));
        }
        Ok((layout, headroom, data_room))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_start_on_cache_lines_and_do_not_overlap() {
        let layout = PoolLayout::of(&MempoolConfig::new("t", 3).data_room(100));
        assert_eq!(std::mem::size_of::<PoolHeader>() % ALIGN, 0);
        for offset in [layout.owners, layout.links, layout.slots, layout.stride] {
            assert_eq!(offset % ALIGN, 0);
        }
        assert!(layout.owners + 12 <= layout.links && layout.links + 12 <= layout.slots);
        assert_eq!(layout.total, layout.slots + 3 * layout.stride);
    }
}
