//! DPDK's simple_mp as real processes: messages both ways with every byte
//! checked, a hostile secondary the primary survives, and seeded `kill -9`
//! trials after which the primary has reclaimed everything.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::Duration;

fn simple(base: &Path, prefix: &str, proc_type: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dtnet"));
    cmd.args(["mp", "simple", "--prefix", prefix, "--proc-type", proc_type, "--runtime-dir"])
        .arg(base)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Starts a primary and waits until it has made the domain.
fn primary(base: &Path, prefix: &str, messages: &str) -> (Child, BufReader<ChildStdout>) {
    let mut child = simple(base, prefix, "primary", &["--messages", messages]).spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut ready = String::new();
    out.read_line(&mut ready).unwrap();
    assert!(ready.starts_with("ready"), "{ready:?}");
    (child, out)
}

/// The next line the primary prints that starts with `prefix`.
fn line(out: &mut BufReader<ChildStdout>, prefix: &str) -> String {
    let mut line = String::new();
    while line.is_empty() || !line.starts_with(prefix) {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "no line starting {prefix:?}");
    }
    line
}

/// The primary's report line and exit status.
fn finish(child: Child, mut out: BufReader<ChildStdout>) -> (String, Output) {
    let report = line(&mut out, "simple_mp primary:");
    (report, child.wait_with_output().unwrap())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn simple_mp_exchanges_every_message_intact_both_ways() {
    let base = tempfile::tempdir().unwrap();
    let (p, out) = primary(base.path(), "smp", "20000");
    let secondary = simple(base.path(), "smp", "secondary", &["--messages", "20000"]).output().unwrap();
    assert!(secondary.status.success(), "{}{}", text(&secondary.stdout), text(&secondary.stderr));
    assert!(text(&secondary.stdout).contains("sent 20000 received 20000 intact, bad messages 0, bad refs 0"));
    let (report, status) = finish(p, out);
    assert!(status.status.success(), "{report}{}", text(&status.stderr));
    assert!(report.contains("sent 20000 received 20000 intact, bad messages 0, bad refs 0"), "{report}");
    assert!(report.ends_with("MSG_POOL in use 0\n"), "{report}");
    assert!(!base.path().join("smp").exists(), "the last process out removed the domain");
}

#[test]
fn a_hostile_secondarys_garbage_is_counted_and_the_primary_finishes() {
    let base = tempfile::tempdir().unwrap();
    let (p, out) = primary(base.path(), "hostile", "2000");
    let args = ["--messages", "2000", "--hostile"];
    let secondary = simple(base.path(), "hostile", "secondary", &args).output().unwrap();
    assert!(secondary.status.success(), "{}{}", text(&secondary.stdout), text(&secondary.stderr));
    let (report, status) = finish(p, out);
    assert_eq!(status.status.code(), Some(1), "it got no messages, and says so: {report}{}", text(&status.stderr));
    assert!(report.contains("sent 2000 received 0 intact, bad messages 0, bad refs 2000"), "{report}");
    assert!(!report.contains("refused positions 0,"), "the scribbled head was refused: {report}");
    assert!(report.ends_with("MSG_POOL in use 0\n"), "{report}");
}

/// 20 trials, each killing the secondary at a seeded moment of its traffic.
#[test]
fn a_secondary_killed_at_random_moments_is_always_reclaimed_in_full() {
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    for trial in 0..20 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let delay = Duration::from_micros(500 + rng % 40_000);
        let base = tempfile::tempdir().unwrap();
        let prefix = format!("kill{trial}");
        let (p, mut out) = primary(base.path(), &prefix, "1000000");
        let mut victim = simple(base.path(), &prefix, "secondary", &["--messages", "1000000"]).spawn().unwrap();
        line(&mut out, "registered");
        std::thread::sleep(delay);
        victim.kill().unwrap();
        victim.wait().unwrap();
        let (report, status) = finish(p, out);
        let context = format!("trial {trial} (killed after {delay:?}): {report}{}", text(&status.stderr));
        assert!(status.status.success(), "{context}");
        assert!(report.contains(&format!("peer {} died: reclaimed", victim.id())), "{context}");
        assert!(report.contains("bad messages 0, bad refs 0"), "{context}");
        assert!(report.ends_with("MSG_POOL in use 0\n"), "{context}");
        assert!(!base.path().join(&prefix).exists(), "{context}: the domain was removed");
    }
}

/// `dtnet stats` during a simple_mp run: both processes with their roles
/// and owner ids, both rings with their capacities, the pool's slots by
/// owner adding up; `--watch` keeps printing snapshots.
#[test]
fn stats_show_processes_rings_and_pool_owners_of_a_live_domain() {
    let base = tempfile::tempdir().unwrap();
    let (p, mut out) = primary(base.path(), "stats", "100000000");
    let mut secondary =
        simple(base.path(), "stats", "secondary", &["--messages", "100000000", "--name", "client-1"]).spawn().unwrap();
    line(&mut out, "registered");
    let stats = |extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dtnet"));
        cmd.args(["stats", "--prefix", "stats", "--json", "--runtime-dir"]).arg(base.path()).args(extra);
        cmd
    };
    let snapshot = stats(&[]).output().unwrap();
    assert!(snapshot.status.success(), "{}", text(&snapshot.stderr));
    let json: serde_json::Value = serde_json::from_slice(&snapshot.stdout).unwrap();
    let procs = json["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 2, "{json}");
    assert_eq!((procs[0]["role"].as_str(), procs[0]["pid"].as_u64()), (Some("primary"), Some(p.id().into())));
    assert_eq!(procs[1]["name"], "client-1");
    assert_eq!((procs[1]["owner"].as_u64(), procs[1]["state"].as_str()), (Some(1_048_576), Some("alive")));
    let rings: Vec<(&str, u64)> = json["rings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["capacity"].as_u64().unwrap()))
        .collect();
    assert_eq!(rings, [("PRI_2_SEC", 256), ("SEC_2_PRI", 256)]);
    let pool = &json["pools"][0];
    assert_eq!((pool["name"].as_str(), pool["capacity"].as_u64()), (Some("MSG_POOL"), Some(1024)));
    for owner in pool["by_owner"].as_object().unwrap().keys() {
        assert!(["1", "1048576"].contains(&owner.as_str()), "only the two processes own buffers: {pool}");
    }

    let mut watch = stats(&["--watch"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    for _ in 0..2 {
        let snapshot: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        assert_eq!(snapshot["prefix"], "stats");
    }
    watch.kill().unwrap();
    watch.wait().unwrap();
    secondary.kill().unwrap();
    secondary.wait().unwrap();
    let (report, status) = finish(p, out);
    assert!(status.status.success(), "{report}");
}
