//! The Toeplitz hash: a bit-serial reference and a table-driven fast path.
//!
//! For every set bit `i` of the input (most significant bit of byte 0
//! first), the hash XORs in the 32 key bits that start at key bit `i`.
//! [`reference()`] does exactly that with a sliding 32-bit window. The hash is
//! linear, so [`Toeplitz`] precomputes, for each input byte position, the
//! contribution of all 256 byte values: hashing is then one load and one XOR
//! per input byte, with no branches. Both hash at most
//! [`RssKey::max_input_len`] bytes and ignore the rest.

use std::fmt;
use std::iter;

use super::input::{hash_fields, port_bytes, selects_ports};
use super::{RssHashTypes, RssKey};
use crate::packet::{IpAddrs, Ipv4Flow, PacketMeta};

/// Input byte positions with a table: the longest input of a 52-byte key.
const MAX_POSITIONS: usize = 48;

/// The Toeplitz hash of `input` under `key`, bit by bit as specified;
/// slow, and the definition the fast path is tested against.
pub fn reference(key: &RssKey, input: &[u8]) -> u32 {
    let mut key_bits = key
        .as_bytes()
        .iter()
        .flat_map(|&byte| (0..8).rev().map(move |shift| u32::from(byte >> shift) & 1))
        .chain(iter::repeat(0));
    let mut window = 0u32;
    for bit in key_bits.by_ref().take(32) {
        window = (window << 1) | bit;
    }
    let mut hash = 0;
    for &byte in input.iter().take(key.max_input_len()) {
        for shift in (0..8).rev() {
            if (byte >> shift) & 1 == 1 {
                hash ^= window;
            }
            window = (window << 1) | key_bits.next().unwrap_or(0);
        }
    }
    hash
}

/// The table-driven Toeplitz hash for one key: build once per key, then hash
/// byte strings, IPv4/IPv6 tuples or parsed frames.
#[derive(Clone)]
pub struct Toeplitz {
    key: RssKey,
    tables: Box<[[u32; 256]; MAX_POSITIONS]>,
}

impl Toeplitz {
    /// Precomputes the per-byte tables of `key` (one 1 KiB table per input
    /// byte position the key covers).
    pub fn new(key: &RssKey) -> Toeplitz {
        let mut tables = Box::new([[0; 256]; MAX_POSITIONS]);
        for (position, table) in tables.iter_mut().enumerate().take(key.max_input_len()) {
            fill_table(table, key.as_bytes(), position);
        }
        Toeplitz { key: *key, tables }
    }

    /// The key the tables were built from.
    pub fn key(&self) -> &RssKey {
        &self.key
    }

    /// The hash of `input`; equals [`reference()`] for the same key.
    pub fn hash(&self, input: &[u8]) -> u32 {
        self.fold(0, input)
    }

    /// The hash of an IPv4 2-tuple, or 4-tuple with `ports` (source,
    /// destination; host byte order), as if laid out in the standard order.
    #[inline]
    pub fn hash_v4(&self, src: [u8; 4], dst: [u8; 4], ports: Option<(u16, u16)>) -> u32 {
        let ips = self.fold(0, &src) ^ self.fold(4, &dst);
        ports.map_or(ips, |ports| ips ^ self.fold(8, &port_bytes(ports)))
    }

    /// The hash of an IPv6 2-tuple, or 4-tuple with `ports` (source,
    /// destination; host byte order), as if laid out in the standard order.
    #[inline]
    pub fn hash_v6(&self, src: [u8; 16], dst: [u8; 16], ports: Option<(u16, u16)>) -> u32 {
        let ips = self.fold(0, &src) ^ self.fold(16, &dst);
        ports.map_or(ips, |ports| ips ^ self.fold(32, &port_bytes(ports)))
    }

    /// The hash of the fields of `meta` that `types` selects (see
    /// [`super::hash_input`]), read in place; `None` if `types` selects none.
    #[inline]
    pub fn hash_meta(&self, meta: &PacketMeta, types: RssHashTypes) -> Option<u32> {
        let (ip, ports) = hash_fields(meta, types)?;
        Some(match ip {
            IpAddrs::V4 { src, dst } => self.hash_v4(src, dst, ports),
            IpAddrs::V6 { src, dst } => self.hash_v6(src, dst, ports),
        })
    }

    /// The hash of the fields of `flow` that `types` selects; the same as
    /// [`Toeplitz::hash_meta`] of the frame's [`PacketMeta`].
    #[inline]
    pub fn hash_ipv4_flow(&self, flow: &Ipv4Flow, types: RssHashTypes) -> Option<u32> {
        let with_ports = selects_ports(false, Some(flow.proto), true, types)?;
        Some(self.hash_v4(flow.src, flow.dst, with_ports.then_some(flow.ports)))
    }

    /// The XOR of the table entries of `bytes` placed at input position `first`.
    #[inline(always)]
    fn fold(&self, first: usize, bytes: &[u8]) -> u32 {
        bytes.iter().zip(&self.tables[first..]).fold(0, |hash, (&byte, table)| hash ^ table[usize::from(byte)])
    }
}

impl fmt::Debug for Toeplitz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Toeplitz").field("key", &self.key).finish_non_exhaustive()
    }
}

/// Fills `table` with the hash contribution of each byte value at input
/// byte `position`: single bits from the key, the rest by linearity.
fn fill_table(table: &mut [u32; 256], key: &[u8], position: usize) {
    for bit in 0..8 {
        table[0x80 >> bit] = key_window(key, position * 8 + bit);
    }
    for value in 1..table.len() {
        let lowest = value & value.wrapping_neg();
        table[value] = table[value ^ lowest] ^ table[lowest];
    }
}

/// The 32 key bits starting at key bit `bit` (zero past the key's end).
fn key_window(key: &[u8], bit: usize) -> u32 {
    let mut chunk = [0u8; 8];
    for (dst, src) in chunk.iter_mut().zip(key.iter().skip(bit / 8)) {
        *dst = *src;
    }
    ((u64::from_be_bytes(chunk) << (bit % 8)) >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_window_reads_across_byte_boundaries() {
        let key = [0x12, 0x34, 0x56, 0x78, 0x9a];
        assert_eq!(key_window(&key, 0), 0x1234_5678);
        assert_eq!(key_window(&key, 4), 0x2345_6789);
        assert_eq!(key_window(&key, 8), 0x3456_789a);
        assert_eq!(key_window(&key, 12), 0x4567_89a0);
    }

    #[test]
    fn single_bit_input_hashes_to_key_window() {
        let key = RssKey::DEFAULT;
        let toeplitz = Toeplitz::new(&key);
        let mut input = [0u8; 36];
        input[1] = 0x40;
        assert_eq!(reference(&key, &input), key_window(key.as_bytes(), 9));
        assert_eq!(toeplitz.hash(&input), key_window(key.as_bytes(), 9));
    }

    #[test]
    fn bytes_past_the_key_are_ignored() {
        let key = RssKey::DEFAULT;
        let toeplitz = Toeplitz::new(&key);
        let short = [0xa5u8; 36];
        let mut long = [0xffu8; 60];
        long[..36].copy_from_slice(&short);
        assert_eq!(reference(&key, &long), reference(&key, &short));
        assert_eq!(toeplitz.hash(&long), toeplitz.hash(&short));
    }

    #[test]
    fn empty_input_hashes_to_zero() {
        assert_eq!(Toeplitz::new(&RssKey::DEFAULT).hash(&[]), 0);
        assert_eq!(reference(&RssKey::DEFAULT, &[]), 0);
    }
}
