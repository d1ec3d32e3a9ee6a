//! The two rules that steer TCP to a queue, as gazelle's flow-director
//! mode makes them: a connection's, and a listener's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::item::{FlowItem, Ipv4Item, Ipv6Item, ItemSpec, TcpItem};

/// TCP's SYN and ACK flags.
const TCP_SYN: u8 = 0x02;
const TCP_ACK: u8 = 0x10;

/// The pattern of a rule steering TCP to `dst`: with `src`, one
/// connection's frames (ETH any / IPv4 or IPv6 with both addresses / TCP
/// with both ports, under default masks); without, a listener's new
/// connections (ETH any / the destination address only / TCP with the
/// destination port and, of SYN and ACK, only SYN set). `None` if `src`
/// and `dst` are of two families.
pub fn tcp_steering(src: Option<SocketAddr>, dst: SocketAddr) -> Option<[FlowItem; 3]> {
    let listener = src.is_none();
    let src = src.unwrap_or_else(|| SocketAddr::new(unspecified(dst), 0));
    let ip = match (src, dst) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            let spec = ItemSpec::new(Ipv4Item { src: s.ip().octets(), dst: d.ip().octets(), proto: 0 });
            let dst_only = Ipv4Item { src: [0; 4], ..Ipv4Item::DEFAULT_MASK };
            FlowItem::Ipv4(if listener { spec.with_mask(dst_only) } else { spec })
        }
        (SocketAddr::V6(s), SocketAddr::V6(d)) => {
            let spec = ItemSpec::new(Ipv6Item { src: s.ip().octets(), dst: d.ip().octets(), proto: 0 });
            let dst_only = Ipv6Item { src: [0; 16], ..Ipv6Item::DEFAULT_MASK };
            FlowItem::Ipv6(if listener { spec.with_mask(dst_only) } else { spec })
        }
        _ => return None,
    };
    let tcp = match listener {
        false => ItemSpec::new(TcpItem { src_port: src.port(), dst_port: dst.port(), flags: 0 }),
        true => ItemSpec::new(TcpItem { src_port: 0, dst_port: dst.port(), flags: TCP_SYN }).with_mask(TcpItem {
            src_port: 0,
            dst_port: 0xffff,
            flags: TCP_SYN | TCP_ACK,
        }),
    };
    Some([FlowItem::Eth(ItemSpec::ANY), ip, FlowItem::Tcp(tcp)])
}

/// The unspecified address of `addr`'s family.
fn unspecified(addr: SocketAddr) -> IpAddr {
    match addr {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    }
}
