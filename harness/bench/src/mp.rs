//! Multi-process forwarding: frames per second through DPDK's
//! client_server_mp layout, with this process as the server (which also
//! plays the ports' hosts and checks every frame) and two `dtnet mp
//! client-server` client processes forwarding 64-byte frames (60 bytes
//! and the FCS the wire would add) between two shared ports.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ::mp::client_server::{self, Distribution, Outcome};

use super::{measurement, Budget, Measurement};

/// The benchmark's name.
pub(super) const NAME: &str = "mp.client_server.fwd.64b";
const CLIENTS: u16 = 2;

pub(super) fn run(budget: Budget) -> Vec<Measurement> {
    let best = (0..budget.rounds).map(|_| round(budget.round).unwrap_or_else(report)).fold(0.0, f64::max);
    vec![measurement(NAME, best, "Mpps")]
}

fn report(e: String) -> f64 {
    eprintln!("dtnet bench: {NAME}: {e}");
    0.0
}

/// One run sized to last about `length`: the rate the server measured, if
/// every frame came back intact.
fn round(length: Duration) -> Result<f64, String> {
    static RUNS: AtomicU32 = AtomicU32::new(0);
    let base = std::env::temp_dir().join(format!("dtnet-bench-{}", std::process::id()));
    let prefix = format!("csmp{}", RUNS.fetch_add(1, Ordering::Relaxed));
    // About a million frames a second get through on a quiet 2-core machine.
    let frames = (length.as_millis() as u32).saturating_mul(500).max(1000);
    let opts = client_server::Options {
        prefix: prefix.clone(),
        base: base.clone(),
        clients: CLIENTS,
        client_id: None,
        frames,
        distribution: Distribution::RoundRobin,
        ring_words: 512,
        wait: Duration::from_secs(5),
    };
    let mut clients = Vec::new();
    let outcome = client_server::run(&opts, |line| {
        if line.starts_with("ready") {
            clients.extend((0..CLIENTS).map(|n| start_client(&base, &prefix, n)));
        }
    });
    for client in &mut clients {
        let ok = client.as_mut().map_err(|e| e.to_string()).and_then(|c| c.wait().map_err(|e| e.to_string()));
        if !ok.as_ref().is_ok_and(|status| status.success()) {
            return Err(format!("client failed: {ok:?}"));
        }
    }
    let _ = std::fs::remove_dir(&base);
    match outcome? {
        Outcome::Server(r) if r.received == r.sent && r.bad == 0 => Ok(r.mpps()),
        Outcome::Server(r) => Err(format!("frames went missing: {r}")),
        Outcome::Client(_) => Err("ran as a client".into()),
    }
}

fn start_client(base: &std::path::Path, prefix: &str, n: u16) -> std::io::Result<std::process::Child> {
    Command::new(super::dtnet_binary())
        .args(["mp", "client-server", "--clients", &CLIENTS.to_string(), "--client-id", &n.to_string()])
        .args(["--prefix", prefix, "--runtime-dir"])
        .arg(base)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
}
