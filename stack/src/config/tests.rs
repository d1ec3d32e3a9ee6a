//! Tests of the whole configuration path: both front ends, serde, validation and errors.

use super::*;

const LSTACK_CONF: &str = include_str!("../../tests/fixtures/lstack.conf");
const LSTACK_TOML: &str = include_str!("../../tests/fixtures/lstack.toml");

/// What the fixtures describe.
fn fixture_config() -> StackConfig {
    StackConfig {
        dpdk_args: [
            "--socket-mem",
            "2048,0,0,0",
            "--huge-dir",
            "/mnt/hugepages-lstack",
            "--proc-type",
            "primary",
            "--file-prefix",
            "dtnet",
        ]
        .map(String::from)
        .to_vec(),
        use_ltran: false,
        num_cpus: Some(vec![2, 3]),
        host_addr: Some(Ipv4Addr::new(192, 168, 1, 10)),
        mask_addr: Some(Ipv4Addr::new(255, 255, 255, 0)),
        gateway_addr: Some(Ipv4Addr::new(192, 168, 1, 1)),
        host_addr6: Some(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x10)),
        host_mac: MacAddr([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]),
        process_numa: Some(vec![0, 1]),
        process_idx: Some(0),
        listen_shadow: true,
        unix_prefix: Some("dtnet".to_owned()),
        ..StackConfig::default()
    }
}

/// `config` without its warnings, to compare settings alone.
fn settings(config: StackConfig) -> StackConfig {
    StackConfig { warnings: Vec::new(), ..config }
}

/// The keys `config` warns about, with their lines, in order.
fn warned(config: &StackConfig) -> Vec<(&str, usize)> {
    config.warnings.iter().map(|w| (w.key.as_str(), w.line)).collect()
}

/// Edits applied to [`BASE`]: `Some(value)` sets a key, `None` removes it.
type Changes<'a> = &'a [(&'a str, Option<&'a str>)];

/// The keys of a small valid lstack.conf, one per line, in order.
const BASE: &[(&str, &str)] = &[
    ("use_ltran", "0"),
    ("num_cpus", "\"2\""),
    ("host_addr", "\"10.0.0.2\""),
    ("mask_addr", "\"255.255.255.0\""),
    ("gateway_addr", "\"10.0.0.1\""),
    ("devices", "\"02:00:00:00:00:01\""),
];

/// Builds lstack.conf text from [`BASE`] with `changes` applied: `Some(v)` replaces or appends
/// a key, `None` removes it. Returns the text and each key's line.
fn conf_text(changes: Changes) -> (String, Vec<(String, usize)>) {
    let mut pairs: Vec<(String, String)> = BASE.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    for (key, value) in changes {
        let at = pairs.iter().position(|(k, _)| k == key);
        match (at, value) {
            (Some(i), Some(v)) => pairs[i].1 = v.to_string(),
            (Some(i), None) => drop(pairs.remove(i)),
            (None, Some(v)) => pairs.push((key.to_string(), v.to_string())),
            (None, None) => {}
        }
    }
    let text = pairs.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    let lines = pairs.iter().enumerate().map(|(i, (k, _))| (k.clone(), i + 1)).collect();
    (text, lines)
}

fn conf(changes: Changes) -> Result<StackConfig, ConfigFileError> {
    StackConfig::from_lstack_conf(&conf_text(changes).0, "t.conf")
}

fn ok(changes: Changes) -> StackConfig {
    conf(changes).unwrap_or_else(|e| panic!("{changes:?}: {e}"))
}

fn err(changes: Changes) -> ConfigFileError {
    match conf(changes) {
        Ok(c) => panic!("{changes:?}: expected an error, got {c:?}"),
        Err(e) => e,
    }
}

#[test]
fn lstack_conf_fixture_parses() {
    let config = StackConfig::from_lstack_conf(LSTACK_CONF, "lstack.conf").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(settings(config.clone()), fixture_config());
    assert_eq!(config.stack_count(), 2);
    assert_eq!(config.forward_mode(), ForwardMode::ListenShadow);
    assert_eq!(config.thread_model(), ThreadModel::RunToWakeup);
    assert_eq!(config.mbuf_count(), 255_000);
}

#[test]
fn toml_fixture_matches_lstack_conf() {
    let toml = StackConfig::from_toml_str(LSTACK_TOML, "lstack.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(settings(toml), fixture_config());
}

#[test]
fn gazelle_defaults() {
    let config = ok(&[]);
    let want = StackConfig {
        use_ltran: false,
        num_cpus: Some(vec![2]),
        host_addr: Some(Ipv4Addr::new(10, 0, 0, 2)),
        mask_addr: Some(Ipv4Addr::new(255, 255, 255, 0)),
        gateway_addr: Some(Ipv4Addr::new(10, 0, 0, 1)),
        host_mac: MacAddr([2, 0, 0, 0, 0, 1]),
        ..StackConfig::default()
    };
    assert_eq!(config, want);
    assert_eq!((config.tcp_conn_count, config.mbuf_count_per_conn), (1500, 170));
    assert_eq!((config.nic_rxqueue_size, config.nic_txqueue_size), (4096, 2048));
    assert_eq!((config.rpc_number, config.nic_read_number), (4, 128));
    assert!(config.app_bind_numa && config.udp_enable && !config.listen_shadow);
    assert_eq!((config.nic_vlan_mode, config.bond_mode), (-1, -1));
    // Gazelle's own default for use_ltran is on.
    assert!(ok(&[("use_ltran", None)]).use_ltran);
}

#[test]
fn cpu_lists_count_stacks() {
    assert_eq!(ok(&[("num_cpus", Some("\"2,3,4\""))]).stack_count(), 3);
    assert_eq!(ok(&[("num_cpus", Some("\"2-5\""))]).stack_count(), 4);
    assert_eq!(ok(&[("num_cpus", Some("\"0, 4-5, 0x8\""))]).num_cpus, Some(vec![0, 4, 5, 8]));
    assert_eq!(ok(&[("num_cpus", Some("7"))]).num_cpus, Some(vec![7]));
}

#[test]
fn every_forward_mode_is_reachable() {
    let cases: [(Changes, ForwardMode); 5] = [
        (&[], ForwardMode::Rss),
        (&[("listen_shadow", Some("1"))], ForwardMode::ListenShadow),
        (&[("soft_forward", Some("1"))], ForwardMode::SoftForward),
        (&[("tuple_filter", Some("1"))], ForwardMode::FlowDirector),
        (&[("use_ltran", Some("1"))], ForwardMode::Ltran),
    ];
    for (changes, mode) in cases {
        assert_eq!(ok(changes).forward_mode(), mode, "{changes:?}");
    }
}

#[test]
fn every_thread_model_is_reachable() {
    assert_eq!(ok(&[]).thread_model(), ThreadModel::RunToWakeup);
    assert_eq!(ok(&[("stack_thread_mode", Some("\"run-to-wakeup\""))]).thread_model(), ThreadModel::RunToWakeup);
    let rtc = ok(&[("stack_thread_mode", Some("\"run-to-completion\""))]);
    assert_eq!(rtc.thread_model(), ThreadModel::RunToCompletion);
}

#[test]
fn validation_errors_name_key_and_line() {
    let cases: &[(Changes, &str)] = &[
        (&[("num_cpus", Some("\"\""))], "num_cpus"),
        (&[("num_cpus", Some("\"2,3,2\""))], "num_cpus"),
        (&[("tuple_filter", Some("1")), ("listen_shadow", Some("1"))], "tuple_filter"),
        (&[("tuple_filter", Some("1")), ("use_ltran", Some("1"))], "tuple_filter"),
        (&[("kni_switch", Some("1")), ("use_ltran", Some("1"))], "kni_switch"),
        (&[("soft_forward", Some("1")), ("listen_shadow", Some("1"))], "soft_forward"),
        (&[("soft_forward", Some("1")), ("tuple_filter", Some("1"))], "soft_forward"),
        (&[("mask_addr", Some("\"255.0.255.0\""))], "mask_addr"),
        (&[("host_addr", Some("\"10.0.1.2\""))], "host_addr"),
        (&[("host_addr", Some("\"224.0.0.1\""))], "host_addr"),
        (&[("host_addr6", Some("\"ff02::1\""))], "host_addr6"),
        (&[("process_idx", Some("1"))], "process_idx"),
        (&[("num_process", Some("0"))], "num_process"),
        (
            &[("num_process", Some("2")), ("process_idx", Some("1")), ("dpdk_args", Some("[\"primary\"]"))],
            "process_idx",
        ),
        (&[("process_numa", Some("\"9\""))], "process_numa"),
        (&[("tcp_conn_count", Some("0"))], "tcp_conn_count"),
        (&[("tcp_conn_count", Some("20001"))], "tcp_conn_count"),
        (&[("rpc_number", Some("0"))], "rpc_number"),
        (&[("nic_rxqueue_size", Some("1000"))], "nic_rxqueue_size"),
        (&[("nic_txqueue_size", Some("256"))], "nic_txqueue_size"),
        (&[("nic_vlan_mode", Some("4095"))], "nic_vlan_mode"),
        (&[("bond_mode", Some("2"))], "bond_mode"),
        (
            &[
                ("bond_slave_mac", Some("\"02:00:00:00:00:02;02:00:00:00:00:03;02:00:00:00:00:04\"")),
                ("bond_mode", Some("4")),
            ],
            "bond_slave_mac",
        ),
        (&[("unix_prefix", Some("\"a;b\""))], "unix_prefix"),
    ];
    for (changes, key) in cases {
        let (text, lines) = conf_text(changes);
        let e = err(changes);
        assert!(matches!(e, ConfigFileError::Invalid { .. }), "{changes:?}: {e}");
        assert_eq!(e.key(), Some(*key), "{changes:?}: {e}");
        let line = lines.iter().find(|(k, _)| k == key).map(|(_, l)| *l);
        assert_eq!(e.line(), line, "{changes:?}: {e}\n{text}");
        assert!(e.to_string().starts_with(&format!("t.conf:{}: key \"{key}\": ", line.unwrap_or(0))), "{e}");
    }
}

#[test]
fn missing_keys_point_at_the_key_that_needs_them() {
    // Line 2 is host_addr's in the edited file (num_cpus removed); bond_mode is appended.
    let cases: &[(Changes, &str, Option<usize>)] = &[
        (&[("host_addr", None)], "host_addr", None),
        (&[("num_cpus", None), ("gateway_addr", None)], "gateway_addr", Some(2)),
        (&[("num_cpus", None), ("mask_addr", None)], "mask_addr", Some(2)),
        (&[("bond_mode", Some("4"))], "bond_slave_mac", Some(7)),
        (&[("num_process", Some("2"))], "process_idx", Some(7)),
    ];
    for (changes, key, line) in cases {
        let e = err(changes);
        assert_eq!((e.key(), e.line()), (Some(*key), *line), "{changes:?}: {e}");
        let at = line.map(|l| format!(":{l}")).unwrap_or_default();
        assert!(e.to_string().starts_with(&format!("t.conf{at}: key \"{key}\": ")), "{e}");
    }
    // tuple_filter against gazelle's default use_ltran=1 names tuple_filter, on its line.
    let e = err(&[("use_ltran", None), ("tuple_filter", Some("1"))]);
    assert_eq!((e.key(), e.line()), (Some("tuple_filter"), Some(6)), "{e}");
}

#[test]
fn ipv6_only_is_enough() {
    let c =
        ok(&[("host_addr", None), ("mask_addr", None), ("gateway_addr", None), ("host_addr6", Some("\"fd00::2\""))]);
    assert_eq!(c.host_addr, None);
    assert!(c.host_addr6.is_some());
}

#[test]
fn bad_values_name_key_and_line() {
    let cases: &[(&str, &str, &str)] = &[
        ("num_cpus", "\"two\"", "expected a CPU list like \"2,3\" or \"2-5\""),
        ("num_cpus", "\"0-5000\"", "expected a CPU list like \"2,3\" or \"2-5\""),
        ("num_cpus", "true", "expected a CPU list"),
        ("use_ltran", "2", "expected 0 or 1"),
        ("use_ltran", "\"no\"", "0 or 1"),
        ("devices", "\"aa:bb:cc\"", "expected a MAC address"),
        ("host_addr", "\"10.0.0\"", "expected an IPv4 address"),
        ("host_addr6", "\"fd00::zz\"", "expected an IPv6 address"),
        ("stack_thread_mode", "\"rtc\"", "run-to-completion"),
        ("tcp_conn_count", "\"many\"", "invalid type"),
        ("tcp_conn_count", "-1", "invalid value"),
        ("tcp_conn_count", "1.5", "invalid type"),
        ("dpdk_args", "3", "invalid type"),
        ("dpdk_args", "{ a = 1; }", "invalid type"),
        ("bond_slave_mac", "\"02:00:00:00:00:02;x\"", "expected a MAC address"),
    ];
    for (key, value, needle) in cases {
        let changes = [(*key, Some(*value))];
        let (_, lines) = conf_text(&changes);
        let line = lines.iter().find(|(k, _)| k == key).map(|(_, l)| *l);
        let e = err(&changes);
        assert!(matches!(e, ConfigFileError::BadValue { .. }), "{key}={value}: {e}");
        assert_eq!((e.key(), e.line()), (Some(*key), line), "{key}={value}: {e}");
        let text = e.to_string();
        assert!(text.starts_with(&format!("t.conf:{}: key \"{key}\": ", line.unwrap_or(0))), "{text}");
        assert!(text.contains(needle), "{text}");
    }
}

#[test]
fn error_display_matches_the_documented_form() {
    let e = err(&[("num_cpus", Some("\"2;3\""))]);
    assert!(
        e.to_string().starts_with("t.conf:2: key \"num_cpus\": expected a CPU list like \"2,3\" or \"2-5\""),
        "{e}"
    );
}

#[test]
fn unknown_keys_are_rejected_with_line() {
    let e = err(&[("listen_shadown", Some("1"))]);
    assert!(
        matches!(&e, ConfigFileError::UnknownKey { line: 7, column: 1, key, .. } if key == "listen_shadown"),
        "{e}"
    );
    assert_eq!(e.to_string(), "t.conf:7: key \"listen_shadown\": unknown key");
    let e = StackConfig::from_toml_str("num_cpus = \"2\"\n\n  bogus = 1\n", "x.toml").err();
    assert!(matches!(&e, Some(ConfigFileError::UnknownKey { line: 3, column: 3, .. })), "{e:?}");
}

#[test]
fn missing_and_duplicate_keys() {
    let e = err(&[("devices", None)]);
    assert!(matches!(&e, ConfigFileError::MissingKey { key, .. } if key == "devices"), "{e}");
    assert_eq!(e.to_string(), "t.conf: key \"devices\": required but missing");
    let text = format!("{}num_cpus=\"3\"\n", conf_text(&[]).0);
    let e = StackConfig::from_lstack_conf(&text, "t.conf").err();
    assert!(matches!(e, Some(ConfigFileError::DuplicateKey { line: 7, first_line: 2, .. })), "{e:?}");
}

#[test]
fn host_mac_is_an_alias_of_devices() {
    let c = ok(&[("devices", None), ("host_mac", Some("\"2:0:0:0:0:AB\""))]);
    assert_eq!(c.host_mac, MacAddr([2, 0, 0, 0, 0, 0xab]));
    assert_eq!(c.host_mac.to_string(), "02:00:00:00:00:ab");
    let e = err(&[("host_mac", Some("\"02:00:00:00:00:02\""))]);
    assert!(matches!(e, ConfigFileError::BadValue { line: 7, .. }), "{e}");
}

#[test]
fn toml_errors_carry_line_and_key() {
    let text = "use_ltran = 0\nnum_cpus = \"2\"\nhost_addr = \"10.0.0.2\"\nmask_addr = \"255.255.255.0\"\n\
                gateway_addr = \"10.0.0.1\"\ndevices = \"02:00:00:00:00:01\"\nlisten_shadow = 1\nsoft_forward = 1\n";
    assert!(StackConfig::from_toml_str(&text.replace("soft_forward = 1\n", ""), "c.toml").is_ok());
    let e = StackConfig::from_toml_str(text, "c.toml").err();
    assert!(matches!(&e, Some(ConfigFileError::Invalid { line: Some(8), .. })), "{e:?}");
    let e = StackConfig::from_toml_str(&text.replace("\"2\"", "\"x\""), "c.toml").err();
    assert!(matches!(&e, Some(ConfigFileError::BadValue { line: 2, key, .. }) if key == "num_cpus"), "{e:?}");
    let e = StackConfig::from_toml_str("num_cpus = \"2\"\n[dpdk]\nx = 1\n", "c.toml").err();
    assert!(matches!(&e, Some(ConfigFileError::UnknownKey { line: 2, .. })), "{e:?}");
    let e = StackConfig::from_toml_str("a = 1\nb = [\n", "c.toml").err();
    assert!(matches!(&e, Some(ConfigFileError::Syntax { .. })), "{e:?}");
    assert!(e.is_some_and(|e| e.to_string().starts_with("c.toml:")));
}

#[test]
fn load_picks_the_format_by_extension() {
    let dir = std::env::temp_dir().join(format!("dtnet-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));
        path
    };
    let conf = write("lstack.conf", LSTACK_CONF.as_bytes());
    let toml = write("stack.toml", LSTACK_TOML.as_bytes());
    assert_eq!(StackConfig::load(&conf).ok().map(settings), Some(fixture_config()));
    assert_eq!(StackConfig::load(&toml).ok().map(settings), Some(fixture_config()));
    // Simple TOML happens to be valid libconfig, but a TOML table header is not.
    let swapped = write("toml-as.conf", b"num_cpus = \"2\"\n[dpdk]\n");
    let e = StackConfig::load(&swapped).err();
    assert!(e.is_some_and(|e| e.to_string().starts_with(&swapped.display().to_string())));
    let binary = write("binary.conf", b"use_ltran=0\nnum_cpus=\"\xff\"\n");
    let e = StackConfig::load(&binary).err();
    assert!(matches!(e, Some(ConfigFileError::Syntax { line: 2, column: 11, .. })), "{e:?}");
    let e = StackConfig::load(&dir.join("absent.conf")).err();
    assert!(matches!(e, Some(ConfigFileError::Io { .. })), "{e:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A small deterministic xorshift generator for the fuzz loops.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn parse_both(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let _ = StackConfig::from_lstack_conf(&text, "fuzz.conf").map_err(|e| e.to_string());
    let _ = StackConfig::from_toml_str(&text, "fuzz.toml").map_err(|e| e.to_string());
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let alphabet = b"=:;,[](){}\"\\#/*-+.0x1eL aZ\n\t\xc3\xa9";
    for round in 0..3000 {
        let len = rng.below(80);
        let bytes: Vec<u8> = (0..len)
            .map(|_| if round % 2 == 0 { rng.next() as u8 } else { alphabet[rng.below(alphabet.len())] })
            .collect();
        parse_both(&bytes);
    }
}

#[test]
fn mutated_fixtures_never_panic() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let tokens: [&[u8]; 10] = [b"\"", b"[", b"(", b"{", b"/*", b"=", b"\n", b"0x", b"-", b"\xff"];
    for fixture in [LSTACK_CONF.as_bytes(), LSTACK_TOML.as_bytes()] {
        for _ in 0..1500 {
            let mut bytes = fixture.to_vec();
            for _ in 0..=rng.below(4) {
                let at = rng.below(bytes.len());
                match rng.below(3) {
                    0 => bytes.truncate(at),
                    1 => drop(bytes.splice(at..at, tokens[rng.below(tokens.len())].iter().copied())),
                    _ => drop(bytes.drain(at..(at + rng.below(8)).min(bytes.len()))),
                }
            }
            parse_both(&bytes);
        }
    }
}

#[test]
fn mac_addresses_parse_strictly() {
    assert_eq!("aa:bb:cc:dd:ee:ff".parse(), Ok(MacAddr([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff])));
    for bad in
        ["", "aa:bb:cc:dd:ee", "aa:bb:cc:dd:ee:ff:00", "aaa:bb:cc:dd:ee:ff", "gg:bb:cc:dd:ee:ff", "aa-bb-cc-dd-ee-ff"]
    {
        assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
    }
}

// ---------------------------------------------------------------------------------------------
// gazelle's keys, old and new (issue 9 §3) and binary input (§2).
// ---------------------------------------------------------------------------------------------

const GAZELLE_1_0_1: &str = include_str!("../../tests/fixtures/gazelle-1.0.1.conf");
const GAZELLE_1_0_2: &str = include_str!("../../tests/fixtures/gazelle-1.0.2.conf");
const GAZELLE_2024: &str = include_str!("../../tests/fixtures/gazelle-2024.conf");
const EVERY_KEY: &str = include_str!("../../tests/fixtures/every-key.conf");

/// Every key in the key table of gazelle's current parser (`g_config_tbl` in
/// `src/lstack/core/lstack_cfg.c`, master of 2025-09, same as release 1.0.3).
const GAZELLE_CURRENT_KEYS: [&str; 39] = [
    "use_ltran",
    "tcp_conn_count",
    "mbuf_count_per_conn",
    "nic_rxqueue_size",
    "nic_txqueue_size",
    "mem_cache_num",
    "app_bind_numa",
    "stack_num",
    "num_cpus",
    "dpdk_args",
    "xdp_eth_name",
    "host_addr",
    "host_addr6",
    "mask_addr",
    "gateway_addr",
    "devices",
    "low_power_mode",
    "kni_switch",
    "listen_shadow",
    "app_exclude_cpus",
    "main_thread_affinity",
    "unix_prefix",
    "rpc_number",
    "nic_read_number",
    "num_process",
    "process_numa",
    "process_idx",
    "tuple_filter",
    "bond_mode",
    "bond_miimon",
    "bond_slave_mac",
    "use_sockmap",
    "udp_enable",
    "stack_thread_mode",
    "mem_async_mode",
    "nic_vlan_mode",
    "send_cache_mode",
    "flow_bifurcation",
    "stack_interrupt",
];

/// The 1-based line on which `key` is set in `text` (the line starting with `key` and `=`).
fn line_in(text: &str, key: &str) -> usize {
    let found = text.lines().position(|l| l.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with('=')));
    found.map_or_else(|| panic!("{key} is not set in the text"), |i| i + 1)
}

fn load_conf(text: &str, origin: &str) -> StackConfig {
    StackConfig::from_lstack_conf(text, origin).unwrap_or_else(|e| panic!("{origin}: {e}"))
}

/// The retired-key warnings of `config`: key, line and replacement.
fn retired(config: &StackConfig) -> Vec<(&str, usize, Option<&str>)> {
    let mut found = Vec::new();
    for w in &config.warnings {
        if let WarningKind::Retired { replaced_by, .. } = w.kind {
            found.push((w.key.as_str(), w.line, replaced_by));
        }
    }
    found
}

#[test]
fn gazelle_1_0_1_file_loads_with_warnings_for_its_old_keys() {
    let config = load_conf(GAZELLE_1_0_1, "old.conf");
    let want = vec![
        ("num_weakup", line_in(GAZELLE_1_0_1, "num_weakup"), None),
        ("numa_bind", line_in(GAZELLE_1_0_1, "numa_bind"), Some("app_bind_numa")),
    ];
    assert_eq!(retired(&config), want);
    assert_eq!(config.forward_mode(), ForwardMode::Ltran);
    assert_eq!((config.stack_count(), config.host_mac), (1, MacAddr([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff])));
    let text = config.warnings_text();
    let line = line_in(GAZELLE_1_0_1, "numa_bind");
    let numa = format!("old.conf:{line}: key \"numa_bind\": warning: key of an earlier gazelle release");
    assert!(text.contains(&numa), "{text}");
    assert!(text.contains("replaced by app_bind_numa"), "{text}");
    assert!(text.contains("\"num_weakup\": warning: key of an earlier gazelle release"), "{text}");
    assert!(text.contains("misspelling of num_wakeup"), "{text}");
    // Every warning line names the file, the line and the key.
    for (w, printed) in config.warnings.iter().zip(text.lines()) {
        assert!(printed.starts_with(&format!("old.conf:{}: key \"{}\": warning: ", w.line, w.key)), "{printed}");
    }
}

#[test]
fn gazelle_1_0_2_file_loads_with_warnings_for_its_old_keys() {
    let config = load_conf(GAZELLE_1_0_2, "1.0.2.conf");
    let at = |key| line_in(GAZELLE_1_0_2, key);
    let want = vec![
        ("send_ring_size", at("send_ring_size"), None),
        ("expand_send_ring", at("expand_send_ring"), None),
        ("read_connect_number", at("read_connect_number"), None),
        ("seperate_send_recv", at("seperate_send_recv"), Some("num_cpus")),
        ("send_num_cpus", at("send_num_cpus"), Some("num_cpus")),
        ("recv_num_cpus", at("recv_num_cpus"), Some("num_cpus")),
        ("use_bond4", at("use_bond4"), Some("bond_mode")),
        ("slave_mac1", at("slave_mac1"), Some("bond_slave_mac")),
        ("slave_mac2", at("slave_mac2"), Some("bond_slave_mac")),
    ];
    assert_eq!(retired(&config), want);
    // The current keys of the same file still land.
    assert_eq!(config.num_cpus, Some(vec![2, 4]));
    assert_eq!(config.forward_mode(), ForwardMode::ListenShadow);
    assert_eq!(config.bond_mode, -1, "use_bond4 is not translated: dtnet does not bond");
    let text = config.warnings_text();
    assert!(text.contains("key \"use_bond4\": warning: key of an earlier gazelle release, dropped from gazelle's parser in 2023-10 (not read by gazelle 1.0.3 and later); replaced by bond_mode: write bond_mode=4"), "{text}");
}

#[test]
fn gazelle_2024_file_loads_with_warnings_for_its_old_keys() {
    let config = load_conf(GAZELLE_2024, "2024.conf");
    let at = |key| line_in(GAZELLE_2024, key);
    let want = vec![
        ("send_ring_size", at("send_ring_size"), None),
        ("recv_ring_size", at("recv_ring_size"), None),
        ("read_connect_number", at("read_connect_number"), None),
        ("ipv6_enable", at("ipv6_enable"), Some("host_addr6")),
        ("nonblock_mode", at("nonblock_mode"), None),
        ("rpc_msg_max", at("rpc_msg_max"), None),
    ];
    assert_eq!(retired(&config), want);
    assert_eq!(config.thread_model(), ThreadModel::RunToCompletion);
    assert_eq!(config.host_addr6, Some(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x10)));
    let rpc = config.warnings.iter().find(|w| w.key == "rpc_msg_max").map(ToString::to_string);
    let line = at("rpc_msg_max");
    assert_eq!(
        rpc.as_deref(),
        Some(
            format!(
                "2024.conf:{line}: key \"rpc_msg_max\": warning: key of an earlier gazelle release, dropped from \
                 gazelle's parser in 2025-07 (not read by gazelle 1.0.3 and later); no replacement: gazelle sizes \
                 its RPC message pool itself; ignored by dtnet"
            )
            .as_str()
        )
    );
}

#[test]
fn every_retired_key_is_accepted_with_a_warning_in_both_formats() {
    for retired_key in keys::RETIRED {
        let key = retired_key.key;
        let (text, _) = conf_text(&[(key, Some("1"))]);
        let config = load_conf(&text, "t.conf");
        let kinds: Vec<_> = config.warnings.iter().map(|w| (w.key.as_str(), w.line, w.kind.is_retired())).collect();
        assert_eq!(kinds, [(key, BASE.len() + 1, true)], "{key}");
        // The same in TOML: one front end must not differ from the other.
        let toml = format!("{}{key} = 1\n", conf_text(&[("use_ltran", Some("false"))]).0.replace('=', " = "));
        let config = StackConfig::from_toml_str(&toml, "t.toml").unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(warned(&config), [(key, BASE.len() + 1)], "{key}");
    }
    // A mistyped key is still unknown, not mistaken for a retired one.
    let e = err(&[("rpc_msg_maxx", Some("4096"))]);
    assert!(matches!(&e, ConfigFileError::UnknownKey { key, line: 7, .. } if key == "rpc_msg_maxx"), "{e}");
}

#[test]
fn a_retired_key_set_twice_is_still_a_duplicate() {
    let text = format!("{}rpc_msg_max=1\nrpc_msg_max=2\n", conf_text(&[]).0);
    let e = StackConfig::from_lstack_conf(&text, "t.conf").err();
    assert!(matches!(&e, Some(ConfigFileError::DuplicateKey { line: 8, first_line: 7, .. })), "{e:?}");
}

#[test]
fn every_current_gazelle_key_is_accepted_and_lands_in_its_field() {
    for key in GAZELLE_CURRENT_KEYS {
        line_in(EVERY_KEY, key);
    }
    let config = load_conf(EVERY_KEY, "every.conf");
    let want = StackConfig {
        dpdk_args: [
            "--socket-mem",
            "1024,0,0,0",
            "--huge-dir",
            "/mnt/hugepages-lstack",
            "--proc-type",
            "secondary",
            "--vdev",
            "net_af_xdp0,iface=eth3",
        ]
        .map(String::from)
        .to_vec(),
        stack_thread_mode: ThreadModel::RunToWakeup,
        use_ltran: false,
        kni_switch: true,
        flow_bifurcation: true,
        low_power_mode: true,
        tcp_conn_count: 2000,
        mbuf_count_per_conn: 200,
        rpc_number: 8,
        nic_read_number: 64,
        nic_rxqueue_size: 1024,
        nic_txqueue_size: 512,
        mem_cache_num: 64,
        stack_num: 1,
        num_cpus: Some(vec![4, 5]),
        app_bind_numa: false,
        app_exclude_cpus: Some(vec![6, 7]),
        main_thread_affinity: true,
        host_addr: Some(Ipv4Addr::new(10, 1, 0, 5)),
        mask_addr: Some(Ipv4Addr::new(255, 255, 0, 0)),
        gateway_addr: Some(Ipv4Addr::new(10, 1, 0, 1)),
        host_addr6: Some(Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 5)),
        host_mac: MacAddr([2, 0, 0, 0, 1, 5]),
        tuple_filter: true,
        num_process: 2,
        process_numa: Some(vec![1]),
        process_idx: Some(1),
        listen_shadow: false,
        unix_prefix: Some("every".to_owned()),
        nic_vlan_mode: 100,
        bond_mode: -1,
        bond_miimon: 100,
        bond_slave_mac: Some(vec![
            DevAddr::Mac(MacAddr([2, 0, 0, 0, 1, 6])),
            DevAddr::Pci(PciAddr { domain: 0, bus: 3, device: 0, function: 1 }),
        ]),
        use_sockmap: true,
        udp_enable: false,
        send_cache_mode: true,
        stack_interrupt: true,
        soft_forward: false,
        warnings: Vec::new(),
    };
    assert_eq!(settings(config.clone()), want);
    assert_eq!(config.forward_mode(), ForwardMode::FlowDirector);
    assert!(config.is_secondary());
    assert_eq!(config.process_index(), 1);
    // stack_num=1 wins over num_cpus, as in gazelle.
    assert_eq!(config.stack_count(), 1);

    // Every key dtnet does not act on is reported as ignored; num_cpus as overridden.
    let used = [
        "stack_thread_mode",
        "use_ltran",
        "stack_num",
        "num_cpus",
        "host_addr",
        "mask_addr",
        "gateway_addr",
        "host_addr6",
        "devices",
        "tuple_filter",
        "listen_shadow",
        "soft_forward",
    ];
    let mut want_ignored: Vec<&str> = GAZELLE_CURRENT_KEYS.into_iter().filter(|k| !used.contains(k)).collect();
    want_ignored.sort_by_key(|k| line_in(EVERY_KEY, k));
    let ignored: Vec<&str> = config
        .warnings
        .iter()
        .filter(|w| matches!(w.kind, WarningKind::Ignored { .. }))
        .map(|w| w.key.as_str())
        .collect();
    assert_eq!(ignored, want_ignored);
    let overridden: Vec<_> = config
        .warnings
        .iter()
        .filter(|w| matches!(w.kind, WarningKind::Overridden { by: "stack_num", .. }))
        .map(|w| (w.key.as_str(), w.line))
        .collect();
    assert_eq!(overridden, [("num_cpus", line_in(EVERY_KEY, "num_cpus"))]);
    let xdp = config.warnings.iter().find(|w| w.key == "xdp_eth_name").map(ToString::to_string).unwrap_or_default();
    assert!(xdp.contains("gazelle does not read this key either"), "{xdp}");
    // Warnings come in file order.
    assert!(config.warnings.windows(2).all(|w| w[0].line < w[1].line), "{:?}", warned(&config));
}

#[test]
fn a_config_of_used_keys_only_has_no_warnings() {
    assert_eq!(ok(&[]).warnings, []);
    assert_eq!(ok(&[("listen_shadow", Some("1")), ("stack_thread_mode", Some("\"run-to-completion\""))]).warnings, []);
}

#[test]
fn num_cpus_may_be_left_out_as_in_gazelle() {
    let config = ok(&[("num_cpus", None)]);
    assert_eq!((config.num_cpus.as_deref(), config.stack_count()), (None, 1));
    let config = ok(&[("num_cpus", None), ("stack_num", Some("1"))]);
    assert_eq!((config.stack_count(), config.warnings.len()), (1, 0));
    assert_eq!(ok(&[("num_cpus", Some("\"2-5\"")), ("stack_num", Some("0"))]).stack_count(), 4);
}

#[test]
fn gazelle_skips_process_and_bond_keys_it_does_not_read() {
    // With ltran, gazelle reads neither num_process nor process_idx.
    let c = ok(&[("use_ltran", Some("1")), ("num_process", Some("3"))]);
    assert_eq!((c.num_process, c.process_idx), (3, None));
    // Without bonding, bond_miimon is not range-checked and bond_slave_mac not required.
    let c = ok(&[("bond_miimon", Some("0"))]);
    assert_eq!((c.bond_mode, c.bond_miimon), (-1, 0));
    let e = err(&[("bond_miimon", Some("0")), ("bond_mode", Some("4")), ("bond_slave_mac", Some("\"0000:03:00.0\""))]);
    assert_eq!((e.key(), e.line()), (Some("bond_miimon"), Some(7)), "{e}");
    let c = ok(&[("bond_mode", Some("6")), ("bond_slave_mac", Some("\"0000:03:00.0;02:00:00:00:00:09\""))]);
    assert_eq!(
        c.bond_slave_mac.map(|p| p.iter().map(ToString::to_string).collect::<Vec<_>>()),
        Some(vec!["0000:03:00.0".to_owned(), "02:00:00:00:00:09".to_owned()])
    );
}

#[test]
fn cross_key_rules_are_refused_with_file_line_and_key() {
    let secondary = "[\"--proc-type\", \"secondary\"]";
    let cases: &[(Changes, &str, &str)] = &[
        (&[("tuple_filter", Some("1")), ("use_ltran", Some("1"))], "tuple_filter", "use_ltran=1"),
        (&[("tuple_filter", Some("1")), ("listen_shadow", Some("1"))], "tuple_filter", "listen_shadow=1"),
        (&[("kni_switch", Some("1")), ("use_ltran", Some("1"))], "kni_switch", "use_ltran=1"),
        (&[("num_process", Some("2"))], "process_idx", "required when num_process is above 1"),
        (
            &[("num_process", Some("2")), ("process_idx", Some("0")), ("dpdk_args", Some(secondary))],
            "process_idx",
            "secondary",
        ),
        (&[("num_process", Some("2")), ("process_idx", Some("1"))], "process_idx", "primary"),
        (&[("num_process", Some("2")), ("process_idx", Some("2"))], "process_idx", "not below num_process 2"),
        (
            &[("stack_interrupt", Some("1")), ("stack_thread_mode", Some("\"run-to-completion\""))],
            "stack_interrupt",
            "run-to-completion",
        ),
        (
            &[
                ("stack_interrupt", Some("1")),
                ("bond_mode", Some("1")),
                ("bond_slave_mac", Some("\"02:00:00:00:00:09\"")),
            ],
            "stack_interrupt",
            "bonding",
        ),
        (&[("bond_mode", Some("4"))], "bond_slave_mac", "required when bond_mode is not -1"),
        (&[("use_ltran", Some("1")), ("dpdk_args", Some("[\"--huge-dir\", \"/mnt\"]"))], "dpdk_args", "--socket-mem"),
        (&[("dpdk_args", Some("[\"--vdev\", \"net_af_xdp0,queue_count=2\"]"))], "dpdk_args", "iface=NAME"),
        (&[("dpdk_args", Some("[\"--vdev\"]"))], "dpdk_args", "needs a value"),
        (&[("mask_addr", None)], "mask_addr", "required when host_addr is set"),
        (&[("soft_forward", Some("1")), ("tuple_filter", Some("1"))], "soft_forward", "tuple_filter=1"),
    ];
    for (changes, key, needle) in cases {
        let (text, lines) = conf_text(changes);
        let e = err(changes);
        assert!(matches!(e, ConfigFileError::Invalid { .. }), "{changes:?}: {e}");
        assert_eq!(e.key(), Some(*key), "{changes:?}: {e}");
        // A missing key points at the key that needs it.
        let required_by = [("process_idx", "num_process"), ("bond_slave_mac", "bond_mode"), ("mask_addr", "host_addr")];
        let line_key = lines.iter().find(|(k, _)| k == key).or_else(|| {
            required_by.iter().find(|(k, _)| k == key).and_then(|(_, by)| lines.iter().find(|(k, _)| k == by))
        });
        let line = line_key.map(|(_, l)| *l);
        assert!(line.is_some(), "{changes:?}: no line for {key}");
        assert_eq!(e.line(), line, "{changes:?}: {e}\n{text}");
        let shown = e.to_string();
        assert!(shown.starts_with(&format!("t.conf:{}: key \"{key}\": ", line.unwrap_or(0))), "{shown}");
        assert!(shown.contains(needle), "{shown}");
    }
}

#[test]
fn out_of_range_values_are_refused_naming_the_range() {
    let cases: &[(&str, &str, &str)] = &[
        ("tcp_conn_count", "20001", "20001 is out of range 1..=20000"),
        ("mbuf_count_per_conn", "0", "out of range 1..=2147483647"),
        ("mbuf_count_per_conn", "2147483648", "out of range 1..=2147483647"),
        ("rpc_number", "0", "out of range 1..=2147483647"),
        ("nic_read_number", "0", "out of range 1..=2147483647"),
        ("mem_cache_num", "15", "15 is out of range 16..=1024"),
        ("mem_cache_num", "1025", "1025 is out of range 16..=1024"),
        ("stack_num", "2", "2 is out of range 0..=1"),
        ("nic_rxqueue_size", "16384", "out of range 512..=8192"),
        ("nic_txqueue_size", "256", "out of range 512..=8192"),
        ("nic_vlan_mode", "4095", "out of range -1..=4094"),
        ("nic_vlan_mode", "-2", "out of range -1..=4094"),
        ("bond_mode", "2", "not one of -1 (off), 1, 4 or 6"),
        ("num_cpus", "\"2,640\"", "0..640"),
        ("app_exclude_cpus", "\"\"", "empty list"),
        ("process_numa", "\"8\"", "out of range 0..8"),
    ];
    for (key, value, needle) in cases {
        let changes = [(*key, Some(*value))];
        let (_, lines) = conf_text(&changes);
        let line = lines.iter().find(|(k, _)| k == key).map(|(_, l)| *l);
        let e = err(&changes);
        assert_eq!((e.key(), e.line()), (Some(*key), line), "{key}={value}: {e}");
        let shown = e.to_string();
        assert!(shown.starts_with(&format!("t.conf:{}: key \"{key}\": ", line.unwrap_or(0))), "{shown}");
        assert!(shown.contains(needle), "{key}={value}: {shown}");
    }
    let e =
        err(&[("bond_mode", Some("4")), ("bond_slave_mac", Some("\"02:00:00:00:00:09\"")), ("bond_miimon", Some("0"))]);
    assert!(e.to_string().starts_with("t.conf:9: key \"bond_miimon\": 0 is out of range 1..=2147483647"), "{e}");
    // Switches take 0 or 1 only.
    for key in ["use_sockmap", "send_cache_mode", "stack_interrupt", "flow_bifurcation", "udp_enable"] {
        let e = err(&[(key, Some("2"))]);
        assert!(matches!(&e, ConfigFileError::BadValue { line: 7, .. }), "{key}: {e}");
        assert!(e.to_string().contains("expected 0 or 1"), "{e}");
    }
    // The edges themselves are accepted.
    let edges: Changes = &[
        ("tcp_conn_count", Some("20000")),
        ("mem_cache_num", Some("16")),
        ("nic_rxqueue_size", Some("8192")),
        ("nic_txqueue_size", Some("512")),
        ("nic_vlan_mode", Some("4094")),
        ("mbuf_count_per_conn", Some("2147483647")),
    ];
    let c = ok(edges);
    assert_eq!((c.tcp_conn_count, c.mem_cache_num, c.nic_vlan_mode), (20000, 16, 4094));
}

#[test]
fn broadcast_mask_and_gateway_are_refused_as_gazelle_does() {
    let e = err(&[("mask_addr", Some("\"255.255.255.255\""))]);
    assert_eq!((e.key(), e.line()), (Some("mask_addr"), Some(4)), "{e}");
    let e = err(&[("gateway_addr", Some("\"255.255.255.255\""))]);
    assert_eq!((e.key(), e.line()), (Some("gateway_addr"), Some(5)), "{e}");
}

#[test]
fn pci_addresses_parse_strictly() {
    assert_eq!("0000:03:00.1".parse(), Ok(PciAddr { domain: 0, bus: 3, device: 0, function: 1 }));
    assert_eq!("abcd:ef:1f.7".parse::<PciAddr>().map(|p| p.to_string()), Ok("abcd:ef:1f.7".to_owned()));
    for bad in ["", "0000:03:00", "000:03:00.1", "0000:03:00.12", "0000:0g:00.1", "0000-03-00.1", "+000:03:00.1"] {
        assert!(bad.parse::<PciAddr>().is_err(), "{bad}");
    }
    let e = err(&[("bond_mode", Some("4")), ("bond_slave_mac", Some("\"0000:03:0x.0\""))]);
    assert!(matches!(e, ConfigFileError::BadValue { line: 8, .. }), "{e}");
    assert!(e.to_string().contains("PCI address"), "{e}");
}

/// Writes `bytes` to a fresh file named `name` and loads it.
fn load_bytes(name: &str, bytes: &[u8]) -> (std::path::PathBuf, Result<StackConfig, ConfigFileError>) {
    let dir = std::env::temp_dir().join(format!("dtnet-config-binary-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));
    let result = StackConfig::load(&path);
    let _ = std::fs::remove_dir_all(&dir);
    (path, result)
}

/// Asserts `result` is a syntax error at `line`:`column` whose text names the file there.
fn assert_at(path: &std::path::Path, result: Result<StackConfig, ConfigFileError>, line: usize, column: usize) {
    let e = match result {
        Ok(c) => panic!("{}: expected an error, got {c:?}", path.display()),
        Err(e) => e,
    };
    assert!(matches!(e, ConfigFileError::Syntax { line: l, column: c, .. } if (l, c) == (line, column)), "{e:?}");
    assert!(e.to_string().starts_with(&format!("{}:{line}:{column}: ", path.display())), "{e}");
}

#[test]
fn binary_junk_and_invalid_utf8_name_file_line_and_column() {
    // Invalid UTF-8 after a two-byte character: the column counts characters.
    let (path, r) = load_bytes("utf8.conf", b"use_ltran=0\n# caf\xc3\xa9\nnum_cpus=\"\xc3\xa9\xff\"\n");
    assert_at(&path, r, 3, 12);
    // The same after a valid multi-byte character, as a NUL: the lexer's column agrees.
    let (path, r) = load_bytes("nul-after-e.conf", "use_ltran=0\n# café\nnum_cpus=\"é\u{0}".as_bytes());
    assert_at(&path, r, 3, 12);
    let (path, r) = load_bytes("utf8.conf", b"use_ltran=0\n\nhost_addr=\"\xc3\x28\"\n");
    assert_at(&path, r, 3, 12);
    let (path, r) = load_bytes("utf8.toml", b"use_ltran = 0\nnum_cpus = \"\xfe\"\n");
    assert_at(&path, r, 2, 13);
    let e = load_bytes("utf8.conf", b"\xff").1.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("not valid UTF-8 (byte 0xff)"), "{e}");
    // Valid UTF-8 that is still binary: NUL and other control characters, in a value, a
    // comment, or where a key belongs.
    for (name, bytes, line, column) in [
        ("nul.conf", &b"use_ltran=0\nnum_cpus=\"2\0\"\n"[..], 2, 12),
        ("comment.conf", &b"# a\x01b\nuse_ltran=0\n"[..], 1, 4),
        ("key.conf", &b"use_ltran=0\n\x7fELF\x02\x01\x01\n"[..], 2, 1),
        ("nul.toml", &b"use_ltran = 0\n\x00\x00\x00\n"[..], 2, 1),
        ("bell.toml", &b"use_ltran = 0 # \x07\n"[..], 1, 17),
    ] {
        let (path, r) = load_bytes(name, bytes);
        let text = r.as_ref().err().map(ToString::to_string).unwrap_or_default();
        assert!(text.contains("is this a binary file?"), "{name}: {text}");
        assert_at(&path, r, line, column);
    }
    // What a lossy decoder makes of binary data is refused too.
    let e = StackConfig::from_lstack_conf("use_ltran=0\nx\u{fffd}=1\n", "lossy.conf").err();
    assert!(matches!(e, Some(ConfigFileError::Syntax { line: 2, column: 2, .. })), "{e:?}");
}

#[test]
fn random_binary_files_are_refused_with_a_position() {
    let mut rng = Rng(0x853c_49e6_748f_ea9b);
    for round in 0..300 {
        let len = 1 + rng.below(200);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Make sure the junk holds at least one byte no text file has.
        let at = rng.below(bytes.len());
        bytes[at] = [0x00, 0x01, 0x1b, 0x7f, 0xff, 0xc0][round % 6];
        let name = if round % 2 == 0 { "junk.conf" } else { "junk.toml" };
        let (path, r) = load_bytes(name, &bytes);
        match r {
            Err(ConfigFileError::Syntax { line, column, .. }) => {
                assert!(line >= 1 && column >= 1, "{bytes:?}");
                let _ = path;
            }
            other => panic!("{bytes:?}: expected a syntax error, got {other:?}"),
        }
    }
}
