//! ICMP echo (ping): echo requests built with etherparse, replies checked
//! for identifier, sequence number and payload. The peer's stack answers
//! requests by itself.

use std::io;
use std::net::{IpAddr, SocketAddr};

use etherparse::{IcmpEchoHeader, Icmpv4Header, Icmpv4Slice, Icmpv4Type};
use stack::{Api, SockType};

/// Payload bytes per request.
const PAYLOAD: usize = 56;

fn request(ident: u16, seq: u16) -> Vec<u8> {
    let payload: Vec<u8> = (0..PAYLOAD).map(|i| (i as u16 ^ seq) as u8).collect();
    let header = Icmpv4Header::with_checksum(Icmpv4Type::EchoRequest(IcmpEchoHeader { id: ident, seq }), &payload);
    let mut out = header.to_bytes().to_vec();
    out.extend_from_slice(&payload);
    out
}

fn check_reply(data: &[u8], ident: u16, seq: u16) -> Result<(), String> {
    let icmp = Icmpv4Slice::from_slice(data).map_err(|e| format!("unreadable reply: {e}"))?;
    match icmp.icmp_type() {
        Icmpv4Type::EchoReply(h) if h.id == ident && h.seq == seq && icmp.payload() == &request(ident, seq)[8..] => {
            Ok(())
        }
        other => Err(format!("expected echo reply {ident}/{seq}, got {other:?}")),
    }
}

/// Pings `target` `count` times with identifier `ident`; returns the replies received.
pub async fn ping(api: Api, target: IpAddr, ident: u16, count: u16) -> io::Result<u16> {
    let fd = api.socket(SockType::Icmp)?;
    api.bind(fd, stack::api::any_addr(target, ident)).await?;
    for seq in 0..count {
        api.sendto(fd, &request(ident, seq), SocketAddr::new(target, 0)).await?;
        let (reply, _) = api.recvfrom(fd, 2048).await?;
        check_reply(&reply, ident, seq).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    }
    api.close(fd).await?;
    Ok(count)
}
