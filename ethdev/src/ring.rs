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
//! What that costs, and how it is won back. An RTS publish is a CAS where a
//! classic one is a plain store, and a CAS (a locked instruction on x86)
//! first drains the stores that copied the run into the slots. Measured
//! with `dtnet bench ring.spsc ring.mpmc` against commit `bdc1dfd` (classic
//! publish), the first RTS version read `ring.mpmc.burst32` about 20 % below
//! it. Three changes more than recover it, none of them giving up the RTS
//! property. In interleaved rounds on a 2-core VM (threads at real-time
//! priority to keep compilers off them), `ring.mpmc.burst32` read 302-324
//! Mobj/s against bdc1dfd's 223-227 and 193 before the changes, and
//! `ring.spsc.burst32` 328-501 against 290-315. In the VM's second, slower
//! regime, where every binary falls to about 100, mpmc is about level with
//! bdc1dfd (99-108 against 99-104 in eight back-to-back pairs, single
//! rounds of either scattering lower) and was 51-68 before. The changes:
//!
//! - Each side's words sit on two cache lines: a *reservation line* with
//!   the head, which only this side's threads touch, and a *publication
//!   line* with the tail, which the other side reads. A consumer polling the
//!   producers' tail no longer steals the line the producers' head CAS
//!   needs.
//! - The reservation line also holds `seen`, the other side's tail position
//!   as this side last read it (the other tail cache of SPSC queues such as
//!   rtrb's, here shared by the side's threads). A reservation the cached
//!   value allows reads no line of the other side; only when it says "full"
//!   (or "empty") is the real tail read and `seen` refreshed.
//! - A shared publish's first CAS assumes the tail is still where its own
//!   run began, which is true whenever no other run on that side overlaps,
//!   so the uncontended publish is exactly one CAS and no read of the tail.
//!
//! What the bridge still pays. `bridge.fwd.64b.2port` drives every ring of
//! its veth ports from one thread, through `mpmc` rings, and reads 1-2 %
//! below bdc1dfd in the same rounds (13.0-13.4 Mpps against 13.3-13.6,
//! fast regime). A build with every ring call forced onto the exclusive
//! path (no CAS anywhere) is level with bdc1dfd, so what is left is the
//! second CAS of an RTS publish on the queue handles' side, which classic
//! publish did with a store. Three cheaper cures measured no better than
//! this layout, within the benchmark's 1 % noise: `spmc`/`mpsc` rings with
//! the veth wire owning its side (a plain store there, as before the
//! reshape), a copy of the ring's shape on each reservation line (one line
//! fewer per call), and unlocked wire-side counters.
//!
//! A stale `seen` is safe: tails only move forward, so an old value only
//! under-states what may be reserved, and a value that does not fit the
//! head (more than a ring's worth apart) is ignored and re-read. What keeps
//! the 32-bit wrap-around from passing a very old value off as a fit is that
//! `seen` is only written by a thread holding the reservation it just made
//! from that value: until it publishes, neither tail can pass its run, so
//! the value is less than a capacity behind the truth when stored, and the
//! side can then get at most one more capacity ahead before someone
//! refreshes it. Less than two capacities stays clear of 2^32 minus one
//! capacity as long as a ring has at most 2^30 slots, hence that limit.
//!
//! Orderings, each stated where it is used: tails are released by publish
//! and acquired by whoever reads them to reserve; `seen` is released and
//! acquired so that acquisition passes on to the side's other threads; a
//! shared head is released and acquired so that the other tail read after
//! it is never older than the one it was computed from; what is read only
//! by its writer, or only for a count, is relaxed.
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
use crate::sync::{Arc, AtomicU32, AtomicU64, Ordering, UnsafeCell};

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
/// 2 to 2^30), as its two ends.
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
/// 2 to 2^30), as a producer to clone for each producing thread and the one
/// consumer.
pub fn mpsc<T>(size: usize) -> Result<(MpProducer<T>, Consumer<T>), ConfigError> {
    let core = Arc::new(Core::new(size)?);
    Ok((MpProducer { core: Arc::clone(&core) }, Consumer { core, _not_sync: PhantomData }))
}

impl<T> Ring<T> {
    /// A multi-producer, multi-consumer ring of `size` slots (a power of
    /// two, 2 to 2^30).
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

/// A reservation: the side's head before it (`from`, whose position is the
/// run's first slot) and after it (`to`).
#[derive(Clone, Copy)]
struct Run {
    from: PosCnt,
    to: PosCnt,
}

impl Run {
    /// The run's first position.
    fn start(self) -> u32 {
        self.from.pos
    }

    /// The run's length in slots.
    fn len(self) -> usize {
        self.to.pos.wrapping_sub(self.from.pos) as usize
    }
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

/// One side's words, on two cache lines. The reservation line holds `head`
/// (a packed [`PosCnt`]) and `seen`, the other side's tail position as this
/// side last read it; only this side's threads touch it. The publication
/// line holds `tail` (a packed [`PosCnt`]), which the other side reads.
struct HeadTail {
    reserve: CachePadded<Reserve>,
    tail: CachePadded<AtomicU64>,
}

/// A side's reservation line (see [`HeadTail`]).
struct Reserve {
    head: AtomicU64,
    seen: AtomicU32,
}

impl HeadTail {
    fn new() -> Self {
        HeadTail {
            reserve: CachePadded::new(Reserve { head: AtomicU64::new(0), seen: AtomicU32::new(0) }),
            tail: CachePadded::new(AtomicU64::new(0)),
        }
    }

    /// The head, acquired: it pairs with the release of the reservation
    /// that wrote it, so an other-side tail read after it is at least as
    /// new as the one that reservation was computed from. Read relaxed, a
    /// head could be newer than the tail read next, and the wrapped
    /// difference would pass for a ring with room (loom found this).
    fn head(&self) -> PosCnt {
        PosCnt::unpack(self.reserve.head.load(Ordering::Acquire))
    }

    /// The tail, acquired: it pairs with the release that published it, so
    /// the slot accesses of every run it covers happen before the caller's.
    fn tail(&self) -> PosCnt {
        PosCnt::unpack(self.tail.load(Ordering::Acquire))
    }
}

/// The largest ring, in slots (the module doc says why not 2^31).
const MAX_SLOTS: usize = 1 << 30;

/// The ring proper, shared by its handles.
struct Core<T> {
    prod: HeadTail,
    cons: HeadTail,
    mask: u32,
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
}

// SAFETY: every `&self` method that touches slots is either safe under any
// sharing (`Access::Shared`) or `unsafe` with the contract that its side is
// used by the caller alone; objects cross threads, hence `T: Send`.
unsafe impl<T: Send> Sync for Core<T> {}

impl<T> Core<T> {
    fn new(size: usize) -> Result<Self, ConfigError> {
        if !size.is_power_of_two() || !(2..=MAX_SLOTS).contains(&size) {
            return Err(ConfigError::new("ring_size", format!("{size} is not a power of two between 2 and 2^30")));
        }
        Ok(Core {
            prod: HeadTail::new(),
            cons: HeadTail::new(),
            mask: (size - 1) as u32,
            slots: (0..size).map(|_| UnsafeCell::new(MaybeUninit::uninit())).collect(),
        })
    }

    fn capacity(&self) -> usize {
        self.mask as usize + 1
    }

    /// Published and untaken objects. Relaxed: a snapshot that touches no
    /// slot.
    fn len(&self) -> usize {
        let prod = PosCnt::unpack(self.prod.tail.load(Ordering::Relaxed)).pos;
        let cons = PosCnt::unpack(self.cons.tail.load(Ordering::Relaxed)).pos;
        (prod.wrapping_sub(cons) as usize).min(self.capacity())
    }

    /// # Safety
    /// With `Access::Exclusive`, no other thread enqueues into this ring
    /// until the call returns.
    unsafe fn enqueue(&self, obj: T, access: Access) -> Result<(), T> {
        // SAFETY: the caller's contract is `reserve`'s.
        let Some(run) = (unsafe { self.reserve(Side::Prod, 1, Behavior::Fixed, access) }) else {
            return Err(obj);
        };
        // SAFETY: slot `run.start()` was reserved for this producer.
        self.slot(run.start()).with_mut(|slot| unsafe { (*slot).write(obj) });
        self.publish(Side::Prod, access, run);
        Ok(())
    }

    /// # Safety
    /// With `Access::Exclusive`, no other thread dequeues from this ring
    /// until the call returns.
    unsafe fn dequeue(&self, access: Access) -> Option<T> {
        // SAFETY: the caller's contract is `reserve`'s.
        let run = unsafe { self.reserve(Side::Cons, 1, Behavior::Fixed, access) }?;
        // SAFETY: slot `run.start()` was reserved for this consumer and
        // holds a published object.
        let obj = self.slot(run.start()).with_mut(|slot| unsafe { (*slot).assume_init_read() });
        self.publish(Side::Cons, access, run);
        Some(obj)
    }

    /// # Safety
    /// As for [`Core::enqueue`].
    unsafe fn enqueue_from(&self, objs: &mut Vec<T>, behavior: Behavior, access: Access) -> usize {
        // SAFETY: the caller's contract is `reserve`'s.
        let Some(run) = (unsafe { self.reserve(Side::Prod, objs.len(), behavior, access) }) else {
            return 0;
        };
        let (start, n) = (run.start(), run.len());
        let rest = objs.len() - n;
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
        self.publish(Side::Prod, access, run);
        n
    }

    /// # Safety
    /// As for [`Core::dequeue`].
    unsafe fn dequeue_into(&self, out: &mut Vec<T>, max: usize, behavior: Behavior, access: Access) -> usize {
        // SAFETY: the caller's contract is `reserve`'s.
        let Some(run) = (unsafe { self.reserve(Side::Cons, max, behavior, access) }) else {
            return 0;
        };
        let (start, n) = (run.start(), run.len());
        out.reserve(n);
        let len = out.len();
        // SAFETY: slots start..start+n were reserved for this consumer and
        // hold published objects, which are moved bitwise into the spare
        // capacity just reserved; the length then covers them.
        unsafe {
            let dst = out.as_mut_ptr().add(len);
            self.copy_run(start, n, |slot, at, count| std::ptr::copy_nonoverlapping(slot, dst.add(at), count));
            out.set_len(len + n);
        }
        self.publish(Side::Cons, access, run);
        n
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

    /// Reserves up to `want` slots on `side`, or returns `None` if nothing
    /// (or, for `Fixed`, not all) could be reserved.
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
    /// The other side's tail is read from `seen` while that allows the
    /// reservation, and re-read (and `seen` refreshed) only when it does
    /// not; the module doc says why a stale `seen` is safe.
    ///
    /// # Safety
    /// With `Access::Exclusive`, no other thread uses `side` until the
    /// caller has published: the plain store does not notice a concurrent
    /// reservation.
    unsafe fn reserve(&self, side: Side, want: usize, behavior: Behavior, access: Access) -> Option<Run> {
        let (mine, other) = self.sides(side);
        if behavior == Behavior::Fixed && want > self.capacity() {
            return None;
        }
        let want = want.min(self.capacity()) as u32;
        let mut head = mine.head();
        // Acquire: pairs with the release that stored it, through which the
        // other side's tail release (read by whoever stored it) reaches here.
        let mut seen = mine.reserve.seen.load(Ordering::Acquire);
        let mut fresh = false;
        loop {
            let mut avail = self.avail(side, head.pos, seen);
            if avail < want || avail > self.mask + 1 {
                seen = other.tail().pos;
                fresh = true;
                avail = self.avail(side, head.pos, seen);
            }
            let n = if behavior == Behavior::Fixed && avail < want { 0 } else { want.min(avail) };
            if n == 0 {
                return None;
            }
            let run = Run { from: head, to: PosCnt { pos: head.pos.wrapping_add(n), cnt: head.cnt.wrapping_add(1) } };
            // An owned side's head is only read by its owner: relaxed. A
            // shared side releases it for the acquire in `head()`, and
            // acquires the head a failed CAS returns for the same reason.
            if access == Access::Exclusive {
                mine.reserve.head.store(run.to.pack(), Ordering::Relaxed);
            } else if let Err(current) = mine.reserve.head.compare_exchange_weak(
                run.from.pack(),
                run.to.pack(),
                Ordering::Release,
                Ordering::Acquire,
            ) {
                head = PosCnt::unpack(current);
                continue;
            }
            if fresh {
                // Stored while holding the run, never before: see the
                // module doc. Release: passes on the tail's acquire.
                mine.reserve.seen.store(seen, Ordering::Release);
            }
            return Some(run);
        }
    }

    /// Slots `side` may reserve from position `head` if the other side's
    /// tail is at `other_tail`: free slots for producers, published objects
    /// for consumers. More than the capacity means the two positions are
    /// not consistent with each other (one of them is out of date).
    fn avail(&self, side: Side, head: u32, other_tail: u32) -> u32 {
        match side {
            Side::Prod => (self.mask + 1).wrapping_sub(head.wrapping_sub(other_tail)),
            Side::Cons => other_tail.wrapping_sub(head),
        }
    }

    /// Publishes `run`, which the caller reserved on `side` and has
    /// finished with.
    ///
    /// A side one thread owns simply moves its tail to the run's end. A
    /// shared side counts one more finished operation on its tail; if that
    /// makes the tail's count equal the head's, every reservation has
    /// finished and the tail's position moves up to the head's (RTS). The
    /// first CAS assumes the tail is where the run began, which it is when
    /// every earlier run has published (always, unless threads overlap), so
    /// the uncontended case reads no tail before its one CAS.
    ///
    /// Orderings: the tail is written with release, and later CASes on it
    /// continue that release sequence, so a reader that acquires the tail
    /// sees the slots of every finished run it covers, whoever moved it. A
    /// failed CAS acquires the tail it found, so every operation that tail
    /// counts has its reservation in the head read next (a reservation comes
    /// before its own publication); the first attempt needs no acquire, as
    /// the operations `run.from` counts were all reserved before this run.
    /// The head is read relaxed: those same orderings put every counted
    /// reservation before the read.
    fn publish(&self, side: Side, access: Access, run: Run) {
        let (mine, _) = self.sides(side);
        if access == Access::Exclusive {
            mine.tail.store(run.to.pack(), Ordering::Release);
            return;
        }
        let mut tail = run.from;
        loop {
            let head = PosCnt::unpack(mine.reserve.head.load(Ordering::Relaxed));
            let cnt = tail.cnt.wrapping_add(1);
            let pos = if cnt == head.cnt { head.pos } else { tail.pos };
            match mine.tail.compare_exchange_weak(
                tail.pack(),
                PosCnt { pos, cnt }.pack(),
                Ordering::Release,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(current) => tail = PosCnt::unpack(current),
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
        for size in [0, 1, 3, 100, MAX_SLOTS * 2] {
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
            side.reserve.head.store(start, Ordering::Relaxed);
            side.reserve.seen.store(PosCnt::unpack(start).pos, Ordering::Relaxed);
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
    fn a_stale_or_foreign_seen_tail_only_costs_a_reread() {
        let ring = Ring::mpmc(4).unwrap();
        let mut objs = vec![1, 2, 3, 4];
        assert_eq!(ring.enqueue_burst(&mut objs), 4);
        let mut out = Vec::new();
        assert_eq!(ring.dequeue_burst(&mut out, 4), 4);
        // The producers last saw the consumers' tail at 0 (ring full): the
        // cached view says no room, the real tail says four slots.
        assert_eq!(ring.core.prod.reserve.seen.load(Ordering::Relaxed), 0);
        let mut objs = vec![5, 6, 7];
        assert_eq!(ring.enqueue_burst(&mut objs), 3);
        // A value that does not fit the head (more than a ring apart) is
        // ignored, not read as room or as objects.
        ring.core.prod.reserve.seen.store(1 << 20, Ordering::Relaxed);
        ring.core.cons.reserve.seen.store(1 << 20, Ordering::Relaxed);
        assert_eq!(ring.enqueue_burst(&mut vec![8, 9]), 1);
        out.clear();
        assert_eq!(ring.dequeue_burst(&mut out, 8), 4);
        assert_eq!(out, [5, 6, 7, 8]);
    }

    #[test]
    fn heads_and_tails_sit_on_separate_cache_lines() {
        let ring = Ring::<u64>::mpmc(8).unwrap();
        let addr = |word: &AtomicU64| word as *const AtomicU64 as usize;
        let words =
            [&ring.core.prod.reserve.head, &ring.core.prod.tail, &ring.core.cons.reserve.head, &ring.core.cons.tail];
        for (i, a) in words.iter().enumerate() {
            for b in &words[i + 1..] {
                assert!(addr(a).abs_diff(addr(b)) >= 64, "two ring words share a cache line");
            }
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
