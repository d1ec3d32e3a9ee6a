//! Protocol numbers and header sizes, one set for the workspace.
//!
//! Parsers, classifiers, offloads and stacks all read raw frames at fixed
//! offsets; they take the numbers they compare against from here rather
//! than each defining its own.

/// Bytes of an untagged Ethernet header.
pub const ETHERNET_HEADER: usize = 14;
/// Bytes of one 802.1Q tag.
pub const VLAN_TAG: usize = 4;

/// EtherType of IPv4.
pub const ETHER_TYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHER_TYPE_ARP: u16 = 0x0806;
/// EtherType of an 802.1Q VLAN tag.
pub const ETHER_TYPE_VLAN: u16 = 0x8100;
/// EtherType of IPv6.
pub const ETHER_TYPE_IPV6: u16 = 0x86dd;
/// EtherType of an 802.1ad (QinQ) outer tag.
pub const ETHER_TYPE_QINQ: u16 = 0x88a8;

/// IP protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;
/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;
/// IP protocol number of ICMPv6.
pub const PROTO_ICMPV6: u8 = 58;

/// TCP flag FIN.
pub const TCP_FIN: u8 = 0x01;
/// TCP flag PSH.
pub const TCP_PSH: u8 = 0x08;
/// TCP flag CWR.
pub const TCP_CWR: u8 = 0x80;
