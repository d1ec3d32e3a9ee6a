//! DPDK's multi-process samples as real processes: messages both ways with
//! every byte checked, a hostile secondary the primary survives, seeded
//! `kill -9` trials after which the primary has reclaimed everything; and
//! gazelle's stacks in processes of their own, one VF each.

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

fn symmetric(base: &Path, procs: u16, id: u16, frames: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dtnet"));
    cmd.args(["mp", "symmetric", "--num-procs", &procs.to_string(), "--proc-id", &id.to_string()])
        .args(["--frames", frames, "--runtime-dir"])
        .arg(base)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// symmetric_mp with four processes between hosts on two bridges: every
/// frame through both ports arrives intact and in flow order, no bridge drops one, and each process received on each
/// port exactly what the primary's own Toeplitz hash predicted for its queue.
#[test]
fn symmetric_mp_processes_forward_exactly_their_rss_share() {
    let base = tempfile::tempdir().unwrap();
    let mut p = symmetric(base.path(), 4, 0, "20000").spawn().unwrap();
    let mut out = BufReader::new(p.stdout.take().unwrap());
    line(&mut out, "ready");
    let others: Vec<Child> = (1..4).map(|n| symmetric(base.path(), 4, n, "20000").spawn().unwrap()).collect();
    let others: Vec<Output> = others.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    let report = line(&mut out, "symmetric_mp primary:");
    let status = p.wait_with_output().unwrap();
    assert!(status.status.success(), "{report}{}", text(&status.stderr));
    assert!(report.contains("sent 40000 received 40000 intact, bad 0, gaps 0, lost 0;"), "{report}");
    assert!(report.ends_with("bridged 80000, bridge drops 0; MProc_pktmbuf_pool in use 0\n"), "{report}");
    for (n, other) in (1..).zip(&others) {
        assert!(other.status.success(), "proc {n}: {}{}", text(&other.stdout), text(&other.stderr));
        let said = text(&other.stdout);
        let counts = said.trim().strip_prefix(&format!("symmetric_mp proc {n}: ")).unwrap().to_owned();
        let rx = counts.split(" forwarded").next().unwrap();
        assert!(report.contains(&format!("predicted proc {n}: {rx};")), "proc {n} said {said:?}; {report}");
        assert!(!rx.contains(" rx 0 "), "RSS gave every process a share: {said}");
    }
    assert!(!base.path().join("symmetric_mp").exists(), "the last process out removed the domain");
}

/// A process that cannot be right is refused with the reason: a secondary
/// before its primary, and a proc id beyond the process count.
#[test]
fn symmetric_mp_refuses_a_lone_secondary_and_a_bad_proc_id() {
    let base = tempfile::tempdir().unwrap();
    let lone = symmetric(base.path(), 2, 1, "10").args(["--wait", "0"]).output().unwrap();
    assert_eq!(lone.status.code(), Some(2));
    assert!(text(&lone.stderr).contains("start process 0 first"), "{}", text(&lone.stderr));

    let mut p = symmetric(base.path(), 2, 0, "1000").spawn().unwrap();
    let mut out = BufReader::new(p.stdout.take().unwrap());
    line(&mut out, "ready");
    let stray = symmetric(base.path(), 2, 5, "1000").output().unwrap();
    assert_eq!(stray.status.code(), Some(2));
    assert!(
        text(&stray.stderr).contains("--proc-id 5 of a secondary must be between 1 and 1"),
        "{}",
        text(&stray.stderr)
    );
    let good = symmetric(base.path(), 2, 1, "1000").output().unwrap();
    assert!(good.status.success(), "{}", text(&good.stderr));
    let report = line(&mut out, "symmetric_mp primary:");
    assert!(p.wait().unwrap().success(), "{report}");
}

/// Seeded trials of symmetric_mp with three processes: process 2 is killed
/// at a random moment of the traffic and started again. Each time the
/// primary reclaims its queues and buffers; every frame arrives intact or
/// leaves a gap in flow order, and no more gaps than the buffers reclaimed
/// from the dead process (the primary's exit status checks both);
/// process 1, untouched, still receives exactly its predicted share; and
/// the pool ends at its baseline.
#[test]
fn a_symmetric_mp_process_killed_and_restarted_loses_only_what_it_held() {
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    for trial in 0..5 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let delay = Duration::from_micros(1000 + rng % 30_000);
        let base = tempfile::tempdir().unwrap();
        let mut p = symmetric(base.path(), 3, 0, "100000").spawn().unwrap();
        let mut out = BufReader::new(p.stdout.take().unwrap());
        line(&mut out, "ready");
        let survivor = symmetric(base.path(), 3, 1, "100000").spawn().unwrap();
        let mut victim = symmetric(base.path(), 3, 2, "100000").spawn().unwrap();
        line(&mut out, "joined");
        line(&mut out, "joined");
        std::thread::sleep(delay);
        victim.kill().unwrap();
        victim.wait().unwrap();
        line(&mut out, &format!("died {}", victim.id()));
        let heir = symmetric(base.path(), 3, 2, "100000").output().unwrap();
        let survivor = survivor.wait_with_output().unwrap();
        let report = line(&mut out, "symmetric_mp primary:");
        let status = p.wait_with_output().unwrap();
        let context = format!("trial {trial} (killed after {delay:?}): {report}{}", text(&status.stderr));
        assert!(status.status.success(), "{context}");
        assert!(heir.status.success(), "{context}: heir {}", text(&heir.stderr));
        assert!(report.contains("bad 0,") && report.contains("deaths 1;"), "{context}");
        assert!(report.ends_with("MProc_pktmbuf_pool in use 0\n"), "{context}");
        let said = text(&survivor.stdout);
        let rx = said.trim().strip_prefix("symmetric_mp proc 1: ").unwrap().split(" forwarded").next().unwrap();
        assert!(report.contains(&format!("predicted proc 1: {rx};")), "survivor said {said:?}; {context}");
        assert!(!base.path().join("symmetric_mp").exists(), "{context}: the domain was removed");
    }
}

fn client_server(base: &Path, prefix: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dtnet"));
    cmd.args(["mp", "client-server", "--clients", "2", "--prefix", prefix, "--runtime-dir"])
        .arg(base)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Starts a client_server_mp server and its two clients; returns the
/// server, its output, and the clients.
fn server_and_clients(base: &Path, prefix: &str, server: &[&str]) -> (Child, BufReader<ChildStdout>, Vec<Child>) {
    let mut p = client_server(base, prefix, server).spawn().unwrap();
    let mut out = BufReader::new(p.stdout.take().unwrap());
    line(&mut out, "ready");
    let clients =
        (0..2).map(|n| client_server(base, prefix, &["--client-id", &n.to_string()]).spawn().unwrap()).collect();
    line(&mut out, "joined");
    line(&mut out, "joined");
    (p, out, clients)
}

/// The number after `key ` in `text`.
fn number(text: &str, key: &str) -> u64 {
    let at = text.find(&format!("{key} ")).unwrap_or_else(|| panic!("no {key:?} in {text}")) + key.len() + 1;
    text[at..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

/// Round-robin: the server hands the clients alternate frames, so each
/// gets half; every frame comes back intact and nothing is dropped.
#[test]
fn client_server_mp_round_robin_splits_evenly_and_delivers_everything() {
    let base = tempfile::tempdir().unwrap();
    let (p, mut out, clients) = server_and_clients(base.path(), "csrr", &["--frames", "20000"]);
    let report = line(&mut out, "client_server_mp server:");
    assert!(p.wait_with_output().unwrap().status.success(), "{report}");
    assert!(report.contains("sent 40000 received 40000 intact, bad 0, lost 0;"), "{report}");
    assert!(report.contains("ring full [0, 0] no client 0;"), "{report}");
    let delivered: Vec<u64> = report
        .split("delivered [")
        .nth(1)
        .unwrap()
        .split(']')
        .next()
        .unwrap()
        .split(", ")
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(delivered[0].abs_diff(delivered[1]) <= 1, "{report}");
    for (n, c) in clients.into_iter().enumerate() {
        let said = text(&c.wait_with_output().unwrap().stdout);
        assert_eq!(number(&said, "received"), delivered[n], "client {n}: {said}");
    }
    assert!(report.ends_with("MProc_pktmbuf_pool in use 0\n"), "{report}");
}

/// Flow hash: every flow crosses one client (the sink checks each flow's
/// order and which client marked it), and both clients carry flows.
#[test]
fn client_server_mp_flow_hash_keeps_every_flow_on_one_client() {
    let base = tempfile::tempdir().unwrap();
    let (p, mut out, clients) =
        server_and_clients(base.path(), "csfh", &["--frames", "20000", "--distribution", "flow-hash"]);
    let report = line(&mut out, "client_server_mp server:");
    assert!(p.wait_with_output().unwrap().status.success(), "{report}");
    assert!(report.contains("sent 40000 received 40000 intact, bad 0, lost 0;"), "{report}");
    assert!(report.contains("split flows 0;"), "{report}");
    for c in clients {
        let said = text(&c.wait_with_output().unwrap().stdout);
        assert!(number(&said, "received") > 0, "both clients carry flows: {said}");
    }
}

/// A client killed mid-run: the server stops handing it frames at once,
/// reclaims what it held, and a client started again with its number
/// rejoins and receives again; every frame is accounted for.
#[test]
fn a_killed_client_is_dropped_from_distribution_and_its_heir_rejoins() {
    let base = tempfile::tempdir().unwrap();
    let (p, mut out, mut clients) = server_and_clients(base.path(), "cskill", &["--frames", "200000"]);
    std::thread::sleep(Duration::from_millis(20));
    clients[1].kill().unwrap();
    clients[1].wait().unwrap();
    line(&mut out, &format!("died {}", clients[1].id()));
    let heir = client_server(base.path(), "cskill", &["--client-id", "1"]).output().unwrap();
    let report = line(&mut out, "client_server_mp server:");
    let status = p.wait_with_output().unwrap();
    assert!(status.status.success(), "{report}{}", text(&status.stderr));
    assert!(report.contains("bad 0,") && report.contains("deaths 1;"), "{report}");
    let said = text(&heir.stdout);
    assert!(
        heir.status.success() && number(&said, "received") > 0,
        "the heir receives again: {said}{}",
        text(&heir.stderr)
    );
    assert!(report.ends_with("MProc_pktmbuf_pool in use 0\n"), "{report}");
}

/// A client that stops (SIGSTOP) stops beating: its small ring fills and
/// the server counts what it cannot hand over, then skips it; once it
/// continues it beats again and gets frames again.
#[test]
fn a_stalled_client_costs_counted_drops_then_is_skipped_until_it_beats_again() {
    use rustix::process::{kill_process, Pid, Signal};
    let base = tempfile::tempdir().unwrap();
    let (p, mut out, clients) =
        server_and_clients(base.path(), "csstall", &["--frames", "200000", "--ring-size", "32"]);
    let pid = Pid::from_raw(clients[1].id() as i32).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    kill_process(pid, Signal::STOP).unwrap();
    line(&mut out, "stalled 1");
    std::thread::sleep(Duration::from_millis(50));
    kill_process(pid, Signal::CONT).unwrap();
    let report = line(&mut out, "client_server_mp server:");
    let status = p.wait_with_output().unwrap();
    assert!(status.status.success(), "{report}{}", text(&status.stderr));
    assert!(number(&report, "stalls") >= 1 && number(&report, "resumed") >= 1, "{report}");
    let full: u64 = report
        .split("ring full [")
        .nth(1)
        .unwrap()
        .split(']')
        .next()
        .unwrap()
        .split(", ")
        .map(|n| n.parse::<u64>().unwrap())
        .sum();
    assert!(full > 0, "the stalled client's full ring cost counted drops: {report}");
    assert_eq!(number(&report, "lost"), full, "and only those were lost: {report}");
    for c in clients {
        assert!(c.wait_with_output().unwrap().status.success());
    }
    assert!(report.ends_with("MProc_pktmbuf_pool in use 0\n"), "{report}");
}

/// `dtnet stats` on a live symmetric_mp domain: both shared ports with
/// their MACs, pool and counters, and each queue's holder (the primary's
/// owner id on queue 0, the secondary's on queue 1).
#[test]
fn stats_show_shared_ports_with_their_queue_holders() {
    let base = tempfile::tempdir().unwrap();
    let mut p = symmetric(base.path(), 2, 0, "300000").spawn().unwrap();
    let mut out = BufReader::new(p.stdout.take().unwrap());
    line(&mut out, "ready");
    let other = symmetric(base.path(), 2, 1, "300000").spawn().unwrap();
    line(&mut out, "joined");
    // "joined" comes with the registration; the secondary takes its queues
    // just after, so look until its holder shows (or the wait runs out).
    let holder_of = |json: &serde_json::Value| json["ports"][0]["queues"][1]["holder"].as_u64();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let json = loop {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dtnet"));
        cmd.args(["stats", "--prefix", "symmetric_mp", "--json", "--runtime-dir"]).arg(base.path());
        let snapshot = cmd.output().unwrap();
        assert!(snapshot.status.success(), "{}", text(&snapshot.stderr));
        let json: serde_json::Value = serde_json::from_slice(&snapshot.stdout).unwrap();
        if holder_of(&json).is_some() || std::time::Instant::now() > deadline {
            break json;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let ports = json["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 2, "{json}");
    for (i, port) in ports.iter().enumerate() {
        assert_eq!(port["name"], format!("port{i}"));
        assert_eq!(port["mac"], format!("02:00:00:00:00:1{i}"));
        assert_eq!(
            (port["pool"].as_str(), port["primary_pid"].as_u64()),
            (Some("MProc_pktmbuf_pool"), Some(p.id().into()))
        );
        let holders: Vec<(&str, Option<u64>)> = port["queues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| (q["side"].as_str().unwrap(), q["holder"].as_u64()))
            .collect();
        assert_eq!(
            holders,
            [("rx", Some(1)), ("rx", Some(1_048_576)), ("tx", Some(1)), ("tx", Some(1_048_576))],
            "{port}"
        );
    }
    let report = line(&mut out, "symmetric_mp primary:");
    assert!(p.wait().unwrap().success(), "{report}");
    assert!(other.wait_with_output().unwrap().status.success());
}

/// Two domains on one host at once, as two `--file-prefix` runs of
/// symmetric_mp: each with its own ports, pool and traffic, both intact,
/// and neither sees the other's objects.
#[test]
fn independent_domains_run_side_by_side_without_seeing_each_other() {
    let base = tempfile::tempdir().unwrap();
    let start =
        |prefix: &str, id: u16| symmetric(base.path(), 2, id, "100000").args(["--prefix", prefix]).spawn().unwrap();
    let mut primaries = Vec::new();
    for prefix in ["left", "right"] {
        let mut p = start(prefix, 0);
        let mut out = BufReader::new(p.stdout.take().unwrap());
        line(&mut out, "ready");
        primaries.push((p, out));
    }
    // Each primary waits for its secondary, so both domains are alive
    // while they are looked at (a run could otherwise end first).
    let mut names = Vec::new();
    for prefix in ["left", "right"] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dtnet"));
        let json =
            cmd.args(["stats", "--prefix", prefix, "--json", "--runtime-dir"]).arg(base.path()).output().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        let pids: Vec<u64> = json["processes"].as_array().unwrap().iter().map(|p| p["pid"].as_u64().unwrap()).collect();
        names.push((json["ports"].as_array().unwrap().len(), pids));
    }
    let others: Vec<Child> = ["left", "right"].iter().map(|prefix| start(prefix, 1)).collect();
    for (i, ((p, mut out), other)) in primaries.into_iter().zip(others).enumerate() {
        assert_eq!(names[i].0, 2, "each domain has its own two ports");
        assert_eq!(names[i].1.first(), Some(&u64::from(p.id())), "and its own primary");
        let report = line(&mut out, "symmetric_mp primary:");
        assert!(report.contains("sent 200000 received 200000 intact, bad 0, gaps 0, lost 0;"), "{report}");
        assert!(p.wait_with_output().unwrap().status.success(), "{report}");
        assert!(other.wait_with_output().unwrap().status.success());
    }
}

fn gazelle_vf(base: &Path, model: &str, id: u16, bytes: &str) -> Command {
    gazelle("gazelle-vf", base, model, id, bytes)
}

/// Process `id` of three of gazelle mode `mode`, six connections of
/// `bytes` each per client process.
fn gazelle(mode: &str, base: &Path, model: &str, id: u16, bytes: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dtnet"));
    cmd.args(["mp", mode, "--num-procs", "3", "--proc-id", &id.to_string(), "--model", model])
        .args(["--conns", "6", "--bytes", bytes, "--runtime-dir"])
        .arg(base)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// gazelle with one VF per process, under both thread models: each
/// process runs a stack on its own VF of the domain's NIC, whose switch
/// (in the primary) carries TCP between them. Every client connection is
/// echoed intact, the server served each in full, the switch dropped
/// nothing, every VF pool is back to its baseline, and the domain is gone.
#[test]
fn gazelle_processes_on_their_own_vfs_talk_tcp_through_the_nic_switch() {
    for model in ["rtc", "rtw"] {
        let base = tempfile::tempdir().unwrap();
        let mut p = gazelle_vf(base.path(), model, 0, "100000").spawn().unwrap();
        let mut out = BufReader::new(p.stdout.take().unwrap());
        line(&mut out, "ready");
        let clients: Vec<Child> =
            (1..3).map(|n| gazelle_vf(base.path(), model, n, "100000").spawn().unwrap()).collect();
        for (n, client) in (1..).zip(clients) {
            let client = client.wait_with_output().unwrap();
            let said = text(&client.stdout);
            assert!(client.status.success(), "{model} proc {n}: {said}{}", text(&client.stderr));
            assert!(said.contains(&format!("proc {n}: 6 of 6 connections echoed intact")), "{model}: {said}");
        }
        let report = line(&mut out, "gazelle-vf primary:");
        let status = p.wait_with_output().unwrap();
        assert!(status.status.success(), "{model}: {report}{}", text(&status.stderr));
        assert!(report.contains("served 12 of 12 connections in full, aborted 0 of 12 accepted;"), "{model}: {report}");
        assert!(report.contains("switch drops 0; deaths 0, dead own 0; pools in use 0;"), "{model}: {report}");
        assert!(!base.path().join("gazelle_vf").exists(), "{model}: the last process out removed the domain");
    }
}

/// gazelle with one VF per process, `kill -9` of a client in the middle
/// of its connections, then its heir: the primary reclaims the dead's VF
/// (nothing left marked as the dead's, every pool back to its baseline),
/// the server aborts only the dead's connections (its keep-alives go
/// unanswered or meet the heir's resets), and the heir and the untouched
/// client echo every connection intact. Under both thread models, at a
/// few moments.
#[test]
fn a_gazelle_process_killed_on_its_vf_is_reclaimed_and_its_heir_takes_over() {
    kill_and_heir("gazelle-vf", &[("rtc", 5), ("rtw", 20), ("rtc", 40), ("rtw", 2)]);
}

/// Runs gazelle mode `mode` with three processes at each (thread model,
/// moment): kills process 1 that long after both clients joined, starts
/// its heir once the primary reported the death, and checks that the heir
/// and process 2 echoed everything intact, the primary's checks held with
/// exactly one death and nothing left of the dead, and the domain is gone.
fn kill_and_heir(mode: &str, moments: &[(&str, u64)]) {
    for &(model, after_ms) in moments {
        let base = tempfile::tempdir().unwrap();
        let process = |n: u16| gazelle(mode, base.path(), model, n, "4000000").spawn().unwrap();
        let mut p = process(0);
        let mut out = BufReader::new(p.stdout.take().unwrap());
        line(&mut out, "ready");
        let (mut victim, other) = (process(1), process(2));
        line(&mut out, "joined");
        line(&mut out, "joined");
        std::thread::sleep(Duration::from_millis(after_ms));
        victim.kill().unwrap();
        victim.wait().unwrap();
        // The heir starts once the primary has reclaimed the dead's queues.
        line(&mut out, &format!("died {}", victim.id()));
        let heir = process(1).wait_with_output().unwrap();
        assert!(heir.status.success(), "{mode} {model}: heir: {}{}", text(&heir.stdout), text(&heir.stderr));
        let other = other.wait_with_output().unwrap();
        assert!(other.status.success(), "{mode} {model}: proc 2: {}{}", text(&other.stdout), text(&other.stderr));
        let report = line(&mut out, &format!("{mode} primary:"));
        let status = p.wait_with_output().unwrap();
        let context = format!("{mode} {model}, kill after {after_ms} ms: {report}{}", text(&status.stderr));
        assert!(status.status.success(), "{context}");
        assert!(report.contains("switch drops 0; deaths 1, dead own 0; pools in use 0;"), "{context}");
        let domain = mode.replace('-', "_");
        assert!(!base.path().join(domain).exists(), "{context}: the last process out removed the domain");
    }
}

/// gazelle's tuple_filter mode, under both thread models: three processes
/// on one port and one address, process 0 in the primary beside the NIC and
/// the LAN's echo server. Each secondary's connections reach its own queue
/// through a flow rule the primary made at its request (one per
/// connection), and it learns the server's MAC from the copies process 0
/// hands on through the port's hairpin (its own ARP replies land on queue
/// 0). With `--inbound`, every process also listens and the LAN peer
/// connects to each: a listener's rule brings the SYNs to its process,
/// whatever process 0 is. Every connection both ways is echoed intact
/// (each secondary held 6 + 6 connection rules and a listener's), nothing
/// is dropped or left in a pool, no rule outlives its process, and the
/// domain is gone.
#[test]
fn tuple_filter_processes_share_one_port_with_rules_the_primary_makes() {
    for model in ["rtc", "rtw"] {
        let report = inbound_run("tuple-filter", model, 12);
        assert!(report.contains("served 18 of 18 connections in full, aborted 0 of 18 accepted;"), "{model}: {report}");
        let clean = "deaths 0, dead own 0; pools in use 0; flow rules granted 26; inbound 18 of 18 echoed intact\n";
        assert!(report.contains("switch drops 0;") && report.ends_with(clean), "{model}: {report}");
    }
}

/// Runs gazelle mode `mode` with three processes and `--inbound` under
/// `model`: each client process must say it echoed `per_client`
/// connections intact (see [`three_processes`]); returns the primary's report.
fn inbound_run(mode: &str, model: &str, per_client: usize) -> String {
    three_processes(mode, model, &["--inbound"], |n| {
        format!("proc {n}: {per_client} of {per_client} connections echoed intact")
    })
}

/// Runs gazelle mode `mode` with three processes under `model`, each
/// given `args`: each client process must succeed and say `says(n)`, the
/// primary must succeed, and no domain may be left; returns the primary's
/// report.
fn three_processes(mode: &str, model: &str, args: &[&str], says: impl Fn(u16) -> String) -> String {
    let base = tempfile::tempdir().unwrap();
    let process = |n: u16| gazelle(mode, base.path(), model, n, "100000").args(args).spawn();
    let mut p = process(0).unwrap();
    let mut out = BufReader::new(p.stdout.take().unwrap());
    line(&mut out, "ready");
    let clients: Vec<Child> = (1..3).map(|n| process(n).unwrap()).collect();
    for (n, client) in (1..).zip(clients) {
        let client = client.wait_with_output().unwrap();
        let said = text(&client.stdout);
        assert!(client.status.success(), "{mode} {model} {args:?} proc {n}: {said}{}", text(&client.stderr));
        assert!(said.contains(&says(n)), "{mode} {model} {args:?}: {said}");
    }
    let report = line(&mut out, &format!("{mode} primary:"));
    let status = p.wait_with_output().unwrap();
    assert!(status.status.success(), "{mode} {model} {args:?}: {report}{}", text(&status.stderr));
    let domain = mode.replace('-', "_");
    assert!(!base.path().join(domain).exists(), "{mode} {model}: the last process out removed the domain");
    report
}

/// tuple_filter with a process killed (`kill -9`) in the middle of its
/// connections, then its heir: the primary frees the dead's queue and
/// buffers and destroys its flow rules (none is left when the run ends),
/// the server aborts only the dead's connections, and the heir (on the
/// same queue, with rules of its own) and the others echo every connection
/// intact. Under both thread models, at a few moments.
#[test]
fn a_tuple_filter_process_killed_loses_its_queue_and_rules_and_its_heir_takes_over() {
    kill_and_heir("tuple-filter", &[("rtc", 5), ("rtw", 20), ("rtc", 40)]);
}

/// Inbound connections are tuple_filter's: gazelle_vf's primary refuses
/// the flag and says why.
#[test]
fn gazelle_vf_refuses_inbound_connections() {
    let base = tempfile::tempdir().unwrap();
    let out = gazelle_vf(base.path(), "rtc", 0, "1000").arg("--inbound").output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("inbound connections are tuple_filter's and ltran's"), "{}", text(&out.stderr));
}

/// gazelle's ltran mode, under both thread models: process 0 is ltran
/// (the forwarder on the NIC, beside the LAN's echo server) and two lstack
/// instances share its port and one address. Each instance's connections
/// come back to it because it registered them with the forwarder (one
/// registration per connection, confirmed for the inbound ones), and it
/// learns the server's MAC from the ARP reply the forwarder copies to
/// every instance. With `--inbound` both instances listen on one port and
/// the forwarder hands each of the LAN peer's 12 connections to the one
/// with the fewest: both get some, and all are echoed intact. The forwarder
/// dropped nothing, no entry outlives its instance, every pool is back to
/// its baseline and the domain is gone.
#[test]
fn ltran_switches_each_frame_to_its_instance_and_spreads_new_connections() {
    for model in ["rtc", "rtw"] {
        let report = inbound_run("ltran", model, 6);
        assert!(report.contains("served 12 of 12 connections in full, aborted 0 of 12 accepted;"), "{model}: {report}");
        let clean = "deaths 0, dead own 0; pools in use 0; flow rules granted 26; inbound 12 of 12 echoed intact;";
        assert!(report.contains("switch drops 0;") && report.contains(clean), "{model}: {report}");
        let spread = report.split("spread [").nth(1).and_then(|s| s.split(']').next()).unwrap_or_default();
        let spread: Vec<u64> = spread.split(", ").map(|n| n.parse().unwrap()).collect();
        assert!(spread.len() == 2 && spread.iter().all(|&n| n > 0) && spread.iter().sum::<u64>() == 12, "{report}");
        assert!(report.ends_with("forwarder misses 0\n"), "{model}: {report}");
    }
}

/// ltran with an instance killed (`kill -9`) in the middle of its
/// connections, then its heir: the primary frees the dead's queue and
/// buffers and the forwarder forgets its connections at once (nothing is
/// left when the run ends), the server aborts only the dead's connections,
/// and the heir (on the same queue, registering afresh) and the other
/// instance echo every connection intact. Under both thread models, at a
/// few moments.
#[test]
fn an_ltran_instance_killed_loses_its_queue_and_entries_and_its_heir_takes_over() {
    kill_and_heir("ltran", &[("rtc", 5), ("rtw", 20), ("rtc", 40)]);
}

/// gazelle's `num_cpus` across processes: with `--stacks 2` every lstack
/// process of each mode runs two stacks, on two queues of its VF (RSS
/// between them) or of the shared port (tuple_filter's rules, ltran's
/// registrations naming either), and spreads its connections over them.
/// Every client's connections are echoed intact, three by each stack; the
/// primary's checks hold (nothing dropped, no rule or entry left, pools at
/// their baselines) and the domain is gone.
#[test]
fn gazelle_processes_run_several_stacks_each_in_every_mode() {
    for mode in ["gazelle-vf", "tuple-filter", "ltran"] {
        let report = three_processes(mode, "rtc", &["--stacks", "2"], |n| {
            format!("proc {n}: 6 of 6 connections echoed intact, by stack [3, 3]")
        });
        assert!(report.contains("switch drops 0; deaths 0, dead own 0; pools in use 0;"), "{mode}: {report}");
    }
}

/// tuple_filter with `--kernel`: process 0 shares the port with the Linux
/// kernel (gazelle's flow_bifurcation), whose echo server the LAN peer
/// reaches through the port at the processes' shared address while every
/// process runs its own connections. Every connection is echoed intact,
/// the kernel's included, and nothing is left in a pool (the kernel TAP's
/// included). Needs root and TUN: without them it says why and passes.
#[test]
fn tuple_filter_process_0_shares_the_port_with_the_kernel() {
    if let Some(why) = kernel_peer::netns::unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let report = three_processes("tuple-filter", "rtc", &["--kernel"], |n| {
        format!("proc {n}: 6 of 6 connections echoed intact")
    });
    assert!(report.contains("served 18 of 18 connections in full"), "{report}");
    assert!(report.contains("pools in use 0;") && report.ends_with("kernel 6 of 6 echoed intact\n"), "{report}");
}

/// Only tuple_filter's process 0 has lstack queues to share with a kernel:
/// gazelle_vf's and ltran's primaries refuse `--kernel` and say why.
#[test]
fn only_tuple_filter_shares_its_port_with_a_kernel() {
    for mode in ["gazelle-vf", "ltran"] {
        let base = tempfile::tempdir().unwrap();
        let out = gazelle(mode, base.path(), "rtc", 0, "1000").arg("--kernel").output().unwrap();
        assert!(!out.status.success(), "{mode}");
        assert!(text(&out.stderr).contains("a kernel sharing the port is tuple_filter's"), "{}", text(&out.stderr));
    }
}

/// `dtnet stats` shows an ltran forwarder's table while it runs: the
/// counters the primary publishes in the domain read back through a
/// tool attached as a secondary, with the instances' registrations and
/// the connections they hold.
#[test]
fn dtnet_stats_shows_the_ltran_forwarders_table() {
    let base = tempfile::tempdir().unwrap();
    let process = |n: u16| gazelle("ltran", base.path(), "rtc", n, "20000000").spawn().unwrap();
    let mut p = process(0);
    let mut out = BufReader::new(p.stdout.take().unwrap());
    line(&mut out, "ready");
    let instances: Vec<Child> = (1..3).map(process).collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let forwarder = loop {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dtnet"));
        cmd.args(["stats", "--prefix", "ltran", "--json", "--runtime-dir"]).arg(base.path());
        let snapshot = cmd.output().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&snapshot.stdout).unwrap_or_default();
        let forwarder = json["forwarders"][0].clone();
        let busy = ["entries", "delivered"].iter().all(|k| forwarder[k].as_u64().unwrap_or(0) > 0);
        if busy || std::time::Instant::now() > deadline {
            break forwarder;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(forwarder["name"], "ltran.stats", "{forwarder}");
    assert!(forwarder["registered"].as_u64() >= forwarder["entries"].as_u64(), "{forwarder}");
    assert!(forwarder["delivered"].as_u64() > Some(0), "{forwarder}");
    assert_eq!(forwarder["dispatched"].as_array().map(Vec::len), Some(2), "a word per queue: {forwarder}");
    for instance in instances {
        assert!(instance.wait_with_output().unwrap().status.success());
    }
    let report = line(&mut out, "ltran primary:");
    assert!(p.wait().unwrap().success(), "{report}");
}
