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
        num_cpus: vec![2, 3],
        host_addr: Some(Ipv4Addr::new(192, 168, 1, 10)),
        mask_addr: Some(Ipv4Addr::new(255, 255, 255, 0)),
        gateway_addr: Some(Ipv4Addr::new(192, 168, 1, 1)),
        host_addr6: Some(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x10)),
        host_mac: MacAddr([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]),
        process_numa: Some(vec![0, 1]),
        listen_shadow: true,
        unix_prefix: Some("dtnet".to_owned()),
        ..StackConfig::default()
    }
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

fn conf(changes: Changes) -> Result<StackConfig, ConfigError> {
    StackConfig::from_lstack_conf(&conf_text(changes).0, "t.conf")
}

fn ok(changes: Changes) -> StackConfig {
    conf(changes).unwrap_or_else(|e| panic!("{changes:?}: {e}"))
}

fn err(changes: Changes) -> ConfigError {
    match conf(changes) {
        Ok(c) => panic!("{changes:?}: expected an error, got {c:?}"),
        Err(e) => e,
    }
}

#[test]
fn lstack_conf_fixture_parses() {
    let config = StackConfig::from_lstack_conf(LSTACK_CONF, "lstack.conf").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config, fixture_config());
    assert_eq!(config.stack_count(), 2);
    assert_eq!(config.forward_mode(), ForwardMode::ListenShadow);
    assert_eq!(config.thread_model(), ThreadModel::RunToWakeup);
    assert_eq!(config.mbuf_count(), 255_000);
}

#[test]
fn toml_fixture_matches_lstack_conf() {
    let toml = StackConfig::from_toml_str(LSTACK_TOML, "lstack.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(toml, fixture_config());
}

#[test]
fn gazelle_defaults() {
    let config = ok(&[]);
    let want = StackConfig {
        use_ltran: false,
        num_cpus: vec![2],
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
    assert_eq!(ok(&[("num_cpus", Some("\"0, 4-5, 0x8\""))]).num_cpus, [0, 4, 5, 8]);
    assert_eq!(ok(&[("num_cpus", Some("7"))]).num_cpus, [7]);
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
        (&[("num_wakeup", Some("\"5\"")), ("num_cpus", Some("\"2-3\""))], "num_wakeup"),
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
        assert!(matches!(e, ConfigError::Invalid { .. }), "{changes:?}: {e}");
        assert_eq!(e.key(), Some(*key), "{changes:?}: {e}");
        let line = lines.iter().find(|(k, _)| k == key).map(|(_, l)| *l);
        assert_eq!(e.line(), line, "{changes:?}: {e}\n{text}");
        assert!(e.to_string().starts_with(&format!("t.conf:{}: key \"{key}\": ", line.unwrap_or(0))), "{e}");
    }
}

#[test]
fn validation_of_defaulted_keys_has_no_line() {
    let cases: &[(Changes, &str)] = &[
        (&[("host_addr", None)], "host_addr"),
        (&[("gateway_addr", None)], "gateway_addr"),
        (&[("mask_addr", None)], "mask_addr"),
        (&[("bond_mode", Some("4"))], "bond_slave_mac"),
    ];
    for (changes, key) in cases {
        let e = err(changes);
        assert_eq!((e.key(), e.line()), (Some(*key), None), "{changes:?}: {e}");
        assert!(e.to_string().starts_with(&format!("t.conf: key \"{key}\": ")), "{e}");
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
        assert!(matches!(e, ConfigError::BadValue { .. }), "{key}={value}: {e}");
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
    assert!(matches!(&e, ConfigError::UnknownKey { line: 7, column: 1, key, .. } if key == "listen_shadown"), "{e}");
    assert_eq!(e.to_string(), "t.conf:7: key \"listen_shadown\": unknown key");
    let e = StackConfig::from_toml_str("num_cpus = \"2\"\n\n  bogus = 1\n", "x.toml").err();
    assert!(matches!(&e, Some(ConfigError::UnknownKey { line: 3, column: 3, .. })), "{e:?}");
}

#[test]
fn missing_and_duplicate_keys() {
    let e = err(&[("devices", None)]);
    assert!(matches!(&e, ConfigError::MissingKey { key, .. } if key == "devices"), "{e}");
    assert_eq!(e.to_string(), "t.conf: key \"devices\": required but missing");
    let e = err(&[("num_cpus", None)]);
    assert_eq!(e.key(), Some("num_cpus"));
    let text = format!("{}num_cpus=\"3\"\n", conf_text(&[]).0);
    let e = StackConfig::from_lstack_conf(&text, "t.conf").err();
    assert!(matches!(e, Some(ConfigError::DuplicateKey { line: 7, first_line: 2, .. })), "{e:?}");
}

#[test]
fn host_mac_is_an_alias_of_devices() {
    let c = ok(&[("devices", None), ("host_mac", Some("\"2:0:0:0:0:AB\""))]);
    assert_eq!(c.host_mac, MacAddr([2, 0, 0, 0, 0, 0xab]));
    assert_eq!(c.host_mac.to_string(), "02:00:00:00:00:ab");
    let e = err(&[("host_mac", Some("\"02:00:00:00:00:02\""))]);
    assert!(matches!(e, ConfigError::BadValue { line: 7, .. }), "{e}");
}

#[test]
fn toml_errors_carry_line_and_key() {
    let text = "use_ltran = 0\nnum_cpus = \"2\"\nhost_addr = \"10.0.0.2\"\nmask_addr = \"255.255.255.0\"\n\
                gateway_addr = \"10.0.0.1\"\ndevices = \"02:00:00:00:00:01\"\nlisten_shadow = 1\nsoft_forward = 1\n";
    assert!(StackConfig::from_toml_str(&text.replace("soft_forward = 1\n", ""), "c.toml").is_ok());
    let e = StackConfig::from_toml_str(text, "c.toml").err();
    assert!(matches!(&e, Some(ConfigError::Invalid { line: Some(8), .. })), "{e:?}");
    let e = StackConfig::from_toml_str(&text.replace("\"2\"", "\"x\""), "c.toml").err();
    assert!(matches!(&e, Some(ConfigError::BadValue { line: 2, key, .. }) if key == "num_cpus"), "{e:?}");
    let e = StackConfig::from_toml_str("num_cpus = \"2\"\n[dpdk]\nx = 1\n", "c.toml").err();
    assert!(matches!(&e, Some(ConfigError::UnknownKey { line: 2, .. })), "{e:?}");
    let e = StackConfig::from_toml_str("a = 1\nb = [\n", "c.toml").err();
    assert!(matches!(&e, Some(ConfigError::Syntax { .. })), "{e:?}");
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
    assert_eq!(StackConfig::load(&conf).ok(), Some(fixture_config()));
    assert_eq!(StackConfig::load(&toml).ok(), Some(fixture_config()));
    // Simple TOML happens to be valid libconfig, but a TOML table header is not.
    let swapped = write("toml-as.conf", b"num_cpus = \"2\"\n[dpdk]\n");
    let e = StackConfig::load(&swapped).err();
    assert!(e.is_some_and(|e| e.to_string().starts_with(&swapped.display().to_string())));
    let binary = write("binary.conf", b"use_ltran=0\nnum_cpus=\"\xff\"\n");
    let e = StackConfig::load(&binary).err();
    assert!(matches!(e, Some(ConfigError::Syntax { line: 2, column: 11, .. })), "{e:?}");
    let e = StackConfig::load(&dir.join("absent.conf")).err();
    assert!(matches!(e, Some(ConfigError::Io { .. })), "{e:?}");
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

// Binary input (issue 9 §2): refused with file, line and column.

/// Writes `bytes` to a fresh file named `name` and loads it.
fn load_bytes(name: &str, bytes: &[u8]) -> (std::path::PathBuf, Result<StackConfig, ConfigError>) {
    let dir = std::env::temp_dir().join(format!("dtnet-config-binary-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));
    let result = StackConfig::load(&path);
    let _ = std::fs::remove_dir_all(&dir);
    (path, result)
}

/// Asserts `result` is a syntax error at `line`:`column` whose text names the file there.
fn assert_at(path: &std::path::Path, result: Result<StackConfig, ConfigError>, line: usize, column: usize) {
    let e = match result {
        Ok(c) => panic!("{}: expected an error, got {c:?}", path.display()),
        Err(e) => e,
    };
    assert!(matches!(e, ConfigError::Syntax { line: l, column: c, .. } if (l, c) == (line, column)), "{e:?}");
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
    assert!(matches!(e, Some(ConfigError::Syntax { line: 2, column: 2, .. })), "{e:?}");
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
            Err(ConfigError::Syntax { line, column, .. }) => {
                assert!(line >= 1 && column >= 1, "{bytes:?}");
                let _ = path;
            }
            other => panic!("{bytes:?}: expected a syntax error, got {other:?}"),
        }
    }
}
