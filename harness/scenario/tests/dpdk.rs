//! Scenario hosts on DPDK ports (`backend = "dpdk"`).
//!
//! Whatever the build: a DPDK host's keys are checked when the file loads
//! (a `[dpdk]` table exactly when there are DPDK hosts, real time, a
//! device and an uplink that differ and have one owner, stack hosts only,
//! ring cable names), each refusal naming its key; `check` leaves the EAL
//! alone. With DPDK compiled in: stacks on net_ring ports (the ends of
//! ring cables whose far ends are on the bridge) exchange TCP with a
//! veth-hosted client and each other, every byte verified and every dtnet
//! buffer and DPDK mbuf back in its pool; bad EAL arguments, a missing
//! device and a second DPDK scenario in one process are run errors naming
//! the cause. Each test that starts the EAL is alone in its process
//! (nextest runs every test in its own), as DPDK starts once per process.
//! Without DPDK compiled in, a DPDK scenario is unavailable and says why.

use std::path::Path;

use scenario::{RunOptions, Scenario, ScenarioError};

/// Two DPDK hosts, each on one end of a ring cable whose other end is on
/// the bridge, and bulk TCP between them; `{eal}`, `{device}` and
/// `{executor}` are filled in by [`text`].
const TEMPLATE: &str = r#"
name = "dpdk-test"
executor = "{executor}"
duration = "30s"

[dpdk]
eal = [{eal}]
ring_cables = ["s", "c"]

[[host]]
name = "server"
backend = "dpdk"
device = "{device}"
uplink = "net_ring_s_b"
mac = "02:00:00:00:00:01"
ipv4 = "10.0.0.1/24"
stacks = 1

[[host]]
name = "client"
backend = "dpdk"
device = "net_ring_c_a"
uplink = "net_ring_c_b"
mac = "02:00:00:00:00:02"
ipv4 = "10.0.0.2/24"
stacks = 1

[[traffic.bulk]]
client = "client"
server = "server"
conns = 2
bytes = "128KiB"
"#;

/// EAL arguments of a test run: no hugepages, no PCI.
const EAL: &str = r#""--no-huge", "--no-pci", "-m", "128", "--no-telemetry""#;

/// The template with the server on `device`, the EAL `eal`, under `executor`.
fn text(device: &str, eal: &str, executor: &str) -> String {
    TEMPLATE.replace("{device}", device).replace("{eal}", eal).replace("{executor}", executor)
}

fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    Scenario::parse(text, "dpdk-test.toml", Path::new("."))
}

/// The load error of `text` with `from` replaced by `to`: its key and message.
fn refusal(from: &str, to: &str) -> (String, String) {
    let good = text("net_ring_s_a", EAL, "threads");
    assert!(good.contains(from), "{from:?} is in the template");
    let err = parse(&good.replacen(from, to, 1)).expect_err("refused");
    (err.key().unwrap_or_default().to_owned(), err.to_string())
}

#[test]
fn dpdk_host_keys_are_checked_when_the_file_loads() {
    let scenario = parse(&text("net_ring_s_a", EAL, "threads")).expect("the template loads");
    assert_eq!(scenario.plan.dpdk.as_ref().map(|d| d.ring_cables.len()), Some(2));

    let (key, msg) = refusal("executor = \"threads\"", "executor = \"sim\"");
    assert_eq!(key, "host[0].backend", "{msg}");
    assert!(msg.contains("real time") && msg.contains("threads"), "{msg}");
    let (key, msg) = refusal("uplink = \"net_ring_s_b\"", "uplink = \"net_ring_s_a\"");
    assert_eq!(key, "host[0].uplink", "{msg}");
    let (key, msg) = refusal("uplink = \"net_ring_c_b\"", "uplink = \"net_ring_s_b\"");
    assert_eq!(key, "host[1].uplink", "{msg}");
    assert!(msg.contains("one owner") && msg.contains("host[0].uplink"), "{msg}");
    let (key, msg) = refusal("uplink = \"net_ring_s_b\"\n", "");
    assert_eq!(key, "host[0]", "{msg}");
    assert!(msg.contains("uplink"), "{msg}");
    let (key, msg) = refusal("stacks = 1\n", "queues = 1\n");
    assert!(key.starts_with("host[0]"), "{msg}");
    let (key, msg) = refusal("ring_cables = [\"s\", \"c\"]", "ring_cables = [\"s\", \"s\"]");
    assert_eq!(key, "dpdk.ring_cables[1]", "{msg}");
    let (key, msg) = refusal("ring_cables = [\"s\", \"c\"]", "ring_cables = [\"s-1\"]");
    assert_eq!(key, "dpdk.ring_cables[0]", "{msg}");
}

#[test]
fn the_dpdk_table_and_dpdk_hosts_come_together() {
    let good = text("net_ring_s_a", EAL, "threads");
    let without_table = good.replace("[dpdk]", "").replace(&format!("eal = [{EAL}]"), "");
    let without_table = without_table.replace("ring_cables = [\"s\", \"c\"]", "");
    let err = parse(&without_table).expect_err("a DPDK host needs [dpdk]");
    assert_eq!(err.key(), Some("host[0].backend"), "{err}");
    assert!(err.to_string().contains("[dpdk]"), "{err}");

    let veth = good.replace("backend = \"dpdk\"", "backend = \"veth\"");
    let err = parse(&veth).expect_err("device on a veth host");
    assert_eq!(err.key(), Some("host[0].device"), "{err}");
    assert!(err.to_string().contains("backend = \"dpdk\""), "{err}");
    let no_ports: Vec<&str> = veth.lines().filter(|l| !l.starts_with("device") && !l.starts_with("uplink")).collect();
    let no_ports = no_ports.join("\n");
    let err = parse(&no_ports).expect_err("[dpdk] without DPDK hosts");
    assert_eq!(err.key(), Some("dpdk"), "{err}");
}

#[test]
fn check_leaves_the_eal_to_the_run() {
    let scenario = parse(&text("net_ring_s_a", r#""--no-such-eal-option""#, "threads")).expect("loads");
    scenario::check(&scenario).expect("check does not start DPDK: EAL arguments are the run's to judge");
}

dpdk::if_dpdk! {
    {
        /// A run of `scenario`, expected to fail before running: its message.
        fn run_error(scenario: &Scenario) -> String {
            match scenario::run(scenario, &RunOptions::default()) {
                Err(ScenarioError::Run { message, .. }) => message,
                Err(other) => panic!("not a run error: {other}"),
                Ok(report) => panic!("ran: {report}"),
            }
        }

        #[test]
        fn stacks_on_dpdk_ports_exchange_tcp_beside_a_veth_host() {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/dpdk-ring-threads.toml");
            let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(scenario.unavailable(), None, "a DPDK build runs it");
            let report = scenario::run(&scenario, &RunOptions::default()).unwrap_or_else(|e| panic!("{e}"));
            assert!(report.passed(), "{report}");
            let dpdk = report.expectations.iter().find(|c| c.name == "no leaks: DPDK mbufs back to their baseline");
            assert!(dpdk.is_some_and(|c| c.passed), "the DPDK pools are checked: {report}");
            let delivered: Vec<_> = report.expectations.iter().filter(|c| c.name.starts_with("delivered: ")).collect();
            assert_eq!(delivered.len(), 5, "every task and the four traffic entries: {report}");
            let server = report.ports.iter().find(|p| p.name == "server").expect("the server's port");
            assert!(server.rx > 0 && server.tx > 0, "the server's DPDK port carried the frames: {report}");
            assert!(report.traffic.iter().all(|t| t.done > 0), "{report}");
        }

        #[test]
        fn bad_eal_arguments_are_a_run_error_naming_the_cause() {
            let eal = format!("{EAL}, \"--no-such-eal-option\"");
            let message = run_error(&parse(&text("net_ring_s_a", &eal, "threads")).expect("loads"));
            assert!(message.contains("DPDK's EAL did not start") && message.contains("--no-such-eal-option"), "{message}");
        }

        #[test]
        fn a_missing_device_is_a_run_error_naming_it() {
            let message = run_error(&parse(&text("net_ring_nothing", EAL, "threads")).expect("loads"));
            assert!(message.contains("host server: device \"net_ring_nothing\""), "{message}");
            assert!(message.contains("no DPDK port"), "{message}");
        }

        #[test]
        fn a_second_dpdk_scenario_in_one_process_is_a_clear_error() {
            let scenario = parse(&text("net_ring_s_a", EAL, "threads")).expect("loads");
            let first = scenario::run(&scenario, &RunOptions::default()).unwrap_or_else(|e| panic!("{e}"));
            assert!(first.passed(), "{first}");
            let message = run_error(&scenario);
            assert!(message.contains("once per process") && message.contains("process of its own"), "{message}");
        }
    } else {
        #[test]
        fn without_dpdk_a_dpdk_scenario_is_unavailable_and_says_why() {
            let scenario = parse(&text("net_ring_s_a", EAL, "threads")).expect("loads");
            let why = scenario.unavailable().expect("unavailable without DPDK");
            assert!(why.contains("no DPDK support") && why.contains("--features dpdk/dpdk"), "{why}");
            let err = scenario::run(&scenario, &RunOptions::default()).expect_err("cannot run");
            assert!(err.to_string().contains("no DPDK support"), "{err}");
        }
    }
}
