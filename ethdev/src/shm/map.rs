//! The mapping of a domain's memory file, and the only `unsafe` of [`shm`](super).
//!
//! A [`Mapping`] maps the whole file `MAP_SHARED`, read and write, at
//! whatever address the kernel picks: nothing inside refers to an address,
//! so each process may map it elsewhere. The mapping hands out memory only
//! as slices of atomics, at offsets it checks against its length and
//! alignment. Atomics accept every bit pattern and every concurrent access
//! (from this process or another), so no safe call here can reach undefined
//! behaviour whatever another process writes.

#![allow(unsafe_code)]

use std::ffi::c_void;
use std::fs::File;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64};

use rustix::mm::{mmap, munmap, MapFlags, ProtFlags};

use super::words::{words_at, Word};

/// A shared, writable mapping of a whole file.
#[derive(Debug)]
pub struct Mapping {
    base: NonNull<c_void>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory, reached only through atomics.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps the first `len` bytes of `file` (which must be at least that long).
    pub(crate) fn new(file: &File, len: usize) -> std::io::Result<Mapping> {
        if len == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "cannot map 0 bytes"));
        }
        // SAFETY: a fresh mapping at an address the kernel chooses aliases
        // no Rust object; it is only ever read through atomics.
        let base =
            unsafe { mmap(std::ptr::null_mut(), len, ProtFlags::READ | ProtFlags::WRITE, MapFlags::SHARED, file, 0)? };
        let base = NonNull::new(base).ok_or_else(|| std::io::Error::other("mmap returned null"))?;
        Ok(Mapping { base, len })
    }

    /// Bytes mapped.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is mapped (never, for a mapping that exists).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `count` 64-bit words at byte `offset`, or `None` if they would not
    /// lie inside the mapping or `offset` is not 8-byte aligned.
    pub fn u64s(&self, offset: usize, count: usize) -> Option<&[AtomicU64]> {
        self.atomics::<AtomicU64>(offset, count)
    }

    /// `count` 32-bit words at byte `offset`, or `None` if out of bounds or
    /// misaligned.
    pub fn u32s(&self, offset: usize, count: usize) -> Option<&[AtomicU32]> {
        self.atomics::<AtomicU32>(offset, count)
    }

    fn atomics<A: Word>(&self, offset: usize, count: usize) -> Option<&[A]> {
        words_at(self.base.cast::<u8>(), self.len, offset, count)
    }

    /// The address of `len` bytes at `offset`, if they lie inside the mapping.
    pub(crate) fn bytes(&self, offset: usize, len: usize) -> Option<NonNull<u8>> {
        (offset.checked_add(len)? <= self.len).then(|| {
            // SAFETY: `offset` is inside the mapping (checked above), so the
            // pointer stays within one allocation.
            unsafe { self.base.cast::<u8>().add(offset) }
        })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base` and `len` are those of our own mmap, and no slice
        // borrowed from `&self` outlives it.
        let _ = unsafe { munmap(self.base.as_ptr(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn words_are_bounds_and_alignment_checked() {
        let file = tempfile::tempfile().unwrap();
        file.set_len(4096).unwrap();
        let map = Mapping::new(&file, 4096).unwrap();
        assert!(map.u64s(0, 512).is_some());
        assert!(map.u64s(8, 512).is_none(), "one word past the end");
        assert!(map.u64s(4, 1).is_none(), "misaligned");
        assert!(map.u64s(usize::MAX - 3, 1).is_none(), "overflowing offset");
        assert!(map.u32s(4092, 1).is_some());
        assert!(map.u32s(4094, 1).is_none());
    }

    #[test]
    fn two_mappings_of_one_file_share_memory() {
        let file = tempfile::tempfile().unwrap();
        file.set_len(8192).unwrap();
        let (a, b) = (Mapping::new(&file, 8192).unwrap(), Mapping::new(&file, 8192).unwrap());
        a.u64s(4096, 1).unwrap()[0].store(0xfeed, Ordering::Release);
        assert_eq!(b.u64s(4096, 1).unwrap()[0].load(Ordering::Acquire), 0xfeed);
    }
}
