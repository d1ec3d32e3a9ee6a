//! The Linux kernel as a host on dtnet's bridge, end to end: the kernel
//! scenarios' captures decode in Wireshark with no malformed frame and no
//! bad checksum, a run that fails still removes every namespace it made,
//! the simulation refuses a kernel host, and the kernel-peer benchmark
//! measures. Without root or TUN each test says why it skipped and
//! passes. Test names contain `threads` so nextest runs them one at a time.

#[path = "../../../capture/tests/common/tshark.rs"]
mod tshark_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bench::kernel_peer as peer_bench;
use capture::Format;
use kernel_peer::netns;
use scenario::{RunOptions, Scenario};
use tshark_support::tshark_available;

const SCENARIOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios");

/// Frames tshark finds malformed or with a bad checksum, and retransmitted
/// bytes that differ from the first copy. Expert errors from TCP analysis
/// are not among them: the kernel runs in real time and may retransmit,
/// which Wireshark's analysis reports at error level. One bad checksum is
/// not an error: Linux's software checksum (`skb_checksum_help`) writes a
/// TCP checksum that comes out as 0 as 0xffff, the same number in one's
/// complement (RFC 1624), which Wireshark reports as bad.
const BROKEN: &str = r#"(_ws.malformed || tcp.segment.overlap.conflict || ip.checksum.status == "Bad" || tcp.checksum.status == "Bad" || udp.checksum.status == "Bad" || icmp.checksum.status == "Bad" || icmpv6.checksum.status == "Bad") && !(tcp.checksum == 0xffff && tcp.checksum_calculated == 0x0000 && eth.src == 02:00:00:00:00:0a)"#;

fn skipped() -> bool {
    match netns::unavailable() {
        Some(why) => {
            eprintln!("SKIPPED: kernel hosts need root and TUN: {why}");
            true
        }
        None => false,
    }
}

fn load(name: &str) -> Scenario {
    Scenario::load(&Path::new(SCENARIOS).join(name)).unwrap_or_else(|e| panic!("{e}"))
}

/// Namespaces of this process's kernel hosts (`dtnet-dtk<pid>x<n>`).
fn our_namespaces() -> Vec<String> {
    netns::list(&format!("dtnet-dtk{}x", std::process::id()))
}

/// A capture file, removed when dropped.
struct TempCapture(PathBuf);

impl Drop for TempCapture {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs `name` recording, checks it passed, and returns tshark's list of
/// broken frames in its capture and how many frames it holds. Each vantage
/// point (port or queue) is decoded on its own: one file holding every
/// point a segment crossed would show the copies to TCP reassembly as
/// overlapping retransmissions.
fn recorded_broken_frames(name: &str) -> (Vec<String>, usize) {
    let report = scenario::run(&load(name), &RunOptions { record: true, ..RunOptions::default() }).unwrap();
    assert!(report.passed(), "{report}");
    assert!(our_namespaces().is_empty(), "namespaces left after {name}: {:?}", our_namespaces());
    let mut points: BTreeMap<Option<String>, Vec<capture::Record>> = BTreeMap::new();
    for record in &report.records {
        points.entry(record.interface.clone()).or_default().push(record.clone());
    }
    let mut broken = Vec::new();
    for (n, (point, records)) in points.iter().enumerate() {
        let path = std::env::temp_dir().join(format!("dtnet-kernel-{}-{name}-{n}.pcapng", std::process::id()));
        std::fs::write(&path, capture::to_bytes(records, Format::PcapNg).unwrap()).unwrap();
        let file = TempCapture(path);
        let out = Command::new("tshark")
            .args(["-n", "-r"])
            .arg(&file.0)
            .args(["-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"])
            .args(["-Y", BROKEN, "-T", "fields", "-e", "frame.number", "-e", "_ws.expert.message"])
            .output()
            .expect("run tshark");
        assert!(out.status.success(), "tshark failed: {}", String::from_utf8_lossy(&out.stderr));
        let at = point.as_deref().unwrap_or("?");
        let found: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(|l| format!("{at}: {l}")).collect();
        if !found.is_empty() {
            // Keep the evidence: the first broken frame's line names the file.
            let kept = file.0.with_extension("broken.pcapng");
            let _ = std::fs::rename(&file.0, &kept);
            broken.push(format!("{at}: capture kept at {}", kept.display()));
        }
        broken.extend(found);
    }
    (broken, report.records.len())
}

#[test]
fn kernel_scenarios_threads_record_cleanly_in_wireshark() {
    if skipped() || !tshark_available() {
        return;
    }
    for name in ["kernel-server-threads.toml", "kernel-client-threads.toml", "kernel-impaired-threads.toml"] {
        let (broken, frames) = recorded_broken_frames(name);
        assert!(frames > 100, "{name}: only {frames} frames recorded");
        assert!(broken.is_empty(), "{name}: {} broken frames, first {:?}", broken.len() - 1, broken.get(..2));
    }
}

#[test]
fn a_failing_kernel_run_threads_leaves_no_namespace_behind() {
    if skipped() {
        return;
    }
    // Every frame the kernel sends is lost: nothing connects, and the run
    // fails at its deadline.
    let text = std::fs::read_to_string(Path::new(SCENARIOS).join("kernel-impaired-threads.toml")).unwrap();
    let text = text.replace("duration = \"120s\"", "duration = \"1s\"").replace("loss = 0.02", "loss = 1.0");
    let scenario = Scenario::parse(&text, "total-loss", Path::new(SCENARIOS)).unwrap();
    let (done, most) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let watcher = {
        let (done, most) = (Arc::clone(&done), Arc::clone(&most));
        std::thread::spawn(move || {
            while !done.load(Ordering::Acquire) {
                most.fetch_max(our_namespaces().len(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let report = scenario::run(&scenario, &RunOptions::default()).unwrap();
    done.store(true, Ordering::Release);
    watcher.join().unwrap();
    assert!(!report.passed(), "a run losing every frame passed: {report}");
    assert_eq!(most.load(Ordering::Relaxed), 1, "the run's namespace was never seen");
    assert_eq!(our_namespaces(), Vec::<String>::new(), "namespaces left behind");
}

#[test]
fn the_simulation_refuses_a_kernel_host_threads() {
    let text = std::fs::read_to_string(Path::new(SCENARIOS).join("kernel-server-threads.toml")).unwrap();
    let text = text.replace("executor = \"threads\"", "executor = \"sim\"");
    let err = Scenario::parse(&text, "sim-kernel", Path::new(SCENARIOS)).unwrap_err().to_string();
    assert!(err.contains("host[1].kind") && err.contains("cannot run under the simulation"), "{err}");
}

#[test]
fn a_kernel_host_refuses_what_only_dtnet_hosts_have_threads() {
    let text = std::fs::read_to_string(Path::new(SCENARIOS).join("kernel-server-threads.toml")).unwrap();
    let text = text.replace("kind = \"kernel\"", "kind = \"kernel\"\nstacks = 2");
    let err = Scenario::parse(&text, "kernel-stacks", Path::new(SCENARIOS)).unwrap_err().to_string();
    assert!(err.contains("host[1].stacks") && err.contains("kernel's own stack"), "{err}");
    let text = std::fs::read_to_string(Path::new(SCENARIOS).join("kernel-server-threads.toml")).unwrap();
    let text = text.replace("from = \"client\"\nto = \"kernel\"", "from = \"kernel\"\nto = \"client\"");
    let err = Scenario::parse(&text, "kernel-ping", Path::new(SCENARIOS)).unwrap_err().to_string();
    assert!(err.contains("from") && err.contains("not a kernel host"), "{err}");
}

#[test]
fn kernel_peer_goodput_threads_measures_a_verified_stream() {
    if skipped() {
        return;
    }
    let gbits = peer_bench::goodput(8 << 20).unwrap();
    assert!(gbits.is_finite() && gbits > 0.0, "{gbits} Gbit/s");
    assert!(our_namespaces().is_empty(), "{:?}", our_namespaces());
}
