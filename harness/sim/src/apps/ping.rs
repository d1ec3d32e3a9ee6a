//! ICMP echo (ping, and ping6 for an IPv6 target): echo requests built with
//! etherparse, replies checked for identifier, sequence number and payload.
//! The peer's stack answers requests by itself.

use std::io;
use std::net::{IpAddr, SocketAddr};

use etherparse::{IcmpEchoHeader, Icmpv4Header, Icmpv4Slice, Icmpv4Type, Icmpv6Header, Icmpv6Slice, Icmpv6Type};
use stack::{Api, SockType};

/// Payload bytes per request.
const PAYLOAD: usize = 56;

fn payload(seq: u16) -> Vec<u8> {
    (0..PAYLOAD).map(|i| (i as u16 ^ seq) as u8).collect()
}

/// An echo request of the target's family. The ICMPv6 checksum covers the
/// source address, which the stack chooses, so the stack fills it in.
fn request(target: IpAddr, ident: u16, seq: u16) -> Vec<u8> {
    let echo = IcmpEchoHeader { id: ident, seq };
    let payload = payload(seq);
    let mut out = match target {
        IpAddr::V4(_) => Icmpv4Header::with_checksum(Icmpv4Type::EchoRequest(echo), &payload).to_bytes().to_vec(),
        IpAddr::V6(_) => Icmpv6Header::new(Icmpv6Type::EchoRequest(echo)).to_bytes().to_vec(),
    };
    out.extend_from_slice(&payload);
    out
}

/// The echo header and payload of a reply of the target's family.
fn echo_reply(target: IpAddr, data: &[u8]) -> Result<(IcmpEchoHeader, &[u8]), String> {
    let unreadable = |e| format!("unreadable reply: {e}");
    match target {
        IpAddr::V4(_) => {
            let icmp = Icmpv4Slice::from_slice(data).map_err(unreadable)?;
            match icmp.icmp_type() {
                Icmpv4Type::EchoReply(h) => Ok((h, icmp.payload())),
                other => Err(format!("expected an echo reply, got {other:?}")),
            }
        }
        IpAddr::V6(_) => {
            let icmp = Icmpv6Slice::from_slice(data).map_err(unreadable)?;
            match icmp.icmp_type() {
                Icmpv6Type::EchoReply(h) => Ok((h, icmp.payload())),
                other => Err(format!("expected an echo reply, got {other:?}")),
            }
        }
    }
}

fn check_reply(target: IpAddr, data: &[u8], ident: u16, seq: u16) -> Result<(), String> {
    let (h, got) = echo_reply(target, data)?;
    if h.id == ident && h.seq == seq && got == payload(seq) {
        Ok(())
    } else {
        Err(format!("expected echo reply {ident}/{seq}, got {}/{} with {} payload bytes", h.id, h.seq, got.len()))
    }
}

/// Pings `target` `count` times with identifier `ident`; returns the replies received.
pub async fn ping(api: Api, target: IpAddr, ident: u16, count: u16) -> io::Result<u16> {
    let fd = api.socket(SockType::Icmp)?;
    api.bind(fd, stack::api::any_addr(target, ident)).await?;
    let mut replies = 0;
    for seq in 0..count {
        api.sendto(fd, &request(target, ident, seq), SocketAddr::new(target, 0)).await?;
        let (reply, _) = api.recvfrom(fd, 2048).await?;
        check_reply(target, &reply, ident, seq).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        replies += 1;
    }
    api.close(fd).await?;
    Ok(replies)
}
