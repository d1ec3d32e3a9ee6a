//! Frames in flight on a link, released in (time, arrival) order.
//!
//! A min-heap keyed by release time and a per-queue sequence number: frames
//! due at the same instant leave in the order they entered, so a run never
//! depends on heap internals.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use ethdev::{Instant, Mbuf};

/// One frame waiting for its release time.
struct Delayed {
    at: Instant,
    seq: u64,
    mbuf: Mbuf,
}

impl PartialEq for Delayed {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Delayed {}

impl PartialOrd for Delayed {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Delayed {
    /// Reversed, so the max-heap pops the earliest (time, seq) first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// The in-flight frames of one link direction.
#[derive(Default)]
pub(crate) struct DelayQueue {
    heap: BinaryHeap<Delayed>,
    next_seq: u64,
}

impl DelayQueue {
    /// Queues `mbuf` for release at `at`.
    pub fn push(&mut self, at: Instant, mbuf: Mbuf) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Delayed { at, seq, mbuf });
    }

    /// The next frame due at or before `now`, if any.
    pub fn pop_due(&mut self, now: Instant) -> Option<Mbuf> {
        if self.heap.peek()?.at > now {
            return None;
        }
        self.heap.pop().map(|delayed| delayed.mbuf)
    }

    /// Release time of the earliest frame.
    pub fn next_release(&self) -> Option<Instant> {
        self.heap.peek().map(|delayed| delayed.at)
    }

    /// Frames in flight.
    pub fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ethdev::{Mempool, MempoolConfig, Owner};

    #[test]
    fn equal_times_keep_fifo_order() {
        let pool = Mempool::new(MempoolConfig::new("dq", 8)).unwrap();
        let mut queue = DelayQueue::default();
        let t = Instant::from_millis;
        for (at, tag) in [(t(5), 1u8), (t(3), 2), (t(5), 3), (t(3), 4)] {
            let mut m = pool.alloc(Owner::NONE).unwrap();
            m.extend_from_slice(&[tag]);
            queue.push(at, m);
        }
        assert!(queue.pop_due(t(2)).is_none());
        assert_eq!(queue.next_release(), Some(t(3)));
        let order: Vec<u8> = std::iter::from_fn(|| queue.pop_due(t(5))).map(|m| m.data()[0]).collect();
        assert_eq!(order, vec![2, 4, 1, 3]);
        assert_eq!((queue.len(), pool.in_use()), (0, 0));
    }
}
