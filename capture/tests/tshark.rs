//! Wireshark's own reader accepts what the recorder writes: interface
//! names, nanosecond times, directions and lengths all come through.
//!
//! Needs `tshark` on PATH. Without it the tests print a message and pass,
//! unless the environment variable `CI` is set, where a missing tshark is a
//! failure (CI installs it).

mod common;

use common::tshark::tshark_available;

use std::path::PathBuf;
use std::process::Command;

use capture::{to_bytes, Direction, Format, Record};

/// Writes `bytes` to a fresh temporary file, runs tshark over it printing
/// `fields`, and returns one vector of fields per frame.
fn tshark_fields(name: &str, bytes: &[u8], fields: &[&str]) -> Vec<Vec<String>> {
    let path: PathBuf = std::env::temp_dir().join(format!("dtnet-capture-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).expect("write temporary capture");
    let mut cmd = Command::new("tshark");
    cmd.arg("-n").arg("-r").arg(&path).args(["-T", "fields", "-E", "separator=|"]);
    for field in fields {
        cmd.args(["-e", field]);
    }
    let out = cmd.output().expect("run tshark");
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success(), "tshark failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| l.split('|').map(str::to_owned).collect()).collect()
}

fn epoch(record: &Record) -> String {
    let n = record.time.as_nanos();
    format!("{}.{:09}", n / 1_000_000_000, n % 1_000_000_000)
}

#[test]
fn tshark_reads_pcapng_with_interface_names_directions_and_nanoseconds() {
    if !tshark_available() {
        return;
    }
    let records = common::sample_records();
    let bytes = to_bytes(&records, Format::PcapNg).expect("write");
    let fields = ["frame.interface_name", "frame.time_epoch", "frame.packet_flags_direction", "frame.len"];
    let rows = tshark_fields("names.pcapng", &bytes, &fields);
    assert_eq!(rows.len(), records.len(), "{rows:?}");
    for (row, record) in rows.iter().zip(&records) {
        if let Some(name) = &record.interface {
            assert_eq!(&row[0], name, "{row:?}");
        }
        assert_eq!(row[1], epoch(record), "{row:?}");
        let direction = match record.direction {
            Some(Direction::Inbound) => "0x00000001",
            Some(Direction::Outbound) => "0x00000002",
            None => "",
        };
        assert_eq!(row[2], direction, "{row:?}");
        assert_eq!(row[3], record.data.len().to_string(), "{row:?}");
    }
}

#[test]
fn tshark_reads_classic_pcap() {
    if !tshark_available() {
        return;
    }
    let records = common::sample_records();
    let bytes = to_bytes(&records, Format::Pcap).expect("write");
    let rows = tshark_fields("plain.pcap", &bytes, &["frame.time_epoch", "frame.len", "frame.protocols"]);
    assert_eq!(rows.len(), records.len(), "{rows:?}");
    for (row, record) in rows.iter().zip(&records) {
        assert_eq!(row[0], epoch(record));
        assert_eq!(row[1], record.data.len().to_string());
    }
    assert!(rows[0][2].starts_with("eth:ethertype:arp"), "{rows:?}");
}
