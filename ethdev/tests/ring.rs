//! Rings against a `VecDeque` model, and under real multi-thread contention.

use std::collections::VecDeque;
use std::sync::{Arc, Barrier};
use std::thread;

use ethdev::mempool::{Mempool, MempoolConfig, Owner};
use ethdev::ring::{Ring, RingMode};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Enqueue(usize),
    Dequeue(usize),
    EnqueueBulk(usize),
    DequeueBulk(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..40usize).prop_map(Op::Enqueue),
        (0..40usize).prop_map(Op::Dequeue),
        (0..40usize).prop_map(Op::EnqueueBulk),
        (0..40usize).prop_map(Op::DequeueBulk),
    ]
}

fn mode() -> impl Strategy<Value = RingMode> {
    prop_oneof![Just(RingMode::Spsc), Just(RingMode::Mpsc), Just(RingMode::Spmc), Just(RingMode::Mpmc)]
}

proptest! {
    #[test]
    fn ring_behaves_like_a_bounded_fifo(size_log in 1u32..6, mode in mode(), ops in prop::collection::vec(op(), 1..200)) {
        let ring = Ring::new(1 << size_log, mode).unwrap();
        let capacity = 1usize << size_log;
        let mut model = VecDeque::new();
        let mut next = 0u64;
        for op in ops {
            match op {
                Op::Enqueue(n) | Op::EnqueueBulk(n) => {
                    let mut objs: Vec<u64> = (next..next + n as u64).collect();
                    let fits = (capacity - model.len()).min(n);
                    let moved = if matches!(op, Op::Enqueue(_)) {
                        ring.enqueue_burst(&mut objs)
                    } else if ring.enqueue_bulk(&mut objs) { n } else { 0 };
                    let expected = if matches!(op, Op::Enqueue(_)) { fits } else if fits == n { n } else { 0 };
                    prop_assert_eq!(moved, expected);
                    prop_assert_eq!(objs.len(), n - moved);
                    model.extend(next..next + moved as u64);
                    next += n as u64;
                }
                Op::Dequeue(n) | Op::DequeueBulk(n) => {
                    let mut out = Vec::new();
                    let moved = if matches!(op, Op::Dequeue(_)) {
                        ring.dequeue_burst(&mut out, n)
                    } else if ring.dequeue_bulk(&mut out, n) { n } else { 0 };
                    let expected: Vec<u64> = if matches!(op, Op::Dequeue(_)) || model.len() >= n {
                        model.drain(..n.min(model.len())).collect()
                    } else { Vec::new() };
                    prop_assert_eq!(moved, expected.len());
                    prop_assert_eq!(out, expected);
                }
            }
            prop_assert_eq!(ring.len(), model.len());
            prop_assert_eq!(ring.free_count(), capacity - model.len());
        }
    }

    #[test]
    fn pool_never_hands_out_a_buffer_twice(ops in prop::collection::vec((any::<bool>(), 0..8usize), 1..100)) {
        let pool = Mempool::new(MempoolConfig::new("prop", 16).data_room(64)).unwrap();
        let mut cache = pool.cache(Owner(1), 4);
        let mut held = Vec::new();
        for (alloc, n) in ops {
            for _ in 0..n {
                if alloc {
                    if let Some(m) = cache.alloc() { held.push(m) }
                } else if let Some(m) = held.pop() {
                    cache.free(m);
                }
            }
            let mut indices: Vec<u32> = held.iter().map(|m| m.index()).collect();
            indices.sort_unstable();
            indices.dedup();
            prop_assert_eq!(indices.len(), held.len());
            prop_assert_eq!(pool.in_use(), held.len());
        }
        drop(held);
        drop(cache);
        prop_assert_eq!(pool.in_use(), 0);
    }
}

/// `producers` threads each push `per_producer` tagged values while
/// `consumers` threads drain; every value must arrive exactly once and each
/// producer's values in order.
fn stress(mode: RingMode, producers: u64, consumers: usize, per_producer: u64) {
    let ring = Arc::new(Ring::new(256, mode).unwrap());
    let start = Arc::new(Barrier::new(producers as usize + consumers));
    let total = producers * per_producer;
    let taken = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let producer_threads: Vec<_> = (0..producers)
        .map(|p| {
            let (ring, start) = (Arc::clone(&ring), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                let mut batch = Vec::new();
                let mut seq = 0;
                while seq < per_producer || !batch.is_empty() {
                    while batch.len() < 32 && seq < per_producer {
                        batch.push(p << 32 | seq);
                        seq += 1;
                    }
                    if ring.enqueue_burst(&mut batch) == 0 {
                        thread::yield_now();
                    }
                }
            })
        })
        .collect();
    let consumer_threads: Vec<_> = (0..consumers)
        .map(|_| {
            let (ring, start, taken) = (Arc::clone(&ring), Arc::clone(&start), Arc::clone(&taken));
            thread::spawn(move || {
                start.wait();
                let mut seen = Vec::new();
                let mut out = Vec::new();
                while taken.load(std::sync::atomic::Ordering::Relaxed) < total {
                    out.clear();
                    let n = ring.dequeue_burst(&mut out, 32);
                    if n == 0 {
                        thread::yield_now();
                        continue;
                    }
                    taken.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    seen.extend_from_slice(&out);
                }
                seen
            })
        })
        .collect();
    producer_threads.into_iter().for_each(|t| t.join().unwrap());
    let per_consumer: Vec<Vec<u64>> = consumer_threads.into_iter().map(|t| t.join().unwrap()).collect();
    for seen in &per_consumer {
        for p in 0..producers {
            let mine: Vec<u64> = seen.iter().filter(|v| *v >> 32 == p).map(|v| v & 0xffff_ffff).collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "producer {p} reordered within one consumer");
        }
    }
    let mut all: Vec<u64> = per_consumer.into_iter().flatten().collect();
    all.sort_unstable();
    let expected: Vec<u64> = (0..producers).flat_map(|p| (0..per_producer).map(move |s| p << 32 | s)).collect();
    assert_eq!(all.len(), expected.len(), "lost or duplicated elements");
    assert_eq!(all, expected);
    assert!(ring.is_empty());
}

#[test]
fn spsc_stress_delivers_everything_in_order() {
    stress(RingMode::Spsc, 1, 1, 200_000);
}

#[test]
fn mpsc_stress_delivers_every_element_exactly_once() {
    stress(RingMode::Mpsc, 4, 1, 50_000);
}

#[test]
fn mpmc_stress_delivers_every_element_exactly_once() {
    stress(RingMode::Mpmc, 3, 3, 50_000);
}

#[test]
fn mempool_shared_between_threads_ends_at_baseline() {
    let pool = Mempool::new(MempoolConfig::new("threads", 512).data_room(64)).unwrap();
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let pool = pool.clone();
            thread::spawn(move || {
                let mut cache = pool.cache(Owner(t), 16);
                for round in 0..2000 {
                    let held: Vec<_> = (0..(round % 24)).filter_map(|_| cache.alloc()).collect();
                    assert!(held.iter().all(|m| m.owner() == Owner(t)));
                    held.into_iter().for_each(|m| cache.free(m));
                }
            })
        })
        .collect();
    workers.into_iter().for_each(|w| w.join().unwrap());
    assert_eq!(pool.in_use(), 0);
}
