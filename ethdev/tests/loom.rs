//! Model checks of the ring and the pool under every interleaving loom can
//! produce (within a preemption bound), built only with `--cfg loom`: run
//! them with `ci/loom`.
//!
//! Loom re-runs each model once per interleaving and fails on a data race on
//! a ring slot (two threads in one `UnsafeCell` without ordering between
//! them), a deadlock, or a failed assertion: items lost, duplicated or out of
//! order, a buffer handed to two owners, or pool accounting that does not end
//! at its baseline. Models are kept tiny (2-slot rings, 2-4 items, two tries
//! per thread) so each finishes in seconds.

#![cfg(loom)]

use ethdev::mempool::{Mempool, MempoolConfig, Owner};
use ethdev::ring::{mpsc, spsc, Ring};
use loom::sync::Arc;
use loom::thread;

/// Runs `f` under loom with at most `preemptions` forced thread switches
/// per execution (the bound keeps the larger models to seconds).
fn model(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions);
    builder.check(f);
}

/// Tries `TRIES` bursts of `items` through `enqueue_burst`; returns the
/// items the ring accepted, in order. Test threads never spin on a full or
/// empty ring (an unbounded wait would make the model infinite), so what
/// moves is whatever the interleaving lets through, and the checks compare
/// it with what arrived.
fn push(items: Vec<u32>, mut enqueue_burst: impl FnMut(&mut Vec<u32>) -> usize) -> Vec<u32> {
    let mut left = items.clone();
    for _ in 0..TRIES {
        enqueue_burst(&mut left);
    }
    items[..items.len() - left.len()].to_vec()
}

/// Tries `TRIES` bursts through `dequeue_burst`; returns what arrived.
fn pull(mut dequeue_burst: impl FnMut(&mut Vec<u32>) -> usize) -> Vec<u32> {
    let mut got = Vec::new();
    for _ in 0..TRIES {
        dequeue_burst(&mut got);
    }
    got
}

/// Takes what is left once every other thread has finished.
fn rest(mut dequeue_burst: impl FnMut(&mut Vec<u32>) -> usize) -> Vec<u32> {
    let mut got = Vec::new();
    while dequeue_burst(&mut got) > 0 {}
    got
}

/// Bursts each thread tries.
const TRIES: usize = 2;

/// Items of producer `p` carry `p` in their tens digit.
fn from_producer(p: u32, got: &[u32]) -> Vec<u32> {
    got.iter().copied().filter(|v| v / 10 == p).collect()
}

#[test]
fn spsc_delivers_every_item_once_in_order() {
    model(3, || {
        let (mut producer, mut consumer) = spsc::<u32>(2).unwrap();
        let pusher = thread::spawn(move || push(vec![1, 2, 3], |items| producer.enqueue_burst(items)));
        let mut got = pull(|out| consumer.dequeue_burst(out, 2));
        let sent = pusher.join().unwrap();
        got.extend(rest(|out| consumer.dequeue_burst(out, 2)));
        assert_eq!(got, sent);
        assert!(sent.len() >= 2, "an empty ring takes at least a full burst");
    });
}

#[test]
fn spsc_single_calls_deliver_in_order() {
    model(3, || {
        let (mut producer, mut consumer) = spsc::<u32>(2).unwrap();
        let pusher = thread::spawn(move || (1..=3).take_while(|&item| producer.enqueue(item).is_ok()).collect());
        let mut got: Vec<u32> = (0..TRIES).filter_map(|_| consumer.dequeue()).collect();
        let sent: Vec<u32> = pusher.join().unwrap();
        got.extend(std::iter::from_fn(|| consumer.dequeue()));
        assert_eq!(got, sent);
    });
}

#[test]
fn mpsc_two_producers_lose_and_duplicate_nothing() {
    model(2, || {
        let (producer, mut consumer) = mpsc::<u32>(2).unwrap();
        let pushers: Vec<_> = (1..=2u32)
            .map(|p| {
                let producer = producer.clone();
                thread::spawn(move || push(vec![p * 10, p * 10 + 1], |items| producer.enqueue_burst(items)))
            })
            .collect();
        let mut got = pull(|out| consumer.dequeue_burst(out, 2));
        let sent: Vec<Vec<u32>> = pushers.into_iter().map(|t| t.join().unwrap()).collect();
        got.extend(rest(|out| consumer.dequeue_burst(out, 2)));
        for (p, sent) in (1..).zip(&sent) {
            assert_eq!(&from_producer(p, &got), sent, "producer {p}'s items, once each and in order");
        }
        assert_eq!(got.len(), sent.iter().map(Vec::len).sum::<usize>(), "nothing else arrived");
    });
}

#[test]
fn mpmc_two_by_two_lose_and_duplicate_nothing() {
    model(2, || {
        let ring = Arc::new(Ring::<u32>::mpmc(2).unwrap());
        let pushers: Vec<_> = (1..=2u32)
            .map(|p| {
                let ring = Arc::clone(&ring);
                thread::spawn(move || push(vec![p * 10], |items| ring.enqueue_burst(items)))
            })
            .collect();
        let other = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || pull(|out| ring.dequeue_burst(out, 1)))
        };
        let mut got = pull(|out| ring.dequeue_burst(out, 1));
        got.extend(other.join().unwrap());
        let mut sent: Vec<u32> = pushers.into_iter().flat_map(|t| t.join().unwrap()).collect();
        got.extend(rest(|out| ring.dequeue_burst(out, 1)));
        got.sort_unstable();
        sent.sort_unstable();
        assert_eq!(got, sent);
        assert_eq!(sent, [10, 20], "two items always fit in two slots");
    });
}

/// Two threads take and return the only buffer of a pool, directly and
/// through a per-thread cache: `take_slot` refuses (and counts) a slot whose
/// owner word is not free, so a slot handed out while another owner holds it
/// shows as a corrupt slot; the pool must end with nothing in use and none.
#[test]
fn mempool_never_hands_one_buffer_to_two_owners() {
    model(3, || {
        let pool = Mempool::new(MempoolConfig::new("loom", 1).data_room(8)).unwrap();
        let workers: Vec<_> = (1..=2u32)
            .map(|t| {
                let pool = pool.clone();
                thread::spawn(move || {
                    if let Some(mut m) = pool.alloc(Owner(t)) {
                        assert!(m.extend_from_slice(&[t as u8]));
                        assert_eq!((m.owner(), m.data()), (Owner(t), &[t as u8][..]));
                    }
                    let mut cache = pool.cache(Owner(t + 10), 1);
                    if let Some(m) = cache.alloc() {
                        assert_eq!(m.owner(), Owner(t + 10));
                        cache.free(m);
                    }
                })
            })
            .collect();
        workers.into_iter().for_each(|w| w.join().unwrap());
        assert_eq!((pool.in_use(), pool.avail(), pool.corrupt_slots()), (0, 1, 0));
        let mut held = Vec::new();
        pool.walk(|index, owner| held.push((index, owner)));
        assert!(held.is_empty(), "no owner word left set: {held:?}");
    });
}

/// The free list under the pop/push race that makes a naive Treiber stack
/// hand one entry out twice (ABA): one thread reads the top and its link,
/// meanwhile the other pops both entries and pushes the first back, so the
/// top is the same index with another link. The tagged top must refuse the
/// stale link: no buffer reaches two owners, and both are back at the end.
#[test]
fn free_list_survives_the_aba_race() {
    model(3, || {
        let pool = Mempool::new(MempoolConfig::new("loom", 2).data_room(8)).unwrap();
        let churn = {
            let pool = pool.clone();
            thread::spawn(move || {
                let a = pool.alloc(Owner(1));
                let b = pool.alloc(Owner(1));
                drop(a);
                b
            })
        };
        let taker = {
            let pool = pool.clone();
            thread::spawn(move || {
                let x = pool.alloc(Owner(2));
                let y = pool.alloc(Owner(2));
                (x.is_some() as usize) + (y.is_some() as usize)
            })
        };
        let kept = churn.join().unwrap();
        taker.join().unwrap();
        drop(kept);
        assert_eq!((pool.in_use(), pool.avail()), (0, 2));
        let mut all = Vec::new();
        assert!(pool.alloc_bulk(&mut all, 2, Owner(3)), "both buffers are back on the list");
        assert_eq!(pool.corrupt_slots(), 0, "no slot was ever found taken");
    });
}
