//! Rings against a `VecDeque` model, and under real multi-thread contention.

use std::collections::VecDeque;
use std::sync::{Arc, Barrier};
use std::thread;

use ethdev::mempool::{Mempool, MempoolConfig, Owner};
use ethdev::ring::{mpsc, spsc, Consumer, MpProducer, Producer, Ring};
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

/// The three kinds of ring the module makes.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Spsc,
    Mpsc,
    Mpmc,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![Just(Kind::Spsc), Just(Kind::Mpsc), Just(Kind::Mpmc)]
}

/// The producing end of any kind of ring.
trait Push: Send + 'static {
    fn burst(&mut self, objs: &mut Vec<u64>) -> usize;
    fn bulk(&mut self, objs: &mut Vec<u64>) -> bool;
}

/// The consuming end of any kind of ring.
trait Pull: Send + 'static {
    fn burst(&mut self, out: &mut Vec<u64>, max: usize) -> usize;
    fn bulk(&mut self, out: &mut Vec<u64>, n: usize) -> bool;
    fn queued(&self) -> usize;
    fn room(&self) -> usize;
}

macro_rules! push_impl {
    ($ty:ty) => {
        impl Push for $ty {
            fn burst(&mut self, objs: &mut Vec<u64>) -> usize {
                self.enqueue_burst(objs)
            }
            fn bulk(&mut self, objs: &mut Vec<u64>) -> bool {
                self.enqueue_bulk(objs)
            }
        }
    };
}

macro_rules! pull_impl {
    ($ty:ty) => {
        impl Pull for $ty {
            fn burst(&mut self, out: &mut Vec<u64>, max: usize) -> usize {
                self.dequeue_burst(out, max)
            }
            fn bulk(&mut self, out: &mut Vec<u64>, n: usize) -> bool {
                self.dequeue_bulk(out, n)
            }
            fn queued(&self) -> usize {
                self.len()
            }
            fn room(&self) -> usize {
                self.free_count()
            }
        }
    };
}

push_impl!(Producer<u64>);
push_impl!(MpProducer<u64>);
push_impl!(Arc<Ring<u64>>);
pull_impl!(Consumer<u64>);
pull_impl!(Arc<Ring<u64>>);

/// A ring of `kind` with `size` slots as its two ends.
fn ends(kind: Kind, size: usize) -> (Box<dyn Push>, Box<dyn Pull>) {
    match kind {
        Kind::Spsc => {
            let (p, c) = spsc(size).unwrap();
            (Box::new(p), Box::new(c))
        }
        Kind::Mpsc => {
            let (p, c) = mpsc(size).unwrap();
            (Box::new(p), Box::new(c))
        }
        Kind::Mpmc => {
            let ring = Arc::new(Ring::mpmc(size).unwrap());
            (Box::new(Arc::clone(&ring)), Box::new(ring))
        }
    }
}

proptest! {
    #[test]
    fn ring_behaves_like_a_bounded_fifo(size_log in 1u32..6, kind in kind(), ops in prop::collection::vec(op(), 1..200)) {
        let (mut push, mut pull) = ends(kind, 1 << size_log);
        let capacity = 1usize << size_log;
        let mut model = VecDeque::new();
        let mut next = 0u64;
        for op in ops {
            match op {
                Op::Enqueue(n) | Op::EnqueueBulk(n) => {
                    let mut objs: Vec<u64> = (next..next + n as u64).collect();
                    let fits = (capacity - model.len()).min(n);
                    let moved = if matches!(op, Op::Enqueue(_)) {
                        push.burst(&mut objs)
                    } else if push.bulk(&mut objs) { n } else { 0 };
                    let expected = if matches!(op, Op::Enqueue(_)) { fits } else if fits == n { n } else { 0 };
                    prop_assert_eq!(moved, expected);
                    prop_assert_eq!(objs.len(), n - moved);
                    model.extend(next..next + moved as u64);
                    next += n as u64;
                }
                Op::Dequeue(n) | Op::DequeueBulk(n) => {
                    let mut out = Vec::new();
                    let moved = if matches!(op, Op::Dequeue(_)) {
                        pull.burst(&mut out, n)
                    } else if pull.bulk(&mut out, n) { n } else { 0 };
                    let expected: Vec<u64> = if matches!(op, Op::Dequeue(_)) || model.len() >= n {
                        model.drain(..n.min(model.len())).collect()
                    } else { Vec::new() };
                    prop_assert_eq!(moved, expected.len());
                    prop_assert_eq!(out, expected);
                }
            }
            prop_assert_eq!(pull.queued(), model.len());
            prop_assert_eq!(pull.room(), capacity - model.len());
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

/// Each of the `producers` ends is moved to a thread that pushes
/// `per_producer` tagged values, while each of the `consumers` ends drains on
/// its own thread; every value must arrive exactly once and each producer's
/// values in order.
fn stress(producers: Vec<Box<dyn Push>>, consumers: Vec<Box<dyn Pull>>, per_producer: u64) {
    let start = Arc::new(Barrier::new(producers.len() + consumers.len()));
    let total = producers.len() as u64 * per_producer;
    let taken = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let producer_threads: Vec<_> = (0..)
        .zip(producers)
        .map(|(p, mut push)| {
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                let mut batch = Vec::new();
                let mut seq = 0;
                while seq < per_producer || !batch.is_empty() {
                    while batch.len() < 32 && seq < per_producer {
                        batch.push(p << 32 | seq);
                        seq += 1;
                    }
                    if push.burst(&mut batch) == 0 {
                        thread::yield_now();
                    }
                }
            })
        })
        .collect();
    let producers = producer_threads.len() as u64;
    let consumer_threads: Vec<_> = consumers
        .into_iter()
        .map(|mut pull| {
            let (start, taken) = (Arc::clone(&start), Arc::clone(&taken));
            thread::spawn(move || {
                start.wait();
                let mut seen = Vec::new();
                let mut out = Vec::new();
                while taken.load(std::sync::atomic::Ordering::Relaxed) < total {
                    out.clear();
                    let n = pull.burst(&mut out, 32);
                    if n == 0 {
                        thread::yield_now();
                        continue;
                    }
                    taken.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    seen.extend_from_slice(&out);
                }
                (seen, pull)
            })
        })
        .collect();
    producer_threads.into_iter().for_each(|t| t.join().unwrap());
    let (per_consumer, pulls): (Vec<Vec<u64>>, Vec<_>) =
        consumer_threads.into_iter().map(|t| t.join().unwrap()).unzip();
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
    assert!(pulls.iter().all(|pull| pull.queued() == 0));
}

#[test]
fn spsc_stress_delivers_everything_in_order() {
    let (push, pull) = ends(Kind::Spsc, 256);
    stress(vec![push], vec![pull], 200_000);
}

#[test]
fn mpsc_stress_delivers_every_element_exactly_once() {
    let (producer, consumer) = mpsc::<u64>(256).unwrap();
    let pushes = (0..4).map(|_| Box::new(producer.clone()) as Box<dyn Push>).collect();
    stress(pushes, vec![Box::new(consumer)], 50_000);
}

#[test]
fn mpmc_stress_delivers_every_element_exactly_once() {
    let ring = Arc::new(Ring::<u64>::mpmc(256).unwrap());
    let pushes = (0..3).map(|_| Box::new(Arc::clone(&ring)) as Box<dyn Push>).collect();
    let pulls = (0..3).map(|_| Box::new(Arc::clone(&ring)) as Box<dyn Pull>).collect();
    stress(pushes, pulls, 50_000);
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
