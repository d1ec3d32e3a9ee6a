//! Atomics at checked offsets: the one way shared memory is read.
//!
//! Another process may write any byte of a domain at any time, so its
//! memory is only ever seen as atomics (valid for every bit pattern and for
//! concurrent access), at offsets checked against the memory's length and
//! the type's alignment. The mapping (`map`) and the regions pools are laid
//! out in (`crate::region`) both hand memory out through [`words_at`].

#![allow(unsafe_code)]

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64};

/// Types shared memory may be handed out as: atomics, or `repr(C)` structs
/// of nothing but atomics.
///
/// # Safety
/// Every bit pattern is a valid value, and concurrent access from any
/// thread or process through `&Self` is sound.
pub(crate) unsafe trait Word: Sized {}
// SAFETY: an atomic integer accepts every bit pattern and concurrent access.
unsafe impl Word for AtomicU32 {}
// SAFETY: as above.
unsafe impl Word for AtomicU64 {}

/// `count` atomics of type `A` at `offset` bytes into `len` bytes at `base`,
/// if they lie inside and `offset` is aligned for `A`.
pub(crate) fn words_at<'a, A: Word>(base: NonNull<u8>, len: usize, offset: usize, count: usize) -> Option<&'a [A]> {
    let end = count.checked_mul(std::mem::size_of::<A>())?.checked_add(offset)?;
    let addr = (base.as_ptr() as usize).checked_add(offset)?;
    if end > len || !addr.is_multiple_of(std::mem::align_of::<A>()) {
        return None;
    }
    // SAFETY: `offset..end` lies inside the `len` bytes the caller owns for
    // `'a`, the address is aligned for `A`, and `A` is a `Word`: made of atomics,
    // valid for every bit pattern and for concurrent access from any thread
    // or process.
    Some(unsafe { std::slice::from_raw_parts(base.as_ptr().add(offset).cast::<A>(), count) })
}
