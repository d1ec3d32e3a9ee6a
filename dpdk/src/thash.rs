//! DPDK's software Toeplitz hashes, to check dtnet's softrss against and to
//! benchmark it with: `rte_softrss` (portable, bit by bit) and
//! `rte_thash_gfni_bulk` (GFNI + AVX-512, only where the CPU has them).
//!
//! Inputs are the hash input bytes in network order, as dtnet's
//! [`ethdev::rss::hash_input`] lays them out (source IP, destination IP,
//! ports). `rte_softrss` wants them as host-order 32-bit words (DPDK's
//! `rte_ipv4_tuple`), and reads the key one 32-bit word past the input, so
//! an input must be a whole number of words and 4 bytes shorter than the
//! key at least. None of this needs the EAL.

#![allow(unsafe_code)]

use dpdk_sys as sys;
use ethdev::rss::RssKey;

/// The longest input the hashes take (the longest key less one word).
const MAX_WORDS: usize = 12;

/// `rte_softrss` of `input` under `key`, or `None` if `input` is not a
/// whole number of 32-bit words or the key does not cover it.
pub fn softrss(key: &RssKey, input: &[u8]) -> Option<u32> {
    RteSoftrss::new(key).hash(input)
}

/// `rte_softrss` for one key, with the key laid out once as DPDK reads it
/// (aligned 32-bit words), so a benchmark times the hash and nothing else.
#[derive(Clone, Debug)]
pub struct RteSoftrss {
    key_words: [u32; MAX_WORDS + 1],
    key_len: usize,
}

impl RteSoftrss {
    /// The key's words.
    pub fn new(key: &RssKey) -> RteSoftrss {
        let mut key_words = [0u32; MAX_WORDS + 1];
        for (word, bytes) in key_words.iter_mut().zip(key.as_bytes().chunks_exact(4)) {
            *word = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        RteSoftrss { key_words, key_len: key.as_bytes().len() }
    }

    /// `rte_softrss` of `input` (network order), or `None` if `input` is
    /// not a whole number of 32-bit words or the key does not cover it.
    pub fn hash(&self, input: &[u8]) -> Option<u32> {
        if !input.len().is_multiple_of(4) || input.len() + 4 > self.key_len || input.len() / 4 > MAX_WORDS {
            return None;
        }
        let mut words = [0u32; MAX_WORDS];
        for (word, bytes) in words.iter_mut().zip(input.chunks_exact(4)) {
            *word = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        // SAFETY: words holds input.len() / 4 words; the key buffer holds at
        // least one word more, as rte_softrss reads; neither is written.
        Some(unsafe {
            sys::dtnet_rte_softrss(words.as_mut_ptr(), (input.len() / 4) as u32, self.key_words.as_ptr().cast())
        })
    }
}

/// `rte_thash_gfni_bulk` for one key: the GF(2) matrices DPDK derives from
/// it, ready to hash batches of equal-length inputs.
#[derive(Clone, Debug)]
pub struct GfniThash {
    matrices: Vec<u64>,
    key_len: usize,
}

impl GfniThash {
    /// Whether this build has `rte_thash_gfni_bulk` and this CPU runs it
    /// (GFNI, AVX-512 F/BW/DQ/VL/VBMI).
    pub fn available() -> bool {
        // SAFETY: a CPU feature query with no arguments.
        unsafe { sys::dtnet_thash_gfni_available() != 0 }
    }

    /// The matrices of `key`, or `None` where [`GfniThash::available`] is false.
    pub fn new(key: &RssKey) -> Option<GfniThash> {
        if !GfniThash::available() {
            return None;
        }
        let bytes = key.as_bytes();
        let mut matrices = vec![0u64; bytes.len()];
        // SAFETY: DPDK writes one u64 matrix per key byte; matrices has
        // bytes.len() of them and the key is bytes.len() bytes long.
        unsafe { sys::rte_thash_complete_matrix(matrices.as_mut_ptr(), bytes.as_ptr(), bytes.len() as i32) };
        Some(GfniThash { matrices, key_len: bytes.len() })
    }

    /// Hashes each of `inputs` (all `len` bytes long, network order) into
    /// `hashes`; `false` (and nothing hashed) if an input has another length,
    /// the key does not cover `len`, or the slices differ in length.
    pub fn hash_bulk(&self, len: usize, inputs: &[&[u8]], hashes: &mut [u32]) -> bool {
        if inputs.len() != hashes.len() || len + 4 > self.key_len || inputs.iter().any(|i| i.len() != len) {
            return false;
        }
        let mut pointers: Vec<*mut u8> = inputs.iter().map(|i| i.as_ptr().cast_mut()).collect();
        // SAFETY: available() held when self was made, so the CPU runs the
        // GFNI code; each pointer has `len` readable bytes (DPDK only reads
        // them despite the non-const type), the matrices cover len + 4 key
        // bytes, and hashes has a slot per input.
        unsafe {
            sys::dtnet_rte_thash_gfni_bulk(
                self.matrices.as_ptr(),
                len as i32,
                pointers.as_mut_ptr(),
                hashes.as_mut_ptr(),
                hashes.len() as u32,
            );
        }
        true
    }
}
