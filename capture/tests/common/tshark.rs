//! Whether tshark can run, shared by the tshark tests of every crate
//! (`harness/cli/tests/tshark.rs` and `harness/bench/tests/kernel_peer.rs`
//! include this file by path).

use std::process::Command;

/// Whether tshark can run; panics instead of skipping under CI.
pub fn tshark_available() -> bool {
    let found = Command::new("tshark").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
        assert!(!ci, "tshark is not on PATH but CI is set: install it (apt-get install tshark)");
        eprintln!("SKIPPED: tshark is not on PATH; install it to run this test");
    }
    found
}
