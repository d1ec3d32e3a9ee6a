//! `kernel.tcp.conn_rate`: Linux's short-connection rate, the baseline of
//! `tcp.conn_rate`, with the same traffic shape: connections that each
//! connect, echo 64 pattern bytes (checked on return) and close, 16 at a
//! time, over the kernel baseline's veth pair between two namespaces with
//! offloads off ([`crate::kernel`]). Sixteen server threads in the server
//! namespace share one listener and serve one connection at a time each;
//! sixteen client threads in the client namespace run the connections; the
//! clock runs from the first connect to the last close. Every connection
//! must complete with every byte, or the figure is not reported. A run is
//! short (2,000 connections), so each figure, ours and the kernel's alike,
//! is the best of the budget's rounds of whole runs.
//! `tcp.conn_rate.ratio` divides a `tcp.conn_rate` measured for it by this
//! baseline measured right before. Both need root; without it they say why
//! on stderr and report nothing.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use sim::apps::pattern;
use stack::ThreadModel;

use crate::kernel::{KernelSkip, Offloads, Tools, Topology};
use crate::tcp::{conn_count, conn_rate, reported, CONN_BYTES, CONN_WORKERS};
use crate::{best_of, measurement, Budget, Measurement};

/// The baseline's name.
pub const NAME: &str = "kernel.tcp.conn_rate";
/// Name of `tcp.conn_rate` over the baseline, both measured in the same run.
pub const RATIO: &str = "tcp.conn_rate.ratio";

const PORT: u16 = 5202;
/// How long a connection may wait for its peer before the run fails.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The baseline (opt-in: needs root).
pub(super) fn run(budget: Budget) -> Vec<Measurement> {
    let rate = best_of(budget.rounds, || kernel_conn_rate(conn_count(budget))).map_err(|skip| skip.to_string());
    reported(NAME, rate.map(|r| measurement(NAME, r, "conn/s")))
}

/// `tcp.conn_rate` over the baseline, both measured now (opt-in: needs root).
pub(super) fn run_ratio(budget: Budget) -> Vec<Measurement> {
    let conns = conn_count(budget);
    let kernel = match best_of(budget.rounds, || kernel_conn_rate(conns)) {
        Ok(rate) => rate,
        Err(skip) => return reported(RATIO, Err(format!("kernel baseline: {skip}"))),
    };
    let ours = best_of(budget.rounds, || conn_rate(conns, ThreadModel::RunToCompletion));
    reported(RATIO, ours.map(|ours| measurement(RATIO, ours / kernel, "x")))
}

/// Linux's rate in connections per second over `conns` short echo
/// connections (see the module doc).
pub fn kernel_conn_rate(conns: u64) -> Result<f64, KernelSkip> {
    let tools = Tools::find()?;
    let topology = Topology::create(&tools, Offloads::Off)?;
    let addr = SocketAddr::from((topology.server_ip(), PORT));
    let ns = topology.server_ns.name().to_string();
    let bound = thread::spawn(move || in_namespace(&ns, || TcpListener::bind(addr))).join();
    let listener = bound
        .map_err(|_| KernelSkip::Setup("the listening thread panicked".into()))?
        .map_err(|e| KernelSkip::Setup(format!("listen on {addr}: {e}")))?;
    let listener = Arc::new(listener);
    let served = Arc::new(AtomicU64::new(0));
    let servers: Vec<_> = (0..CONN_WORKERS)
        .map(|_| {
            let (listener, served) = (Arc::clone(&listener), Arc::clone(&served));
            thread::spawn(move || serve(&listener, &served))
        })
        .collect();
    let start = Instant::now();
    let clients: Vec<_> = (0..CONN_WORKERS.min(conns))
        .map(|worker| {
            let ns = topology.client_ns.name().to_string();
            thread::spawn(move || {
                in_namespace(&ns, || (worker..conns).step_by(CONN_WORKERS as usize).try_for_each(|id| echo(addr, id)))
            })
        })
        .collect();
    let outcomes: Vec<_> = clients.into_iter().map(thread::JoinHandle::join).collect();
    let took = start.elapsed();
    // Shutting a listening socket down wakes its blocked accepts (Linux).
    let _ = rustix::net::shutdown(&*listener, rustix::net::Shutdown::Read);
    servers.into_iter().for_each(|s| s.join().unwrap_or(()));
    for outcome in outcomes {
        outcome.map_err(|_| KernelSkip::Measure("a client thread panicked".into()))?.map_err(measure_err)?;
    }
    let served = served.load(Ordering::Relaxed);
    if served != conns {
        return Err(KernelSkip::Measure(format!("the server echoed {served} of {conns} connections")));
    }
    Ok(conns as f64 / took.as_secs_f64())
}

fn measure_err(e: io::Error) -> KernelSkip {
    KernelSkip::Measure(format!("a short connection failed: {e}"))
}

/// Runs `f` on this thread inside namespace `ns` (the thread stays there).
fn in_namespace<T>(ns: &str, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    kernel_peer::netns::enter(ns)?;
    f()
}

/// Accepts and echoes connections one at a time, counting those that
/// echoed all [`CONN_BYTES`] bytes, until accepting fails.
fn serve(listener: &TcpListener, served: &AtomicU64) {
    while let Ok((mut conn, _)) = listener.accept() {
        let mut buf = [0; CONN_BYTES as usize];
        let echoed = conn.set_read_timeout(Some(IO_TIMEOUT)).and_then(|()| conn.read_exact(&mut buf));
        if echoed.and_then(|()| conn.write_all(&buf)).is_ok() {
            served.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One short connection: connect, send stream `id`'s pattern, check that
/// it comes back, close.
fn echo(addr: SocketAddr, id: u64) -> io::Result<()> {
    let mut conn = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut sent = [0; CONN_BYTES as usize];
    pattern::fill(id, 0, &mut sent);
    conn.write_all(&sent)?;
    let mut back = [0; CONN_BYTES as usize];
    conn.read_exact(&mut back)?;
    pattern::verify(id, 0, &back).map_err(|at| io::Error::other(format!("connection {id}: byte {at} differs")))
}
