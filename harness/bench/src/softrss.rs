//! softrss: table-driven Toeplitz against the bit-serial reference, over
//! random IPv4 4-tuples.

use std::hint::black_box;

use ethdev::rss::{toeplitz, RssKey, Toeplitz};
use rand::{RngExt, SeedableRng};

use crate::{best_rate, measurement, repeat_for, Budget, Measurement};

const TUPLES: usize = 4096;

pub(super) fn run(budget: Budget) -> Vec<Measurement> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let tuples: Vec<([u8; 4], [u8; 4], u16, u16)> =
        (0..TUPLES).map(|_| (rng.random(), rng.random(), rng.random(), rng.random())).collect();
    let fast = Toeplitz::new(&RssKey::DEFAULT);
    let fast_rate = best_rate(budget, |length| {
        repeat_for(length, || {
            let mut acc = 0u32;
            for &(src, dst, sp, dp) in &tuples {
                acc ^= fast.hash_v4(src, dst, Some((sp, dp)));
            }
            black_box(acc);
            TUPLES as u64
        })
    });
    let inputs: Vec<[u8; 12]> = tuples.iter().map(|&(s, d, sp, dp)| input_bytes(s, d, sp, dp)).collect();
    let reference_rate = best_rate(budget, |length| {
        repeat_for(length, || {
            let mut acc = 0u32;
            for input in &inputs {
                acc ^= toeplitz::reference(&RssKey::DEFAULT, input);
            }
            black_box(acc);
            TUPLES as u64
        })
    });
    vec![
        measurement("softrss.fast", fast_rate, "Mhash/s"),
        measurement("softrss.reference", reference_rate, "Mhash/s"),
        measurement("softrss.speedup", fast_rate / reference_rate, "x"),
    ]
}

fn input_bytes(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> [u8; 12] {
    let mut input = [0u8; 12];
    input[..4].copy_from_slice(&src);
    input[4..8].copy_from_slice(&dst);
    input[8..10].copy_from_slice(&sport.to_be_bytes());
    input[10..].copy_from_slice(&dport.to_be_bytes());
    input
}
