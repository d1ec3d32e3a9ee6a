//! Wireshark's view of what a recorded TCP run put on the wire: every frame
//! decodes, none is malformed or carries a bad checksum, and TCP analysis
//! finds retransmissions only where the bridge lost frames.
//!
//! Needs `tshark` on PATH. Without it the tests print a message and pass,
//! unless the environment variable `CI` is set, where a missing tshark is a
//! failure (CI installs it).

#[path = "../../../capture/tests/common/tshark.rs"]
mod tshark_support;

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use capture::{Direction, Format, Record};
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use scenario::tcp_run::{Executor, TcpReport, TcpRun, SERVER_PORT};
use stack::{ForwardMode, ThreadModel};
use tshark_support::tshark_available;
use user_vbridge::{Impairments, PortId};

/// Segments one loss can cost at most: after a retransmission timeout the
/// sender resends everything in flight (go-back-N), and the 64 KiB socket
/// send buffer holds at most 45 full 1460-byte segments.
const WINDOW_SEGMENTS: u64 = (64 * 1024u64).div_ceil(1460);

/// A file for one test's capture, removed when dropped.
struct TempCapture(PathBuf);

impl TempCapture {
    fn new(name: &str, records: &[Record]) -> TempCapture {
        // Unique per call: `cargo test` runs tests as threads of one process.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("dtnet-tshark-{}-{n}-{name}.pcapng", std::process::id()));
        std::fs::write(&path, capture::to_bytes(records, Format::PcapNg).unwrap()).unwrap();
        TempCapture(path)
    }
}

impl Drop for TempCapture {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// tshark over `file` with checksum verification on, printing `fields` of
/// the frames matching `filter`; one vector of fields per frame.
fn tshark(file: &Path, filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-n").arg("-r").arg(file);
    cmd.args(["-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE", "-Y", filter]);
    cmd.args(["-T", "fields", "-E", "separator=|"]);
    for field in fields {
        cmd.args(["-e", field]);
    }
    let out = cmd.output().expect("run tshark");
    assert!(out.status.success(), "tshark failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| l.split('|').map(str::to_owned).collect()).collect()
}

/// Frames tshark finds malformed, in error, or with a bad IP or TCP checksum.
///
/// Wireshark's "TCP Checksum 0xffff instead of 0x0000 (see RFC 1624)" is an
/// error-level note on a checksum that is right: Linux's software checksum
/// (`skb_checksum_help`) writes 0xffff for a sum of 0, the same number in
/// ones' complement, so kernel hosts' frames carry it now and then.
/// Wireshark also calls such a checksum "Bad"; every other bad one still counts.
const BROKEN: &str = r#"_ws.malformed || (_ws.expert.severity == "Error" && !tcp.checksum.ffff)
    || ip.checksum.status == "Bad" || (tcp.checksum.status == "Bad" && !tcp.checksum.ffff)"#;
/// Frames TCP analysis calls retransmissions of any kind.
const RETRANSMITTED: &str =
    "tcp.analysis.retransmission || tcp.analysis.fast_retransmission || tcp.analysis.spurious_retransmission";

/// A recorded bulk run: 4 connections of 128 KiB over links with `loss`
/// each way; checked like every TCP run (bytes, placement, leaks).
fn bulk(loss: f64) -> TcpReport {
    let mut run = TcpRun::new(ForwardMode::Rss, ThreadModel::RunToWakeup, Executor::Sim, 4, 128 * 1024);
    run.impairments = Impairments { loss, ..Impairments::default() };
    run.capture = true;
    let report = run.run().unwrap();
    report.check().unwrap();
    report
}

/// Checks that every frame of `records` decodes as Ethernet carrying ARP
/// or IPv4 TCP and that none is malformed or has a bad checksum.
fn assert_all_decode(records: &[Record]) {
    let file = TempCapture::new("all", records);
    let protocols = tshark(&file.0, "frame", &["frame.protocols"]);
    assert_eq!(protocols.len(), records.len(), "tshark read every frame");
    let decoded = |p: &str| p == "eth:ethertype:arp" || p.starts_with("eth:ethertype:ip:tcp");
    assert!(protocols.iter().all(|p| decoded(&p[0])), "{:?}", protocols.iter().find(|p| !decoded(&p[0])));
    let broken = tshark(&file.0, BROKEN, &["frame.number", "frame.interface_name"]);
    assert!(broken.is_empty(), "malformed or bad checksums: {broken:?}");
}

/// The records of one interface.
fn on(records: &[Record], interface: &str) -> Vec<Record> {
    records.iter().filter(|r| r.interface.as_deref() == Some(interface)).cloned().collect()
}

/// Retransmissions each host sent, by connection (the client's port), as
/// TCP analysis sees them at the host's own port.
fn retransmissions(records: &[Record], hosts: &[(&str, Ipv4Addr)]) -> BTreeMap<u16, u64> {
    let mut by_conn = BTreeMap::new();
    for &(host, ip) in hosts {
        let file = TempCapture::new(host, &on(records, host));
        for row in tshark(&file.0, &format!("({RETRANSMITTED}) && ip.src == {ip}"), &["tcp.srcport", "tcp.dstport"]) {
            let ports: Vec<u16> = row.iter().map(|p| p.parse().unwrap()).collect();
            *by_conn.entry(conn(ports[0], ports[1])).or_default() += 1;
        }
    }
    by_conn
}

/// A connection's key: the client's port.
fn conn(src: u16, dst: u16) -> u16 {
    if src == SERVER_PORT {
        dst
    } else {
        src
    }
}

/// The connection a TCP frame belongs to.
fn tcp_conn(frame: &[u8]) -> Option<u16> {
    let packet = SlicedPacket::from_ethernet(frame).ok()?;
    match (packet.net, packet.transport) {
        (Some(NetSlice::Ipv4(_)), Some(TransportSlice::Tcp(t))) => Some(conn(t.source_port(), t.destination_port())),
        _ => None,
    }
}

/// Frames each host sent that never reached the other (a multiset
/// difference of the bytes seen leaving one port and entering the other),
/// by connection; ARP and other frames under key `None`.
fn lost(records: &[Record], hosts: [&str; 2]) -> HashMap<Option<u16>, u64> {
    let mut lost = HashMap::new();
    for (from, to) in [(hosts[0], hosts[1]), (hosts[1], hosts[0])] {
        let mut arrived: HashMap<&[u8], u64> = HashMap::new();
        for r in seen(records, to, Direction::Inbound) {
            *arrived.entry(r.data.as_slice()).or_default() += 1;
        }
        for r in seen(records, from, Direction::Outbound) {
            match arrived.get_mut(r.data.as_slice()) {
                Some(n) if *n > 0 => *n -= 1,
                _ => *lost.entry(tcp_conn(&r.data)).or_default() += 1,
            }
        }
    }
    lost
}

/// The records seen on `host`'s port going `direction`.
fn seen<'a>(records: &'a [Record], host: &'a str, direction: Direction) -> impl Iterator<Item = &'a Record> {
    records.iter().filter(move |r| r.interface.as_deref() == Some(host) && r.direction == Some(direction))
}

/// Frames every bridge link dropped, all reasons together.
fn link_drops(report: &TcpReport) -> u64 {
    let bridge = &report.world.bridge;
    (0..bridge.port_count())
        .flat_map(|p| user_vbridge::Direction::BOTH.map(|d| bridge.link_stats(PortId(p as u16), d)))
        .map(|s| s.map_or(0, |s| s.drops.total()))
        .sum()
}

fn hosts(report: &TcpReport) -> Vec<(&str, Ipv4Addr)> {
    report.world.hosts.iter().map(|h| (h.name.as_str(), h.ipv4())).collect()
}

#[test]
fn an_unimpaired_bulk_run_decodes_cleanly_without_retransmissions() {
    if !tshark_available() {
        return;
    }
    let report = bulk(0.0);
    let records = &report.captures;
    assert!(records.iter().any(|r| r.interface.as_deref() == Some("server/rxq3")), "ports and queues recorded");
    assert_all_decode(records);
    assert_eq!(retransmissions(records, &hosts(&report)), BTreeMap::new());
    assert_eq!(link_drops(&report), 0);
    let mut damaged = on(records, "client");
    let last = damaged.iter().rposition(|r| r.data.len() > 100).unwrap();
    *damaged[last].data.last_mut().unwrap() ^= 0xff;
    let file = TempCapture::new("damaged", &damaged);
    let flagged = tshark(&file.0, BROKEN, &["frame.number"]);
    assert_eq!(flagged, [vec![(last + 1).to_string()]], "the checker sees a bad TCP checksum");
}

#[test]
fn retransmissions_happen_only_where_the_bridge_lost_frames() {
    if !tshark_available() {
        return;
    }
    let report = bulk(0.01);
    let records = &report.captures;
    assert_all_decode(records);
    let lost = lost(records, ["client", "server"]);
    let dropped = link_drops(&report);
    assert_eq!(lost.values().sum::<u64>(), dropped, "the captures show exactly the frames the links dropped");
    let retransmitted = retransmissions(records, &hosts(&report));
    let total: u64 = retransmitted.values().sum();
    assert!(total > 0, "{dropped} frames lost and nothing retransmitted");
    for (conn, &n) in &retransmitted {
        let lost_here = lost.get(&Some(*conn)).copied().unwrap_or(0);
        assert!(
            n <= lost_here * WINDOW_SEGMENTS,
            "connection {conn}: {n} retransmissions for {lost_here} lost frames (at most a window each)"
        );
    }
}

/// The default scenario's synthetic TCP and UDP frames (the newcomer's
/// first capture) decode in Wireshark without a malformed frame or an
/// expert error: their ports come from the dynamic range, which no
/// dissector claims (well-known ports made 306 frames "malformed").
#[test]
fn the_default_scenarios_capture_opens_cleanly() {
    if !tshark_available() {
        return;
    }
    let path = std::env::temp_dir().join(format!("dtnet-tshark-{}-default.pcapng", std::process::id()));
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/default.toml");
    let status = Command::new(env!("CARGO_BIN_EXE_dtnet")).arg("record").arg(scenario).arg("-o").arg(&path).status();
    assert!(status.unwrap().success());
    let file = TempCapture(path);
    let frames = tshark(&file.0, "frame", &["frame.number"]);
    assert!(frames.len() > 1000, "the default scenario sends thousands of frames: {}", frames.len());
    let broken = tshark(&file.0, BROKEN, &["frame.number", "_ws.expert.message"]);
    assert!(broken.is_empty(), "{} malformed or erroneous frames, first {:?}", broken.len(), broken.first());
}

/// Shipped scenarios too large to decode here: C10K's capture is about
/// 200 MB, minutes of tshark on a busy 2-core machine. Its frames are the
/// ones `rss-rtc` makes, at scale; its bytes are checked by the scenario.
const NOT_DECODED: &[&str] = &["c10k-rss-rtc.toml"];

/// Every shipped scenario's capture decodes without a malformed frame, an
/// expert error or a bad checksum, frame by frame. One capture file holds
/// every port and queue a frame crossed, so the same segment appears on
/// several interfaces; Wireshark's TCP sequence analysis and reassembly,
/// which assume one vantage point, would read those copies as
/// retransmissions, so they are off here (the bulk tests above check
/// retransmissions per vantage point). `impaired-corrupt` flips bits on
/// purpose: its capture must show bad checksums, or the corruption went
/// unseen. [`NOT_DECODED`] lists the exceptions.
#[test]
fn every_shipped_scenarios_capture_decodes_cleanly() {
    if !tshark_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&scenarios)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter(|p| !NOT_DECODED.iter().any(|name| p.ends_with(name)))
        .collect();
    files.sort();
    let out =
        Command::new(env!("CARGO_BIN_EXE_dtnet")).arg("run").arg("--record").arg(dir.path()).args(&files).output();
    let out = out.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    for file in &files {
        let name = file.file_stem().unwrap().to_string_lossy();
        let capture = dir.path().join(format!("{name}.pcapng"));
        if !capture.exists() {
            let said = String::from_utf8_lossy(&out.stderr);
            let skipped = said.contains(&format!("{name}: skipped")) || said.contains(&format!("{name}: not recorded"));
            assert!(skipped, "{name} neither recorded nor skipped with a reason");
            continue;
        }
        let broken = tshark_per_frame(&capture, BROKEN);
        if name == "impaired-corrupt" {
            assert!(!broken.is_empty(), "the corrupted frames show as bad checksums");
        } else {
            assert!(broken.is_empty(), "{name}: {} broken frames, first {:?}", broken.len(), broken.first());
        }
    }
}

/// Frames of `file` matching `filter`, decoded frame by frame: checksums
/// checked, TCP sequence analysis and reassembly off.
fn tshark_per_frame(file: &Path, filter: &str) -> Vec<String> {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(file)
        .args(["-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE"])
        .args(["-o", "tcp.analyze_sequence_numbers:FALSE", "-o", "tcp.desegment_tcp_streams:FALSE"])
        .args(["-Y", filter, "-T", "fields", "-e", "frame.number", "-e", "_ws.expert.message"])
        .output()
        .expect("run tshark");
    assert!(out.status.success(), "tshark failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}
