//! The few Ethernet header bytes a switch decides on.
//!
//! The bridge reads destination and source MAC, the VLAN id of the outermost
//! 802.1Q / 802.1ad tag and where the layer-3 payload starts, straight from
//! the first bytes of the frame. Nothing else of the packet is parsed.

use ethdev::proto::{ETHER_TYPE_QINQ, ETHER_TYPE_VLAN};
use ethdev::stats::DropReason;

/// Length of an untagged Ethernet header.
pub(crate) const ETH_HEADER_LEN: usize = 14;
const TAG_LEN: usize = 4;
const MAX_TAGS: usize = 2;
const VID_MASK: u16 = 0x0fff;

/// The group (multicast/broadcast) bit of a MAC address held in the low 48
/// bits of a `u64`.
const GROUP_BIT: u64 = 1 << 40;
const MAC_MASK: u64 = (1 << 48) - 1;
/// 01:80:C2:00:00:00 as a 48-bit integer; link-local addresses differ from
/// it in the low four bits only.
const LINK_LOCAL_BASE: u64 = 0x0180_c200_0000;

/// The switching-relevant part of an Ethernet header: the FDB keys of
/// both addresses (48-bit MAC, first byte most significant, with the VLAN
/// id above it) and the header length. Everything is a full `u64`, so the
/// header travels in registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct L2Header {
    /// Destination MAC and VLAN, as an FDB key.
    pub dst_key: u64,
    /// Source MAC and VLAN, as an FDB key.
    pub src_key: u64,
    /// Header length including up to two VLAN tags: where layer 3 starts.
    pub len: usize,
}

impl L2Header {
    /// Reads the header, or `None` if the frame is shorter than its
    /// Ethernet header (14 bytes plus 4 per VLAN tag).
    pub fn parse(frame: &[u8]) -> Option<L2Header> {
        let head: &[u8; ETH_HEADER_LEN] = frame.get(..ETH_HEADER_LEN)?.try_into().ok()?;
        let [a, b, c, d, e, f, g, h, i, j, k, l, ..] = *head;
        let mut len = ETH_HEADER_LEN;
        let mut vlan = None;
        for _ in 0..MAX_TAGS {
            let tpid = read_u16(frame, len - 2)?;
            if tpid != ETHER_TYPE_VLAN && tpid != ETHER_TYPE_QINQ {
                break;
            }
            let tci = read_u16(frame, len)?;
            vlan.get_or_insert(tci & VID_MASK);
            len += TAG_LEN;
        }
        if frame.len() < len {
            return None;
        }
        let vlan = u64::from(vlan.unwrap_or(0)) << 48;
        let dst_key = u64::from_be_bytes([0, 0, a, b, c, d, e, f]) | vlan;
        let src_key = u64::from_be_bytes([0, 0, g, h, i, j, k, l]) | vlan;
        Some(L2Header { dst_key, src_key, len })
    }

    /// Reads and checks the header of a frame entering the bridge: too
    /// short is `Malformed`, a group or zero source `InvalidSrcMac`, a
    /// link-local destination `LinkLocal`.
    pub fn accept(frame: &[u8]) -> Result<L2Header, DropReason> {
        let header = L2Header::parse(frame).ok_or(DropReason::Malformed)?;
        let src = header.src_key & MAC_MASK;
        if src & GROUP_BIT != 0 || src == 0 {
            return Err(DropReason::InvalidSrcMac);
        }
        if header.dst_key & MAC_MASK & !0xf == LINK_LOCAL_BASE {
            return Err(DropReason::LinkLocal);
        }
        Ok(header)
    }

    /// Whether the destination is a group (multicast or broadcast) address.
    pub fn group_destination(&self) -> bool {
        self.dst_key & GROUP_BIT != 0
    }
}

/// A MAC address as a 48-bit integer, first byte most significant.
pub(crate) fn mac48(mac: &[u8; 6]) -> u64 {
    let [a, b, c, d, e, f] = *mac;
    u64::from_be_bytes([0, 0, a, b, c, d, e, f])
}

/// The MAC address held in the low 48 bits of `value`.
pub(crate) fn mac_bytes(value: u64) -> [u8; 6] {
    let [_, _, a, b, c, d, e, f] = (value & MAC_MASK).to_be_bytes();
    [a, b, c, d, e, f]
}

fn read_u16(frame: &[u8], at: usize) -> Option<u16> {
    let bytes = frame.get(at..at + 2)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ethdev::proto::ETHER_TYPE_IPV4;

    fn frame(tags: &[(u16, u16)], extra: usize) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
        for &(tpid, tci) in tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&tci.to_be_bytes());
        }
        f.extend_from_slice(&ETHER_TYPE_IPV4.to_be_bytes());
        f.resize(f.len() + extra, 0);
        f
    }

    #[test]
    fn untagged_header_is_14_bytes_on_vlan_0() {
        let h = L2Header::parse(&frame(&[], 0)).unwrap();
        assert_eq!((h.src_key >> 48, h.len, mac_bytes(h.src_key)), (0, 14, [2, 0, 0, 0, 0, 1]));
        assert!(h.group_destination() && L2Header::accept(&frame(&[], 0)).is_ok());
    }

    #[test]
    fn outermost_tag_gives_the_vlan() {
        let h = L2Header::parse(&frame(&[(ETHER_TYPE_QINQ, 0x2007), (ETHER_TYPE_VLAN, 9)], 0)).unwrap();
        assert_eq!((h.src_key >> 48, h.dst_key >> 48, h.len), (7, 7, 22));
    }

    #[test]
    fn short_frames_do_not_parse() {
        assert!(L2Header::parse(&frame(&[], 0)[..13]).is_none());
        assert!(L2Header::parse(&frame(&[(ETHER_TYPE_VLAN, 5)], 0)[..17]).is_none());
        assert!(L2Header::parse(&[]).is_none());
    }

    #[test]
    fn link_local_range_is_00_to_0f() {
        let mut f = frame(&[], 0);
        f[..6].copy_from_slice(&[0x01, 0x80, 0xc2, 0, 0, 0x0e]);
        assert_eq!(L2Header::accept(&f), Err(DropReason::LinkLocal));
        f[5] = 0x10;
        assert!(L2Header::accept(&f).is_ok());
    }

    #[test]
    fn group_and_zero_sources_are_invalid() {
        let mut f = frame(&[], 0);
        for src in [[1, 0, 0, 0, 0, 0], [0; 6], [0xff; 6]] {
            f[6..12].copy_from_slice(&src);
            assert_eq!(L2Header::accept(&f), Err(DropReason::InvalidSrcMac));
        }
    }

    #[test]
    fn mac_conversions_round_trip() {
        let mac = [0x01, 0x80, 0xc2, 0xaa, 0xbb, 0xcc];
        assert_eq!(mac_bytes(mac48(&mac) | 7 << 48), mac);
    }
}
