//! Cross-check: dtnet's softrss (`ethdev::rss::Toeplitz`) equals DPDK's
//! `rte_softrss` on Microsoft's RSS vectors and on a million seeded random
//! IPv4 and IPv6 tuples (2- and 4-tuples) under random 40- and 52-byte keys;
//! and `rte_thash_gfni_bulk` where the CPU can run it. No EAL is needed.
#![cfg(feature = "dpdk")]

use dpdk::thash::{softrss, GfniThash};
use ethdev::rss::{RssKey, Toeplitz};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Random tuples compared.
const TUPLES: usize = 1 << 20;
/// Tuples hashed under each random key.
const PER_KEY: usize = 256;

/// A random input: an IPv4 or IPv6 address pair, with ports or without.
fn tuple(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let ip_len = if rng.random_bool(0.5) { 4 } else { 16 };
    let with_ports = rng.random_bool(0.75);
    let len = 2 * ip_len + if with_ports { 4 } else { 0 };
    (0..len).map(|_| rng.random()).collect()
}

fn random_key(rng: &mut ChaCha8Rng) -> RssKey {
    let len = if rng.random_bool(0.5) { 40 } else { 52 };
    let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
    RssKey::new(&bytes).expect("valid key length")
}

/// dtnet's hash of `input` through the tuple entry points the data path uses.
fn dtnet_hash(toeplitz: &Toeplitz, input: &[u8]) -> u32 {
    let ports = |at: usize| {
        (input.len() > at).then(|| {
            (u16::from_be_bytes([input[at], input[at + 1]]), u16::from_be_bytes([input[at + 2], input[at + 3]]))
        })
    };
    match input.len() {
        8 | 12 => toeplitz.hash_v4(input[..4].try_into().unwrap(), input[4..8].try_into().unwrap(), ports(8)),
        _ => toeplitz.hash_v6(input[..16].try_into().unwrap(), input[16..32].try_into().unwrap(), ports(32)),
    }
}

#[test]
fn rte_softrss_matches_microsofts_vectors() {
    // 66.9.149.187:2794 -> 161.142.100.80:1766, DESIGN.md section 5.
    let input = [66, 9, 149, 187, 161, 142, 100, 80, 0x0a, 0xea, 0x06, 0xe6];
    assert_eq!(softrss(&RssKey::DEFAULT, &input[..8]), Some(0x323e_8fc2));
    assert_eq!(softrss(&RssKey::DEFAULT, &input), Some(0x51cc_c178));
    assert_eq!(softrss(&RssKey::DEFAULT, &input[..7]), None, "not whole words");
    assert_eq!(softrss(&RssKey::DEFAULT, &[0; 40]), None, "longer than the key covers");
}

#[test]
fn dtnet_softrss_equals_rte_softrss_on_a_million_random_tuples() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_0012);
    let (mut v4, mut v6) = (0, 0);
    for _ in 0..TUPLES / PER_KEY {
        let key = random_key(&mut rng);
        let toeplitz = Toeplitz::new(&key);
        for _ in 0..PER_KEY {
            let input = tuple(&mut rng);
            let ours = dtnet_hash(&toeplitz, &input);
            assert_eq!(Some(ours), softrss(&key, &input), "key {key:?} input {input:02x?}");
            assert_eq!(ours, toeplitz.hash(&input), "tuple and byte-string paths agree");
            if input.len() <= 12 {
                v4 += 1
            } else {
                v6 += 1
            }
        }
    }
    assert!(v4 > TUPLES / 3 && v6 > TUPLES / 3, "both families covered: {v4} IPv4, {v6} IPv6");
}

/// The CPU features DPDK's GFNI hash is compiled for, as Rust sees them.
fn cpu_runs_gfni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("gfni")
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512vbmi")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

#[test]
fn rte_thash_gfni_bulk_is_offered_exactly_where_the_cpu_runs_it_and_agrees() {
    assert_eq!(GfniThash::available(), cpu_runs_gfni(), "run-time choice follows the CPU");
    let mut rng = ChaCha8Rng::seed_from_u64(0x9f41);
    let Some(_) = GfniThash::new(&RssKey::DEFAULT) else {
        eprintln!(
            "this CPU lacks GFNI/AVX-512: rte_thash_gfni_bulk is not offered, and the bulk cross-check does not apply"
        );
        return;
    };
    for _ in 0..TUPLES / PER_KEY {
        let key = random_key(&mut rng);
        let toeplitz = Toeplitz::new(&key);
        let gfni = GfniThash::new(&key).expect("available");
        let len = [8, 12, 32, 36][rng.random_range(0..4)];
        let inputs: Vec<Vec<u8>> = (0..PER_KEY).map(|_| (0..len).map(|_| rng.random()).collect()).collect();
        let refs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        let mut hashes = vec![0; PER_KEY];
        assert!(gfni.hash_bulk(len, &refs, &mut hashes));
        let ours: Vec<u32> = inputs.iter().map(|input| dtnet_hash(&toeplitz, input)).collect();
        assert_eq!(hashes, ours, "key {key:?}, {len}-byte inputs");
    }
}
