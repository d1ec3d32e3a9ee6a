//! Rings: objects per second through a ring between two threads, in bursts
//! of 32, for the cheapest (SPSC) and the most general (MPMC) kind, and
//! through a domain's SPSC ring between two processes (`ring.xproc.*`: the
//! consumer is a `dtnet mp ring-peer` process, which checks the sequence).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use ethdev::ring::{spsc, Ring};
use ethdev::shm::ring::{self as shm_ring, ShmProducer};
use ethdev::shm::{Domain, DomainOptions, Role};

use mp::ring_peer::END;

use crate::{best_rate, measurement, repeat_for, Budget, Measurement};

const BURST: usize = 32;
const SLOTS: usize = 1024;

pub(super) fn run(budget: Budget) -> Vec<Measurement> {
    vec![
        measurement("ring.spsc.burst32", best_rate(budget, through_spsc), "Mobj/s"),
        measurement("ring.mpmc.burst32", best_rate(budget, through_mpmc), "Mobj/s"),
        measurement(XPROC, best_rate(budget, across_processes_or_report), "Mobj/s"),
    ]
}

/// The cross-process benchmark's name.
pub(super) const XPROC: &str = "ring.xproc.spsc.burst32";

/// [`across_processes`], or nothing (said on stderr) if it could not run.
fn across_processes_or_report(length: Duration) -> u64 {
    across_processes(length).unwrap_or_else(|e| {
        eprintln!("dtnet bench: {e}");
        0
    })
}

/// Words a producer here pushes into a domain ring for `length` while a
/// `dtnet mp ring-peer` process drains it; counts what the peer confirmed.
fn across_processes(length: Duration) -> Result<u64, String> {
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let base = std::env::temp_dir().join(format!("dtnet-bench-{}", std::process::id()));
    let prefix = format!("xproc{}", RUNS.fetch_add(1, Ordering::Relaxed));
    let options = DomainOptions { base: base.clone(), size: 1 << 20, ..DomainOptions::default() };
    let domain = Domain::open(&prefix, Role::Primary, &options).map_err(|e| e.to_string())?;
    let zone = domain.reserve("XPROC", shm_ring::ring_bytes(SLOTS as u32)).map_err(|e| e.to_string())?;
    shm_ring::create(&zone, SLOTS as u32).map_err(|e| e.to_string())?;
    let mut tx = ShmProducer::attach(&zone).map_err(|e| e.to_string())?;
    let mut peer = Command::new(crate::dtnet_binary())
        .args(["mp", "ring-peer", "--prefix", &prefix, "--ring", "XPROC", "--runtime-dir"])
        .arg(&base)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{XPROC}: cannot start the peer process: {e}"))?;
    let mut out = BufReader::new(peer.stdout.take().expect("piped"));
    let mut line = String::new();
    out.read_line(&mut line).map_err(|e| e.to_string())?;
    let mut next = 0u64;
    let mut burst = Vec::with_capacity(BURST);
    repeat_for(length, || {
        burst.clear();
        burst.extend(next..next + BURST as u64);
        let sent = tx.enqueue_burst(&burst) as u64;
        next += sent;
        sent
    });
    while tx.enqueue_burst(&[END]) == 0 {
        std::hint::spin_loop();
    }
    line.clear();
    out.read_line(&mut line).map_err(|e| e.to_string())?;
    peer.wait().map_err(|e| e.to_string())?;
    drop(domain);
    let _ = std::fs::remove_dir(&base);
    let drained = line.trim().strip_prefix("drained ").and_then(|n| n.parse().ok());
    drained.filter(|&n| n == next).ok_or_else(|| format!("{XPROC}: sent {next}, the peer said {line:?}"))
}

fn through_spsc(length: Duration) -> u64 {
    let (mut producer, mut consumer) = spsc(SLOTS).expect("valid ring size");
    through(length, move |burst| producer.enqueue_burst(burst), move |out| consumer.dequeue_burst(out, BURST))
}

fn through_mpmc(length: Duration) -> u64 {
    let ring = Arc::new(Ring::mpmc(SLOTS).expect("valid ring size"));
    let producer = Arc::clone(&ring);
    through(length, move |burst| producer.enqueue_burst(burst), move |out| ring.dequeue_burst(out, BURST))
}

/// A producer thread fills a ring through `push` in bursts while this
/// thread drains it through `pull` for `length`; returns what the consumer
/// received once the producer was running.
fn through(
    length: Duration,
    mut push: impl FnMut(&mut Vec<u64>) -> usize + Send + 'static,
    mut pull: impl FnMut(&mut Vec<u64>) -> usize,
) -> u64 {
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut burst: Vec<u64> = Vec::with_capacity(BURST);
            while !stop.load(Ordering::Relaxed) {
                burst.extend(burst.len() as u64..BURST as u64);
                if push(&mut burst) == 0 {
                    std::hint::spin_loop();
                }
            }
        })
    };
    let mut out = Vec::with_capacity(BURST);
    while pull(&mut out) == 0 {
        thread::yield_now();
    }
    let received = repeat_for(length, || {
        out.clear();
        pull(&mut out) as u64
    });
    stop.store(true, Ordering::Relaxed);
    producer.join().expect("producer thread");
    received
}
