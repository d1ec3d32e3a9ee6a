//! The `dtnet` binary as a user runs it.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn dtnet() -> Command {
    Command::cargo_bin("dtnet").unwrap()
}

/// The workspace root, where `scenarios/` lives.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).unwrap().to_owned()
}

/// A fresh directory for one test's files.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dtnet-cli-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Two echo connections from a client whose link has a delay, so that the
/// conversation takes virtual time.
const TINY: &str = r#"
name = "tiny"
description = "Two hosts: echo connections over a link with delay."
seed = 3
executor = "sim"
duration = "10s"

[[host]]
name = "server"
mac = "02:00:00:00:00:01"
ipv4 = "10.0.0.1/24"
stacks = 2

[[host]]
name = "client"
mac = "02:00:00:00:00:02"
ipv4 = "10.0.0.2/24"
stacks = 1
impairments = { delay = "100us" }

[[traffic.echo]]
client = "client"
server = "server"
conns = 2
bytes = "8KiB"
"#;

fn tiny(dir: &Path) -> PathBuf {
    let path = dir.join("tiny.toml");
    std::fs::write(&path, TINY).unwrap();
    path
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn rss_prints_the_hash_and_queue_of_a_microsoft_vector() {
    let out = dtnet()
        .args(["rss", "--src", "66.9.149.187", "--dst", "161.142.100.80", "--sport", "2794", "--dport", "1766"])
        .args(["--queues", "4"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let expected_queue = (0x51cc_c178u32 & 127) % 4;
    assert_eq!(stdout(&out).trim(), format!("hash 0x51ccc178 queue {expected_queue}"));
}

#[test]
fn rss_over_addresses_only_and_with_an_explicit_reta() {
    let reta = ["3"; 64].join(",");
    let out = dtnet()
        .args([
            "rss",
            "--src",
            "3ffe:2501:200:1fff::7",
            "--dst",
            "3ffe:2501:200:3::1",
            "--sport",
            "2794",
            "--dport",
            "1766",
        ])
        .args(["--types", "ipv6", "--reta", &reta])
        .output()
        .unwrap();
    assert_eq!(stdout(&out).trim(), "hash 0x2cc18cd5 queue 3");
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let out = dtnet().args(["rss", "--src", "1.2.3.4", "--dst", "::1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("invalid dst"));
    let out = dtnet().args(["rss", "--src", "1.2.3.4", "--dst", "1.2.3.5", "--key", "abcd"]).output().unwrap();
    assert!(stderr(&out).contains("invalid rss.key"));
    let out = dtnet().args(["run", "no/such/scenario.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no/such/scenario.toml"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "nothing runs when a file does not load");
}

#[test]
fn run_passes_its_default_scenario_and_a_stack_run_per_forwarding_mode() {
    let out = dtnet().arg("run").output().unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("scenario default"), "{text}");
    assert!(text.contains("result: PASS"));
    assert!(!text.contains("[FAIL]"));
    let summary = text.split("summary\n").nth(1).expect("a summary table after the runs");
    let rows: Vec<&str> = summary.lines().skip(1).filter(|l| !l.is_empty()).collect();
    let modes = ["bare ports", "rss /", "listen_shadow /", "soft_forward /", "flow_director /"];
    assert_eq!(rows.len(), modes.len(), "{summary}");
    for (row, mode) in rows.iter().zip(modes) {
        assert!(row.contains(mode) && row.ends_with("pass"), "{row:?} should be a passing {mode} run");
    }
}

#[test]
fn list_names_and_describes_every_scenario() {
    let out = dtnet().arg("list").current_dir(workspace()).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.lines().any(|l| l.starts_with("default ") && l.contains("Three bare ports")), "{text}");
    let dir = scratch("list");
    tiny(&dir);
    std::fs::write(dir.join("notes.txt"), "not a scenario").unwrap();
    let out = dtnet().arg("list").arg(&dir).output().unwrap();
    assert_eq!(stdout(&out), "tiny  Two hosts: echo connections over a link with delay.\n");
    std::fs::write(dir.join("broken.toml"), "name = ").unwrap();
    let out = dtnet().arg("list").arg(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).starts_with("tiny "), "the good files are still listed");
    assert!(stderr(&out).contains("broken.toml:1"), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn check_names_file_line_and_key_of_a_bad_scenario() {
    let dir = scratch("check");
    let good = tiny(&dir);
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, TINY.replace("stacks = 2", "stacks = 2\nstackz = 3")).unwrap();
    let out = dtnet().arg("check").arg(&good).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("ok {} (tiny)\n", good.display()));
    let out = dtnet().arg("check").arg(&good).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let line = TINY.lines().position(|l| l == "stacks = 2").unwrap() + 2;
    let message = stderr(&out);
    assert!(message.contains(&format!("{}:{line}: key \"host[0].stackz\"", bad.display())), "{message}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn check_refuses_what_run_would_refuse() {
    let dir = scratch("check-run");
    let bad = dir.join("wide.toml");
    std::fs::write(&bad, TINY.replace("stacks = 2", "stacks = 65")).unwrap();
    let line = TINY.lines().position(|l| l == "stacks = 2").unwrap() + 1;
    for command in ["check", "run"] {
        let out = dtnet().arg(command).arg(&bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{command}");
        let expected = format!("dtnet: {}:{line}: key \"host[0].stacks\": 65 exceeds the limit of 64\n", bad.display());
        assert_eq!(stderr(&out), expected, "{command}");
    }
    let huge = dir.join("huge.toml");
    let conns = "rx_buffer = \"64MiB\"\ntx_buffer = \"64MiB\"\n";
    std::fs::write(
        &huge,
        TINY.replace("conns = 2", "conns = 1000000").replace("stacks = 1\n", &format!("stacks = 1\n{conns}")),
    )
    .unwrap();
    let out = dtnet().arg("run").arg(&huge).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "refused, not aborted: {}", stderr(&out));
    let expected = format!("dtnet: {}: key \"traffic.echo[0]\": the run needs an estimated ", huge.display());
    assert!(stderr(&out).starts_with(&expected), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A kernel host sharing a stack host's NIC (`nic`, flow bifurcation) is
/// checked before anything runs: a kernel only, sharing a stack host that
/// exists, with that host's MAC and address, one kernel per NIC, and no
/// link of its own to impair.
#[test]
fn check_refuses_a_kernel_that_cannot_share_the_nic_it_names() {
    let dir = scratch("shared-nic");
    let shipped = std::fs::read_to_string(workspace().join("scenarios/kernel-shared-nic-threads.toml")).unwrap();
    let kernel = "kind = \"kernel\"\nnic = \"server\"\nmac = \"02:00:00:00:00:01\"";
    assert!(shipped.contains(kernel), "the shipped scenario shares server's NIC");
    let cases = [
        (shipped.replace("nic = \"server\"", "nic = \"nobody\""), "no host \"nobody\""),
        (shipped.replace("nic = \"server\"", "nic = \"client\"\nimpairments = { loss = 0.1 }"), "MAC and addresses"),
        (
            shipped.replace(kernel, "kind = \"kernel\"\nnic = \"server\"\nmac = \"02:00:00:00:00:09\""),
            "MAC and addresses",
        ),
        (shipped.replace("nic = \"server\"", "nic = \"server\"\nimpairments = { loss = 0.1 }"), "no link of its own"),
        (shipped.replace("name = \"client\"\n", "name = \"client\"\nnic = \"server\"\n"), "only a kernel host"),
        (shipped.replace("nic = \"server\"", "nic = \"server-kernel\""), "no stacks on a user-veth port"),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let bad = dir.join(format!("bad{i}.toml"));
        std::fs::write(&bad, text).unwrap();
        let out = dtnet().arg("check").arg(&bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "case {i}: {}", stderr(&out));
        assert!(stderr(&out).contains(expected) && stderr(&out).contains("key \"host["), "case {i}: {}", stderr(&out));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn run_stops_at_its_timeout_reporting_what_was_unfinished() {
    let dir = scratch("timeout");
    let long = dir.join("long.toml");
    std::fs::write(&long, TINY.replace("bytes = \"8KiB\"", "bytes = \"1GiB\"")).unwrap();
    let started = std::time::Instant::now();
    let out = dtnet().args(["run", "--timeout", "200ms"]).arg(&long).output().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "took {:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = stdout(&out);
    assert!(report.contains("ended within the wall-clock limit (--timeout)"), "{report}");
    assert!(report.contains("unfinished task(s): client"), "{report}");
    let out = dtnet().args(["run", "--timeout", "soon"]).arg(&long).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("expected a duration like"), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn run_json_prints_one_object_per_scenario() {
    let dir = scratch("json");
    let path = tiny(&dir);
    let out = dtnet().arg("run").arg(&path).arg(&path).args(["--json", "--seed", "9"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let reports: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(reports.len(), 2, "{text}");
    for report in &reports {
        assert_eq!(report["name"], "tiny");
        assert_eq!(report["seed"], 9);
        let checks = report["expectations"].as_array().unwrap();
        assert!(!checks.is_empty() && checks.iter().all(|c| c["passed"] == true), "{report}");
    }
    assert!(stderr(&out).is_empty(), "no progress bar when stderr is not a terminal");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn run_record_writes_a_pcapng_per_scenario() {
    let dir = scratch("record");
    let path = tiny(&dir);
    let out = dtnet().arg("run").arg(&path).arg("--record").arg(dir.join("caps")).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let records = capture::read(&std::fs::read(dir.join("caps/tiny.pcapng")).unwrap()).unwrap();
    let mut names: Vec<&str> = records.iter().filter_map(|r| r.interface.as_deref()).collect();
    names.sort_unstable();
    names.dedup();
    let expected = ["client", "client/rxq0", "client/txq0", "server", "server/rxq0", "server/rxq1"];
    assert_eq!(names[..6], expected);
    assert!(records.windows(2).all(|w| w[0].time <= w[1].time), "time-ordered");
    let out = dtnet().arg("record").arg(&path).args(["--format", "pcap", "-o"]).arg(dir.join("t.pcap")).output();
    let out = out.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("recorded {} frames on", records.len())), "{}", stdout(&out));
    let plain = capture::read(&std::fs::read(dir.join("t.pcap")).unwrap()).unwrap();
    assert_eq!(plain.len(), records.len());
    assert!(plain.iter().all(|r| r.interface.is_none()), "classic pcap has no interface names");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn replay_compares_with_a_golden_trace() {
    let dir = scratch("replay");
    let scenario = tiny(&dir);
    let capture = dir.join("tiny.pcapng");
    let out = dtnet().arg("record").arg(&scenario).arg("-o").arg(&capture).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let replay = |extra: &[&str]| {
        let mut cmd = dtnet();
        cmd.arg("replay").arg(&capture).args(["--into", "server", "--scenario"]).arg(&scenario).args(extra);
        cmd.output().unwrap()
    };
    let printed = replay(&[]);
    assert!(printed.status.success(), "{}", stderr(&printed));
    let trace = stdout(&printed);
    let echoed =
        trace.lines().filter(|l| l.contains(" server out ") && l.contains("tcp 5202>") && !l.ends_with("len=0"));
    assert!(echoed.count() >= 2, "the echo listeners on the capture's port answered: {trace}");
    assert!(!trace.contains("[R"), "the same server, so nothing is refused or reset: {trace}");
    let golden = dir.join("golden.trace");
    let golden_arg = golden.to_str().unwrap();
    let out = replay(&["--expect", golden_arg]);
    assert_eq!(out.status.code(), Some(2), "a missing golden file is an error");
    assert!(stderr(&out).contains("--update"), "{}", stderr(&out));
    let out = replay(&["--expect", golden_arg, "--update"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&golden).unwrap(), trace);
    let out = replay(&["--expect", golden_arg]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("lines match"));
    std::fs::write(&golden, trace.replacen("server in", "server out", 1)).unwrap();
    let out = replay(&["--expect", golden_arg]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("line 1 differs"), "{}", stdout(&out));
    let builtin = dtnet().arg("replay").arg(&capture).args(["--into", "server", "--pace", "fast"]).output().unwrap();
    assert!(builtin.status.success(), "{}", stderr(&builtin));
    let lines: Vec<String> = stdout(&builtin).lines().map(str::to_owned).collect();
    assert!(!lines.is_empty() && lines.iter().all(|l| l.contains(" server")), "the built-in topology: server only");
    assert!(trace.lines().any(|l| l.contains(" client ")), "the scenario's topology has the client too");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn replay_refuses_a_damaged_capture_naming_the_offset() {
    let dir = scratch("damaged");
    let out = dtnet().arg("record").arg(tiny(&dir)).arg("-o").arg(dir.join("t.pcapng")).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let bytes = std::fs::read(dir.join("t.pcapng")).unwrap();
    std::fs::write(dir.join("cut.pcapng"), &bytes[..bytes.len() - 7]).unwrap();
    let out = dtnet().arg("replay").arg(dir.join("cut.pcapng")).args(["--into", "server"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let message = stderr(&out);
    assert!(message.contains("truncated block at byte offset") && message.contains("refusing"), "{message}");
    assert!(stdout(&out).is_empty(), "nothing is replayed");
    let out = dtnet().arg("replay").arg(dir.join("t.pcapng")).args(["--into", "nobody"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no host \"nobody\" to replay into (hosts: server)"), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn logs_follow_verbosity_and_name_retired_config_keys() {
    let dir = scratch("logs");
    std::fs::write(dir.join("tiny.toml"), TINY).unwrap();
    // Warnings only by default: a clean run logs nothing.
    let quiet = dtnet().arg("run").arg(dir.join("tiny.toml")).env_remove("RUST_LOG").output().unwrap();
    assert!(quiet.status.success());
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "");
    // -v: the run's start and end.
    let verbose = dtnet().args(["-v", "run"]).arg(dir.join("tiny.toml")).env_remove("RUST_LOG").output().unwrap();
    let log = String::from_utf8_lossy(&verbose.stderr);
    assert!(log.contains("run starts") && log.contains("run ends") && log.contains("tiny"), "{log}");
    // RUST_LOG overrides the flags.
    let env = dtnet().args(["-q", "run"]).arg(dir.join("tiny.toml")).env("RUST_LOG", "debug").output().unwrap();
    let log = String::from_utf8_lossy(&env.stderr);
    assert!(log.contains("tcp connect") && log.contains("tcp accept") && log.contains("tcp close"), "{log}");
    // Debug logs also follow the run's progress, a line per tenth.
    assert!(log.lines().filter(|l| l.contains("progress")).count() >= 2, "{log}");
    // A retired gazelle key is a warning naming file, line and key; -q hides it.
    let conf = std::fs::read_to_string(workspace().join("scenarios/configs/server.lstack.conf")).unwrap();
    std::fs::create_dir_all(dir.join("configs")).unwrap();
    std::fs::write(dir.join("configs/server.lstack.conf"), format!("{}\nnum_wakeup = 1\n", conf.trim_end())).unwrap();
    std::fs::copy(workspace().join("scenarios/configs/client.toml"), dir.join("configs/client.toml")).unwrap();
    std::fs::copy(workspace().join("scenarios/lstack-conf.toml"), dir.join("lstack-conf.toml")).unwrap();
    let warned = dtnet().arg("check").arg(dir.join("lstack-conf.toml")).env_remove("RUST_LOG").output().unwrap();
    let log = String::from_utf8_lossy(&warned.stderr);
    assert!(warned.status.success(), "{log}");
    let line = conf.trim_end().lines().count() + 1;
    assert!(log.contains(&format!("server.lstack.conf:{line}: key \"num_wakeup\": warning")), "{log}");
    let hushed =
        dtnet().args(["-q", "check"]).arg(dir.join("lstack-conf.toml")).env_remove("RUST_LOG").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&hushed.stderr), "");
}
