//! Frames and records shared by the integration tests.
#![allow(dead_code)]

pub mod tshark;

use capture::{Direction, Record};
use ethdev::Instant;
use etherparse::{PacketBuilder, TcpOptionElement};

pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
pub const IP_A: [u8; 4] = [10, 0, 0, 1];
pub const IP_B: [u8; 4] = [10, 0, 0, 2];

/// TCP segment flags for [`tcp`].
#[derive(Clone, Copy, Default)]
pub struct Flags {
    pub syn: bool,
    pub ack: Option<u32>,
    pub psh: bool,
    pub fin: bool,
    pub rst: bool,
}

/// An IPv4 TCP frame from A to B (or B to A when `reverse`).
pub fn tcp(reverse: bool, seq: u32, flags: Flags, payload: &[u8]) -> Vec<u8> {
    let (smac, dmac, sip, dip, sport, dport) =
        if reverse { (MAC_B, MAC_A, IP_B, IP_A, 80, 49152) } else { (MAC_A, MAC_B, IP_A, IP_B, 49152, 80) };
    let mut b = PacketBuilder::ethernet2(smac, dmac).ipv4(sip, dip, 64).tcp(sport, dport, seq, 64240);
    if flags.syn {
        b = b.syn();
        b = b
            .options(&[
                TcpOptionElement::MaximumSegmentSize(1460),
                TcpOptionElement::SelectiveAcknowledgementPermitted,
                TcpOptionElement::Timestamp(seq ^ 0x5555, 0),
                TcpOptionElement::WindowScale(7),
            ])
            .expect("options fit");
    }
    if let Some(ack) = flags.ack {
        b = b.ack(ack);
    }
    if flags.psh {
        b = b.psh();
    }
    if flags.fin {
        b = b.fin();
    }
    if flags.rst {
        b = b.rst();
    }
    let mut out = Vec::new();
    b.write(&mut out, payload).expect("frame builds");
    out
}

/// A UDP frame from A to B.
pub fn udp(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B).ipv4(IP_A, IP_B, 64).udp(5353, 53).write(&mut out, payload).expect("udp");
    out
}

/// An ICMP echo request from A to B.
pub fn ping(seq: u16) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(IP_A, IP_B, 64)
        .icmpv4_echo_request(7, seq)
        .write(&mut out, b"abcdefgh")
        .expect("icmp");
    out
}

/// An ARP request from A asking for B.
pub fn arp_request() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&IP_A);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&IP_B);
    f
}

/// A mix of records over several capture points, with nanosecond times.
pub fn sample_records() -> Vec<Record> {
    let t0 = 1_700_000_000_123_456_789u64;
    vec![
        Record::new("port0", Some(Direction::Outbound), Instant::from_nanos(t0), arp_request()),
        Record::new("port1/rxq0", Some(Direction::Inbound), Instant::from_nanos(t0 + 1), ping(1)),
        Record::new("port1/txq3", Some(Direction::Outbound), Instant::from_nanos(t0 + 120_001), udp(b"hello")),
        Record::new("port0", None, Instant::from_nanos(t0 + 2_000_000_000), tcp(false, 1, Flags::default(), b"x")),
        Record::bare(Instant::from_nanos(t0 + 2_000_000_007), vec![0xde, 0xad, 0xbe]),
        Record::new("port1/rxq0", Some(Direction::Inbound), Instant::from_nanos(t0 + 3_000_000_000), ping(2)),
    ]
}
