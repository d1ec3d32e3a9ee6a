//! The `dtnet` binary as a user runs it.

use assert_cmd::Command;

fn dtnet() -> Command {
    Command::cargo_bin("dtnet").unwrap()
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
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("hash 0x51ccc178 queue {expected_queue}"));
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
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hash 0x2cc18cd5 queue 3");
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let out = dtnet().args(["rss", "--src", "1.2.3.4", "--dst", "::1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid dst"));
    let out = dtnet().args(["rss", "--src", "1.2.3.4", "--dst", "1.2.3.5", "--key", "abcd"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid rss.key"));
    let out = dtnet().args(["run", "--loss", "2"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid loss"));
}

#[test]
fn run_passes_its_default_scenario() {
    let out = dtnet().args(["run", "--flows", "300"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("result: PASS"));
    assert!(!text.contains("[FAIL]"));
}
