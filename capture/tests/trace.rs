//! Golden traces: the normalised decode of a small conversation, stable
//! across ISNs, and markers for what cannot be decoded.

mod common;

use capture::{read, to_bytes, trace_lines, trace_text, Direction, Format, Record};
use common::{tcp, Flags, IP_A, IP_B, MAC_A, MAC_B};
use ethdev::Instant;
use etherparse::{PacketBuilder, TcpOptionElement};

fn at(micros: u64, direction: Direction, data: Vec<u8>) -> Record {
    Record::new("port0", Some(direction), Instant::from_nanos(1_000_000_000 + micros * 1000), data)
}

fn ack(n: u32) -> Flags {
    Flags { ack: Some(n), ..Flags::default() }
}

/// An ACK from B carrying a SACK block over A's sequence space.
fn sack(seq: u32, ack: u32, left: u32, right: u32) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_B, MAC_A)
        .ipv4(IP_B, IP_A, 64)
        .tcp(80, 49152, seq, 501)
        .ack(ack)
        .options(&[
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::SelectiveAcknowledgement((left, right), [None, None, None]),
        ])
        .expect("options fit")
        .write(&mut out, &[])
        .expect("frame");
    out
}

/// A client A fetching from server B, with the given initial sequence numbers.
fn conversation(isn_a: u32, isn_b: u32) -> Vec<Record> {
    use Direction::{Inbound as In, Outbound as Out};
    let (a, b) = (isn_a.wrapping_add(1), isn_b.wrapping_add(1));
    let request = b"GET / HTTP/1.0\r\n\r\n";
    let reply = [b'x'; 100];
    let syn = Flags { syn: true, ..Flags::default() };
    let syn_ack = Flags { syn: true, ack: Some(a), ..Flags::default() };
    let push = |n| Flags { psh: true, ack: Some(n), ..Flags::default() };
    let fin = |n| Flags { fin: true, ack: Some(n), ..Flags::default() };
    let r = request.len() as u32;
    vec![
        at(0, Out, common::arp_request()),
        at(10, Out, tcp(false, isn_a, syn, &[])),
        at(130, In, tcp(true, isn_b, syn_ack, &[])),
        at(140, Out, tcp(false, a, ack(b), &[])),
        at(150, Out, tcp(false, a, push(b), request)),
        at(270, In, tcp(true, b, ack(a.wrapping_add(r)), &[])),
        at(280, In, sack(b, a, a.wrapping_add(r), a.wrapping_add(r + 40))),
        at(300, In, tcp(true, b, push(a.wrapping_add(r)), &reply)),
        at(310, Out, tcp(false, a.wrapping_add(r), fin(b.wrapping_add(100)), &[])),
        at(430, In, tcp(true, b.wrapping_add(100), fin(a.wrapping_add(r + 1)), &[])),
        at(440, Out, tcp(false, a.wrapping_add(r + 1), ack(b.wrapping_add(101)), &[])),
        at(1_000_000, Out, tcp(false, a.wrapping_add(r + 1), Flags { rst: true, ..Flags::default() }, &[])),
    ]
}

/// Frames of other protocols, and frames that cannot be fully decoded.
fn assorted() -> Vec<Record> {
    let mut records = Vec::new();
    let mut push = |data: Vec<u8>| {
        let n = records.len() as u64;
        records.push(Record::bare(Instant::from_nanos(n * 1_000), data));
    };
    push(common::udp(b"query"));
    push(common::ping(3));
    let mut v6 = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6(
            [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            64,
        )
        .tcp(40000, 443, 0xdead_beef, 1000)
        .syn()
        .write(&mut v6, &[])
        .expect("v6");
    push(v6);
    let mut ping6 = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6(
            [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            64,
        )
        .icmpv6_echo_request(1, 2)
        .write(&mut ping6, b"hi")
        .expect("ping6");
    push(ping6);
    let mut tagged = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .single_vlan(etherparse::VlanId::try_new(100).expect("vlan id"))
        .ipv4(IP_A, IP_B, 64)
        .udp(1000, 2000)
        .write(&mut tagged, b"tagged")
        .expect("vlan");
    push(tagged);
    // LLDP: an ether type etherparse does not decode.
    let mut lldp = vec![0x01, 0x80, 0xc2, 0, 0, 0x0e];
    lldp.extend_from_slice(&MAC_A);
    lldp.extend_from_slice(&[0x88, 0xcc, 0x02, 0x07, 0x04]);
    push(lldp);
    // A runt shorter than an Ethernet header.
    push(vec![0x02; 10]);
    // Cut inside the IPv4 header.
    push(common::udp(b"cut")[..20].to_vec());
    // IPv4 header length field below the minimum.
    let mut bad_ihl = common::udp(b"bad");
    bad_ihl[14] = 0x42;
    push(bad_ihl);
    // IPv4 total length promising more than the frame holds.
    let mut short = tcp(false, 7, Flags { psh: true, ack: Some(1), ..Flags::default() }, &[b'y'; 40]);
    short.truncate(14 + 20 + 20 + 10);
    push(short);
    // TCP data offset pointing past the segment.
    let mut bad_tcp = tcp(false, 7, ack(1), &[]);
    bad_tcp[14 + 20 + 12] = 0xf0;
    push(bad_tcp);
    records
}

#[test]
fn conversation_trace() {
    insta::assert_snapshot!(trace_text(&conversation(0x1234_5678, 0xfedc_ba98)));
}

#[test]
fn trace_does_not_depend_on_isns() {
    let a = trace_text(&conversation(0x1234_5678, 0xfedc_ba98));
    let b = trace_text(&conversation(7, u32::MAX - 3));
    assert_eq!(a, b);
}

#[test]
fn assorted_trace() {
    insta::assert_snapshot!(trace_text(&assorted()));
}

#[test]
fn trace_survives_a_pcapng_round_trip() {
    let records = conversation(99, 1_000_000);
    let bytes = to_bytes(&records, Format::PcapNg).expect("write");
    assert_eq!(trace_lines(&read(&bytes).expect("read")), trace_lines(&records));
}

proptest::proptest! {
    #[test]
    fn any_bytes_give_one_line_and_no_panic(
        frames in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..120), 1..8),
        flips in proptest::collection::vec((proptest::num::usize::ANY, proptest::num::u8::ANY), 0..6),
    ) {
        // Random frames, plus a valid conversation with random bytes changed.
        let mut records: Vec<Record> = frames.into_iter().map(|f| Record::bare(Instant::ZERO, f)).collect();
        let mut valid = conversation(1, 2);
        for (at, value) in flips {
            let record = &mut valid[at % 12];
            let len = record.data.len();
            record.data[(at / 12) % len] = value;
        }
        records.extend(valid);
        let lines = trace_lines(&records);
        proptest::prop_assert_eq!(lines.len(), records.len());
        proptest::prop_assert!(lines.iter().all(|l| !l.contains('\n')));
    }
}
