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
//! learns the peer however the NIC spread the reply. An ARP request is
//! answered by the stack that polled it, and the others get a copy turned
//! into a reply: they learn the asker (whose traffic RSS may send to any of
//! them) without each sending an answer of its own.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{PoisonError, RwLock};

use ethdev::packet::{IpAddrs, PacketMeta};

const ETHER_TYPE_ARP: u16 = 0x0806;
const ARP_REQUEST: u16 = 1;
/// ARP operation code of a reply.
pub(crate) const ARP_REPLY: u16 = 2;
const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_ICMPV6: u8 = 58;
const ICMP_ECHO_REPLY: u8 = 0;
const ICMPV6_ECHO_REPLY: u8 = 129;
const ICMPV6_NEIGHBOR_ADVERT: u8 = 136;
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
    /// An ARP request: handled here; the other stacks get it as a reply,
    /// so that they learn the sender without all answering it.
    EveryoneAsReply,
}

/// The group's rule tables, shared by all its stacks.
#[derive(Default)]
pub(crate) struct Tables {
    conns: RwLock<HashMap<ConnKey, usize>>,
    bound: RwLock<HashMap<Bound, usize>>,
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
            Some(ARP_REQUEST) => return Route::EveryoneAsReply,
            Some(_) => return Route::Everyone,
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
pub(crate) fn arp_op_offset(meta: &PacketMeta) -> usize {
    usize::from(meta.l3_offset) + 6
}

/// The ARP operation of an ARP request or reply, or `ARP_REPLY` for an IPv6
/// neighbour advertisement; `None` for any other frame.
fn neighbor_message(meta: &PacketMeta, frame: &[u8]) -> Option<u16> {
    if meta.ether_type == ETHER_TYPE_ARP {
        let at = arp_op_offset(meta);
        let op = frame.get(at..at + 2).map(|op| u16::from_be_bytes([op[0], op[1]]))?;
        return [ARP_REQUEST, ARP_REPLY].contains(&op).then_some(op);
    }
    let advert = meta.ip_proto == Some(PROTO_ICMPV6) && byte(frame, meta.l4_offset) == Some(ICMPV6_NEIGHBOR_ADVERT);
    advert.then_some(ARP_REPLY)
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
