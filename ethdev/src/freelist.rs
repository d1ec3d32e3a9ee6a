//! A lock-free LIFO of slot indices: the free list behind a mempool.
//!
//! This is DPDK's `stack` mempool handler (`rte_stack_lf`) rather than its
//! default ring handler. A ring's reservation and its publication are two
//! steps, so a thread preempted between them holds up the others (a classic
//! ring) or keeps a tail behind its head (an RTS ring, which can then refuse
//! a free). A stack changes with one compare-and-swap per operation: a
//! thread that stops at any point holds nobody up, and a push can never
//! fail, because every slot has its own link.
//!
//! The list is plain numbers, laid out in the pool's region (`mempool::layout`)
//! and so shared by every process that maps it: one link word per slot
//! (`next[i]`, the index below `i`) and a top word that packs the top index
//! with a tag bumped by every change, so a pop that read a stale link (the
//! ABA problem) fails its CAS and retries. This type is a view of those words.
//! Every index read from a link is bounds-checked before it is followed.
//! The count is kept beside the list and is exact whenever no operation is
//! in flight, which is when pools are compared with their baselines. The
//! atomics come from [`crate::sync`], so `tests/loom.rs` model-checks this
//! very code through the pool.

use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// The link of the bottom element, and the index of an empty list's top.
const NIL: u32 = u32::MAX;

/// The top word: an index and the tag of the change that put it there.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Top {
    index: u32,
    tag: u32,
}

impl Top {
    fn pack(self) -> u64 {
        u64::from(self.tag) << 32 | u64::from(self.index)
    }

    fn unpack(word: u64) -> Top {
        Top { index: word as u32, tag: (word >> 32) as u32 }
    }
}

/// A lock-free stack of the indices `0..capacity`, each present at most
/// once: a view of words that live in the pool's region.
#[derive(Clone, Copy)]
pub(crate) struct FreeList<'a> {
    top: &'a AtomicU64,
    len: &'a AtomicU64,
    next: &'a [AtomicU32],
}

impl<'a> FreeList<'a> {
    /// The list made of these words: the top, the count and one link per
    /// index (so `next.len()` is the capacity).
    pub(crate) fn new(top: &'a AtomicU64, len: &'a AtomicU64, next: &'a [AtomicU32]) -> FreeList<'a> {
        FreeList { top, len, next }
    }

    /// Puts every index on the list, lowest on top. Only for words nobody
    /// else uses yet: a fresh pool.
    pub(crate) fn fill(&self) {
        let capacity = self.next.len() as u32;
        for (i, link) in (1..).zip(self.next) {
            link.store(if i < capacity { i } else { NIL }, Ordering::Relaxed);
        }
        let index = if capacity > 0 { 0 } else { NIL };
        self.len.store(u64::from(capacity), Ordering::Relaxed);
        self.top.store(Top { index, tag: 0 }.pack(), Ordering::Release);
    }

    /// Indices on the list (exact when no operation is in flight).
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire) as usize
    }

    /// Pushes `indices` (each below the capacity and not on the list) as
    /// one chain with a single CAS; leaves `indices` empty.
    pub(crate) fn push_all(&self, indices: &mut Vec<u32>) {
        let (Some(&first), Some(&last)) = (indices.first(), indices.last()) else { return };
        for pair in indices.windows(2) {
            self.next[pair[0] as usize].store(pair[1], Ordering::Relaxed);
        }
        self.put_chain(first, last, indices.len());
        indices.clear();
    }

    /// Pushes one index (below the capacity, not on the list).
    pub(crate) fn push(&self, index: u32) {
        self.put_chain(index, index, 1);
    }

    /// Puts the chain `first..=last` of `count` linked indices on top.
    fn put_chain(&self, first: u32, last: u32, count: usize) {
        let mut top = self.top.load(Ordering::Acquire);
        loop {
            let old = Top::unpack(top);
            self.next[last as usize].store(old.index, Ordering::Relaxed);
            let new = Top { index: first, tag: old.tag.wrapping_add(1) };
            // Release: a popper that acquires this top sees the links above.
            match self.top.compare_exchange_weak(top, new.pack(), Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(current) => top = current,
            }
        }
        self.len.fetch_add(count as u64, Ordering::AcqRel);
    }

    /// Pops one index, if any.
    pub(crate) fn pop_one(&self) -> Option<u32> {
        let mut top = self.top.load(Ordering::Acquire);
        loop {
            let old = Top::unpack(top);
            let link = self.next.get(old.index as usize)?;
            let new = Top { index: link.load(Ordering::Relaxed), tag: old.tag.wrapping_add(1) };
            match self.top.compare_exchange_weak(top, new.pack(), Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    self.len.fetch_sub(1, Ordering::AcqRel);
                    return Some(old.index);
                }
                Err(current) => top = current,
            }
        }
    }

    /// Pops up to `max` indices onto `out` with a single CAS; returns how
    /// many. With `exact`, pops `max` or nothing.
    pub(crate) fn pop(&self, out: &mut Vec<u32>, max: usize, exact: bool) -> usize {
        if max == 0 {
            return 0;
        }
        loop {
            let top = self.top.load(Ordering::Acquire);
            let old = Top::unpack(top);
            let start = out.len();
            let below = self.walk(old.index, max, out);
            let taken = out.len() - start;
            if taken == 0 || (exact && taken < max) {
                out.truncate(start);
                // A walk cut short by a concurrent change proves nothing;
                // an unchanged top proves the list really is that short.
                if self.top.load(Ordering::Acquire) == top {
                    return 0;
                }
                continue;
            }
            let new = Top { index: below, tag: old.tag.wrapping_add(1) };
            if self.top.compare_exchange_weak(top, new.pack(), Ordering::AcqRel, Ordering::Acquire).is_ok() {
                self.len.fetch_sub(taken as u64, Ordering::AcqRel);
                return taken;
            }
            out.truncate(start);
        }
    }

    /// Every index on the list, top first, and sets the count to match.
    /// Only exact, and only safe to recount, when nobody else uses the list
    /// (see `Mempool::sweep_lost`); a cycle a corrupt link made is cut off
    /// at the capacity.
    pub(crate) fn recount(&self) -> Vec<u32> {
        let mut out = Vec::new();
        let top = Top::unpack(self.top.load(Ordering::Acquire));
        self.walk(top.index, self.next.len(), &mut out);
        self.len.store(out.len() as u64, Ordering::Release);
        out
    }

    /// Follows up to `max` links from `index`, appending each index passed;
    /// returns the index below the last one taken. A link read while
    /// another thread changes the list may be stale: it is bounds-checked
    /// here, and the CAS on the tagged top refuses whatever it led to.
    fn walk(&self, mut index: u32, max: usize, out: &mut Vec<u32>) -> u32 {
        let mut taken = 0;
        while taken < max && (index as usize) < self.next.len() {
            out.push(index);
            taken += 1;
            index = self.next[index as usize].load(Ordering::Relaxed);
        }
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words for a list of `capacity` indices, filled.
    struct Words {
        top: AtomicU64,
        len: AtomicU64,
        next: Box<[AtomicU32]>,
    }

    impl Words {
        fn full(capacity: u32) -> Words {
            let words = Words {
                top: AtomicU64::new(0),
                len: AtomicU64::new(0),
                next: (0..capacity).map(AtomicU32::new).collect(),
            };
            words.list().fill();
            words
        }

        fn list(&self) -> FreeList<'_> {
            FreeList::new(&self.top, &self.len, &self.next)
        }
    }

    #[test]
    fn pops_what_was_pushed_last_first() {
        let words = Words::full(4);
        let list = words.list();
        let mut out = Vec::new();
        assert_eq!(list.pop(&mut out, 3, true), 3);
        assert_eq!(out, vec![0, 1, 2]);
        assert_eq!(list.pop_one(), Some(3));
        list.push(3);
        list.push(1);
        let mut back = vec![2, 0];
        list.push_all(&mut back);
        assert!(back.is_empty());
        out.clear();
        assert_eq!(list.pop(&mut out, 10, false), 4);
        assert_eq!(out, vec![2, 0, 1, 3]);
        assert_eq!(list.len(), 0);
        assert_eq!(list.pop(&mut out, 1, false), 0);
    }

    #[test]
    fn exact_pop_takes_all_or_nothing() {
        let words = Words::full(3);
        let list = words.list();
        let mut out = Vec::new();
        assert_eq!(list.pop(&mut out, 4, true), 0);
        assert!(out.is_empty());
        assert_eq!(list.len(), 3);
        assert_eq!(list.pop(&mut out, 4, false), 3);
    }

    #[test]
    fn threads_never_share_an_index() {
        let words = Words::full(64);
        let list = words.list();
        let seen: Vec<AtomicU32> = (0..64).map(|_| AtomicU32::new(0)).collect();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let mut held = Vec::new();
                    for round in 0..20_000 {
                        let n = list.pop(&mut held, 1 + round % 5, round % 2 == 0);
                        for &i in &held[held.len() - n..] {
                            assert_eq!(seen[i as usize].swap(1, Ordering::AcqRel), 0, "index {i} handed out twice");
                        }
                        if round % 3 == 0 {
                            for &i in &held {
                                seen[i as usize].store(0, Ordering::Release);
                            }
                            list.push_all(&mut held);
                        }
                    }
                    for &i in &held {
                        seen[i as usize].store(0, Ordering::Release);
                    }
                    list.push_all(&mut held);
                });
            }
        });
        assert_eq!(list.len(), 64);
        let mut all = Vec::new();
        assert_eq!(list.pop(&mut all, 100, false), 64);
        all.sort_unstable();
        assert_eq!(all, (0..64).collect::<Vec<_>>());
    }
}
