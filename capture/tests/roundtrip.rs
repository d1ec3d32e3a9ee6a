//! Writing then reading captures gives back the same records, and writing
//! is deterministic.

mod common;

use std::borrow::Cow;
use std::time::Duration;

use capture::{read, to_bytes, CapturePoint, Direction, Format, Reader, Record, Recorder, WriteError};
use ethdev::Instant;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::{DataLink, Endianness};

#[test]
fn pcapng_round_trip_keeps_names_directions_and_nanoseconds() {
    let records = common::sample_records();
    let bytes = to_bytes(&records, Format::PcapNg).expect("write");
    let reader = Reader::new(&bytes).expect("header");
    assert_eq!(reader.format(), Format::PcapNg);
    assert_eq!(read(&bytes).expect("read"), records);
}

#[test]
fn pcap_round_trip_keeps_times_and_bytes_but_not_names() {
    let records = common::sample_records();
    let bytes = to_bytes(&records, Format::Pcap).expect("write");
    assert_eq!(Reader::new(&bytes).expect("header").format(), Format::Pcap);
    let expected: Vec<Record> = records.iter().map(|r| Record::bare(r.time, r.data.clone())).collect();
    assert_eq!(read(&bytes).expect("read"), expected);
    // Nanosecond magic, little-endian.
    assert_eq!(bytes.get(..4), Some(&[0x4d, 0x3c, 0xb2, 0xa1][..]));
}

#[test]
fn writing_is_deterministic() {
    for format in [Format::PcapNg, Format::Pcap] {
        let a = to_bytes(&common::sample_records(), format).expect("write a");
        let b = to_bytes(&common::sample_records(), format).expect("write b");
        assert_eq!(a, b, "{format:?}");
    }
}

#[test]
fn section_header_is_fixed_little_endian_without_options() {
    let bytes = Recorder::pcapng(Vec::new()).and_then(Recorder::finish).expect("empty capture");
    let expected: [u8; 28] = [
        0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, // type, length
        0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, // byte-order magic, version 1.0
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // section length unknown
        28, 0, 0, 0,
    ];
    assert_eq!(bytes, expected);
    assert_eq!(read(&bytes).expect("read"), []);
}

#[test]
fn interfaces_carry_name_and_nanosecond_tsresol() {
    let mut rec = Recorder::pcapng(Vec::new()).expect("recorder");
    let id = rec.add_interface(CapturePoint::RxQueue("port2".into(), 1)).expect("add");
    let bytes = rec.finish().expect("finish");
    assert_eq!(id.index(), 0);
    let idb = bytes.get(28..).expect("idb");
    // type 1, length 48: linktype 1, snaplen 0, if_name "port2/rxq1" (10 bytes + 2 pad),
    // if_tsresol 9 (1 byte + 3 pad), end of options.
    let expected: Vec<u8> = [
        &[1, 0, 0, 0, 48, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0][..],
        &[2, 0, 10, 0],
        b"port2/rxq1\0\0",
        &[9, 0, 1, 0, 9, 0, 0, 0],
        &[0, 0, 0, 0],
        &[48, 0, 0, 0],
    ]
    .concat();
    assert_eq!(idb, expected);
}

#[test]
fn packet_block_holds_nanoseconds_and_direction_flags() {
    let mut rec = Recorder::pcapng(Vec::new()).expect("recorder");
    let id = rec.add_interface("port0").expect("add");
    let before = rec.finish().expect("finish").len();
    let mut rec = Recorder::pcapng(Vec::new()).expect("recorder");
    rec.add_interface("port0").expect("add");
    let t = 0x0000_0001_0000_0002u64;
    rec.write(id, Some(Direction::Inbound), Instant::from_nanos(t), &[0xaa; 4]).expect("write");
    let bytes = rec.finish().expect("finish");
    let epb = bytes.get(before..).expect("epb");
    let expected: Vec<u8> = [
        &[6, 0, 0, 0, 48, 0, 0, 0][..],
        &[0, 0, 0, 0],             // interface 0
        &[1, 0, 0, 0, 2, 0, 0, 0], // timestamp high, low (nanoseconds)
        &[4, 0, 0, 0, 4, 0, 0, 0], // captured, original length
        &[0xaa; 4],
        &[2, 0, 4, 0, 1, 0, 0, 0], // epb_flags: inbound
        &[0, 0, 0, 0],
        &[48, 0, 0, 0],
    ]
    .concat();
    assert_eq!(epb, expected);
}

#[test]
fn adding_a_name_twice_gives_the_same_id() {
    let mut rec = Recorder::pcapng(Vec::new()).expect("recorder");
    let a = rec.add_interface("port0").expect("a");
    let b = rec.add_interface("port1/txq0").expect("b");
    assert_eq!(rec.add_interface("port0").expect("again"), a);
    assert_ne!(a, b);
    assert_eq!(rec.interface("port1/txq0"), Some(b));
    assert_eq!(rec.interface_name(b), Some("port1/txq0"));
    assert_eq!(rec.interface("nope"), None);
}

#[test]
fn write_rejects_foreign_interface_ids() {
    let mut other = Recorder::pcapng(Vec::new()).expect("other");
    other.add_interface("a").expect("a");
    let foreign = other.add_interface("b").expect("b");
    let mut rec = Recorder::pcapng(Vec::new()).expect("recorder");
    rec.add_interface("only").expect("only");
    let err = rec.write(foreign, None, Instant::ZERO, &[0; 14]).expect_err("unknown id");
    assert!(matches!(err, WriteError::UnknownInterface(id) if id == foreign), "{err}");
}

#[test]
fn pcap_rejects_what_it_cannot_hold() {
    let mut rec = Recorder::pcap(Vec::new()).expect("recorder");
    let id = rec.add_interface("port0").expect("add");
    let too_long = vec![0; capture::PCAP_SNAPLEN as usize + 1];
    assert!(matches!(rec.write(id, None, Instant::ZERO, &too_long), Err(WriteError::FrameTooLarge { .. })));
    let too_late = Instant::from_secs(u64::from(u32::MAX) + 1);
    assert!(matches!(rec.write(id, None, too_late, &[0; 60]), Err(WriteError::TimestampOutOfRange(_))));
    rec.write(id, Some(Direction::Inbound), Instant::from_nanos(5), &[0; 60]).expect("a fitting frame");
}

#[test]
fn capture_points_name_ports_and_queues() {
    assert_eq!(CapturePoint::Port("port0".into()).to_string(), "port0");
    assert_eq!(CapturePoint::RxQueue("port0".into(), 2).to_string(), "port0/rxq2");
    assert_eq!(CapturePoint::TxQueue("eth1".into(), 0).to_string(), "eth1/txq0");
}

/// A pcapng written by another tool: interfaces with other resolutions.
fn foreign_pcapng(options: Vec<InterfaceDescriptionOption<'static>>, raw: u64, endianness: Endianness) -> Vec<u8> {
    let mut w = PcapNgWriter::with_endianness(Vec::new(), endianness).expect("writer");
    w.write_pcapng_block(InterfaceDescriptionBlock { linktype: DataLink::ETHERNET, snaplen: 65535, options })
        .expect("idb");
    // pcap-file writes the raw timestamp units as given.
    let data = common::ping(1);
    let epb = EnhancedPacketBlock {
        interface_id: 0,
        timestamp: Duration::from_nanos(raw),
        original_len: data.len() as u32,
        data: Cow::Owned(data),
        options: vec![],
    };
    w.write_pcapng_block(epb).expect("epb");
    w.into_inner()
}

#[test]
fn reader_honours_if_tsresol_and_if_tsoffset() {
    let time = |options, raw| read(&foreign_pcapng(options, raw, Endianness::Little)).expect("read")[0].time.as_nanos();
    // No if_tsresol: microseconds.
    assert_eq!(time(vec![], 1_500_000), 1_500_000_000);
    assert_eq!(time(vec![InterfaceDescriptionOption::IfTsResol(3)], 2), 2_000_000);
    assert_eq!(time(vec![InterfaceDescriptionOption::IfTsResol(9)], 7), 7);
    // Binary fractions: 2^-10 s.
    assert_eq!(time(vec![InterfaceDescriptionOption::IfTsResol(0x80 | 10)], 1024 * 3), 3_000_000_000);
    // Finer than nanoseconds: picoseconds, truncated.
    assert_eq!(time(vec![InterfaceDescriptionOption::IfTsResol(12)], 5_999), 5);
    let offset = vec![InterfaceDescriptionOption::IfTsResol(9), InterfaceDescriptionOption::IfTsOffset(10)];
    assert_eq!(time(offset, 1), 10_000_000_001);
    // Big-endian sections read the same; interfaces without if_name are unnamed.
    let big = read(&foreign_pcapng(vec![], 1, Endianness::Big)).expect("read");
    assert_eq!(big, [Record::bare(Instant::from_nanos(1_000), common::ping(1))]);
}
