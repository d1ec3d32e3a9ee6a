//! Offload emulation: what a NIC does to frames besides moving them.
//!
//! Receive: verify the IPv4 header and TCP/UDP checksums and report the
//! result as mbuf flags. Transmit: fill in checksums a frame asks for, and
//! cut an oversized TCP segment into MSS-sized segments (TSO) with headers,
//! sequence numbers and checksums fixed up, or ready it to cross the wire
//! whole as a super-frame, checksums filled in and its TSO request kept for
//! the receiver (or a switch) to honour. A frame whose every checksum the
//! port filled in crosses the wire marked [`OlFlags::CKSUM_FILLED`], which a
//! receiving port with checksum offload believes instead of summing the
//! frame again (see [`receive_checksums`]). Header offsets come from
//! [`PacketMeta`]; the ones'-complement sums from etherparse, which sums
//! in native byte order (hence `to_ne_bytes` when a sum is stored), with
//! the bulk of each frame summed in plain 64-bit lanes (`add_words`).

use crate::dev::TxOffloads;
use crate::mbuf::{Mbuf, OlFlags};
use crate::mempool::Mempool;
use crate::packet::{IpAddrs, PacketMeta};
use crate::proto::{PROTO_TCP as TCP, PROTO_UDP as UDP, TCP_CWR, TCP_FIN, TCP_PSH};
use crate::stats::DropReason;
use etherparse::checksum::Sum16BitWords;

/// The transmit offloads a frame's flags ask for.
pub fn required(flags: OlFlags) -> TxOffloads {
    let mut needs = TxOffloads::empty();
    needs.set(TxOffloads::IPV4_CKSUM, flags.contains(OlFlags::TX_IP_CKSUM));
    needs.set(TxOffloads::L4_CKSUM, flags.contains(OlFlags::TX_L4_CKSUM));
    needs.set(TxOffloads::TCP_TSO, flags.contains(OlFlags::TX_TCP_SEG));
    needs
}

/// Checks the IPv4 header checksum and the TCP/UDP checksum of a received
/// frame; a checksum that cannot be checked (not IP, a fragment, truncated)
/// sets neither its GOOD nor its BAD flag.
pub fn verify_checksums(frame: &[u8], meta: &PacketMeta) -> OlFlags {
    receive_checksums(frame, meta, false)
}

/// The receive checksum flags of a frame, as [`verify_checksums`] gives
/// them; if `filled` (it carried [`OlFlags::CKSUM_FILLED`] across the wire)
/// every checksum there is to check is known good and nothing is summed.
pub fn receive_checksums(frame: &[u8], meta: &PacketMeta, filled: bool) -> OlFlags {
    let mut flags = OlFlags::empty();
    if let Some(header) = ipv4_header(frame, meta) {
        let good = filled || add_words(Sum16BitWords::new(), header).ones_complement() == 0;
        flags |= if good { OlFlags::RX_IP_CKSUM_GOOD } else { OlFlags::RX_IP_CKSUM_BAD };
    }
    if let Some((proto, segment)) = l4_segment(frame, meta) {
        let unchecked_udp = proto == UDP && matches!(meta.ip, Some(IpAddrs::V4 { .. })) && segment[6..8] == [0, 0];
        let good = filled
            || unchecked_udp
            || add_words(pseudo_header(meta, proto, segment.len()), segment).ones_complement() == 0;
        flags |= if good { OlFlags::RX_L4_CKSUM_GOOD } else { OlFlags::RX_L4_CKSUM_BAD };
    }
    flags
}

/// Fills in the checksums `flags` ask for, as [`fill_checksums`], and marks
/// the frame [`OlFlags::CKSUM_FILLED`] if that was every checksum it has.
pub fn fill_mbuf_checksums(mbuf: &mut Mbuf, meta: &PacketMeta, flags: OlFlags) -> Result<(), DropReason> {
    fill_checksums(mbuf.data_mut(), meta, flags)?;
    if flags.contains(every_checksum(meta)) {
        mbuf.set_flags(mbuf.flags() | OlFlags::CKSUM_FILLED);
    }
    Ok(())
}

/// The checksum requests that cover every checksum a TCP/UDP frame has:
/// the IPv4 header's (IPv4 only) and the TCP/UDP one.
fn every_checksum(meta: &PacketMeta) -> OlFlags {
    match meta.ip {
        Some(IpAddrs::V4 { .. }) => OlFlags::TX_IP_CKSUM | OlFlags::TX_L4_CKSUM,
        _ => OlFlags::TX_L4_CKSUM,
    }
}

/// Segments cut from a super-frame received with `flags` (by
/// [`segment_tcp`], whose checksums they carry) are trusted as much as it
/// was: [`OlFlags::CKSUM_FILLED`] only if it came with it.
pub fn inherit_checksum_trust(flags: OlFlags, segments: &mut [Mbuf]) {
    if !flags.contains(OlFlags::CKSUM_FILLED) {
        segments.iter_mut().for_each(Mbuf::distrust_checksums);
    }
}

/// Fills in the checksums `flags` ask for (IPv4 header, TCP/UDP).
pub fn fill_checksums(frame: &mut [u8], meta: &PacketMeta, flags: OlFlags) -> Result<(), DropReason> {
    if flags.contains(OlFlags::TX_IP_CKSUM) {
        let l3 = meta.l3_offset as usize;
        let len = ipv4_header(frame, meta).ok_or(DropReason::BadOffload)?.len();
        frame[l3 + 10..l3 + 12].fill(0);
        let sum = add_words(Sum16BitWords::new(), &frame[l3..l3 + len]).ones_complement();
        frame[l3 + 10..l3 + 12].copy_from_slice(&sum.to_ne_bytes());
    }
    if flags.contains(OlFlags::TX_L4_CKSUM) {
        let (proto, start, end) = l4_bounds(frame, meta).ok_or(DropReason::BadOffload)?;
        let field = start + if proto == TCP { 16 } else { 6 };
        frame[field..field + 2].fill(0);
        let sum = add_words(pseudo_header(meta, proto, end - start), &frame[start..end]);
        let sum = if proto == UDP { sum.to_ones_complement_with_no_zero() } else { sum.ones_complement() };
        frame[field..field + 2].copy_from_slice(&sum.to_ne_bytes());
    }
    Ok(())
}

/// Cuts a TCP frame into segments of at most `tso_segsz` payload bytes,
/// each a complete frame with fixed-up lengths, IPv4 id, sequence number,
/// flags and checksums (so marked [`OlFlags::CKSUM_FILLED`]), allocated
/// from `pool` and appended to `out`.
pub fn segment_tcp(
    mbuf: &Mbuf,
    meta: &PacketMeta,
    pool: &Mempool,
    mtu: u16,
    out: &mut Vec<Mbuf>,
) -> Result<(), DropReason> {
    let frame = mbuf.data();
    let layout = TsoLayout::of(mbuf, meta, mtu)?;
    let segsz = layout.segsz;
    let payload = &frame[layout.headers_end..layout.end];
    let count = layout.segments();
    let checksums = every_checksum(meta);
    let mut segments = Vec::with_capacity(count);
    for i in 0..count {
        let chunk = &payload[(i * segsz).min(payload.len())..((i + 1) * segsz).min(payload.len())];
        let mut segment = pool.alloc(mbuf.owner()).ok_or(DropReason::NoMbuf)?;
        if !(segment.extend_from_slice(&frame[..layout.headers_end]) && segment.extend_from_slice(chunk)) {
            return Err(DropReason::NoMbuf);
        }
        segment.copy_metadata_from(mbuf);
        segment.set_flags(mbuf.flags() - OlFlags::TX_TCP_SEG);
        fix_segment_headers(segment.data_mut(), meta, i, count, (i * segsz) as u32);
        fill_mbuf_checksums(&mut segment, meta, checksums)?;
        segments.push(segment);
    }
    out.append(&mut segments);
    Ok(())
}

/// Readies a TSO request to cross the wire whole, as a super-frame (see
/// [`crate::wire::Wire::takes_super_frames`]): checks it as [`segment_tcp`]
/// would, fills in its IPv4 header and TCP checksums over the whole frame,
/// marks it [`OlFlags::CKSUM_FILLED`] and leaves only the
/// [`OlFlags::TX_TCP_SEG`] request (with `tso_segsz`) for whoever cuts it
/// later. Returns the number of segments it stands for.
pub fn ready_super_frame(mbuf: &mut Mbuf, meta: &PacketMeta, mtu: u16) -> Result<usize, DropReason> {
    let count = tso_segments(mbuf, meta, mtu)?;
    fill_mbuf_checksums(mbuf, meta, every_checksum(meta))?;
    mbuf.set_flags((mbuf.flags() - OlFlags::TX_IP_CKSUM - OlFlags::TX_L4_CKSUM) | OlFlags::TX_TCP_SEG);
    Ok(count)
}

/// The number of segments of at most `mtu` bytes (from layer 3 on) a TCP
/// frame asking to be cut at its `tso_segsz` makes, or why it cannot be cut.
pub fn tso_segments(mbuf: &Mbuf, meta: &PacketMeta, mtu: u16) -> Result<usize, DropReason> {
    TsoLayout::of(mbuf, meta, mtu).map(|layout| layout.segments())
}

/// Where the headers and payload of a TSO request lie, checked.
struct TsoLayout {
    /// End of the TCP header (start of the payload).
    headers_end: usize,
    /// End of the IP packet.
    end: usize,
    /// Payload bytes per segment.
    segsz: usize,
}

impl TsoLayout {
    /// The layout of a TCP frame asking to be cut at its `tso_segsz`, or
    /// why it cannot be: not TCP or no size, a header past the packet, or
    /// segments that would not fit `mtu`.
    fn of(mbuf: &Mbuf, meta: &PacketMeta, mtu: u16) -> Result<TsoLayout, DropReason> {
        let frame = mbuf.data();
        let (proto, l4, end) = l4_bounds(frame, meta).ok_or(DropReason::BadOffload)?;
        let segsz = mbuf.tso_segsz() as usize;
        if proto != TCP || segsz == 0 {
            return Err(DropReason::BadOffload);
        }
        let headers_end = l4 + (frame[l4 + 12] >> 4) as usize * 4;
        if headers_end > end {
            return Err(DropReason::Malformed);
        }
        if headers_end - meta.l3_offset as usize + segsz > mtu as usize {
            return Err(DropReason::Oversize);
        }
        Ok(TsoLayout { headers_end, end, segsz })
    }

    /// How many segments the payload makes (one at least).
    fn segments(&self) -> usize {
        (self.end - self.headers_end).div_ceil(self.segsz).max(1)
    }
}

/// Rewrites the IP length (and IPv4 id), TCP sequence number and flags of
/// segment `index` of `count`, whose payload starts `offset` bytes into the
/// original payload.
fn fix_segment_headers(frame: &mut [u8], meta: &PacketMeta, index: usize, count: usize, offset: u32) {
    let (l3, l4) = (meta.l3_offset as usize, meta.l4_offset as usize);
    let ip_len = frame.len() - l3;
    match meta.ip {
        Some(IpAddrs::V4 { .. }) => {
            frame[l3 + 2..l3 + 4].copy_from_slice(&(ip_len as u16).to_be_bytes());
            let id = u16::from_be_bytes([frame[l3 + 4], frame[l3 + 5]]).wrapping_add(index as u16);
            frame[l3 + 4..l3 + 6].copy_from_slice(&id.to_be_bytes());
        }
        _ => frame[l3 + 4..l3 + 6].copy_from_slice(&((ip_len - 40) as u16).to_be_bytes()),
    }
    let seq = u32::from_be_bytes([frame[l4 + 4], frame[l4 + 5], frame[l4 + 6], frame[l4 + 7]]).wrapping_add(offset);
    frame[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
    if index + 1 < count {
        frame[l4 + 13] &= !(TCP_FIN | TCP_PSH);
    }
    if index > 0 {
        frame[l4 + 13] &= !TCP_CWR;
    }
}

/// The IPv4 header bytes, if the frame is IPv4 with a complete header.
fn ipv4_header<'a>(frame: &'a [u8], meta: &PacketMeta) -> Option<&'a [u8]> {
    let Some(IpAddrs::V4 { .. }) = meta.ip else {
        return None;
    };
    let l3 = meta.l3_offset as usize;
    let len = (*frame.get(l3)? & 0x0f) as usize * 4;
    frame.get(l3..l3 + len).filter(|_| len >= 20)
}

/// Protocol and bounds `[start, end)` of a TCP/UDP segment that is complete
/// and not a fragment; the end is the IP packet's end, ignoring padding.
fn l4_bounds(frame: &[u8], meta: &PacketMeta) -> Option<(u8, usize, usize)> {
    let proto = meta.ip_proto.filter(|&p| (p == TCP || p == UDP) && !meta.fragment && meta.ports.is_some())?;
    let l3 = meta.l3_offset as usize;
    let end = match meta.ip? {
        IpAddrs::V4 { .. } => l3 + u16::from_be_bytes([*frame.get(l3 + 2)?, *frame.get(l3 + 3)?]) as usize,
        IpAddrs::V6 { .. } => l3 + 40 + u16::from_be_bytes([*frame.get(l3 + 4)?, *frame.get(l3 + 5)?]) as usize,
    };
    let start = meta.l4_offset as usize;
    let min_header = if proto == TCP { 20 } else { 8 };
    (end <= frame.len() && start + min_header <= end).then_some((proto, start, end))
}

fn l4_segment<'a>(frame: &'a [u8], meta: &PacketMeta) -> Option<(u8, &'a [u8])> {
    l4_bounds(frame, meta).map(|(proto, start, end)| (proto, &frame[start..end]))
}

/// Adds `data` (starting on a 16-bit word boundary of the sum) to `sum`,
/// as [`Sum16BitWords::add_slice`] does, only faster: the 32-bit words of
/// each block of [`SUM_BLOCK`] bytes go into a plain 64-bit total, which
/// needs no end-around carry per word and so vectorises, and the block's
/// total joins `sum` once. A ones'-complement sum is the integer sum folded
/// modulo 0xffff, so where the carries are folded does not change it.
fn add_words(mut sum: Sum16BitWords, data: &[u8]) -> Sum16BitWords {
    for block in data.chunks(SUM_BLOCK) {
        let words = block.chunks_exact(4);
        let tail = words.remainder();
        let total: u64 = words.map(|w| u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]))).sum();
        sum = sum.add_8bytes(total.to_ne_bytes()).add_slice(tail);
    }
    sum
}

/// Bytes summed into one plain total by [`add_words`]: a multiple of 4
/// (only the last block has a tail), and 2^18 words below 2^32 each keep
/// the total below 2^50, far from overflowing.
const SUM_BLOCK: usize = 1 << 20;

/// The sum of the TCP/UDP pseudo header for a segment of `len` bytes.
fn pseudo_header(meta: &PacketMeta, proto: u8, len: usize) -> Sum16BitWords {
    match meta.ip {
        Some(IpAddrs::V4 { src, dst }) => Sum16BitWords::new()
            .add_4bytes(src)
            .add_4bytes(dst)
            .add_2bytes([0, proto])
            .add_2bytes((len as u16).to_be_bytes()),
        Some(IpAddrs::V6 { src, dst }) => Sum16BitWords::new()
            .add_16bytes(src)
            .add_16bytes(dst)
            .add_4bytes((len as u32).to_be_bytes())
            .add_4bytes([0, 0, 0, proto]),
        None => Sum16BitWords::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The definition: 16-bit words in native byte order (an odd last byte
    /// padded with a zero), added with end-around carry.
    fn reference(start: u16, data: &[u8]) -> u16 {
        let mut sum = u32::from(start);
        for word in data.chunks(2) {
            sum += u32::from(u16::from_ne_bytes([word[0], *word.get(1).unwrap_or(&0)]));
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    proptest! {
        /// Any length and alignment, after any prefix, sums as the
        /// definition and as etherparse's `add_slice`, all-zero and
        /// all-ones data included.
        #[test]
        fn add_words_is_the_ones_complement_sum(
            prefix in any::<u16>(),
            data in prop_oneof![
                prop::collection::vec(any::<u8>(), 0..3000),
                (0usize..3000).prop_map(|n| vec![0xff; n]),
                (0usize..3000).prop_map(|n| vec![0; n]),
            ],
        ) {
            let start = || Sum16BitWords::new().add_2bytes(prefix.to_ne_bytes());
            let fast = add_words(start(), &data).ones_complement();
            prop_assert_eq!(fast, start().add_slice(&data).ones_complement());
            prop_assert_eq!(fast, reference(prefix, &data));
        }
    }

    /// Blocks join correctly: a slice longer than one block.
    #[test]
    fn add_words_across_blocks() {
        let data: Vec<u8> = (0..SUM_BLOCK * 2 + 7).map(|i| (i * 31 % 256) as u8).collect();
        let fast = add_words(Sum16BitWords::new(), &data).ones_complement();
        assert_eq!(fast, Sum16BitWords::new().add_slice(&data).ones_complement());
        assert_eq!(fast, reference(0, &data));
    }
}
