//! Bounded lock-free rings in the manner of `rte_ring`, whose sharing rules
//! are enforced by types.
//!
//! A ring is a power-of-two array of slots and two head/tail pairs of
//! free-running `u32` positions, one pair for producers and one for
//! consumers. An operation first *reserves* a run of slots by moving its
//! side's head, then copies objects in or out, then *publishes* by moving its
//! side's tail. The other side only ever looks at this side's tail, so it
//! never sees a half-written slot.
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
//! A side used by one thread moves its head with a plain store; a shared side
//! needs a CAS. Which one a call may use is decided by the handle it is made
//! through, never by a runtime value, so safe code cannot get it wrong:
//!
//! - [`Ring::mpmc`] makes a [`Ring`]: `Sync`, every call CASes; share it by
//!   reference or in an `Arc`.
//! - [`spsc`] makes a [`Producer`] and a [`Consumer`]; [`mpsc`] makes an
//!   [`MpProducer`] (`Clone + Sync`, CAS) and a [`Consumer`]. `Producer` and
//!   `Consumer` are `Send` but neither `Sync` nor `Clone`, and their transfer
//!   methods take `&mut self`: only the one thread that owns such a handle
//!   can move its side's head, which is what the plain store assumes. This is
//!   the shape of crossbeam's `spsc` queue.
//!
//! These rings live inside one process, where a thread cannot die alone.
//! Rings that processes share live in a domain (`shm::ring`) and are
//! single-producer, single-consumer only: a process killed between reserve
//! and publish would leave a multi-producer ring waiting forever for a
//! publication that never comes, while an SPSC side writes one position
//! word the other side trusts only within bounds.
//!
//! Burst calls move as many objects as fit and return the count, as
//! `rte_ring_enqueue_burst` does; the `*_bulk` calls move all or nothing
//! (used by the mempool). This is hand-written rather than taken from a crate
//! because the same layout (indices, not pointers) has to work later in
//! shared memory, and because burst semantics with partial success are what
//! the rest of the data path is built around.
//!
//! All `unsafe` here concerns slot access; the invariant that makes it sound
//! is stated once, at `Core::reserve`. The atomics and cells come from
//! [`crate::sync`], so `tests/loom.rs` model-checks this very code.

#![allow(unsafe_code)]

use std::cell::Cell;
use std::marker::PhantomData;
use std::mem::MaybeUninit;

use crossbeam_utils::CachePadded;

use crate::error::ConfigError;
use crate::sync::{Arc, AtomicU64, Ordering, UnsafeCell};

/// A bounded lock-free FIFO of `T` that any number of threads may enqueue
/// into and dequeue from at once (multi-producer, multi-consumer).
pub struct Ring<T> {
    core: Core<T>,
}

/// The only producer of an [`spsc`] ring.
///
/// `Send` but not `Sync` or `Clone`: it may move to another thread, but no
/// two threads can ever hold it at once, so enqueuing needs no CAS.
pub struct Producer<T> {
    core: Arc<Core<T>>,
    _not_sync: PhantomData<Cell<()>>,
}

/// One of the producers of an [`mpsc`] ring: clone it (or share it by
/// reference) for each producing thread.
pub struct MpProducer<T> {
    core: Arc<Core<T>>,
}

/// The only consumer of an [`spsc`] or [`mpsc`] ring.
///
/// `Send` but not `Sync` or `Clone`, like [`Producer`].
pub struct Consumer<T> {
    core: Arc<Core<T>>,
    _not_sync: PhantomData<Cell<()>>,
}

/// A single-producer, single-consumer ring of `size` slots (a power of two,
/// 2 to 2^31), as its two ends.
///
/// Each end may move to its own thread:
///
/// ```
/// let (mut producer, mut consumer) = ethdev::ring::spsc::<u32>(64).unwrap();
/// std::thread::scope(|s| {
///     s.spawn(move || producer.enqueue(7).unwrap());
/// });
/// assert_eq!(consumer.dequeue(), Some(7));
/// ```
///
/// but one end cannot be shared between threads, so two threads can never
/// reserve the same slot:
///
/// ```compile_fail,E0277
/// let (producer, _consumer) = ethdev::ring::spsc::<u32>(64).unwrap();
/// let shared = &producer;
/// std::thread::scope(|s| {
///     // error[E0277]: `Cell<()>` cannot be shared between threads safely
///     // (within `Producer<u32>`): `&Producer<u32>` is not `Send`
///     s.spawn(move || shared.enqueue(1));
///     s.spawn(move || shared.enqueue(2));
/// });
/// ```
///
/// nor duplicated:
///
/// ```compile_fail,E0599
/// let (producer, _consumer) = ethdev::ring::spsc::<u32>(64).unwrap();
/// let second = producer.clone();
/// ```
pub fn spsc<T>(size: usize) -> Result<(Producer<T>, Consumer<T>), ConfigError> {
    let core = Arc::new(Core::new(size)?);
    Ok((Producer { core: Arc::clone(&core), _not_sync: PhantomData }, Consumer { core, _not_sync: PhantomData }))
}

/// A multi-producer, single-consumer ring of `size` slots (a power of two,
/// 2 to 2^31), as a producer to clone for each producing thread and the one
/// consumer.
pub fn mpsc<T>(size: usize) -> Result<(MpProducer<T>, Consumer<T>), ConfigError> {
    let core = Arc::new(Core::new(size)?);
    Ok((MpProducer { core: Arc::clone(&core) }, Consumer { core, _not_sync: PhantomData }))
}

impl<T> Ring<T> {
    /// A multi-producer, multi-consumer ring of `size` slots (a power of
    /// two, 2 to 2^31).
    pub fn mpmc(size: usize) -> Result<Self, ConfigError> {
        Ok(Ring { core: Core::new(size)? })
    }
}

/// `capacity`, `len`, `is_empty` and `free_count` for a ring or ring end.
macro_rules! snapshots {
    ($handle:ident) => {
        impl<T> $handle<T> {
            /// Number of slots.
            pub fn capacity(&self) -> usize {
                self.core.capacity()
            }

            /// Objects currently published and not yet taken (a snapshot).
            pub fn len(&self) -> usize {
                self.core.len()
            }

            /// Whether the ring holds no objects (a snapshot).
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// Free slots (a snapshot).
            pub fn free_count(&self) -> usize {
                self.capacity() - self.len()
            }
        }

        impl<T> std::fmt::Debug for $handle<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($handle))
                    .field("capacity", &self.capacity())
                    .field("len", &self.len())
                    .finish()
            }
        }
    };
}

/// The enqueue calls of a producing handle. `shared` handles take `&self`
/// and CAS; `exclusive` ones (only for a type that is its side's one handle,
/// neither `Sync` nor `Clone`) take `&mut self` and store, the two always
/// paired here.
macro_rules! enqueue_calls {
    (shared $handle:ident) => {
        enqueue_calls!(@impl $handle, Access::Shared,);
    };
    (exclusive $handle:ident) => {
        enqueue_calls!(@impl $handle, Access::Exclusive, mut);
    };
    (@impl $handle:ident, $access:expr, $($mut:ident)?) => {
        impl<T> $handle<T> {
            /// Enqueues one object, or gives it back if the ring is full.
            pub fn enqueue(&$($mut)? self, obj: T) -> Result<(), T> {
                // SAFETY: `$access` is `Shared`, or this handle is its
                // ring's only producer (see the type) and the receiver is
                // `&mut self`, so no other thread uses this side now.
                unsafe { self.core.enqueue(obj, $access) }
            }

            /// Moves as many objects as fit from the front of `objs` into
            /// the ring, keeping the rest in `objs`; returns how many were
            /// enqueued.
            pub fn enqueue_burst(&$($mut)? self, objs: &mut Vec<T>) -> usize {
                // SAFETY: as in `enqueue`.
                unsafe { self.core.enqueue_from(objs, Behavior::Variable, $access) }
            }

            /// Moves every object of `objs` into the ring, or none if they
            /// do not all fit; returns whether they were moved.
            pub fn enqueue_bulk(&$($mut)? self, objs: &mut Vec<T>) -> bool {
                // SAFETY: as in `enqueue`.
                objs.is_empty() || unsafe { self.core.enqueue_from(objs, Behavior::Fixed, $access) } > 0
            }
        }
    };
}

/// The dequeue calls of a consuming handle, `shared` or `exclusive` as for
/// `enqueue_calls`.
macro_rules! dequeue_calls {
    (shared $handle:ident) => {
        dequeue_calls!(@impl $handle, Access::Shared,);
    };
    (exclusive $handle:ident) => {
        dequeue_calls!(@impl $handle, Access::Exclusive, mut);
    };
    (@impl $handle:ident, $access:expr, $($mut:ident)?) => {
        impl<T> $handle<T> {
            /// Dequeues one object, if any is published.
            pub fn dequeue(&$($mut)? self) -> Option<T> {
                // SAFETY: `$access` is `Shared`, or this handle is its
                // ring's only consumer (see the type) and the receiver is
                // `&mut self`, so no other thread uses this side now.
                unsafe { self.core.dequeue($access) }
            }

            /// Appends up to `max` objects to `out`; returns how many were
            /// dequeued.
            pub fn dequeue_burst(&$($mut)? self, out: &mut Vec<T>, max: usize) -> usize {
                // SAFETY: as in `dequeue`.
                unsafe { self.core.dequeue_into(out, max, Behavior::Variable, $access) }
            }

            /// Appends exactly `n` objects to `out`, or none if fewer are
            /// available; returns whether they were moved.
            pub fn dequeue_bulk(&$($mut)? self, out: &mut Vec<T>, n: usize) -> bool {
                // SAFETY: as in `dequeue`.
                n == 0 || unsafe { self.core.dequeue_into(out, n, Behavior::Fixed, $access) } > 0
            }
        }
    };
}

snapshots!(Ring);
snapshots!(Producer);
snapshots!(MpProducer);
snapshots!(Consumer);
enqueue_calls!(shared Ring);
enqueue_calls!(shared MpProducer);
enqueue_calls!(exclusive Producer);
dequeue_calls!(shared Ring);
dequeue_calls!(exclusive Consumer);

impl<T> Clone for MpProducer<T> {
    fn clone(&self) -> Self {
        MpProducer { core: Arc::clone(&self.core) }
    }
}

/// How many threads may be using one side of a ring at once.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Only the caller: the head moves with a plain store.
    Exclusive,
    /// Any number: the head moves with a CAS.
    Shared,
}

/// Whether a reservation may be shorter than asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Behavior {
    /// All or nothing.
    Fixed,
    /// As many as possible.
    Variable,
}

#[derive(Clone, Copy)]
enum Side {
    Prod,
    Cons,
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

/// The ring proper, shared by its handles.
struct Core<T> {
    prod: CachePadded<HeadTail>,
    cons: CachePadded<HeadTail>,
    mask: u32,
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
}

// SAFETY: every `&self` method that touches slots is either safe under any
// sharing (`Access::Shared`) or `unsafe` with the contract that its side is
// used by the caller alone; objects cross threads, hence `T: Send`.
unsafe impl<T: Send> Sync for Core<T> {}

impl<T> Core<T> {
    fn new(size: usize) -> Result<Self, ConfigError> {
        if !size.is_power_of_two() || !(2..=1 << 31).contains(&size) {
            return Err(ConfigError::new("ring_size", format!("{size} is not a power of two between 2 and 2^31")));
        }
        let counters = || CachePadded::new(HeadTail { head: AtomicU64::new(0), tail: AtomicU64::new(0) });
        Ok(Core {
            prod: counters(),
            cons: counters(),
            mask: (size - 1) as u32,
            slots: (0..size).map(|_| UnsafeCell::new(MaybeUninit::uninit())).collect(),
        })
    }

    fn capacity(&self) -> usize {
        self.mask as usize + 1
    }

    fn len(&self) -> usize {
        let prod = self.prod.tail().pos;
        let cons = self.cons.tail().pos;
        (prod.wrapping_sub(cons) as usize).min(self.capacity())
    }

    /// # Safety
    /// With `Access::Exclusive`, no other thread enqueues into this ring
    /// until the call returns.
    unsafe fn enqueue(&self, obj: T, access: Access) -> Result<(), T> {
        // SAFETY: the caller's contract is `reserve`'s.
        let Some((start, _)) = (unsafe { self.reserve(Side::Prod, 1, Behavior::Fixed, access) }) else {
            return Err(obj);
        };
        // SAFETY: slot `start` was reserved for this producer by `reserve`.
        self.slot(start).with_mut(|slot| unsafe { (*slot).write(obj) });
        self.publish(Side::Prod, access);
        Ok(())
    }

    /// # Safety
    /// With `Access::Exclusive`, no other thread dequeues from this ring
    /// until the call returns.
    unsafe fn dequeue(&self, access: Access) -> Option<T> {
        // SAFETY: the caller's contract is `reserve`'s.
        let (start, _) = unsafe { self.reserve(Side::Cons, 1, Behavior::Fixed, access) }?;
        // SAFETY: slot `start` was reserved for this consumer by `reserve`
        // and holds a published object.
        let obj = self.slot(start).with_mut(|slot| unsafe { (*slot).assume_init_read() });
        self.publish(Side::Cons, access);
        Some(obj)
    }

    /// # Safety
    /// As for [`Core::enqueue`].
    unsafe fn enqueue_from(&self, objs: &mut Vec<T>, behavior: Behavior, access: Access) -> usize {
        // SAFETY: the caller's contract is `reserve`'s.
        let Some((start, n)) = (unsafe { self.reserve(Side::Prod, objs.len(), behavior, access) }) else {
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
        self.publish(Side::Prod, access);
        n
    }

    /// # Safety
    /// As for [`Core::dequeue`].
    unsafe fn dequeue_into(&self, out: &mut Vec<T>, max: usize, behavior: Behavior, access: Access) -> usize {
        // SAFETY: the caller's contract is `reserve`'s.
        let Some((start, n)) = (unsafe { self.reserve(Side::Cons, max, behavior, access) }) else {
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
        self.publish(Side::Cons, access);
        n as usize
    }

    /// The cell behind counter value `counter`.
    fn slot(&self, counter: u32) -> &UnsafeCell<MaybeUninit<T>> {
        &self.slots[(counter & self.mask) as usize]
    }

    /// Calls `copy(slot pointer, offset into the run, count)` for the one or
    /// two contiguous pieces of slot memory that counters `start..start+n`
    /// occupy (two when the run wraps past the end of the slot array).
    ///
    /// # Safety
    /// The caller holds a reservation covering the run.
    #[cfg(not(loom))]
    unsafe fn copy_run(&self, start: u32, n: usize, mut copy: impl FnMut(*mut T, usize, usize)) {
        let first = (start & self.mask) as usize;
        let head = n.min(self.capacity() - first);
        // A slot is `UnsafeCell<MaybeUninit<T>>`, both `repr(transparent)`,
        // so the slot array has the layout of a `[T]`, and writing through
        // it is allowed because the memory is inside `UnsafeCell`s.
        let base = self.slots.as_ptr() as *mut T;
        // SAFETY: `first < capacity` and `head <= capacity - first`, so both
        // pieces lie inside the slot array.
        unsafe {
            copy(base.add(first), 0, head);
            if head < n {
                copy(base, head, n - head);
            }
        }
    }

    /// Under loom, one call per slot through the cell, so that loom sees
    /// (and checks) every slot access.
    ///
    /// # Safety
    /// The caller holds a reservation covering the run.
    #[cfg(loom)]
    unsafe fn copy_run(&self, start: u32, n: usize, mut copy: impl FnMut(*mut T, usize, usize)) {
        for at in 0..n {
            self.slot(start.wrapping_add(at as u32)).with_mut(|slot| copy(slot.cast::<T>(), at, 1));
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
    /// Heads only move forward, by a CAS on a shared side or, on a
    /// side one thread owns, by a plain store, so each counter is reserved by
    /// one caller.
    ///
    /// # Safety
    /// With `Access::Exclusive`, no other thread uses `side` until the
    /// caller has published: the plain store does not notice a concurrent
    /// reservation.
    unsafe fn reserve(&self, side: Side, want: usize, behavior: Behavior, access: Access) -> Option<(u32, u32)> {
        let (mine, other) = self.sides(side);
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
            if access == Access::Exclusive {
                mine.head.store(next.pack(), Ordering::Relaxed);
                return Some((head.pos, n));
            }
            match mine.head.compare_exchange_weak(head.pack(), next.pack(), Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some((head.pos, n)),
                Err(current) => head = PosCnt::unpack(current),
            }
        }
    }

    /// Publishes a run the caller reserved on `side` and has finished with.
    ///
    /// A side one thread owns simply moves its tail up to its head. A shared
    /// side counts one more finished operation on its tail; if that makes
    /// the tail's count equal the head's, every reservation has finished and
    /// the tail's position moves up to the head's (RTS). The CAS is a
    /// release, and later CASes on the tail continue its release sequence,
    /// so a reader that acquires the tail sees the slots of every finished
    /// run the tail covers, whoever moved it.
    fn publish(&self, side: Side, access: Access) {
        let (mine, _) = self.sides(side);
        if access == Access::Exclusive {
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
            match mine.tail.compare_exchange_weak(tail, PosCnt { pos, cnt }.pack(), Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(current) => tail = current,
            }
        }
    }

    /// `side`'s counters and the other side's.
    fn sides(&self, side: Side) -> (&HeadTail, &HeadTail) {
        match side {
            Side::Prod => (&self.prod, &self.cons),
            Side::Cons => (&self.cons, &self.prod),
        }
    }
}

impl<T> Drop for Core<T> {
    fn drop(&mut self) {
        let prod = PosCnt::unpack(self.prod.tail.load(Ordering::Relaxed)).pos;
        let mut cons = PosCnt::unpack(self.cons.tail.load(Ordering::Relaxed)).pos;
        while cons != prod {
            // SAFETY: `&mut self` excludes every other user; slots between
            // the tails were published by producers and not yet read.
            drop(self.slot(cons).with_mut(|slot| unsafe { (*slot).assume_init_read() }));
            cons = cons.wrapping_add(1);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn rejects_sizes_that_are_not_powers_of_two() {
        for size in [0, 1, 3, 100] {
            let err = spsc::<u8>(size).unwrap_err();
            assert_eq!(err.field, "ring_size");
        }
    }

    #[test]
    fn burst_is_partial_and_bulk_is_all_or_nothing() {
        let (mut prod, mut cons) = spsc(4).unwrap();
        let mut objs = vec![1, 2, 3, 4, 5, 6];
        assert_eq!(prod.enqueue_burst(&mut objs), 4);
        assert_eq!(objs, vec![5, 6]);
        assert!(!prod.enqueue_bulk(&mut objs));
        let mut out = Vec::new();
        assert!(!cons.dequeue_bulk(&mut out, 5));
        assert!(out.is_empty());
        assert!(cons.dequeue_bulk(&mut out, 3));
        assert_eq!(out, vec![1, 2, 3]);
        assert_eq!(cons.len(), 1);
    }

    #[test]
    fn counters_wrap_around_u32() {
        let ring = Ring::mpmc(8).unwrap();
        for side in [&ring.core.prod, &ring.core.cons] {
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
        let (mut prod, cons) = spsc(4).unwrap();
        prod.enqueue(Arc::clone(&token)).unwrap();
        prod.enqueue(Arc::clone(&token)).unwrap();
        assert_eq!(Arc::strong_count(&token), 3);
        drop(prod);
        assert_eq!(Arc::strong_count(&token), 3, "the consumer keeps the ring alive");
        drop(cons);
        assert_eq!(Arc::strong_count(&token), 1);
    }
}
