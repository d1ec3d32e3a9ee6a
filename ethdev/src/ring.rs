//! Bounded lock-free rings in the manner of `rte_ring`.
//!
//! A ring is a power-of-two array of slots and two head/tail pairs of
//! free-running `u32` counters, one pair for producers and one for
//! consumers. An operation first *reserves* a run of slots by moving its
//! side's head (a plain store for a single-threaded side, a CAS when several
//! threads share it), then copies objects in or out, then *publishes* by
//! moving its side's tail once every earlier reservation on that side has
//! published. The other side only ever looks at this side's tail, so it
//! never sees a half-written slot.
//!
//! Burst calls move as many objects as fit and return the count, as
//! `rte_ring_enqueue_burst` does; the `*_bulk` internals move all or nothing
//! (used by the mempool). This is hand-written rather than taken from a crate
//! because the same layout (indices, not pointers) has to work later in
//! shared memory, and because burst semantics with partial success are what
//! the rest of the data path is built around.
//!
//! All `unsafe` here concerns slot access; the invariant that makes it sound
//! is stated once, at [`Ring::reserve`].

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU32, Ordering};

use crossbeam_utils::CachePadded;

use crate::error::ConfigError;

/// Which sides of a ring may be used by several threads at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingMode {
    /// One producer thread, one consumer thread.
    Spsc,
    /// Many producer threads, one consumer thread.
    Mpsc,
    /// One producer thread, many consumer threads.
    Spmc,
    /// Many producers and many consumers.
    Mpmc,
}

impl RingMode {
    fn multi_producer(self) -> bool {
        matches!(self, RingMode::Mpsc | RingMode::Mpmc)
    }

    fn multi_consumer(self) -> bool {
        matches!(self, RingMode::Spmc | RingMode::Mpmc)
    }
}

/// One side's reservation (`head`) and publication (`tail`) counters.
#[derive(Default)]
struct HeadTail {
    head: AtomicU32,
    tail: AtomicU32,
}

/// Whether a reservation may be shorter than asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Behavior {
    /// All or nothing.
    Fixed,
    /// As many as possible.
    Variable,
}

/// A bounded lock-free FIFO of `T`, safe to share between threads within the
/// limits of its [`RingMode`].
pub struct Ring<T> {
    prod: CachePadded<HeadTail>,
    cons: CachePadded<HeadTail>,
    mask: u32,
    mode: RingMode,
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
}

// SAFETY: objects are moved between threads through the ring, so `T: Send`
// is required; slot access is serialised by the head/tail protocol.
unsafe impl<T: Send> Send for Ring<T> {}
// SAFETY: as above; every `&self` operation follows the reservation protocol.
unsafe impl<T: Send> Sync for Ring<T> {}

impl<T> Ring<T> {
    /// A ring of `size` slots (a power of two, 2 to 2^31) used in `mode`.
    pub fn new(size: usize, mode: RingMode) -> Result<Self, ConfigError> {
        if !size.is_power_of_two() || !(2..=1 << 31).contains(&size) {
            return Err(ConfigError::new("ring_size", format!("{size} is not a power of two between 2 and 2^31")));
        }
        let slots = (0..size).map(|_| UnsafeCell::new(MaybeUninit::uninit())).collect();
        Ok(Self {
            prod: CachePadded::new(HeadTail::default()),
            cons: CachePadded::new(HeadTail::default()),
            mask: (size - 1) as u32,
            mode,
            slots,
        })
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.mask as usize + 1
    }

    /// The sharing mode this ring was built for.
    pub fn mode(&self) -> RingMode {
        self.mode
    }

    /// Objects currently published and not yet taken (a snapshot).
    pub fn len(&self) -> usize {
        let prod = self.prod.tail.load(Ordering::Acquire);
        let cons = self.cons.tail.load(Ordering::Acquire);
        (prod.wrapping_sub(cons) as usize).min(self.capacity())
    }

    /// Whether the ring holds no objects (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Free slots (a snapshot).
    pub fn free_count(&self) -> usize {
        self.capacity() - self.len()
    }

    /// Enqueues one object, or gives it back if the ring is full.
    pub fn enqueue(&self, obj: T) -> Result<(), T> {
        let Some((start, _)) = self.reserve(Side::Prod, 1, Behavior::Fixed) else {
            return Err(obj);
        };
        // SAFETY: slot `start` was reserved for this producer by `reserve`.
        unsafe { self.write_slot(start, obj) };
        self.publish(Side::Prod, start, 1);
        Ok(())
    }

    /// Dequeues one object, if any is published.
    pub fn dequeue(&self) -> Option<T> {
        let (start, _) = self.reserve(Side::Cons, 1, Behavior::Fixed)?;
        // SAFETY: slot `start` was reserved for this consumer by `reserve`.
        let obj = unsafe { self.read_slot(start) };
        self.publish(Side::Cons, start, 1);
        Some(obj)
    }

    /// Moves as many objects as fit from the front of `objs` into the ring,
    /// keeping the rest in `objs`; returns how many were enqueued.
    pub fn enqueue_burst(&self, objs: &mut Vec<T>) -> usize {
        self.enqueue_from(objs, Behavior::Variable)
    }

    /// Moves every object of `objs` into the ring, or none if they do not
    /// all fit; returns whether they were moved.
    pub fn enqueue_bulk(&self, objs: &mut Vec<T>) -> bool {
        objs.is_empty() || self.enqueue_from(objs, Behavior::Fixed) > 0
    }

    /// Appends up to `max` objects to `out`; returns how many were dequeued.
    pub fn dequeue_burst(&self, out: &mut Vec<T>, max: usize) -> usize {
        self.dequeue_into(out, max, Behavior::Variable)
    }

    /// Appends exactly `n` objects to `out`, or none if fewer are available;
    /// returns whether they were moved.
    pub fn dequeue_bulk(&self, out: &mut Vec<T>, n: usize) -> bool {
        n == 0 || self.dequeue_into(out, n, Behavior::Fixed) > 0
    }

    fn enqueue_from(&self, objs: &mut Vec<T>, behavior: Behavior) -> usize {
        let Some((start, n)) = self.reserve(Side::Prod, objs.len(), behavior) else {
            return 0;
        };
        let (n, rest) = (n as usize, objs.len() - n as usize);
        // SAFETY: slots start..start+n were reserved for this producer. The
        // first `n` objects are moved into them bitwise, so the vector's
        // length is cut to 0 first and the `rest` objects after them are
        // moved down before it is restored; nothing here can panic.
        unsafe {
            objs.set_len(0);
            self.copy_run(start, n, |slot, at, count| {
                std::ptr::copy_nonoverlapping(objs.as_ptr().add(at), slot, count)
            });
            std::ptr::copy(objs.as_ptr().add(n), objs.as_mut_ptr(), rest);
            objs.set_len(rest);
        }
        self.publish(Side::Prod, start, n as u32);
        n
    }

    fn dequeue_into(&self, out: &mut Vec<T>, max: usize, behavior: Behavior) -> usize {
        let Some((start, n)) = self.reserve(Side::Cons, max, behavior) else {
            return 0;
        };
        out.reserve(n as usize);
        let len = out.len();
        // SAFETY: slots start..start+n were reserved for this consumer and
        // hold published objects, which are moved bitwise into the spare
        // capacity just reserved; the length then covers them.
        unsafe {
            let dst = out.as_mut_ptr().add(len);
            self.copy_run(start, n as usize, |slot, at, count| std::ptr::copy_nonoverlapping(slot, dst.add(at), count));
            out.set_len(len + n as usize);
        }
        self.publish(Side::Cons, start, n);
        n as usize
    }

    /// Calls `copy(slot pointer, offset into the run, count)` for the one or
    /// two contiguous pieces of slot memory that counters `start..start+n`
    /// occupy (two when the run wraps past the end of the slot array).
    ///
    /// # Safety
    /// The caller holds a reservation covering the run.
    unsafe fn copy_run(&self, start: u32, n: usize, mut copy: impl FnMut(*mut T, usize, usize)) {
        let first = (start & self.mask) as usize;
        let head = n.min(self.capacity() - first);
        let base = self.slots.as_ptr() as *mut T;
        copy(base.add(first), 0, head);
        if head < n {
            copy(base, head, n - head);
        }
    }

    /// Reserves up to `want` slots on `side` and returns the first counter
    /// value and the count, or `None` if nothing (or, for `Fixed`, not all)
    /// could be reserved.
    ///
    /// Invariant that makes slot access sound: a producer only reserves
    /// counters in `[prod.head, cons.tail + capacity)`, i.e. slots every
    /// consumer has finished reading; a consumer only reserves counters in
    /// `[cons.head, prod.tail)`, i.e. slots every producer has finished
    /// writing. Heads only move forward, by a store on a single-threaded side
    /// or a CAS on a shared one, so each counter is reserved by one caller.
    fn reserve(&self, side: Side, want: usize, behavior: Behavior) -> Option<(u32, u32)> {
        let (mine, other, multi) = match side {
            Side::Prod => (&self.prod, &self.cons, self.mode.multi_producer()),
            Side::Cons => (&self.cons, &self.prod, self.mode.multi_consumer()),
        };
        if behavior == Behavior::Fixed && want > self.capacity() {
            return None;
        }
        let want = want.min(self.capacity()) as u32;
        let mut head = mine.head.load(Ordering::Acquire);
        loop {
            let other_tail = other.tail.load(Ordering::Acquire);
            let avail = match side {
                Side::Prod => (self.mask + 1).wrapping_sub(head.wrapping_sub(other_tail)),
                Side::Cons => other_tail.wrapping_sub(head),
            };
            let n = if behavior == Behavior::Fixed && avail < want { 0 } else { want.min(avail) };
            if n == 0 {
                return None;
            }
            let next = head.wrapping_add(n);
            if !multi {
                mine.head.store(next, Ordering::Relaxed);
                return Some((head, n));
            }
            match mine.head.compare_exchange_weak(head, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some((head, n)),
                Err(current) => head = current,
            }
        }
    }

    /// Publishes `n` slots from `start` on `side` once every earlier
    /// reservation on that side has published.
    fn publish(&self, side: Side, start: u32, n: u32) {
        let mine = match side {
            Side::Prod => &self.prod,
            Side::Cons => &self.cons,
        };
        while mine.tail.load(Ordering::Acquire) != start {
            std::hint::spin_loop();
        }
        mine.tail.store(start.wrapping_add(n), Ordering::Release);
    }

    /// # Safety
    /// The caller holds a producer reservation covering `counter`.
    unsafe fn write_slot(&self, counter: u32, obj: T) {
        let slot = &self.slots[(counter & self.mask) as usize];
        (*slot.get()).write(obj);
    }

    /// # Safety
    /// The caller holds a consumer reservation covering `counter`, whose slot
    /// a producer has written and published.
    unsafe fn read_slot(&self, counter: u32) -> T {
        let slot = &self.slots[(counter & self.mask) as usize];
        (*slot.get()).assume_init_read()
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        let prod = *self.prod.tail.get_mut();
        let mut cons = *self.cons.tail.get_mut();
        while cons != prod {
            // SAFETY: `&mut self` excludes every other user; slots between the
            // tails were published by producers and not yet read.
            drop(unsafe { self.read_slot(cons) });
            cons = cons.wrapping_add(1);
        }
    }
}

impl<T> std::fmt::Debug for Ring<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("mode", &self.mode)
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .finish()
    }
}

#[derive(Clone, Copy)]
enum Side {
    Prod,
    Cons,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn rejects_sizes_that_are_not_powers_of_two() {
        for size in [0, 1, 3, 100] {
            let err = Ring::<u8>::new(size, RingMode::Spsc).unwrap_err();
            assert_eq!(err.field, "ring_size");
        }
    }

    #[test]
    fn burst_is_partial_and_bulk_is_all_or_nothing() {
        let ring = Ring::new(4, RingMode::Spsc).unwrap();
        let mut objs = vec![1, 2, 3, 4, 5, 6];
        assert_eq!(ring.enqueue_burst(&mut objs), 4);
        assert_eq!(objs, vec![5, 6]);
        assert!(!ring.enqueue_bulk(&mut objs));
        let mut out = Vec::new();
        assert!(!ring.dequeue_bulk(&mut out, 5));
        assert!(out.is_empty());
        assert!(ring.dequeue_bulk(&mut out, 3));
        assert_eq!(out, vec![1, 2, 3]);
        assert_eq!(ring.len(), 1);
    }

    #[test]
    fn counters_wrap_around_u32() {
        let ring = Ring::new(8, RingMode::Mpmc).unwrap();
        for side in [&ring.prod, &ring.cons] {
            side.head.store(u32::MAX - 3, Ordering::Relaxed);
            side.tail.store(u32::MAX - 3, Ordering::Relaxed);
        }
        let mut out = Vec::new();
        for round in 0..10u32 {
            let mut objs: Vec<u32> = (0..6).map(|i| round * 10 + i).collect();
            assert_eq!(ring.enqueue_burst(&mut objs), 6);
            out.clear();
            assert_eq!(ring.dequeue_burst(&mut out, 8), 6);
            assert_eq!(out, (0..6).map(|i| round * 10 + i).collect::<Vec<_>>());
        }
    }

    #[test]
    fn drop_releases_objects_left_inside() {
        let token = Arc::new(());
        let ring = Ring::new(4, RingMode::Spsc).unwrap();
        ring.enqueue(Arc::clone(&token)).unwrap();
        ring.enqueue(Arc::clone(&token)).unwrap();
        assert_eq!(Arc::strong_count(&token), 3);
        drop(ring);
        assert_eq!(Arc::strong_count(&token), 1);
    }
}
