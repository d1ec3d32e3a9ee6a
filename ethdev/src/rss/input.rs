//! Which fields of a parsed frame feed the hash, and in what order.
//!
//! The layout is the one NICs and `rte_softrss` use: source IP, destination
//! IP, then source and destination port, all in network byte order. A
//! 4-tuple is hashed only when the frame's transport type is enabled and its
//! ports were read (never for fragments); otherwise the address pair, if its
//! IP type is enabled.

use super::RssHashTypes;
use crate::packet::{IpAddrs, PacketMeta};
use crate::proto::{PROTO_TCP, PROTO_UDP};

/// The longest input: an IPv6 4-tuple.
const MAX_LEN: usize = 36;

/// A hash input laid out in a stack buffer: up to an IPv6 4-tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashInput {
    bytes: [u8; MAX_LEN],
    len: u8,
}

impl HashInput {
    /// The input bytes (8, 12, 32 or 36 of them).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Appends `bytes`; the callers never exceed an IPv6 4-tuple.
    fn push(&mut self, bytes: &[u8]) {
        let start = usize::from(self.len);
        self.bytes[start..start + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len() as u8;
    }
}

/// The bytes `types` says to hash for the frame `meta` describes, or `None`
/// if it selects nothing (not IP, or its type disabled).
pub fn hash_input(meta: &PacketMeta, types: RssHashTypes) -> Option<HashInput> {
    let (ip, ports) = hash_fields(meta, types)?;
    let mut input = HashInput { bytes: [0; MAX_LEN], len: 0 };
    match ip {
        IpAddrs::V4 { src, dst } => {
            input.push(&src);
            input.push(&dst);
        }
        IpAddrs::V6 { src, dst } => {
            input.push(&src);
            input.push(&dst);
        }
    }
    if let Some(ports) = ports {
        input.push(&port_bytes(ports));
    }
    Some(input)
}

/// The addresses, and the ports when a 4-tuple applies, that `types`
/// selects from `meta`.
#[inline(always)]
pub(super) fn hash_fields(meta: &PacketMeta, types: RssHashTypes) -> Option<(IpAddrs, Option<(u16, u16)>)> {
    let ip = meta.ip?;
    let v6 = matches!(ip, IpAddrs::V6 { .. });
    let with_ports = selects_ports(v6, meta.ip_proto, meta.ports.is_some(), types)?;
    Some((ip, meta.ports.filter(|_| with_ports)))
}

/// What `types` hashes of an IPv4 (or, if `v6`, IPv6) packet whose
/// transport is `proto` and whose ports could (`readable`) or could not be
/// read: the 4-tuple (`Some(true)`), the addresses only (`Some(false)`), or
/// nothing (`None`).
#[inline(always)]
pub(super) fn selects_ports(v6: bool, proto: Option<u8>, readable: bool, types: RssHashTypes) -> Option<bool> {
    let (ip_type, tcp_type, udp_type) = match v6 {
        false => (RssHashTypes::IPV4, RssHashTypes::IPV4_TCP, RssHashTypes::IPV4_UDP),
        true => (RssHashTypes::IPV6, RssHashTypes::IPV6_TCP, RssHashTypes::IPV6_UDP),
    };
    let l4_type = match proto {
        Some(PROTO_TCP) => tcp_type,
        Some(PROTO_UDP) => udp_type,
        _ => RssHashTypes::empty(),
    };
    if !l4_type.is_empty() && types.contains(l4_type) && readable {
        return Some(true);
    }
    types.contains(ip_type).then_some(false)
}

/// Source and destination port in network byte order, as hashed.
#[inline(always)]
pub(super) fn port_bytes((src, dst): (u16, u16)) -> [u8; 4] {
    let [s0, s1] = src.to_be_bytes();
    let [d0, d1] = dst.to_be_bytes();
    [s0, s1, d0, d1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const V4: IpAddrs = IpAddrs::V4 { src: [10, 0, 0, 1], dst: [10, 0, 0, 2] };
    const V6: IpAddrs = IpAddrs::V6 { src: [1; 16], dst: [2; 16] };

    fn meta(ip: Option<IpAddrs>, proto: u8, ports: Option<(u16, u16)>) -> PacketMeta {
        PacketMeta {
            dst_mac: [0; 6],
            src_mac: [0; 6],
            vlan: None,
            ether_type: 0x0800,
            l3_offset: 14,
            ip,
            ip_proto: ip.map(|_| proto),
            fragment: ports.is_none(),
            l4_offset: 34,
            ports,
            tcp_flags: 0,
        }
    }

    #[rstest]
    #[case::v4_tcp_4tuple(V4, 6, Some((1, 2)), RssHashTypes::IPV4_TCP, Some(12))]
    #[case::v4_udp_4tuple(V4, 17, Some((1, 2)), RssHashTypes::all(), Some(12))]
    #[case::v4_tcp_ip_only(V4, 6, Some((1, 2)), RssHashTypes::IPV4, Some(8))]
    #[case::v4_udp_with_tcp_type(V4, 17, Some((1, 2)), RssHashTypes::IPV4_TCP, None)]
    #[case::v4_fragment(V4, 6, None, RssHashTypes::all(), Some(8))]
    #[case::v4_icmp(V4, 1, None, RssHashTypes::IPV4_TCP | RssHashTypes::IPV4, Some(8))]
    #[case::v4_with_v6_types(V4, 6, Some((1, 2)), RssHashTypes::IPV6 | RssHashTypes::IPV6_TCP, None)]
    #[case::v6_udp_4tuple(V6, 17, Some((1, 2)), RssHashTypes::IPV6_UDP, Some(36))]
    #[case::v6_tcp_ip_only(V6, 6, Some((1, 2)), RssHashTypes::IPV6 | RssHashTypes::IPV6_UDP, Some(32))]
    #[case::v6_no_types(V6, 6, Some((1, 2)), RssHashTypes::empty(), None)]
    fn type_selection(
        #[case] ip: IpAddrs,
        #[case] proto: u8,
        #[case] ports: Option<(u16, u16)>,
        #[case] types: RssHashTypes,
        #[case] expected_len: Option<usize>,
    ) {
        let input = hash_input(&meta(Some(ip), proto, ports), types);
        assert_eq!(input.map(|i| i.as_bytes().len()), expected_len);
    }

    #[test]
    fn non_ip_is_not_hashed() {
        assert_eq!(hash_input(&meta(None, 6, Some((1, 2))), RssHashTypes::all()), None);
    }

    #[test]
    fn layout_is_src_dst_then_ports_big_endian() {
        let input = hash_input(&meta(Some(V4), 6, Some((0x0102, 0x0304))), RssHashTypes::all());
        let expected = [10, 0, 0, 1, 10, 0, 0, 2, 1, 2, 3, 4];
        assert_eq!(input.as_ref().map(HashInput::as_bytes), Some(&expected[..]));
    }
}
