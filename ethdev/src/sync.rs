//! The synchronisation primitives the ring and the pool are built on, from
//! `std` normally and from `loom` when built with `--cfg loom`.
//!
//! `loom` checks a concurrent algorithm by running a model of it under every
//! interleaving its scheduler can produce, which it can only do if every
//! atomic and every `UnsafeCell` access goes through its own types. The ring
//! and the pool import them from here, so the same code is what runs in
//! production and what `tests/loom.rs` model-checks (`ci/loom`). The `std`
//! [`UnsafeCell`] is wrapped to offer loom's closure-based access, so callers
//! are written once for both.

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::Arc;

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::Arc;

/// `std::cell::UnsafeCell` with the access methods of loom's.
///
/// `repr(transparent)`, so a slice of these has the layout of a slice of `T`.
#[cfg(not(loom))]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    /// Wraps `value`.
    pub(crate) const fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    /// Calls `f` with a pointer through which the value may be read or
    /// written; the caller's protocol decides when that is sound.
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
