//! Bounded lock-free rings in the manner of `rte_ring`.
//!
//! A ring is a power-of-two array of slots and two head/tail pairs of
//! free-running `u32` positions, one pair for producers and one for
//! consumers. An operation first *reserves* a run of slots by moving its
//! side's head (a plain store for a single-threaded side, a CAS when several
//! threads share it), then copies objects in or out, then *publishes* by
//! moving its side's tail. The other side only ever looks at this side's
//! tail, so it never sees a half-written slot.
//!
//! A shared side publishes as DPDK's RTS ("relaxed tail sync") rings do, not
//! as its classic rings do. A classic multi-producer publish waits until
//! every earlier reservation has published; a thread preempted between
//! reserve and publish then makes every later one spin. With more threads
//! than cores (stack threads, the bridge and application threads on two
//! cores) that convoy turned into stalls of tens of seconds. Here head and
//! tail also count operations: a reservation bumps the head's count, a
//! publish bumps the tail's, and whichever publish brings the counts level
//! moves the tail's position up to the head's. Nobody waits for anybody; a
//! preempted thread only delays when the other side sees the runs reserved
//! after its own.
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
use std::sync::atomic::{AtomicU64, Ordering};

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

/// A position in the ring and a count of operations, packed in one word so
/// both change in a single atomic step (DPDK's `rte_ring_rts_poscnt`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PosCnt {
    pos: u32,
    cnt: u32,
}

impl PosCnt {
    fn pack(self) -> u64 {
        u64::from(self.cnt) << 32 | u64::from(self.pos)
    }

    fn unpack(word: u64) -> PosCnt {
        PosCnt { pos: word as u32, cnt: (word >> 32) as u32 }
    }
}

/// One side's reservation (`head`) and publication (`tail`) words, each a
/// packed [`PosCnt`].
#[derive(Default)]
struct HeadTail {
    head: AtomicU64,
    tail: AtomicU64,
}

impl HeadTail {
    fn head(&self) -> PosCnt {
        PosCnt::unpack(self.head.load(Ordering::Acquire))
    }

    fn tail(&self) -> PosCnt {
        PosCnt::unpack(self.tail.load(Ordering::Acquire))
    }
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
        let prod = self.prod.tail().pos;
        let cons = self.cons.tail().pos;
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
        self.publish(Side::Prod);
        Ok(())
    }

    /// Dequeues one object, if any is published.
    pub fn dequeue(&self) -> Option<T> {
        let (start, _) = self.reserve(Side::Cons, 1, Behavior::Fixed)?;
        // SAFETY: slot `start` was reserved for this consumer by `reserve`.
        let obj = unsafe { self.read_slot(start) };
        self.publish(Side::Cons);
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
        self.publish(Side::Prod);
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
        self.publish(Side::Cons);
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
    /// positions in `[prod.head, cons.tail + capacity)`, i.e. slots every
    /// consumer has finished reading; a consumer only reserves positions in
    /// `[cons.head, prod.tail)`, i.e. slots every producer has finished
    /// writing. A tail only covers finished runs: it moves to its head's
    /// position only when as many operations have published as reserved.
    /// Heads only move forward, by a store on a single-threaded side or a
    /// CAS on a shared one, so each position is reserved by one caller.
    fn reserve(&self, side: Side, want: usize, behavior: Behavior) -> Option<(u32, u32)> {
        let (mine, other, multi) = match side {
            Side::Prod => (&self.prod, &self.cons, self.mode.multi_producer()),
            Side::Cons => (&self.cons, &self.prod, self.mode.multi_consumer()),
        };
        if behavior == Behavior::Fixed && want > self.capacity() {
            return None;
        }
        let want = want.min(self.capacity()) as u32;
        let mut head = mine.head();
        loop {
            let other_tail = other.tail().pos;
            let avail = match side {
                Side::Prod => (self.mask + 1).wrapping_sub(head.pos.wrapping_sub(other_tail)),
                Side::Cons => other_tail.wrapping_sub(head.pos),
            };
            let n = if behavior == Behavior::Fixed && avail < want { 0 } else { want.min(avail) };
            if n == 0 {
                return None;
            }
            let next = PosCnt { pos: head.pos.wrapping_add(n), cnt: head.cnt.wrapping_add(1) };
            if !multi {
                mine.head.store(next.pack(), Ordering::Relaxed);
                return Some((head.pos, n));
            }
            match mine.head.compare_exchange_weak(head.pack(), next.pack(), Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some((head.pos, n)),
                Err(current) => head = PosCnt::unpack(current),
            }
        }
    }

    /// Publishes a run this caller reserved on `side` and has finished with.
    ///
    /// A single-threaded side simply moves its tail up to its head. A shared
    /// side counts one more finished operation on its tail; if that makes
    /// the tail's count equal the head's, every reservation has finished and
    /// the tail's position moves up to the head's (RTS). The CAS is a
    /// release, and later CASes on the tail continue its release sequence,
    /// so a reader that acquires the tail sees the slots of every finished
    /// run the tail covers, whoever moved it.
    fn publish(&self, side: Side) {
        let (mine, multi) = match side {
            Side::Prod => (&self.prod, self.mode.multi_producer()),
            Side::Cons => (&self.cons, self.mode.multi_consumer()),
        };
        if !multi {
            mine.tail.store(mine.head.load(Ordering::Relaxed), Ordering::Release);
            return;
        }
        let mut tail = mine.tail.load(Ordering::Acquire);
        loop {
            // Read after the tail (acquire): any operation the tail already
            // counts is one whose reservation this head includes.
            let head = mine.head();
            let old = PosCnt::unpack(tail);
            let cnt = old.cnt.wrapping_add(1);
            let pos = if cnt == head.cnt { head.pos } else { old.pos };
            let next = PosCnt { pos, cnt }.pack();
            match mine.tail.compare_exchange_weak(tail, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return,
                Err(current) => tail = current,
            }
        }
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
        let prod = PosCnt::unpack(*self.prod.tail.get_mut()).pos;
        let mut cons = PosCnt::unpack(*self.cons.tail.get_mut()).pos;
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
            let start = PosCnt { pos: u32::MAX - 3, cnt: u32::MAX - 1 }.pack();
            side.head.store(start, Ordering::Relaxed);
            side.tail.store(start, Ordering::Relaxed);
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
