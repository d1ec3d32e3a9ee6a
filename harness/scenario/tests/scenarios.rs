//! The scenario files and the engine that runs them: every file in
//! `scenarios/` loads and passes with every buffer back in its pool; a
//! simulated scenario is a function of its seed; failed expectations say
//! why; and a bad file is refused with its file, line and key path.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rstest::rstest;
use scenario::{Progress, RunOptions, Scenario, ScenarioReport, Traffic};

const SCENARIOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios");

fn load(name: &str) -> Scenario {
    Scenario::load(&Path::new(SCENARIOS).join(name)).unwrap_or_else(|e| panic!("{e}"))
}

fn run(scenario: &Scenario, record: bool) -> ScenarioReport {
    scenario::run(scenario, &RunOptions { record, ..RunOptions::default() }).unwrap_or_else(|e| panic!("{e}"))
}

fn failed(report: &ScenarioReport) -> Vec<&str> {
    report.expectations.iter().filter(|c| !c.passed).map(|c| c.name.as_str()).collect()
}

/// Resident memory a shipped scenario may peak at.
const MEMORY_CEILING_KIB: u64 = 512 * 1024;

/// One test per file (`threads` in a file name puts its test in the
/// one-at-a-time group). nextest runs each test in its own process, so the
/// process's peak resident memory is this scenario's.
#[rstest]
fn every_scenario_passes(#[files("../../scenarios/*.toml")] path: PathBuf) {
    let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    if let Some(why) = scenario.unavailable() {
        eprintln!("SKIPPED {}: {why}", scenario.name);
        return;
    }
    let report = run(&scenario, false);
    assert!(report.passed(), "{report}");
    let leaks = report.expectations.iter().find(|c| c.name == "no leaks: every buffer back in its pool");
    assert!(leaks.is_some_and(|c| c.passed && c.detail == "0 buffers in use"), "{report}");
    assert!(report.traffic.iter().all(|t| t.done > 0), "every traffic entry did something: {report}");
    let peak = report.peak_memory_kib.expect("Linux reports VmHWM");
    assert!(peak < MEMORY_CEILING_KIB, "peak resident memory {peak} KiB: {report}");
}

#[test]
fn impairment_scenarios_are_impaired() {
    let ports = |name: &str| run(&load(name), false).ports;
    let link_drops = |name: &str, reason: &str| -> u64 {
        ports(name).iter().flat_map(|p| [&p.link_in_drops, &p.link_out_drops]).filter_map(|m| m.get(reason)).sum()
    };
    assert!(link_drops("impaired-loss.toml", "loss") > 0);
    assert!(link_drops("impaired-flap.toml", "link_down") > 0);
    assert!(ports("impaired-corrupt.toml").iter().map(|p| p.corrupted).sum::<u64>() > 0);
    assert!(ports("impaired-duplicate.toml").iter().map(|p| p.duplicated).sum::<u64>() > 0);
}

#[test]
fn a_sim_scenario_is_a_function_of_its_seed() {
    let scenario = load("impaired-loss.toml");
    let first = run(&scenario, true);
    let again = run(&scenario, true);
    let other = run(&scenario.clone().with_seed(99), true);
    assert!(first.passed() && other.passed(), "{first}\n{other}");
    assert!(!first.records.is_empty());
    assert_eq!(first.comparable(), again.comparable());
    assert!(first.records == again.records, "same seed, different captures");
    assert_ne!(first.comparable(), other.comparable());
    assert!(first.records != other.records, "different seeds gave identical captures");
}

#[test]
fn recording_covers_every_port_and_queue_only_when_asked() {
    let scenario = load("rss-rtw.toml");
    assert!(run(&scenario, false).records.is_empty());
    let records = run(&scenario, true).records;
    let mut interfaces: Vec<&str> = records.iter().filter_map(|r| r.interface.as_deref()).collect();
    interfaces.sort_unstable();
    interfaces.dedup();
    let expected = [
        "client",
        "client/rxq0",
        "client/rxq1",
        "client/txq0",
        "client/txq1",
        "server",
        "server/rxq0",
        "server/rxq1",
        "server/rxq2",
        "server/rxq3",
        "server/txq0",
        "server/txq1",
        "server/txq2",
        "server/txq3",
    ];
    assert_eq!(interfaces, expected);
}

#[test]
fn the_replay_fixture_is_what_its_recording_scenario_records() {
    let recorded = run(&load("replay/record-echo.toml"), true).records;
    let server: Vec<_> = recorded.into_iter().filter(|r| r.interface.as_deref() == Some("server")).collect();
    let fixture = std::fs::read(Path::new(SCENARIOS).join("replay/echo-client.pcapng")).unwrap();
    assert_eq!(capture::read(&fixture).ok(), Some(server));
}

#[test]
fn total_loss_is_counted_not_hidden() {
    let mut scenario = Scenario::builtin_default();
    for host in &mut scenario.plan.hosts {
        host.link.ingress.loss = 1.0;
    }
    for traffic in &mut scenario.plan.traffic {
        if let Traffic::Frames(frames) = traffic {
            frames.flows = 400;
        }
    }
    let report = run(&scenario, false);
    let frames = &report.traffic[0];
    let lost: u64 = report.ports.iter().filter_map(|p| p.link_in_drops.get("loss")).sum();
    assert_eq!((frames.planned, frames.done, lost), (1600, 0, 1600));
    assert!(report.passed(), "{report}");
}

#[test]
fn a_failed_expectation_is_reported_with_its_reason() {
    let path = Path::new(SCENARIOS).join("impaired-loss.toml");
    let text = std::fs::read_to_string(&path).unwrap().replace("loss_as_configured = true", "max_drops = 0");
    let scenario = Scenario::parse(&text, "strict.toml", Path::new(SCENARIOS)).unwrap_or_else(|e| panic!("{e}"));
    let report = run(&scenario, false);
    assert!(!report.passed());
    assert_eq!(failed(&report), ["at most 0 drops"], "{report}");
    let check = report.expectations.iter().find(|c| !c.passed).unwrap();
    assert!(check.detail.contains(" drops (loss="), "{}", check.detail);
    assert!(format!("{report}").contains("[FAIL] at most 0 drops") && format!("{report}").ends_with("result: FAIL\n"));
}

#[test]
fn an_uneven_spread_fails_the_balance_expectation() {
    let mut scenario = load("rss-rtw.toml");
    scenario.plan.expect.balance = Some(0.0);
    let report = run(&scenario, false);
    assert_eq!(failed(&report), ["balance: server within 0 of the even share"], "{report}");
}

#[test]
fn progress_counts_up_to_the_planned_bytes() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let progress = Arc::new(move |p: Progress| sink.lock().unwrap_or_else(PoisonError::into_inner).push(p));
    let report =
        scenario::run(&load("mix.toml"), &RunOptions { progress: Some(progress), ..RunOptions::default() }).unwrap();
    assert!(report.passed(), "{report}");
    let seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
    assert!(seen.windows(2).all(|w| w[0].done < w[1].done), "{seen:?}");
    let last = seen.last().copied();
    let planned = 200 * 64 + 4 * 50 * 64 + 10 * 56 + 4 * 65536;
    assert_eq!(last, Some(Progress { done: planned, total: planned }));
}

/// `name` run with a wall-clock limit of zero: stopped at once, failing
/// with what it left unfinished.
fn stopped_at_once(name: &str) -> ScenarioReport {
    let options = RunOptions { wall_limit: Some(Duration::ZERO), ..RunOptions::default() };
    let report = scenario::run(&load(name), &options).unwrap_or_else(|e| panic!("{e}"));
    assert!(!report.passed(), "{report}");
    let limit = report.expectations.iter().find(|c| c.name == "ended within the wall-clock limit (--timeout)");
    let detail = limit.filter(|c| !c.passed).map(|c| c.detail.as_str()).unwrap_or_default();
    assert!(detail.starts_with("stopped at ") && !detail.contains(" with 0 unfinished"), "{report}");
    let leaks = report.expectations.iter().find(|c| c.name.starts_with("no leaks"));
    assert!(leaks.is_some(), "the other expectations are still judged: {report}");
    report
}

#[test]
fn a_sim_run_stops_at_its_wall_clock_limit() {
    let report = stopped_at_once("rss-rtw.toml");
    let limit = report.expectations.iter().find(|c| c.name.contains("wall-clock"));
    assert!(limit.is_some_and(|c| c.detail.contains("unfinished task(s): client")), "{report}");
    let unlimited = run(&load("rss-rtw.toml"), false);
    assert!(unlimited.expectations.iter().all(|c| !c.name.contains("wall-clock")), "{unlimited}");
}

#[test]
fn a_threads_run_stops_at_its_wall_clock_limit() {
    let _ = stopped_at_once("soft-forward-rtw-threads.toml");
}

/// A scenario of one stack host with `extra` appended (to the host when it
/// starts with a key).
fn with_host(extra: &str) -> String {
    format!(
        "name = \"x\"\n\n[[host]]\nname = \"a\"\nmac = \"02:00:00:00:00:01\"\nipv4 = \"10.0.0.1\"\nstacks = 2\n{extra}"
    )
}

fn parse_error(text: &str) -> String {
    match Scenario::parse(text, "x.toml", Path::new(SCENARIOS)) {
        Ok(s) => panic!("{} loaded", s.name),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_complete_example_in_the_readme_loads() {
    let readme = std::fs::read_to_string(Path::new(SCENARIOS).join("README.md")).unwrap();
    let start = readme.find("## A complete example").and_then(|at| readme[at..].find("```toml").map(|i| at + i + 7));
    let text = start.and_then(|s| readme[s..].find("```").map(|e| &readme[s..s + e])).unwrap_or_default();
    let scenario = Scenario::parse(text, "README.md", Path::new(SCENARIOS)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((scenario.plan.hosts.len(), scenario.plan.traffic.len()), (2, 5));
}

#[test]
fn errors_name_file_line_and_key_path() {
    let cases = [
        (with_host("bogus = 1\n"), "x.toml:8: key \"host[0].bogus\": unknown field `bogus`, expected one of"),
        (
            with_host("[host.impairments]\nloss = 2.5\n"),
            "x.toml:9: key \"host[0].impairments.loss\": expected a probability in 0.0..=1.0, got 2.5",
        ),
        (
            with_host("[host.impairments]\nflap = { period = \"1ms\", down = \"2ms\" }\n"),
            "x.toml:8: key \"host[0].impairments.flap\": needs a positive period and down <= period",
        ),
        (with_host("mode = \"ltran\"\n"), "x.toml:8: key \"host[0].mode\": unknown variant `ltran`, expected one of"),
        ("name = \"x\"\nduration = \"3 weeks\"\n".into(), "x.toml:2: key \"duration\": expected a duration like"),
        ("name = 5\n".into(), "x.toml:1: key \"name\": invalid type: integer `5`, expected a string"),
        ("[[host]]\nname = \"a\"\nstacks = 1\n".into(), "x.toml:1: missing field `name`"),
        ("name = \"x\"\n[[host\n".into(), "x.toml:2:7: "),
        (
            with_host("\n[[traffic.bulk]]\nclient = \"a\"\nserver = \"b\"\nbytes = 1\n"),
            "x.toml:11: key \"traffic.bulk[0].server\": no host named \"b\" (hosts: a)",
        ),
        (
            with_host("\n[expect]\nmax_drops_by_reason = { lost = 1 }\n"),
            "x.toml:10: key \"expect.max_drops_by_reason\": unknown drop reason \"lost\", expected one of malformed,",
        ),
        (with_host("queues = 4\n"), "x.toml:3: key \"host[0]\": set exactly one of `stacks` (a stack group), `config`"),
    ];
    for (text, expected) in cases {
        let error = parse_error(&text);
        assert!(error.starts_with(expected), "expected {expected:?}\n     got {error:?}");
    }
}

#[test]
fn binary_junk_and_invalid_utf8_name_file_line_and_column() {
    let nul = parse_error("name = \"x\"\n# caf\u{e9} \u{0}\n");
    assert!(nul.starts_with("x.toml:2:8: unexpected character U+0000; is this a binary file?"), "{nul}");
    let replaced = parse_error("name = \"\u{fffd}\"\n");
    assert!(replaced.starts_with("x.toml:1:9: unexpected character U+FFFD"), "{replaced}");
    let dir = std::env::temp_dir().join(format!("dtnet-scenario-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("junk.toml");
    std::fs::write(&path, b"name = \"x\"\n\n# \xc3\xa9t\xc3\xa9 \xff\xfe\n").unwrap();
    let error = Scenario::load(&path).err();
    let expected = format!("{}:3:7: not valid UTF-8 (byte 0xff); is this a binary file?", path.display());
    assert_eq!(error.as_ref().map(ToString::to_string), Some(expected));
    assert_eq!(error.as_ref().and_then(|e| e.line().zip(e.column())), Some((3, 7)));
    std::fs::write(dir.join("golden.trace"), b"frame 1\n\x00\x01").unwrap();
    std::fs::write(&path, with_host("\n[expect]\ngolden_trace = \"golden.trace\"\n")).unwrap();
    let error = Scenario::load(&path).err().map(|e| e.to_string()).unwrap_or_default();
    let golden = dir.join("golden.trace");
    let expected = format!(
        "{}:10: key \"expect.golden_trace\": {}:2:1: unexpected character U+0000; is this a binary file?",
        path.display(),
        golden.display()
    );
    assert_eq!(error, expected);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Two stack hosts, `a` and `b`, with `extra` appended.
fn two_hosts(extra: &str) -> String {
    with_host(&format!(
        "\n[[host]]\nname = \"b\"\nmac = \"02:00:00:00:00:02\"\nipv4 = \"10.0.0.2\"\nstacks = 1\n{extra}"
    ))
}

#[test]
fn sizes_beyond_their_limits_are_refused_with_the_limit() {
    let bulk = |conns: &str, bytes: &str| {
        two_hosts(&format!("\n[[traffic.bulk]]\nclient = \"a\"\nserver = \"b\"\nconns = {conns}\nbytes = {bytes}\n"))
    };
    let cases = [
        (bulk("100000000", "1"), "x.toml:18: key \"traffic.bulk[0].conns\": 100000000 exceeds the limit of 1000000"),
        (
            bulk("1", "\"2048GiB\""),
            "x.toml:19: key \"traffic.bulk[0].bytes\": 2199023255552 exceeds the limit of 1099511627776",
        ),
        (
            with_host("").replace("stacks = 2", "stacks = 65"),
            "x.toml:7: key \"host[0].stacks\": 65 exceeds the limit of 64",
        ),
        (
            with_host("rx_buffer = \"1GiB\"\n"),
            "x.toml:8: key \"host[0].rx_buffer\": 1073741824 exceeds the limit of 67108864",
        ),
        (with_host("tx_buffer = 0\n"), "x.toml:8: key \"host[0].tx_buffer\": 0 is below the minimum of 1024"),
        (with_host("mtu = 65000\n"), "x.toml:8: key \"host[0].mtu\": 65000 exceeds the limit of 9600"),
        (
            "name = \"x\"\nduration = \"100000h\"\n".into(),
            "x.toml:2: key \"duration\": \"100000h\" exceeds the limit of 24h",
        ),
        (
            with_host("[host.impairments]\ndelay = \"30h\"\n"),
            "x.toml:9: key \"host[0].impairments.delay\": \"30h\" exceeds",
        ),
        (
            two_hosts("\n[[traffic.udp]]\nclient = \"a\"\nserver = \"b\"\nrequests = 4000000000\n"),
            "x.toml:18: key \"traffic.udp[0].requests\": 4000000000 exceeds the limit of 10000000",
        ),
        (
            with_host("").replacen('\n', "\n[bridge]\nageing = \"0s\"\n", 1),
            "x.toml: key \"bridge.ageing\": must be positive",
        ),
    ];
    for (text, expected) in cases {
        let error = parse_error(&text);
        assert!(error.starts_with(expected), "expected {expected:?}\n     got {error:?}");
    }
    let udp = |clients: u64| {
        format!("\n[[traffic.udp]]\nclient = \"a\"\nserver = \"b\"\nclients = {clients}\nrequests = 1\n")
    };
    let error = parse_error(&two_hosts(&(udp(40000) + &udp(5536).replace("requests", "port = 5301\nrequests"))));
    let expected =
        "x.toml:22: key \"traffic.udp[1].clients\": 45536 UDP client sockets on host \"a\" exceed the limit of 45535";
    assert!(error.starts_with(expected), "{error}");
    let many = (0..65).map(|i| {
        format!(
            "[[host]]\nname = \"h{i}\"\nmac = \"02:00:00:00:01:{i:02x}\"\nipv4 = \"10.0.1.{}\"\nstacks = 1\n",
            i + 1
        )
    });
    let error = parse_error(&format!("name = \"x\"\n{}", many.collect::<String>()));
    assert!(error.starts_with("x.toml:322: key \"host\": 65 hosts exceed the limit of 64"), "{error}");
}

#[test]
fn a_run_larger_than_the_machine_is_refused_with_the_estimate() {
    let huge = "rx_buffer = \"64MiB\"\ntx_buffer = \"64MiB\"\n\n[[traffic.bulk]]\nclient = \"a\"\nserver = \"a\"\n\
                conns = 1000000\nbytes = 1\n";
    let error = parse_error(&with_host(huge));
    assert!(error.starts_with("x.toml: key \"traffic.bulk[0]\": the run needs an estimated "), "{error}");
    assert!(error.contains(" TiB of memory, more than this machine's "), "{error}");
    let fine = with_host("\n[[traffic.bulk]]\nclient = \"a\"\nserver = \"a\"\nconns = 1000\nbytes = 1\n");
    let scenario = Scenario::parse(&fine, "x.toml", Path::new(SCENARIOS)).unwrap_or_else(|e| panic!("{e}"));
    let estimate = scenario::limits::estimate(&scenario.plan);
    assert!(estimate.total() < 1 << 30, "{estimate:?}");
}

#[test]
fn addresses_no_host_can_own_are_refused_naming_the_key() {
    let cases = [
        (
            "mac = \"02:00:00:00:00:01\"",
            "mac = \"01:00:5e:00:00:01\"",
            "x.toml:5: key \"host[0].mac\": 01:00:5e:00:00:01 is a multicast MAC",
        ),
        (
            "mac = \"02:00:00:00:00:01\"",
            "mac = \"ff:ff:ff:ff:ff:ff\"",
            "x.toml:5: key \"host[0].mac\": ff:ff:ff:ff:ff:ff is the broadcast MAC",
        ),
        (
            "mac = \"02:00:00:00:00:01\"",
            "mac = \"00:00:00:00:00:00\"",
            "x.toml:5: key \"host[0].mac\": 00:00:00:00:00:00 is the all-zero MAC",
        ),
        (
            "ipv4 = \"10.0.0.1\"",
            "ipv4 = \"10.0.0.0/24\"",
            "x.toml:6: key \"host[0].ipv4\": 10.0.0.0 is the network address of 10.0.0.0/24",
        ),
        (
            "ipv4 = \"10.0.0.1\"",
            "ipv4 = \"10.0.0.255\"",
            "x.toml:6: key \"host[0].ipv4\": 10.0.0.255 is the broadcast address",
        ),
        (
            "ipv4 = \"10.0.0.1\"",
            "ipv4 = \"10.0.0.1\"\nipv6 = \"ff02::1\"",
            "x.toml:7: key \"host[0].ipv6\": ff02::1 is a multicast",
        ),
        (
            "ipv4 = \"10.0.0.1\"",
            "ipv4 = \"10.0.0.1\"\ngateway = \"224.0.0.1\"",
            "x.toml:7: key \"host[0].gateway\": 224.0.0.1 is a multicast",
        ),
    ];
    for (from, to, expected) in cases {
        let error = parse_error(&with_host("").replace(from, to));
        assert!(error.starts_with(expected), "expected {expected:?}\n     got {error:?}");
    }
    let bare = "name = \"x\"\n[[host]]\nname = \"a\"\nmac = \"02:00:00:00:00:01\"\nipv4 = \"10.0.0.0\"\nqueues = 2\n";
    let error = parse_error(bare);
    assert!(error.starts_with("x.toml:5: key \"host[0].ipv4\": 10.0.0.0 is the network address"), "{error}");
}

#[test]
fn a_damaged_capture_is_refused_at_load_with_its_byte_offset() {
    let dir = std::env::temp_dir().join(format!("dtnet-scenario-capture-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let capture = std::fs::read(Path::new(SCENARIOS).join("replay/echo-client.pcapng")).unwrap();
    std::fs::write(dir.join("cut.pcapng"), &capture[..capture.len() - 10]).unwrap();
    let text = with_host("\n[[traffic.replay]]\nhost = \"a\"\nfile = \"cut.pcapng\"\n");
    let path = dir.join("s.toml");
    std::fs::write(&path, text).unwrap();
    let error = Scenario::load(&path).err().map(|e| e.to_string()).unwrap_or_default();
    let expected = format!("{}:11: key \"traffic.replay[0].file\": ", path.display());
    assert!(error.starts_with(&expected) && error.contains("at byte offset"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn check_builds_what_run_builds() {
    for path in std::fs::read_dir(SCENARIOS).unwrap().map(|e| e.unwrap().path()) {
        if path.extension().is_some_and(|x| x == "toml") {
            let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            scenario::check(&scenario).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
    let mut scenario = load("rss-rtw.toml");
    if let scenario::HostNic::Stacks(group) = &mut scenario.plan.hosts[0].nic {
        group.stacks = 65;
    }
    let error = scenario::check(&scenario).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("65 is not between 1 and 64"), "{error}");
}

#[test]
fn referenced_files_must_exist_and_parse() {
    let dir = std::env::temp_dir().join(format!("dtnet-scenarios-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("s.toml");
    std::fs::write(&scenario, "name = \"s\"\n[[host]]\nname = \"a\"\nconfig = \"a.conf\"\n").unwrap();
    let missing = Scenario::load(&scenario).err().map(|e| e.to_string()).unwrap_or_default();
    let conf = dir.join("a.conf");
    let expected = format!("{}:4: key \"host[0].config\": {}: No such file", scenario.display(), conf.display());
    assert!(missing.starts_with(&expected), "{missing}");
    std::fs::write(&conf, "use_ltran=0\nnum_cpus=\"two\"\n").unwrap();
    let bad = Scenario::load(&scenario).err().map(|e| e.to_string()).unwrap_or_default();
    let expected = format!("{}:4: key \"host[0].config\": {}:2: key \"num_cpus\":", scenario.display(), conf.display());
    assert!(bad.starts_with(&expected), "{bad}");
    let wide = "use_ltran=0\nnum_cpus=\"0-79\"\ndevices=\"02:00:00:00:00:01\"\nhost_addr=\"10.0.0.1\"\nmask_addr=\"255.255.255.0\"\ngateway_addr=\"10.0.0.254\"\n";
    std::fs::write(&conf, wide).unwrap();
    let error = Scenario::load(&scenario).err().map(|e| e.to_string()).unwrap_or_default();
    let expected = format!("{}:4: key \"host[0].config\": 80 stacks exceed the limit of 64", scenario.display());
    assert!(error.starts_with(&expected), "{error}");
    std::fs::write(&conf, wide.replace("0-79", "0").replace("10.0.0.1", "10.0.0.255")).unwrap();
    let error = Scenario::load(&scenario).err().map(|e| e.to_string()).unwrap_or_default();
    let expected =
        format!("{}:4: key \"host[0].config\": ipv4: 10.0.0.255 is the broadcast address", scenario.display());
    assert!(error.starts_with(&expected), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn contradictions_are_refused_where_they_are_written() {
    let bare = "\n[[host]]\nname = \"b\"\nmac = \"02:00:00:00:00:02\"\nipv4 = \"10.0.0.2\"\nqueues = 4\n";
    let mixed = parse_error(&with_host(bare));
    assert!(mixed.starts_with("x.toml:9: key \"host\": bare hosts (queues) and stack hosts cannot share"), "{mixed}");
    let threads = "name = \"x\"\nexecutor = \"threads\"\n[[host]]\nname = \"a\"\nmac = \"02:00:00:00:00:01\"\n\
                   ipv4 = \"10.0.0.1\"\nqueues = 2\n[[host]]\nname = \"b\"\nmac = \"02:00:00:00:00:02\"\n\
                   ipv4 = \"10.0.0.2\"\nqueues = 2\n[[traffic.frames]]\nflows = 4\n";
    let error = parse_error(threads);
    assert!(error.starts_with("x.toml:2: key \"executor\": frames and replay traffic run under the sim"), "{error}");
    let twice = "\n[[traffic.udp]]\nclient = \"a\"\nserver = \"a\"\nrequests = 1\n\
                 [[traffic.udp]]\nclient = \"a\"\nserver = \"a\"\nrequests = 1\n";
    let error = parse_error(&with_host(twice));
    assert!(
        error.starts_with("x.toml:15: key \"traffic.udp[1].port\": udp port 5300 on host \"a\" is already"),
        "{error}"
    );
}
