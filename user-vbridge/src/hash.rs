//! A cheap, deterministic hasher for the forwarding database's `u64` keys.
//!
//! FDB keys are a MAC address and a VLAN id packed into one integer; they
//! come from the wire but a switch does not need DoS-resistant hashing (the
//! table size is bounded), so one multiply and a rotate replace SipHash. The
//! multiply spreads every input bit into the high half; the rotate brings
//! that half down to the low bits that pick the bucket.

use std::hash::{BuildHasherDefault, Hasher};

/// `BuildHasher` for maps keyed by small integers.
pub(crate) type FastBuild = BuildHasherDefault<FastHasher>;

const MULTIPLIER: u64 = 0xf135_7aea_2e62_a9c5;

/// Multiply-rotate hasher (Fx-style) for integer keys.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FastHasher {
    state: u64,
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.state = (self.state ^ value).wrapping_mul(MULTIPLIER);
    }

    fn finish(&self) -> u64 {
        self.state.rotate_left(26)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn vlan_bits_reach_the_low_bits() {
        let build = FastBuild::default();
        let mac = 0x0200_0000_0001u64;
        let a = build.hash_one(mac);
        let b = build.hash_one(mac | 5 << 48);
        assert_ne!(a & 0xffff, b & 0xffff);
    }
}
