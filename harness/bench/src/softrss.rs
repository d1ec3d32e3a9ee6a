//! softrss: table-driven Toeplitz against the bit-serial reference, over
//! random IPv4 4-tuples; in a build with DPDK (the `dpdk` crate's feature,
//! see [`dpdk::if_dpdk!`]) also against DPDK's `rte_softrss` and, where the
//! CPU has GFNI and AVX-512, `rte_thash_gfni_bulk`, on the same tuples in
//! the same run, with dtnet's speedup over each.

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
    let mut figures = vec![
        measurement("softrss.fast", fast_rate, "Mhash/s"),
        measurement("softrss.reference", reference_rate, "Mhash/s"),
        measurement("softrss.speedup", fast_rate / reference_rate, "x"),
    ];
    figures.extend(rte::run(budget, &inputs, fast_rate));
    figures
}

fn input_bytes(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> [u8; 12] {
    let mut input = [0u8; 12];
    input[..4].copy_from_slice(&src);
    input[4..8].copy_from_slice(&dst);
    input[8..10].copy_from_slice(&sport.to_be_bytes());
    input[10..].copy_from_slice(&dport.to_be_bytes());
    input
}

/// The figures that need `rte_thash_gfni_bulk` (see [`gfni_unavailable`]).
pub const GFNI_NAMES: [&str; 2] = ["softrss.rte_gfni_bulk", "softrss.speedup_vs_gfni"];

dpdk::if_dpdk! {
    {
        /// Every figure of the family, in run order.
        pub(super) const NAMES: &[&str] = &[
            "softrss.fast",
            "softrss.reference",
            "softrss.speedup",
            "softrss.rte",
            "softrss.speedup_vs_rte",
            GFNI_NAMES[0],
            GFNI_NAMES[1],
        ];

        /// Why this machine cannot run `rte_thash_gfni_bulk`, if it cannot.
        pub fn gfni_unavailable() -> Option<&'static str> {
            (!dpdk::thash::GfniThash::available())
                .then_some("rte_thash_gfni_bulk needs GFNI and AVX-512 (F, BW, DQ, VL, VBMI), which this CPU lacks")
        }

        /// DPDK's software Toeplitz hashes on dtnet's tuples.
        mod rte {
            use std::hint::black_box;

            use dpdk::thash::{GfniThash, RteSoftrss};
            use ethdev::rss::RssKey;

            use super::{gfni_unavailable, GFNI_NAMES};
            use crate::{best_rate, measurement, repeat_for, Budget, Measurement};

            /// `rte_softrss` and (where it runs) `rte_thash_gfni_bulk` over
            /// `inputs`, and `fast_rate` (dtnet's, same run) over each.
            pub(super) fn run(budget: Budget, inputs: &[[u8; 12]], fast_rate: f64) -> Vec<Measurement> {
                let rte = RteSoftrss::new(&RssKey::DEFAULT);
                let rte_rate = best_rate(budget, |length| {
                    repeat_for(length, || {
                        let acc = inputs.iter().fold(0u32, |acc, input| acc ^ rte.hash(input).unwrap_or(0));
                        black_box(acc);
                        inputs.len() as u64
                    })
                });
                let mut figures = vec![
                    measurement("softrss.rte", rte_rate, "Mhash/s"),
                    measurement("softrss.speedup_vs_rte", fast_rate / rte_rate, "x"),
                ];
                match gfni_rate(budget, inputs) {
                    Ok(gfni_rate) => {
                        figures.push(measurement(GFNI_NAMES[0], gfni_rate, "Mhash/s"));
                        figures.push(measurement(GFNI_NAMES[1], fast_rate / gfni_rate, "x"));
                    }
                    Err(why) => eprintln!("dtnet: {} and {} skipped: {why}", GFNI_NAMES[0], GFNI_NAMES[1]),
                }
                figures
            }

            /// `rte_thash_gfni_bulk` over `inputs`, one bulk call per batch
            /// (the pointer array is built once, outside the timing), or why
            /// it cannot run here.
            fn gfni_rate(budget: Budget, inputs: &[[u8; 12]]) -> Result<f64, &'static str> {
                let gfni = GfniThash::new(&RssKey::DEFAULT).ok_or_else(|| gfni_unavailable().unwrap_or_default())?;
                let slices: Vec<&[u8]> = inputs.iter().map(|i| i.as_slice()).collect();
                let mut hashes = vec![0u32; inputs.len()];
                if !gfni.hash_bulk(12, &slices, &mut hashes) {
                    return Err("rte_thash_gfni_bulk refused 12-byte inputs");
                }
                Ok(best_rate(budget, |length| {
                    repeat_for(length, || {
                        black_box(gfni.hash_bulk(12, &slices, &mut hashes));
                        black_box(&hashes);
                        inputs.len() as u64
                    })
                }))
            }
        }
    } else {
        /// Every figure of the family, in run order.
        pub(super) const NAMES: &[&str] = &["softrss.fast", "softrss.reference", "softrss.speedup"];

        /// Why this machine cannot run `rte_thash_gfni_bulk`: a build
        /// without DPDK has none.
        pub fn gfni_unavailable() -> Option<&'static str> {
            Some("this build has no DPDK (build with --features dpdk)")
        }

        /// Without DPDK there are no rte figures.
        mod rte {
            use crate::{Budget, Measurement};

            /// Nothing to measure in a build without DPDK.
            pub(super) fn run(_: Budget, _: &[[u8; 12]], _: f64) -> Vec<Measurement> {
                Vec::new()
            }
        }
    }
}
