//! Which stack of a group owns a received frame.
//!
//! The NIC spreads frames over queues by RSS or flow rules, and each stack
//! polls one queue, but the stack a frame lands on is not always the one
//! that owns its socket. This module holds the group's concurrent rule
//! tables (gazelle's `rule_add` / `rule_delete`): TCP connections by
//! (peer, local port), listening TCP ports, bound UDP ports and ICMP echo
//! identifiers, each mapped to the owning stack. [`Tables::route`] reads them
//! for one frame; the stack that polled the frame then hands it over through
//! the owner's soft ring when the owner is someone else.
//!
//! Neighbour discovery is the one broadcast: ARP replies and IPv6 neighbour
//! advertisements go to every stack, so that each stack's neighbour cache
//! learns the peer however the NIC spread the reply. An ARP request or an
//! IPv6 neighbour solicitation is answered by the stack that polled it, and
//! the others get a copy turned into a reply ([`into_reply`]): they learn
//! the asker (whose traffic RSS may send to any of them) without each
//! sending an answer of its own. A solicitation becomes an advertisement
//! from the asker carrying the asker's link-layer address, which is what
//! smoltcp files in its neighbour cache.

use rustc_hash::FxHashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{PoisonError, RwLock};

use ethdev::packet::{IpAddrs, PacketMeta};
use ethdev::proto::{ETHER_TYPE_ARP, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};

const ARP_REQUEST: u16 = 1;
const ARP_REPLY: u16 = 2;
const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;
const ICMPV6_ECHO_REPLY: u8 = 129;
const ICMPV6_NEIGHBOR_SOLICIT: u8 = 135;
const ICMPV6_NEIGHBOR_ADVERT: u8 = 136;
/// NDP option types: source and target link-layer address.
const NDP_SOURCE_LLADDR: u8 = 1;
const NDP_TARGET_LLADDR: u8 = 2;
/// Bytes of an NDP solicitation or advertisement before its options.
const NDP_HEADER: usize = 24;
const TCP_SYN: u8 = 0x02;
const TCP_ACK: u8 = 0x10;

/// A bound endpoint kind in the listener table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Bound {
    /// A listening TCP port.
    TcpListen(u16),
    /// A bound UDP port.
    Udp(u16),
    /// An ICMP echo identifier.
    IcmpIdent(u16),
}

/// A TCP connection as the receiving host sees it: the peer and our port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ConnKey {
    /// The peer's address and port.
    pub(crate) peer: SocketAddr,
    /// Our port.
    pub(crate) local_port: u16,
}

/// Where a received frame goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// To the stack that polled it.
    Here,
    /// To stack `n` (which may be the one that polled it).
    Owner(usize),
    /// To every stack of the group.
    Everyone,
    /// An ARP request or neighbour solicitation: handled here; the other
    /// stacks get it as a reply ([`into_reply`]), so that they learn the
    /// sender without all answering it.
    EveryoneAsReply,
}

/// The group's rule tables, shared by all its stacks.
#[derive(Default)]
pub(crate) struct Tables {
    conns: RwLock<FxHashMap<ConnKey, usize>>,
    bound: RwLock<FxHashMap<Bound, usize>>,
}

impl Tables {
    /// Records that stack `owner` serves connection `key` (`rule_add`).
    pub(crate) fn add_conn(&self, key: ConnKey, owner: usize) {
        self.conns.write().unwrap_or_else(PoisonError::into_inner).insert(key, owner);
    }

    /// Forgets connection `key` (`rule_delete`).
    pub(crate) fn remove_conn(&self, key: &ConnKey) {
        self.conns.write().unwrap_or_else(PoisonError::into_inner).remove(key);
    }

    /// Records that stack `owner` serves `what`.
    pub(crate) fn add_bound(&self, what: Bound, owner: usize) {
        self.bound.write().unwrap_or_else(PoisonError::into_inner).insert(what, owner);
    }

    /// Forgets `what` if stack `owner` holds it.
    pub(crate) fn remove_bound(&self, what: Bound, owner: usize) {
        let mut bound = self.bound.write().unwrap_or_else(PoisonError::into_inner);
        if bound.get(&what) == Some(&owner) {
            bound.remove(&what);
        }
    }

    /// Number of connection rules.
    pub(crate) fn conn_count(&self) -> usize {
        self.conns.read().unwrap_or_else(PoisonError::into_inner).len()
    }

    fn conn_owner(&self, key: &ConnKey) -> Option<usize> {
        self.conns.read().unwrap_or_else(PoisonError::into_inner).get(key).copied()
    }

    fn bound_owner(&self, what: Bound) -> Option<usize> {
        self.bound.read().unwrap_or_else(PoisonError::into_inner).get(&what).copied()
    }

    /// Routes one frame. TCP frames are looked up only when `steer_tcp`
    /// (software forwarding and flow-director modes); in RSS modes the
    /// queue a TCP frame landed on is its owner by construction.
    pub(crate) fn route(&self, steer_tcp: bool, meta: &PacketMeta, frame: &[u8]) -> Route {
        match neighbor_message(meta, frame) {
            Some(Neighbor::Request) => return Route::EveryoneAsReply,
            Some(Neighbor::Reply) => return Route::Everyone,
            None => {}
        }
        let owner = match (meta.ip_proto, meta.ports) {
            (Some(PROTO_TCP), Some((sport, dport))) if steer_tcp => self.tcp_owner(meta, sport, dport),
            (Some(PROTO_UDP), Some((_, dport))) => self.bound_owner(Bound::Udp(dport)),
            (Some(PROTO_ICMP | PROTO_ICMPV6), _) => {
                echo_reply_ident(meta, frame).and_then(|id| self.bound_owner(Bound::IcmpIdent(id)))
            }
            _ => None,
        };
        owner.map_or(Route::Here, Route::Owner)
    }

    fn tcp_owner(&self, meta: &PacketMeta, sport: u16, dport: u16) -> Option<usize> {
        let peer = SocketAddr::new(src_ip(meta)?, sport);
        let conn = self.conn_owner(&ConnKey { peer, local_port: dport });
        conn.or_else(|| if opens_connection(meta) { self.bound_owner(Bound::TcpListen(dport)) } else { None })
    }
}

/// Whether `frame` is an ARP message or an IPv6 neighbour solicitation or
/// advertisement.
pub(crate) fn is_neighbor_message(meta: &PacketMeta, frame: &[u8]) -> bool {
    neighbor_message(meta, frame).is_some()
}

/// A TCP SYN without ACK: the first segment of a connection.
pub(crate) fn opens_connection(meta: &PacketMeta) -> bool {
    meta.ip_proto == Some(PROTO_TCP) && meta.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN
}

/// The source address of an IP frame.
pub(crate) fn src_ip(meta: &PacketMeta) -> Option<IpAddr> {
    match meta.ip? {
        IpAddrs::V4 { src, .. } => Some(IpAddr::from(src)),
        IpAddrs::V6 { src, .. } => Some(IpAddr::from(src)),
    }
}

fn byte(frame: &[u8], at: u16) -> Option<u8> {
    frame.get(usize::from(at)).copied()
}

/// Byte offset of the ARP operation code in `frame`.
fn arp_op_offset(meta: &PacketMeta) -> usize {
    usize::from(meta.l3_offset) + 6
}

/// The two kinds of neighbour message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Neighbor {
    /// An ARP request or IPv6 neighbour solicitation.
    Request,
    /// An ARP reply or IPv6 neighbour advertisement.
    Reply,
}

/// Which neighbour message `frame` is, if any.
fn neighbor_message(meta: &PacketMeta, frame: &[u8]) -> Option<Neighbor> {
    if meta.ether_type == ETHER_TYPE_ARP {
        let at = arp_op_offset(meta);
        return match frame.get(at..at + 2).map(|op| u16::from_be_bytes([op[0], op[1]]))? {
            ARP_REQUEST => Some(Neighbor::Request),
            ARP_REPLY => Some(Neighbor::Reply),
            _ => None,
        };
    }
    if meta.ip_proto != Some(PROTO_ICMPV6) {
        return None;
    }
    match byte(frame, meta.l4_offset)? {
        ICMPV6_NEIGHBOR_SOLICIT => Some(Neighbor::Request),
        ICMPV6_NEIGHBOR_ADVERT => Some(Neighbor::Reply),
        _ => None,
    }
}

/// Turns a copy of a neighbour request into the reply that teaches its
/// receiver the asker: an ARP request's operation becomes "reply"; a
/// neighbour solicitation becomes an unsolicited advertisement (no flags)
/// whose source link-layer address option becomes a target link-layer
/// address option, with the ICMPv6 checksum updated for the two changed
/// words. Anything else, or a truncated frame, is left as it is.
pub(crate) fn into_reply(frame: &mut [u8], meta: &PacketMeta) {
    match neighbor_message(meta, frame) {
        Some(Neighbor::Request) if meta.ether_type == ETHER_TYPE_ARP => {
            let at = arp_op_offset(meta);
            frame[at..at + 2].copy_from_slice(&ARP_REPLY.to_be_bytes());
        }
        Some(Neighbor::Request) => solicitation_into_advert(frame, usize::from(meta.l4_offset)),
        _ => {}
    }
}

fn solicitation_into_advert(frame: &mut [u8], icmp: usize) {
    let mut option = icmp + NDP_HEADER;
    while let Some(&[kind, len]) = frame.get(option..option + 2) {
        if len == 0 {
            return; // malformed: an option is at least 8 bytes
        }
        if kind == NDP_SOURCE_LLADDR {
            replace_icmp_word(frame, icmp, option, [NDP_TARGET_LLADDR, len]);
            replace_icmp_word(frame, icmp, icmp, [ICMPV6_NEIGHBOR_ADVERT, 0]);
            return;
        }
        option += usize::from(len) * 8;
    }
}

/// Writes `word` at `at` in the ICMP message starting at `icmp` and updates
/// its checksum incrementally (RFC 1624, eqn. 3).
fn replace_icmp_word(frame: &mut [u8], icmp: usize, at: usize, word: [u8; 2]) {
    let read = |f: &[u8], i: usize| u16::from_be_bytes([f[i], f[i + 1]]);
    let (old, checksum) = (read(frame, at), read(frame, icmp + 2));
    let mut sum = u32::from(!checksum) + u32::from(!old) + u32::from(u16::from_be_bytes(word));
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    frame[at..at + 2].copy_from_slice(&word);
    frame[icmp + 2..icmp + 4].copy_from_slice(&(!(sum as u16)).to_be_bytes());
}

/// Why a stack discards a frame before smoltcp sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Discard {
    /// An IP fragment: the stacks do not reassemble (smoltcp is built
    /// without fragmentation), so it is counted rather than lost silently.
    Fragment,
    /// An ICMP echo request to a broadcast or multicast IPv4 address,
    /// ignored as Linux does by default (`icmp_echo_ignore_broadcasts`).
    BroadcastEcho,
}

/// Whether a stack with IPv4 address `own` (and prefix length) must
/// discard the frame `meta` describes, and why.
pub(crate) fn discard(meta: &PacketMeta, frame: &[u8], own: Option<(Ipv4Addr, u8)>) -> Option<Discard> {
    if meta.fragment {
        return Some(Discard::Fragment);
    }
    let (Some(IpAddrs::V4 { dst, .. }), Some(PROTO_ICMP)) = (meta.ip, meta.ip_proto) else { return None };
    let dst = Ipv4Addr::from(dst);
    let subnet_broadcast = own.is_some_and(|(ip, len)| {
        let host_mask = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
        len < 31 && u32::from(dst) == u32::from(ip) | host_mask
    });
    let group = dst.is_broadcast() || dst.is_multicast() || subnet_broadcast;
    (group && byte(frame, meta.l4_offset)? == ICMP_ECHO_REQUEST).then_some(Discard::BroadcastEcho)
}

/// The identifier of an ICMP or ICMPv6 echo reply.
fn echo_reply_ident(meta: &PacketMeta, frame: &[u8]) -> Option<u16> {
    let reply = match meta.ip_proto? {
        PROTO_ICMP => ICMP_ECHO_REPLY,
        _ => ICMPV6_ECHO_REPLY,
    };
    if meta.fragment || byte(frame, meta.l4_offset)? != reply {
        return None;
    }
    let at = usize::from(meta.l4_offset) + 4;
    frame.get(at..at + 2).map(|id| u16::from_be_bytes([id[0], id[1]]))
}

#[cfg(test)]
mod tests {
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv6Packet,
        Icmpv6Repr, IpProtocol, Ipv4Address, Ipv6Address, Ipv6Packet, Ipv6Repr, NdiscNeighborFlags, NdiscRepr,
        RawHardwareAddress,
    };

    use super::*;

    const ASKER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 2]);
    const ASKER: Ipv6Address = Ipv6Address::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
    const TARGET: Ipv6Address = Ipv6Address::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
    /// `TARGET`'s solicited-node multicast address.
    const SOLICITED: Ipv6Address = Ipv6Address::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 1);

    fn ethernet(ethertype: EthernetProtocol, dst: EthernetAddress, payload: usize) -> Vec<u8> {
        let mut frame = vec![0; 14 + payload];
        EthernetRepr { src_addr: ASKER_MAC, dst_addr: dst, ethertype }
            .emit(&mut EthernetFrame::new_unchecked(&mut frame));
        frame
    }

    /// A neighbour solicitation from `ASKER` for `TARGET`, as smoltcp sends it.
    fn solicitation() -> Vec<u8> {
        let ns = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
            target_addr: TARGET,
            lladdr: Some(RawHardwareAddress::from(ASKER_MAC)),
        });
        let ip = Ipv6Repr {
            src_addr: ASKER,
            dst_addr: SOLICITED,
            next_header: IpProtocol::Icmpv6,
            payload_len: ns.buffer_len(),
            hop_limit: 255,
        };
        let mut frame =
            ethernet(EthernetProtocol::Ipv6, EthernetAddress([0x33, 0x33, 0xff, 0, 0, 1]), 40 + ns.buffer_len());
        ip.emit(&mut Ipv6Packet::new_unchecked(&mut frame[14..]));
        let caps = ChecksumCapabilities::default();
        ns.emit(&ASKER, &SOLICITED, &mut Icmpv6Packet::new_unchecked(&mut frame[54..]), &caps);
        frame
    }

    #[test]
    fn a_solicitation_goes_to_everyone_and_its_copies_become_adverts_from_the_asker() {
        let mut frame = solicitation();
        let meta = PacketMeta::parse(&frame).unwrap();
        assert_eq!(Tables::default().route(false, &meta, &frame), Route::EveryoneAsReply);
        into_reply(&mut frame, &meta);
        let icmp = Icmpv6Packet::new_checked(&frame[54..]).unwrap();
        assert!(icmp.verify_checksum(&ASKER, &SOLICITED), "checksum not updated");
        let repr = Icmpv6Repr::parse(&ASKER, &SOLICITED, &icmp, &ChecksumCapabilities::default()).unwrap();
        let expected = NdiscRepr::NeighborAdvert {
            flags: NdiscNeighborFlags::empty(),
            target_addr: TARGET,
            lladdr: Some(RawHardwareAddress::from(ASKER_MAC)),
        };
        assert_eq!(repr, Icmpv6Repr::Ndisc(expected));
        let meta = PacketMeta::parse(&frame).unwrap();
        assert_eq!(Tables::default().route(false, &meta, &frame), Route::Everyone, "an advert goes to every stack");
    }

    #[test]
    fn a_solicitation_without_a_source_address_option_is_left_alone() {
        let mut frame = solicitation();
        let options = 54 + NDP_HEADER;
        frame.truncate(options);
        let meta = PacketMeta::parse(&frame).unwrap();
        let before = frame.clone();
        into_reply(&mut frame, &meta);
        assert_eq!(frame, before);
    }

    #[test]
    fn an_arp_request_copy_becomes_a_reply() {
        let arp = |operation| ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr: ASKER_MAC,
            source_protocol_addr: Ipv4Address::new(10, 0, 0, 2),
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: Ipv4Address::new(10, 0, 0, 1),
        };
        let request = arp(ArpOperation::Request);
        let mut frame = ethernet(EthernetProtocol::Arp, EthernetAddress::BROADCAST, request.buffer_len());
        request.emit(&mut ArpPacket::new_unchecked(&mut frame[14..]));
        let meta = PacketMeta::parse(&frame).unwrap();
        assert_eq!(Tables::default().route(false, &meta, &frame), Route::EveryoneAsReply);
        into_reply(&mut frame, &meta);
        let reply = ArpRepr::parse(&ArpPacket::new_checked(&frame[14..]).unwrap()).unwrap();
        assert_eq!(reply, arp(ArpOperation::Reply));
    }
}
