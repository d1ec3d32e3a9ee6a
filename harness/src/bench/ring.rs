//! Rings: objects per second through a ring between two threads, in bursts
//! of 32, for the cheapest (SPSC) and the most general (MPMC) kind.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use ethdev::ring::{spsc, Ring};

use super::{best_rate, measurement, repeat_for, Budget, Measurement};

const BURST: usize = 32;
const SLOTS: usize = 1024;

pub(super) fn run(budget: Budget) -> Vec<Measurement> {
    vec![
        measurement("ring.spsc.burst32", best_rate(budget, through_spsc), "Mobj/s"),
        measurement("ring.mpmc.burst32", best_rate(budget, through_mpmc), "Mobj/s"),
    ]
}

fn through_spsc(length: Duration) -> u64 {
    let (mut producer, mut consumer) = spsc(SLOTS).expect("valid ring size");
    through(length, move |burst| producer.enqueue_burst(burst), move |out| consumer.dequeue_burst(out, BURST))
}

fn through_mpmc(length: Duration) -> u64 {
    let ring = Arc::new(Ring::mpmc(SLOTS).expect("valid ring size"));
    let producer = Arc::clone(&ring);
    through(length, move |burst| producer.enqueue_burst(burst), move |out| ring.dequeue_burst(out, BURST))
}

/// A producer thread fills a ring through `push` in bursts while this
/// thread drains it through `pull` for `length`; returns what the consumer
/// received once the producer was running.
fn through(
    length: Duration,
    mut push: impl FnMut(&mut Vec<u64>) -> usize + Send + 'static,
    mut pull: impl FnMut(&mut Vec<u64>) -> usize,
) -> u64 {
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut burst: Vec<u64> = Vec::with_capacity(BURST);
            while !stop.load(Ordering::Relaxed) {
                burst.extend(burst.len() as u64..BURST as u64);
                if push(&mut burst) == 0 {
                    std::hint::spin_loop();
                }
            }
        })
    };
    let mut out = Vec::with_capacity(BURST);
    while pull(&mut out) == 0 {
        thread::yield_now();
    }
    let received = repeat_for(length, || {
        out.clear();
        pull(&mut out) as u64
    });
    stop.store(true, Ordering::Relaxed);
    producer.join().expect("producer thread");
    received
}
