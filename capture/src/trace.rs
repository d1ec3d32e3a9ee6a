//! Normalised, decoded traces for golden comparison.
//!
//! Each frame becomes one line of text: its number (from 1), its time
//! relative to the first frame (microseconds), the capture point and
//! direction when known, then the layers etherparse decodes, e.g.
//!
//! ```text
//! 0001 +0.000000 port0 out eth 02:00:00:00:00:01>02:00:00:00:00:02 ipv4 10.0.0.1>10.0.0.2 tcp 49152>80 [S] seq=0 ack=0 win=64240 len=0 <mss 1460,sackOK,ts,wscale 7>
//! ```
//!
//! Whatever varies between otherwise identical runs is left out or made
//! relative: TCP sequence and acknowledgment numbers count from each
//! direction's first sequence number (see `tcp_seq`), TCP timestamp values
//! and checksums are not shown. A frame that cannot be decoded completely
//! ends in a marker, `[truncated: ...]` when bytes are missing or
//! `[malformed: ...]` when a header is invalid, after the layers that could
//! be decoded.

use std::fmt::Write as _;
use std::net::IpAddr;

use ethdev::mac::MacAddr;
use ethdev::Instant;
use etherparse::err::packet::SliceError;
use etherparse::{
    ArpOperation, Icmpv4Slice, Icmpv4Type, Icmpv6Slice, Icmpv6Type, LaxLinkExtSlice, LaxNetSlice, LaxSlicedPacket,
    LinkSlice, TcpOptionElement, TcpSlice, TransportSlice,
};

use crate::record::Record;
use crate::tcp_seq::{Segment, TcpSeqs};

/// Turns frames into normalised trace lines, keeping the per-connection
/// state that relative TCP numbers need; see the module docs.
#[derive(Default)]
pub struct Trace {
    first: Option<Instant>,
    count: usize,
    tcp: TcpSeqs,
}

impl Trace {
    /// An empty trace: the next frame is number 1 and time zero.
    pub fn new() -> Trace {
        Trace::default()
    }

    /// The line of the next frame.
    pub fn line(&mut self, record: &Record) -> String {
        self.count += 1;
        let first = *self.first.get_or_insert(record.time);
        let (sign, delta) = if record.time >= first { ('+', record.time - first) } else { ('-', first - record.time) };
        let mut line = format!("{:04} {sign}{}.{:06}", self.count, delta.as_secs(), delta.subsec_micros());
        if let Some(interface) = &record.interface {
            let _ = write!(line, " {interface}");
        }
        if let Some(direction) = record.direction {
            let _ = write!(line, " {direction}");
        }
        self.decode(&mut line, &record.data);
        line
    }

    fn decode(&mut self, out: &mut String, frame: &[u8]) {
        let packet = match LaxSlicedPacket::from_ethernet(frame) {
            Ok(packet) => packet,
            Err(e) => {
                let _ = write!(out, " [truncated: ethernet: {e}]");
                return;
            }
        };
        if let Some(LinkSlice::Ethernet2(eth)) = &packet.link {
            let _ = write!(out, " eth {}>{}", MacAddr(eth.source()), MacAddr(eth.destination()));
        }
        for ext in &packet.link_exts {
            match ext {
                LaxLinkExtSlice::Vlan(vlan) => {
                    let _ = write!(out, " vlan {}", vlan.vlan_identifier().value());
                }
                LaxLinkExtSlice::Macsec(_) => out.push_str(" macsec"),
            }
        }
        let mut ips = None;
        match &packet.net {
            Some(LaxNetSlice::Ipv4(ip)) => {
                let h = ip.header();
                let _ = write!(out, " ipv4 {}>{}", h.source_addr(), h.destination_addr());
                if h.is_fragmenting_payload() {
                    let _ = write!(out, " frag id={} off={}", h.identification(), h.fragments_offset().byte_offset());
                    if h.more_fragments() {
                        out.push_str(" mf");
                    }
                }
                ips = Some((IpAddr::V4(h.source_addr()), IpAddr::V4(h.destination_addr())));
            }
            Some(LaxNetSlice::Ipv6(ip)) => {
                let h = ip.header();
                let _ = write!(out, " ipv6 {}>{}", h.source_addr(), h.destination_addr());
                ips = Some((IpAddr::V6(h.source_addr()), IpAddr::V6(h.destination_addr())));
            }
            Some(LaxNetSlice::Arp(arp)) => arp_line(out, arp),
            None => {
                if let Some(payload) = packet.ether_payload() {
                    if packet.stop_err.is_none() {
                        let _ = write!(out, " ethertype 0x{:04x} len={}", payload.ether_type.0, payload.payload.len());
                    }
                }
            }
        }
        let ip_payload = packet.net.as_ref().and_then(|n| n.ip_payload_ref());
        match (&packet.transport, ips) {
            (Some(TransportSlice::Tcp(tcp)), Some(ips)) => self.tcp_line(out, tcp, ips),
            (Some(TransportSlice::Udp(udp)), _) => {
                let _ =
                    write!(out, " udp {}>{} len={}", udp.source_port(), udp.destination_port(), udp.payload().len());
            }
            (Some(TransportSlice::Icmpv4(icmp)), _) => icmpv4_line(out, icmp),
            (Some(TransportSlice::Icmpv6(icmp)), _) => icmpv6_line(out, icmp),
            (Some(TransportSlice::Igmp(_)), _) => out.push_str(" igmp"),
            _ => {
                if let Some(p) = ip_payload.filter(|_| packet.stop_err.is_none()) {
                    let _ = write!(out, " proto {} len={}", p.ip_number.0, p.payload.len());
                }
            }
        }
        if let Some((err, layer)) = &packet.stop_err {
            let what = if matches!(err, SliceError::Len(_)) { "truncated" } else { "malformed" };
            let _ = write!(out, " [{what}: {layer}: {err}]");
        } else if ip_payload.is_some_and(|p| p.incomplete) {
            out.push_str(" [truncated: ip payload shorter than its header says]");
        }
    }

    fn tcp_line(&mut self, out: &mut String, tcp: &TcpSlice<'_>, (src_ip, dst_ip): (IpAddr, IpAddr)) {
        let src = (src_ip, tcp.source_port());
        let dst = (dst_ip, tcp.destination_port());
        let segment = Segment {
            src,
            dst,
            syn: tcp.syn(),
            ack_flag: tcp.ack(),
            seq: tcp.sequence_number(),
            ack: tcp.acknowledgment_number(),
        };
        let (seq, ack) = self.tcp.relative(&segment);
        let flags: String = [
            (tcp.fin(), 'F'),
            (tcp.syn(), 'S'),
            (tcp.rst(), 'R'),
            (tcp.psh(), 'P'),
            (tcp.ack(), '.'),
            (tcp.urg(), 'U'),
            (tcp.ece(), 'E'),
            (tcp.cwr(), 'W'),
        ]
        .iter()
        .filter(|(set, _)| *set)
        .map(|&(_, c)| c)
        .collect();
        let flags = if flags.is_empty() { "none".to_owned() } else { flags };
        let _ = write!(
            out,
            " tcp {}>{} [{flags}] seq={seq} ack={ack} win={} len={}",
            src.1,
            dst.1,
            tcp.window_size(),
            tcp.payload().len()
        );
        let mut options = Vec::new();
        for option in tcp.options_iterator() {
            match option {
                Ok(TcpOptionElement::Noop) => {}
                Ok(TcpOptionElement::MaximumSegmentSize(mss)) => options.push(format!("mss {mss}")),
                Ok(TcpOptionElement::WindowScale(ws)) => options.push(format!("wscale {ws}")),
                Ok(TcpOptionElement::SelectiveAcknowledgementPermitted) => options.push("sackOK".to_owned()),
                Ok(TcpOptionElement::SelectiveAcknowledgement(first, rest)) => {
                    let blocks: Vec<String> = std::iter::once(first)
                        .chain(rest.into_iter().flatten())
                        .map(|(l, r)| {
                            format!("{}-{}", self.tcp.relative_peer(src, dst, l), self.tcp.relative_peer(src, dst, r))
                        })
                        .collect();
                    options.push(format!("sack {}", blocks.join(" ")));
                }
                Ok(TcpOptionElement::Timestamp(_, _)) => options.push("ts".to_owned()),
                Err(e) => {
                    options.push(format!("malformed option: {e}"));
                    break;
                }
            }
        }
        if !options.is_empty() {
            let _ = write!(out, " <{}>", options.join(","));
        }
    }
}

fn arp_line(out: &mut String, arp: &etherparse::ArpPacketSlice<'_>) {
    let ipv4 = |bytes: &[u8]| match <[u8; 4]>::try_from(bytes) {
        Ok(b) => std::net::Ipv4Addr::from(b).to_string(),
        Err(_) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
    };
    let hw = |bytes: &[u8]| match <[u8; 6]>::try_from(bytes) {
        Ok(b) => MacAddr(b).to_string(),
        Err(_) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
    };
    let op = arp.operation();
    let (spa, tpa) = (ipv4(arp.sender_protocol_addr()), ipv4(arp.target_protocol_addr()));
    let _ = if op == ArpOperation::REQUEST {
        write!(out, " arp who-has {tpa} tell {spa}")
    } else if op == ArpOperation::REPLY {
        write!(out, " arp reply {spa} is-at {}", hw(arp.sender_hw_addr()))
    } else {
        write!(out, " arp op={} {spa}>{tpa}", op.0)
    };
}

fn icmpv4_line(out: &mut String, icmp: &Icmpv4Slice<'_>) {
    let payload = icmp.payload().len();
    let _ = match icmp.icmp_type() {
        Icmpv4Type::EchoRequest(e) => write!(out, " icmp echo-request id={} seq={} len={payload}", e.id, e.seq),
        Icmpv4Type::EchoReply(e) => write!(out, " icmp echo-reply id={} seq={} len={payload}", e.id, e.seq),
        _ => write!(out, " icmp type={} code={} len={payload}", icmp.type_u8(), icmp.code_u8()),
    };
}

fn icmpv6_line(out: &mut String, icmp: &Icmpv6Slice<'_>) {
    let payload = icmp.payload().len();
    let name = match icmp.icmp_type() {
        Icmpv6Type::EchoRequest(e) => {
            let _ = write!(out, " icmp6 echo-request id={} seq={} len={payload}", e.id, e.seq);
            return;
        }
        Icmpv6Type::EchoReply(e) => {
            let _ = write!(out, " icmp6 echo-reply id={} seq={} len={payload}", e.id, e.seq);
            return;
        }
        Icmpv6Type::NeighborSolicitation => "neighbor-solicitation",
        Icmpv6Type::NeighborAdvertisement(_) => "neighbor-advertisement",
        Icmpv6Type::RouterSolicitation => "router-solicitation",
        Icmpv6Type::RouterAdvertisement(_) => "router-advertisement",
        _ => {
            let _ = write!(out, " icmp6 type={} code={} len={payload}", icmp.type_u8(), icmp.code_u8());
            return;
        }
    };
    let _ = write!(out, " icmp6 {name} len={payload}");
}

/// The trace lines of `records`, in order.
pub fn trace_lines<'a>(records: impl IntoIterator<Item = &'a Record>) -> Vec<String> {
    let mut trace = Trace::new();
    records.into_iter().map(|r| trace.line(r)).collect()
}

/// The trace of `records` as text, one line per frame, each ending in a
/// newline: the form golden snapshots compare.
pub fn trace_text<'a>(records: impl IntoIterator<Item = &'a Record>) -> String {
    trace_lines(records).into_iter().fold(String::new(), |mut text, line| {
        text.push_str(&line);
        text.push('\n');
        text
    })
}
