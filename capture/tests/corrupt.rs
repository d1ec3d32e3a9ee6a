//! Damaged captures: clear errors naming the byte offset, the records before
//! the damage kept, and never a panic.

mod common;

use capture::{read, to_bytes, Format, PartialRead, ReadErrorKind, Reader, Record};
use proptest::prelude::*;

fn pcapng() -> Vec<u8> {
    to_bytes(&common::sample_records(), Format::PcapNg).expect("write pcapng")
}

fn pcap() -> Vec<u8> {
    to_bytes(&common::sample_records(), Format::Pcap).expect("write pcap")
}

/// (offset, type) of every block of a little-endian pcapng.
fn blocks(bytes: &[u8]) -> Vec<(usize, u32)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(head) = bytes.get(at..at + 8) {
        let ty = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        out.push((at, ty));
        at += len;
    }
    assert_eq!(at, bytes.len());
    out
}

fn partial(bytes: &[u8]) -> PartialRead {
    read(bytes).expect_err("damaged input must not read cleanly")
}

#[test]
fn truncation_anywhere_names_the_cut_block_and_keeps_what_came_before() {
    let bytes = pcapng();
    let all = common::sample_records();
    let blocks = blocks(&bytes);
    for (i, &(start, _)) in blocks.iter().enumerate().skip(1) {
        let end = blocks.get(i + 1).map_or(bytes.len(), |b| b.0);
        let packets_before = blocks[..i].iter().filter(|b| b.1 == 6).count();
        assert_eq!(read(&bytes[..start]).expect("cut at a block boundary"), all[..packets_before]);
        for cut in start + 1..end {
            let p = partial(&bytes[..cut]);
            assert_eq!(p.error.offset, start as u64, "cut at {cut}");
            assert!(matches!(p.error.kind, ReadErrorKind::Truncated { what: "block", .. }), "{}", p.error);
            assert!(p.error.to_string().starts_with(&format!("truncated block at byte offset {start}")), "{}", p.error);
            assert_eq!(p.records, all[..packets_before], "cut at {cut}");
        }
    }
}

#[test]
fn truncated_block_message_says_how_much_is_missing() {
    let bytes = pcapng();
    let (start, _) = blocks(&bytes)[3];
    let p = partial(&bytes[..start + 10]);
    let needed = u32::from_le_bytes(bytes[start + 4..start + 8].try_into().expect("4 bytes"));
    assert_eq!(p.error.to_string(), format!("truncated block at byte offset {start}: needs {needed} bytes, 10 left"));
}

#[test]
fn a_cut_section_header_is_reported_at_offset_zero() {
    let bytes = pcapng();
    for cut in 1..28 {
        let p = partial(&bytes[..cut]);
        assert_eq!(p.error.offset, 0);
        assert!(matches!(p.error.kind, ReadErrorKind::Truncated { .. }), "cut {cut}: {}", p.error);
        assert!(p.records.is_empty());
    }
    let empty = partial(&[]);
    assert_eq!(empty.error.to_string(), "truncated file header at byte offset 0: needs 4 bytes, 0 left");
}

#[test]
fn a_bad_trailing_length_is_a_malformed_block_at_its_start() {
    let mut bytes = pcapng();
    let blocks = blocks(&bytes);
    let (start, ty) = blocks[4];
    let end = blocks[5].0;
    bytes[end - 4] ^= 0x40;
    let p = partial(&bytes);
    assert_eq!(p.error.offset, start as u64);
    assert!(matches!(p.error.kind, ReadErrorKind::Malformed { .. }), "{}", p.error);
    assert!(p.error.to_string().starts_with(&format!("malformed block at byte offset {start}")));
    let packets_before = blocks[..4].iter().filter(|b| b.1 == 6).count();
    assert_eq!(p.records, common::sample_records()[..packets_before], "block type {ty}");
}

#[test]
fn a_packet_on_an_undescribed_interface_is_named() {
    let mut bytes = pcapng();
    let (start, _) = *blocks(&bytes).iter().rfind(|b| b.1 == 6).expect("an EPB");
    bytes[start + 8] = 9;
    let p = partial(&bytes);
    assert_eq!(p.error.kind, ReadErrorKind::UnknownInterface(9));
    assert_eq!(p.error.to_string(), format!("packet block at byte offset {start} refers to undescribed interface 9"));
    assert_eq!(p.records.len(), common::sample_records().len() - 1);
}

#[test]
fn unknown_magic_is_refused_at_offset_zero() {
    let p = partial(b"GIF89a, not a capture");
    assert_eq!(p.error.kind, ReadErrorKind::UnknownMagic(0x4749_4638));
    assert_eq!(p.error.to_string(), "not a pcap or pcapng capture: unknown magic 0x47494638 at byte offset 0");
}

#[test]
fn pcap_truncation_names_the_packet_record() {
    let bytes = pcap();
    let p = partial(&bytes[..10]);
    assert_eq!(p.error.to_string(), "truncated file header at byte offset 0: needs 24 bytes, 10 left");
    let first_len = common::arp_request().len();
    let second = 24 + 16 + first_len;
    for cut in second + 1..second + 16 + 10 {
        let p = partial(&bytes[..cut]);
        assert_eq!(p.error.offset, second as u64);
        assert!(p.error.to_string().starts_with(&format!("truncated packet record at byte offset {second}")));
        assert_eq!(p.records.len(), 1);
    }
}

#[test]
fn pcap_lengths_beyond_the_snap_length_are_malformed() {
    let mut bytes = pcap();
    // First record's incl_len (little-endian) at 24 + 8.
    bytes[24 + 8..24 + 12].copy_from_slice(&0x0100_0000u32.to_le_bytes());
    let p = partial(&bytes);
    assert_eq!(p.error.offset, 24);
    assert!(p.error.to_string().starts_with("malformed packet record at byte offset 24"), "{}", p.error);
}

#[test]
fn non_ethernet_pcap_is_refused() {
    let mut bytes = pcap();
    bytes[20] = 101; // LINKTYPE_RAW
    assert_eq!(partial(&bytes).error.kind, ReadErrorKind::UnsupportedLinkType(101));
}

#[test]
fn reader_yields_records_then_one_error_then_stops() {
    let bytes = pcapng();
    let cut = &bytes[..bytes.len() - 3];
    let items: Vec<_> = Reader::new(cut).expect("header").collect();
    let (last, good) = items.split_last().expect("items");
    assert!(good.iter().all(Result::is_ok));
    assert_eq!(good.len(), common::sample_records().len() - 1);
    assert!(last.is_err());
}

/// Reads `input` both ways and checks the results agree and make sense.
fn check(input: &[u8]) -> Result<Vec<Record>, PartialRead> {
    let result = read(input);
    if let Err(p) = &result {
        assert!(p.error.offset <= input.len() as u64, "offset past the end: {}", p.error);
        assert!(!p.error.to_string().is_empty());
    }
    if let Ok(reader) = Reader::new(input) {
        let mut ok = 0;
        for item in reader {
            match item {
                Ok(_) => ok += 1,
                Err(e) => assert_eq!(result.as_ref().err().map(|p| &p.error), Some(&e)),
            }
        }
        assert_eq!(ok, result.as_ref().map_or_else(|p| p.records.len(), Vec::len));
    }
    result
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_captures_never_panic(
        ng in any::<bool>(),
        mutations in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let mut bytes = if ng { pcapng() } else { pcap() };
        for (at, value) in mutations {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        let _ = check(&bytes);
    }

    #[test]
    fn truncated_captures_keep_a_prefix_of_the_records(ng in any::<bool>(), cut in any::<prop::sample::Index>()) {
        let bytes = if ng { pcapng() } else { pcap() };
        let cut = cut.index(bytes.len() + 1);
        let expected = if ng { common::sample_records() } else { read(&bytes).expect("whole file") };
        let records = match check(&bytes[..cut]) {
            Ok(records) => records,
            Err(p) => p.records,
        };
        prop_assert_eq!(&records[..], &expected[..records.len()]);
    }

    #[test]
    fn random_bodies_after_a_valid_magic_never_panic(
        ng in any::<bool>(),
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut bytes = if ng { pcapng()[..28].to_vec() } else { pcap()[..24].to_vec() };
        bytes.extend_from_slice(&body);
        let _ = check(&bytes);
    }
}
