//! Rings: objects per second through a ring between two threads, in bursts
//! of 32, for the cheapest (SPSC) and the most general (MPMC) sync mode.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use ethdev::ring::{Ring, RingMode};

use super::{best_rate, measurement, repeat_for, Budget, Measurement};

const BURST: usize = 32;

pub(super) fn run(budget: Budget) -> Vec<Measurement> {
    vec![
        measurement("ring.spsc.burst32", through_ring(budget, RingMode::Spsc), "Mobj/s"),
        measurement("ring.mpmc.burst32", through_ring(budget, RingMode::Mpmc), "Mobj/s"),
    ]
}

/// A producer thread fills the ring in bursts while this thread drains it;
/// the rate is what the consumer received once the producer is running.
fn through_ring(budget: Budget, mode: RingMode) -> f64 {
    best_rate(budget, |length| {
        let ring = Arc::new(Ring::new(1024, mode).expect("valid ring size"));
        let stop = Arc::new(AtomicBool::new(false));
        let producer = {
            let (ring, stop) = (Arc::clone(&ring), Arc::clone(&stop));
            thread::spawn(move || {
                let mut burst: Vec<u64> = Vec::with_capacity(BURST);
                while !stop.load(Ordering::Relaxed) {
                    burst.extend(burst.len() as u64..BURST as u64);
                    if ring.enqueue_burst(&mut burst) == 0 {
                        std::hint::spin_loop();
                    }
                }
            })
        };
        while ring.is_empty() {
            thread::yield_now();
        }
        let mut out = Vec::with_capacity(BURST);
        let received = repeat_for(length, || {
            out.clear();
            ring.dequeue_burst(&mut out, BURST) as u64
        });
        stop.store(true, Ordering::Relaxed);
        producer.join().expect("producer thread");
        received
    })
}
