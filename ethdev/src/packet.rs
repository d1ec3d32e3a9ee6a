//! One pass over a frame's headers: the metadata a NIC's parser extracts.
//!
//! Receive classification (flow rules, RSS, checksum flags) needs the same few
//! facts about every frame: MAC addresses, VLAN tag, IP addresses, protocol
//! and ports. [`PacketMeta::parse`] walks the headers once, without copying
//! the payload, and every consumer reads the result.
//!
//! This is the receive fast path, so the walk is hand-written over
//! bounds-checked fixed-size reads and never allocates: a truncated or
//! malformed header simply ends it, leaving the fields it would have filled
//! empty. Lengths come from the headers themselves (IPv4 total length, IPv6
//! payload and extension-header lengths), so Ethernet padding is never read
//! as a transport header. Fragments keep their protocol but get no ports, so
//! that RSS hashes every fragment of a datagram alike, on addresses only.
//!
//! [`Ipv4Flow::parse`] is the fixed-offset shortcut a NIC's parser takes for
//! the commonest frame (untagged IPv4 TCP or UDP without options): it reads
//! the 4-tuple where it must be and declines every other frame, which then
//! takes the full walk. Where it accepts a frame, it agrees with
//! [`PacketMeta::parse`].

use crate::proto::{
    ETHERNET_HEADER, ETHER_TYPE_IPV4, ETHER_TYPE_IPV6, ETHER_TYPE_QINQ, ETHER_TYPE_VLAN, PROTO_TCP, PROTO_UDP, VLAN_TAG,
};

/// Layer-3 source and destination addresses of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpAddrs {
    /// IPv4 source and destination, network byte order.
    V4 {
        /// Source address.
        src: [u8; 4],
        /// Destination address.
        dst: [u8; 4],
    },
    /// IPv6 source and destination, network byte order.
    V6 {
        /// Source address.
        src: [u8; 16],
        /// Destination address.
        dst: [u8; 16],
    },
}

/// What a frame's headers say, as far as they could be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketMeta {
    /// Destination MAC address.
    pub dst_mac: [u8; 6],
    /// Source MAC address.
    pub src_mac: [u8; 6],
    /// VLAN id (12 bits) of the outermost 802.1Q / 802.1ad tag, if tagged.
    pub vlan: Option<u16>,
    /// EtherType after any VLAN tags.
    pub ether_type: u16,
    /// Byte offset of the layer-3 header.
    pub l3_offset: u16,
    /// IP addresses, if the frame is IPv4 or IPv6 with a readable header.
    pub ip: Option<IpAddrs>,
    /// IP protocol / IPv6 next header of the transport layer (after IPv6
    /// extension headers), if IP.
    pub ip_proto: Option<u8>,
    /// The packet is an IP fragment (IPv4 MF or offset, or an IPv6 fragment
    /// header); fragments carry no usable ports.
    pub fragment: bool,
    /// Byte offset of the layer-4 header (meaningful when `ip_proto` is set).
    pub l4_offset: u16,
    /// TCP or UDP source and destination ports, host byte order, when the
    /// transport header is TCP or UDP, complete, and not in a fragment.
    pub ports: Option<(u16, u16)>,
    /// TCP flags byte (FIN=0x01 SYN=0x02 RST=0x04 PSH=0x08 ACK=0x10 ...), 0 if not TCP.
    pub tcp_flags: u8,
}

/// The flow of an untagged, unfragmented IPv4 TCP or UDP frame whose IP
/// header has no options: everything RSS reads, found at fixed offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Flow {
    /// Source address, network byte order.
    pub src: [u8; 4],
    /// Destination address, network byte order.
    pub dst: [u8; 4],
    /// IP protocol: TCP (6) or UDP (17).
    pub proto: u8,
    /// Source and destination port, host byte order.
    pub ports: (u16, u16),
}

/// Why a frame's headers could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Shorter than an Ethernet header (14 bytes, or 18 with a VLAN tag).
    #[error("frame truncated in the Ethernet header")]
    TruncatedL2,
}

const MAX_VLAN_TAGS: usize = 2;
const IPV4_MIN_HEADER_LEN: usize = 20;
const IPV6_HEADER_LEN: usize = 40;
const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_DEST_OPTS: u8 = 60;
const IPV6_FRAGMENT_LEN: usize = 8;
const TCP_MIN_HEADER_LEN: usize = 20;
const UDP_HEADER_LEN: usize = 8;

/// `N` bytes of `buf` starting at `at`, if that many are there.
#[inline(always)]
fn bytes<const N: usize>(buf: &[u8], at: usize) -> Option<[u8; N]> {
    buf.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// The big-endian `u16` at `at`, if present.
#[inline(always)]
fn be16(buf: &[u8], at: usize) -> Option<u16> {
    bytes(buf, at).map(u16::from_be_bytes)
}

impl PacketMeta {
    /// Reads the headers of an Ethernet frame. Only a frame too short for
    /// its Ethernet header is an error; unreadable upper layers leave the
    /// corresponding fields `None`.
    pub fn parse(frame: &[u8]) -> Result<PacketMeta, ParseError> {
        let mut meta = Self::parse_l2(frame).ok_or(ParseError::TruncatedL2)?;
        match meta.ether_type {
            ETHER_TYPE_IPV4 => meta.parse_ipv4(frame),
            ETHER_TYPE_IPV6 => meta.parse_ipv6(frame),
            _ => None,
        };
        Ok(meta)
    }

    /// The Ethernet header and up to two VLAN tags, with every upper-layer
    /// field still empty; `None` if the frame ends inside them.
    #[inline(always)]
    fn parse_l2(frame: &[u8]) -> Option<PacketMeta> {
        let mut ether_type = be16(frame, 12)?;
        let mut offset = ETHERNET_HEADER;
        let mut vlan = None;
        for _ in 0..MAX_VLAN_TAGS {
            if ether_type != ETHER_TYPE_VLAN && ether_type != ETHER_TYPE_QINQ {
                break;
            }
            let tci = be16(frame, offset)?;
            ether_type = be16(frame, offset + 2)?;
            vlan = vlan.or(Some(tci & 0x0fff));
            offset += VLAN_TAG;
        }
        Some(PacketMeta {
            dst_mac: bytes(frame, 0)?,
            src_mac: bytes(frame, 6)?,
            vlan,
            ether_type,
            l3_offset: u16::try_from(offset).ok()?,
            ip: None,
            ip_proto: None,
            fragment: false,
            l4_offset: 0,
            ports: None,
            tcp_flags: 0,
        })
    }

    /// Fills the IPv4 fields and the transport; `None` where the header
    /// stops being readable.
    #[inline(always)]
    fn parse_ipv4(&mut self, frame: &[u8]) -> Option<()> {
        let ip = frame.get(usize::from(self.l3_offset)..)?;
        let [version_ihl, _, total_hi, total_lo, _, _, frag_hi, frag_lo] = bytes(ip, 0)?;
        let header_len = usize::from(version_ihl & 0x0f) * 4;
        if version_ihl >> 4 != 4 || header_len < IPV4_MIN_HEADER_LEN || ip.len() < header_len {
            return None;
        }
        self.ip = Some(IpAddrs::V4 { src: bytes(ip, 12)?, dst: bytes(ip, 16)? });
        self.fragment = u16::from_be_bytes([frag_hi, frag_lo]) & 0x3fff != 0;
        let total_len = usize::from(u16::from_be_bytes([total_hi, total_lo]));
        let payload = ip.get(header_len..total_len.min(ip.len()))?;
        let l4_offset = usize::from(self.l3_offset) + header_len;
        self.parse_transport(*ip.get(9)?, l4_offset, payload)
    }

    /// Fills the IPv6 fields, skips extension headers, then reads the
    /// transport; `None` where the headers stop being readable.
    #[inline(always)]
    fn parse_ipv6(&mut self, frame: &[u8]) -> Option<()> {
        let ip = frame.get(usize::from(self.l3_offset)..)?;
        let [version, _, _, _, len_hi, len_lo, next_header, _] = bytes(ip, 0)?;
        if version >> 4 != 6 {
            return None;
        }
        self.ip = Some(IpAddrs::V6 { src: bytes(ip, 8)?, dst: bytes(ip, 24)? });
        let payload_len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
        let end = (IPV6_HEADER_LEN + payload_len).min(ip.len());
        let payload = ip.get(IPV6_HEADER_LEN..end)?;
        let (proto, skipped) = self.skip_ipv6_extensions(next_header, payload)?;
        let l4_offset = usize::from(self.l3_offset) + IPV6_HEADER_LEN + skipped;
        self.parse_transport(proto, l4_offset, payload.get(skipped..)?)
    }

    /// Walks the IPv6 extension headers at the start of `payload`: the
    /// transport protocol and how many bytes the extensions took. A fragment
    /// header ends the walk (what follows it may be a later fragment's data).
    #[inline(always)]
    fn skip_ipv6_extensions(&mut self, mut next: u8, payload: &[u8]) -> Option<(u8, usize)> {
        let mut offset = 0;
        loop {
            match next {
                IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_DEST_OPTS => {
                    let [following, len_units] = bytes(payload, offset)?;
                    offset += (usize::from(len_units) + 1) * 8;
                    if offset > payload.len() {
                        return None;
                    }
                    next = following;
                }
                IPV6_FRAGMENT => {
                    let [following, ..] = bytes::<IPV6_FRAGMENT_LEN>(payload, offset)?;
                    self.fragment = true;
                    return Some((following, offset + IPV6_FRAGMENT_LEN));
                }
                _ => return Some((next, offset)),
            }
        }
    }

    /// Records the transport protocol at `l4_offset` and, for a complete,
    /// unfragmented TCP or UDP header at the start of `l4`, its ports (and
    /// TCP flags).
    #[inline(always)]
    fn parse_transport(&mut self, proto: u8, l4_offset: usize, l4: &[u8]) -> Option<()> {
        self.l4_offset = u16::try_from(l4_offset).ok()?;
        self.ip_proto = Some(proto);
        if self.fragment {
            return None;
        }
        match proto {
            PROTO_TCP => {
                let header_len = usize::from(*l4.get(12)? >> 4) * 4;
                if header_len < TCP_MIN_HEADER_LEN || l4.len() < header_len {
                    return None;
                }
                self.tcp_flags = *l4.get(13)?;
            }
            PROTO_UDP if l4.len() >= UDP_HEADER_LEN => {}
            _ => return None,
        }
        self.ports = Some((be16(l4, 0)?, be16(l4, 2)?));
        Some(())
    }
}

/// Bytes [`Ipv4Flow::parse`] reads at fixed offsets: Ethernet and IPv4
/// headers and the two ports.
const IPV4_FLOW_PREFIX: usize = ETHERNET_HEADER + IPV4_MIN_HEADER_LEN + 4;

impl Ipv4Flow {
    /// The flow of `frame` if it is an untagged IPv4 TCP or UDP frame with a
    /// 20-byte IP header, not a fragment, with its whole transport header
    /// inside the IP total length; `None` for any other frame. When `Some`,
    /// [`PacketMeta::parse`] finds the same addresses, protocol and ports,
    /// no VLAN and layer 3 at byte 14.
    #[inline]
    pub fn parse(frame: &[u8]) -> Option<Ipv4Flow> {
        let head: [u8; IPV4_FLOW_PREFIX] = bytes(frame, 0)?;
        let field = |at: usize| u16::from_be_bytes([head[at], head[at + 1]]);
        let (version_ihl, fragment, proto) = (head[ETHERNET_HEADER], field(20) & 0x3fff, head[23]);
        if field(12) != ETHER_TYPE_IPV4 || version_ihl != 0x45 || fragment != 0 {
            return None;
        }
        let ip_len = usize::from(field(16)).min(frame.len() - ETHERNET_HEADER);
        let l4_len = ip_len.checked_sub(IPV4_MIN_HEADER_LEN)?;
        let complete = match proto {
            PROTO_TCP => (TCP_MIN_HEADER_LEN..=l4_len).contains(&tcp_header_len(frame)?),
            PROTO_UDP => l4_len >= UDP_HEADER_LEN,
            _ => false,
        };
        let ports = (field(34), field(36));
        complete.then_some(Ipv4Flow { src: bytes(&head, 26)?, dst: bytes(&head, 30)?, proto, ports })
    }
}

/// The TCP header length of an [`Ipv4Flow`] frame, from its data offset.
#[inline(always)]
fn tcp_header_len(frame: &[u8]) -> Option<usize> {
    let data_offset = *frame.get(ETHERNET_HEADER + IPV4_MIN_HEADER_LEN + 12)?;
    Some(usize::from(data_offset >> 4) * 4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{
        IpFragOffset, IpHeaders, IpNumber, Ipv4Header, Ipv6Extensions, Ipv6FragmentHeader, Ipv6Header,
        Ipv6RawExtHeader, LinkSlice, NetSlice, PacketBuilder, PacketBuilderStep, SlicedPacket, TransportSlice, VlanId,
    };
    use proptest::collection::vec;
    use proptest::prelude::*;
    use rstest::rstest;

    const SRC_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const DST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

    /// What the generated frames vary in.
    #[derive(Clone, Debug)]
    struct Spec {
        vlans: Vec<u16>,
        ip: IpAddrs,
        tcp: bool,
        fragment: bool,
        ipv6_options: bool,
        ports: (u16, u16),
        tcp_flags: [bool; 4],
        payload: Vec<u8>,
    }

    fn ip_addrs() -> impl Strategy<Value = IpAddrs> {
        prop_oneof![
            any::<([u8; 4], [u8; 4])>().prop_map(|(src, dst)| IpAddrs::V4 { src, dst }),
            any::<([u8; 16], [u8; 16])>().prop_map(|(src, dst)| IpAddrs::V6 { src, dst }),
        ]
    }

    prop_compose! {
        fn spec()(
            vlans in vec(0u16..4096, 0..=2),
            ip in ip_addrs(),
            tcp: bool,
            fragment in proptest::bool::weighted(0.2),
            ipv6_options: bool,
            ports: (u16, u16),
            tcp_flags: [bool; 4],
            payload in vec(any::<u8>(), 0..40),
        ) -> Spec {
            Spec { vlans, ip, tcp, fragment, ipv6_options, ports, tcp_flags, payload }
        }
    }

    fn ip_headers(spec: &Spec) -> IpHeaders {
        match spec.ip {
            IpAddrs::V4 { src, dst } => {
                let header = Ipv4Header {
                    source: src,
                    destination: dst,
                    time_to_live: 64,
                    more_fragments: spec.fragment,
                    dont_fragment: !spec.fragment,
                    ..Default::default()
                };
                IpHeaders::Ipv4(header, Default::default())
            }
            IpAddrs::V6 { src, dst } => {
                let header = Ipv6Header { source: src, destination: dst, hop_limit: 64, ..Default::default() };
                IpHeaders::Ipv6(header, ipv6_extensions(spec))
            }
        }
    }

    fn ipv6_extensions(spec: &Spec) -> Ipv6Extensions {
        let options = || Ipv6RawExtHeader::new_raw(IpNumber(0), &[1, 4, 0, 0, 0, 0]).expect("valid");
        let fragment = Ipv6FragmentHeader::new(IpNumber(0), IpFragOffset::ZERO, true, 7);
        Ipv6Extensions {
            hop_by_hop_options: spec.ipv6_options.then(options),
            destination_options: spec.ipv6_options.then(options),
            fragment: spec.fragment.then_some(fragment),
            ..Default::default()
        }
    }

    fn build(spec: &Spec) -> Vec<u8> {
        let eth = PacketBuilder::ethernet2(SRC_MAC, DST_MAC);
        let vid = |v: u16| VlanId::try_new(v).expect("12-bit id");
        let ip: PacketBuilderStep<IpHeaders> = match spec.vlans[..] {
            [] => eth.ip(ip_headers(spec)),
            [outer] => eth.single_vlan(vid(outer)).ip(ip_headers(spec)),
            [outer, inner, ..] => eth.double_vlan(vid(outer), vid(inner)).ip(ip_headers(spec)),
        };
        let (src_port, dst_port) = spec.ports;
        let mut frame = Vec::new();
        if spec.tcp {
            let mut tcp = ip.tcp(src_port, dst_port, 1, 1024);
            let [fin, syn, rst, psh] = spec.tcp_flags;
            tcp = if fin { tcp.fin() } else { tcp };
            tcp = if syn { tcp.syn() } else { tcp };
            tcp = if rst { tcp.rst() } else { tcp };
            tcp = if psh { tcp.psh() } else { tcp };
            tcp.write(&mut frame, &spec.payload).expect("serialisable");
        } else {
            ip.udp(src_port, dst_port).write(&mut frame, &spec.payload).expect("serialisable");
        }
        frame
    }

    fn expected_flags(spec: &Spec) -> u8 {
        let bits = spec.tcp_flags.iter().enumerate();
        bits.fold(0, |flags, (bit, &set)| flags | (u8::from(set) << bit))
    }

    /// The fields both parsers read; the transport offset only where
    /// there is a transport header.
    #[derive(Debug, PartialEq)]
    struct View {
        macs: ([u8; 6], [u8; 6]),
        vlan: Option<u16>,
        ip: Option<IpAddrs>,
        proto: Option<u8>,
        fragment: bool,
        ports: Option<(u16, u16)>,
        l4_offset: Option<usize>,
    }

    fn our_view(meta: &PacketMeta) -> View {
        View {
            macs: (meta.src_mac, meta.dst_mac),
            vlan: meta.vlan,
            ip: meta.ip,
            proto: meta.ip_proto,
            fragment: meta.fragment,
            ports: meta.ports,
            l4_offset: meta.ports.map(|_| usize::from(meta.l4_offset)),
        }
    }

    fn etherparse_view(frame: &[u8]) -> View {
        let sliced = SlicedPacket::from_ethernet(frame).expect("etherparse reads its own frames");
        let Some(LinkSlice::Ethernet2(eth)) = &sliced.link else {
            panic!("not Ethernet II: {:?}", sliced.link);
        };
        let ip = match &sliced.net {
            Some(NetSlice::Ipv4(v4)) => Some(IpAddrs::V4 { src: v4.header().source(), dst: v4.header().destination() }),
            Some(NetSlice::Ipv6(v6)) => Some(IpAddrs::V6 { src: v6.header().source(), dst: v6.header().destination() }),
            _ => None,
        };
        let (ports, l4) = match &sliced.transport {
            Some(TransportSlice::Tcp(t)) => (Some((t.source_port(), t.destination_port())), t.slice()),
            Some(TransportSlice::Udp(u)) => (Some((u.source_port(), u.destination_port())), u.slice()),
            _ => (None, &[][..]),
        };
        View {
            macs: (eth.source(), eth.destination()),
            vlan: sliced.vlan_ids().first().map(|id| id.value()),
            ip,
            proto: sliced.ip_payload().map(|p| p.ip_number.0),
            fragment: sliced.is_ip_payload_fragmented(),
            ports,
            l4_offset: ports.map(|_| frame.len() - l4.len()),
        }
    }

    proptest! {
        #[test]
        fn agrees_with_etherparse(spec in spec()) {
            let frame = build(&spec);
            let meta = PacketMeta::parse(&frame).expect("whole frame");
            prop_assert_eq!(our_view(&meta), etherparse_view(&frame));
            prop_assert_eq!(meta.ports.is_some(), !spec.fragment);
            let flags = if spec.tcp && !spec.fragment { expected_flags(&spec) } else { 0 };
            prop_assert_eq!(meta.tcp_flags, flags);
        }

        #[test]
        fn truncation_never_panics_and_keeps_whole_headers(spec in spec(), cut: prop::sample::Index) {
            let frame = build(&spec);
            let whole = PacketMeta::parse(&frame).expect("whole frame");
            let len = cut.index(frame.len() + 1);
            match PacketMeta::parse(&frame[..len]) {
                Ok(meta) if len >= frame.len() - spec.payload.len() => prop_assert_eq!(meta, whole),
                Ok(meta) => prop_assert!(meta.ports.is_none() || len >= usize::from(meta.l4_offset) + 4),
                Err(ParseError::TruncatedL2) => prop_assert!(len < usize::from(whole.l3_offset)),
            }
        }

        #[test]
        fn ipv4_flow_agrees_with_the_full_parse(spec in spec(), cut: prop::sample::Index) {
            let whole = build(&spec);
            let frame = &whole[..cut.index(whole.len() + 1)];
            if let Some(flow) = Ipv4Flow::parse(frame) {
                let meta = PacketMeta::parse(frame).expect("l2 complete");
                prop_assert_eq!(Some(flow), flow_of(&meta));
            }
            let plain = spec.vlans.is_empty() && matches!(spec.ip, IpAddrs::V4 { .. }) && !spec.fragment;
            prop_assert_eq!(Ipv4Flow::parse(&whole).is_some(), plain);
        }

        #[test]
        fn ipv4_flow_agrees_on_random_headers(
            proto in prop::sample::select(vec![PROTO_TCP, PROTO_UDP, 1]),
            header in vec(any::<u8>(), 19..=19),
            total_len in 0u16..80,
            tail in vec(any::<u8>(), 0..40),
        ) {
            let mut frame = vec![0u8; 12];
            frame.extend_from_slice(&ETHER_TYPE_IPV4.to_be_bytes());
            frame.push(0x45);
            frame.extend_from_slice(&header);
            frame[16..18].copy_from_slice(&total_len.to_be_bytes());
            frame[20] &= 0xc0;
            frame[21] = 0;
            frame[23] = proto;
            frame.extend_from_slice(&tail);
            if let Some(flow) = Ipv4Flow::parse(&frame) {
                prop_assert_eq!(Some(flow), flow_of(&PacketMeta::parse(&frame).expect("l2 complete")));
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(frame in vec(any::<u8>(), 0..128)) {
            let _ = PacketMeta::parse(&frame);
        }

        #[test]
        fn random_headers_after_valid_prefix_never_panic(
            ether_type in prop::sample::select(vec![ETHER_TYPE_IPV4, ETHER_TYPE_IPV6, ETHER_TYPE_VLAN, ETHER_TYPE_QINQ]),
            version in prop::sample::select(vec![0x45u8, 0x4f, 0x60, 0x41]),
            next in prop::sample::select(vec![0u8, 6, 17, 43, 44, 60]),
            tail in vec(any::<u8>(), 0..120),
        ) {
            let mut frame = vec![0u8; 12];
            frame.extend_from_slice(&ether_type.to_be_bytes());
            frame.push(version);
            frame.extend_from_slice(&tail);
            if let Some(next_header) = frame.get_mut(20) {
                *next_header = next;
            }
            let _ = PacketMeta::parse(&frame);
        }
    }

    /// The [`Ipv4Flow`] a full parse implies, if the frame is one.
    fn flow_of(meta: &PacketMeta) -> Option<Ipv4Flow> {
        match (meta.vlan, meta.ip, meta.ip_proto, meta.ports, meta.l3_offset, meta.l4_offset) {
            (None, Some(IpAddrs::V4 { src, dst }), Some(proto), Some(ports), 14, 34) => {
                Some(Ipv4Flow { src, dst, proto, ports })
            }
            _ => None,
        }
    }

    /// A UDP/IPv4 frame from 10.0.0.1:1000 to 10.0.0.2:2000 with `payload`.
    fn udp4(payload: &[u8]) -> Vec<u8> {
        let mut frame = Vec::new();
        PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1000, 2000)
            .write(&mut frame, payload)
            .expect("serialisable");
        frame
    }

    /// An IPv6 frame with `next` as next header and `payload` after the fixed header.
    fn ipv6(next: u8, payload: &[u8]) -> Vec<u8> {
        let mut frame = [DST_MAC, SRC_MAC].concat();
        frame.extend_from_slice(&ETHER_TYPE_IPV6.to_be_bytes());
        frame.extend_from_slice(&[0x60, 0, 0, 0]);
        frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        frame.extend_from_slice(&[next, 64]);
        frame.extend_from_slice(&[0x11; 16]);
        frame.extend_from_slice(&[0x22; 16]);
        frame.extend_from_slice(payload);
        frame
    }

    const UDP_1_2: [u8; 8] = [0, 1, 0, 2, 0, 8, 0, 0];

    #[rstest]
    #[case::empty(0)]
    #[case::short_of_ether_type(13)]
    fn short_frame_is_an_l2_error(#[case] len: usize) {
        assert_eq!(PacketMeta::parse(&udp4(&[])[..len]), Err(ParseError::TruncatedL2));
    }

    #[test]
    fn truncated_vlan_tag_is_an_l2_error() {
        let mut frame = [DST_MAC, SRC_MAC].concat();
        frame.extend_from_slice(&[0x81, 0x00, 0x00]);
        assert_eq!(PacketMeta::parse(&frame), Err(ParseError::TruncatedL2));
    }

    #[test]
    fn non_ip_frame_has_only_l2_fields() {
        let mut frame = [DST_MAC, SRC_MAC].concat();
        frame.extend_from_slice(&[0x08, 0x06]);
        frame.resize(60, 0);
        let meta = PacketMeta::parse(&frame).expect("l2 complete");
        assert_eq!((meta.ether_type, meta.l3_offset, meta.ip, meta.ip_proto), (0x0806, 14, None, None));
    }

    #[test]
    fn three_vlan_tags_stop_after_two() {
        let mut frame = [DST_MAC, SRC_MAC].concat();
        frame.extend_from_slice(&[0x88, 0xa8, 0x20, 0x05, 0x81, 0x00, 0x00, 0x07, 0x81, 0x00, 0, 9]);
        let meta = PacketMeta::parse(&frame).expect("l2 complete");
        assert_eq!((meta.vlan, meta.ether_type, meta.l3_offset), (Some(5), 0x8100, 22));
    }

    #[rstest]
    #[case::more_fragments(0x20, 0x00)]
    #[case::offset(0x00, 0x10)]
    fn ipv4_fragment_has_no_ports(#[case] flags_hi: u8, #[case] offset_lo: u8) {
        let mut frame = udp4(&[0; 8]);
        frame[20] = flags_hi;
        frame[21] = offset_lo;
        let meta = PacketMeta::parse(&frame).expect("l2 complete");
        assert!(meta.fragment);
        assert_eq!((meta.ip_proto, meta.ports, meta.l4_offset), (Some(17), None, 34));
    }

    #[test]
    fn ipv4_options_move_the_transport_header() {
        let base = udp4(&[]);
        let mut frame = base[..34].to_vec();
        frame[14] = 0x46;
        frame[17] += 4;
        frame.extend_from_slice(&[1, 1, 1, 0]);
        frame.extend_from_slice(&base[34..]);
        let meta = PacketMeta::parse(&frame).expect("l2 complete");
        assert_eq!((meta.l4_offset, meta.ports), (38, Some((1000, 2000))));
    }

    #[rstest]
    #[case::ihl_too_small(0x44)]
    #[case::wrong_version(0x65)]
    fn bad_ipv4_header_is_not_ip(#[case] version_ihl: u8) {
        let mut frame = udp4(&[]);
        frame[14] = version_ihl;
        assert_eq!(PacketMeta::parse(&frame).map(|m| m.ip), Ok(None));
    }

    #[test]
    fn ethernet_padding_is_not_read_as_ports() {
        let mut frame = udp4(&[]);
        frame[16..18].copy_from_slice(&20u16.to_be_bytes());
        let meta = PacketMeta::parse(&frame).expect("l2 complete");
        assert_eq!((meta.ip_proto, meta.ports), (Some(17), None));
    }

    #[test]
    fn truncated_tcp_header_leaves_ports_and_flags_empty() {
        let mut frame = udp4(&[0; 12]);
        frame[23] = PROTO_TCP;
        frame[47] = 0x02;
        let meta = PacketMeta::parse(&frame[..52]).expect("l2 complete");
        assert_eq!((meta.ip_proto, meta.ports, meta.tcp_flags), (Some(6), None, 0));
    }

    #[test]
    fn ipv6_extension_headers_are_skipped() {
        let mut payload = vec![IPV6_ROUTING, 0, 0, 0, 0, 0, 0, 0];
        payload.extend_from_slice(&[IPV6_DEST_OPTS, 1, 0, 0, 0, 0, 0, 0]);
        payload.extend_from_slice(&[0; 8]);
        payload.extend_from_slice(&[PROTO_UDP, 0, 0, 0, 0, 0, 0, 0]);
        payload.extend_from_slice(&UDP_1_2);
        let meta = PacketMeta::parse(&ipv6(IPV6_HOP_BY_HOP, &payload)).expect("l2 complete");
        assert_eq!((meta.ip_proto, meta.l4_offset, meta.ports), (Some(17), 54 + 32, Some((1, 2))));
        assert!(!meta.fragment);
    }

    #[test]
    fn ipv6_fragment_header_marks_a_fragment() {
        let mut payload = vec![PROTO_UDP, 0, 0, 0, 0, 0, 0, 1];
        payload.extend_from_slice(&UDP_1_2);
        let meta = PacketMeta::parse(&ipv6(IPV6_FRAGMENT, &payload)).expect("l2 complete");
        assert!(meta.fragment);
        assert_eq!((meta.ip_proto, meta.l4_offset, meta.ports), (Some(17), 62, None));
    }

    #[rstest]
    #[case::length_past_payload(IPV6_DEST_OPTS, &[PROTO_UDP, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])]
    #[case::header_cut(IPV6_HOP_BY_HOP, &[PROTO_UDP])]
    #[case::fragment_cut(IPV6_FRAGMENT, &[PROTO_UDP, 0, 0, 0])]
    fn truncated_ipv6_extension_leaves_protocol_empty(#[case] next: u8, #[case] payload: &[u8]) {
        let meta = PacketMeta::parse(&ipv6(next, payload)).expect("l2 complete");
        assert!(meta.ip.is_some());
        assert_eq!((meta.ip_proto, meta.ports), (None, None));
    }
}
