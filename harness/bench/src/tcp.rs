//! TCP through whole stacks: two stack groups on veth ports joined by the
//! user-space bridge at MTU 1500, run by the threaded executor.
//! `tcp.goodput.1500` is one bulk stream between a 1-stack client and a
//! 1-stack server with 256 KiB socket buffers, run-to-completion: each
//! application thread runs its own stack inside its calls, as a kernel
//! process runs TCP inside its system calls, so the two threads match
//! iperf3's two processes on a 2-core machine. `tcp.goodput.1500.rtw` is the
//! same stream with a thread per stack (run-to-wakeup). The client runs the
//! bulk app's exchange (`bulk::transfer`) against the bulk server, which
//! verifies every byte, so generating and checking the pattern is part of
//! the figure, as an application's own work would be; the clock runs inside
//! the client task from the end of `connect` to the server's receipt, so
//! world set-up and executor shutdown are not counted. `tcp.conn_rate` is
//! short connections (connect, 64 bytes echoed, close) from a 2-stack
//! client to a 4-stack RSS server, 16 at a time, run-to-completion like the
//! goodput stream (the kernel baseline runs TCP inside its callers' system
//! calls too), timed inside the client tasks from the first connect to the
//! last close, best of the budget's rounds of whole runs (one run is
//! short); `tcp.conn_rate.rtw` is the same with a thread per stack.
//! `tcp.goodput.ratio` divides a run-to-completion goodput measured for it
//! by the kernel baseline ([`kernel_goodput`]) measured right before, so its
//! two figures come from the same run (they are not the printed
//! `tcp.goodput.1500` and `kernel.tcp.goodput.1500`); it needs root and
//! `iperf3`, so it is opt-in, and without the baseline it notes on stderr
//! why and reports nothing. `tcp.goodput.tso` is the `tcp.goodput.1500`
//! stream with TCP segmentation offload on both hosts (the stacks hand the
//! NIC segments of up to 64 KiB, which cross the wire whole as
//! super-frames and reach the server's stack whole by large receive
//! offload, as GSO packets cross a Linux veth pair), and
//! `tcp.goodput.tso.ratio_to_1500` divides it by the `tcp.goodput.1500`
//! figure of the same run; `tcp.goodput.tso.ratio` divides a TSO goodput
//! measured for it by the kernel's with its offloads on
//! (`kernel.tcp.goodput.offload`) measured right before (opt-in, root).
//! A run that fails reports no figure and says why on stderr.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ethdev::mac::MacAddr;
use ethdev::stats::DropReason;
use stack::{Api, BufSizes, Fd, GroupConfig, SockType, StackGroup, ThreadModel};
use user_vbridge::{Direction, Impairments, PortConfig};

use crate::kernel::{kernel_goodput, kernel_goodput_with, secs_for, Offloads};
use crate::{best_of, measurement, Budget, Measurement};
use sim::apps::{bulk, echo, listen, Ledger, Side};
use sim::exec::{self, RealClock, Spawner};
use sim::latch::Latch;
use sim::world::World;

/// Name of the single-stream goodput figure.
pub const GOODPUT: &str = "tcp.goodput.1500";
/// Name of the same stream with stack threads (run-to-wakeup).
pub const GOODPUT_RTW: &str = "tcp.goodput.1500.rtw";
/// Name of the same stream as [`GOODPUT`] with TCP segmentation offload.
pub const GOODPUT_TSO: &str = "tcp.goodput.tso";
/// Name of [`GOODPUT_TSO`] over [`GOODPUT`], both measured in the same run.
pub const TSO_RATIO: &str = "tcp.goodput.tso.ratio_to_1500";
/// Name of the goodput over the kernel baseline.
pub const RATIO: &str = "tcp.goodput.ratio";
/// Name of [`GOODPUT_TSO`] over the kernel baseline with offloads on.
pub const TSO_KERNEL_RATIO: &str = "tcp.goodput.tso.ratio";
/// Name of the short-connection rate.
pub const CONN_RATE: &str = "tcp.conn_rate";
/// Name of the same with stack threads (run-to-wakeup).
pub const CONN_RATE_RTW: &str = "tcp.conn_rate.rtw";

const PORT: u16 = 5201;
const SERVER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x11]);
const CLIENT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x12]);
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 1);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 2);
/// Socket buffers of the goodput stream (both directions, both ends).
pub(super) const STREAM_BUF: usize = 256 * 1024;
/// Payload of the goodput stream for a smoke pass and a full run.
const SMOKE_BYTES: u64 = 16 << 20;
const FULL_BYTES: u64 = 256 << 20;
/// Short connections for a smoke pass and a full run, and how many are open at once.
const SMOKE_CONNS: u64 = 200;
const FULL_CONNS: u64 = 2000;
pub(super) const CONN_WORKERS: u64 = 16;
/// Echoed bytes per short connection.
pub(super) const CONN_BYTES: u64 = 64;
/// Stacks of the short-connection server and client hosts.
const CONN_SERVER_STACKS: usize = 4;
const CONN_CLIENT_STACKS: usize = 2;
/// Rounds shorter than this are smoke passes (as in the kernel baseline).
const SMOKE_ROUND: Duration = Duration::from_millis(100);
/// Give up on a run after this long, and let the stacks finish closing for this long.
const TIMEOUT: Duration = Duration::from_secs(60);
const DRAIN: Duration = Duration::from_millis(20);

/// The goodput figure (default run).
pub(super) fn run_goodput(budget: Budget) -> Vec<Measurement> {
    let figure = |name, model, tso| {
        reported(name, goodput(stream_bytes(budget), model, tso).map(|g| measurement(name, g, "Gbit/s")))
    };
    let plain = figure(GOODPUT, ThreadModel::RunToCompletion, false);
    let rtw = figure(GOODPUT_RTW, ThreadModel::RunToWakeup, false);
    let tso = figure(GOODPUT_TSO, ThreadModel::RunToCompletion, true);
    let ratio: Vec<Measurement> = match (tso.first(), plain.first()) {
        (Some(tso), Some(plain)) => vec![measurement(TSO_RATIO, tso.value / plain.value, "x")],
        _ => Vec::new(),
    };
    [plain, rtw, tso, ratio].concat()
}

/// The short-connection rates (default run).
pub(super) fn run_conn_rate(budget: Budget) -> Vec<Measurement> {
    let figure = |name, model| {
        let rate = best_of(budget.rounds, || conn_rate(conn_count(budget), model));
        reported(name, rate.map(|r| measurement(name, r, "conn/s")))
    };
    [figure(CONN_RATE, ThreadModel::RunToCompletion), figure(CONN_RATE_RTW, ThreadModel::RunToWakeup)].concat()
}

/// Goodput over the kernel baseline, both measured now (opt-in: needs root).
pub(super) fn run_ratio(budget: Budget) -> Vec<Measurement> {
    let kernel = match kernel_goodput(secs_for(budget)) {
        Ok(gbits) => gbits,
        Err(skip) => {
            eprintln!("dtnet: {RATIO} skipped: kernel baseline: {skip}");
            return Vec::new();
        }
    };
    let ours = goodput(stream_bytes(budget), ThreadModel::RunToCompletion, false);
    reported(RATIO, ours.map(|ours| measurement(RATIO, ours / kernel, "x")))
}

/// TSO goodput over the kernel's with offloads on, both measured now
/// (opt-in: needs root).
pub(super) fn run_tso_ratio(budget: Budget) -> Vec<Measurement> {
    let kernel = match kernel_goodput_with(secs_for(budget), Offloads::On) {
        Ok(gbits) => gbits,
        Err(skip) => return reported(TSO_KERNEL_RATIO, Err(format!("kernel baseline: {skip}"))),
    };
    let ours = goodput(stream_bytes(budget), ThreadModel::RunToCompletion, true);
    reported(TSO_KERNEL_RATIO, ours.map(|ours| measurement(TSO_KERNEL_RATIO, ours / kernel, "x")))
}

/// The figure, or nothing with the reason on stderr.
pub(super) fn reported(name: &str, result: Result<Measurement, String>) -> Vec<Measurement> {
    result.map(|m| vec![m]).unwrap_or_else(|why| {
        eprintln!("dtnet: {name} skipped: {why}");
        Vec::new()
    })
}

pub(super) fn is_smoke(budget: Budget) -> bool {
    budget.round < SMOKE_ROUND
}

pub(super) fn stream_bytes(budget: Budget) -> u64 {
    if is_smoke(budget) {
        SMOKE_BYTES
    } else {
        FULL_BYTES
    }
}

pub(super) fn conn_count(budget: Budget) -> u64 {
    if is_smoke(budget) {
        SMOKE_CONNS
    } else {
        FULL_CONNS
    }
}

/// A server and a client host on a fresh bridge, `server_stacks` and
/// `client_stacks` RSS stacks under thread model `model` with socket
/// buffers `bufs`, and TCP segmentation offload if `tso`.
fn world(
    server_stacks: usize,
    client_stacks: usize,
    bufs: BufSizes,
    model: ThreadModel,
    tso: bool,
) -> Result<World, String> {
    lossy_world(server_stacks, client_stacks, bufs, model, tso, 0.0)
}

/// [`world`] whose client link loses each frame it sends with probability
/// `loss`, as `tc netem loss` on the client's end of a veth pair does.
fn lossy_world(
    server_stacks: usize,
    client_stacks: usize,
    bufs: BufSizes,
    model: ThreadModel,
    tso: bool,
    loss: f64,
) -> Result<World, String> {
    let mut world = World::new(1)?;
    let server = GroupConfig { bufs, model, tso, ..GroupConfig::new(server_stacks, SERVER_MAC, SERVER_IP) };
    let client = GroupConfig { bufs, model, tso, seed: 2, ..GroupConfig::new(client_stacks, CLIENT_MAC, CLIENT_IP) };
    world.add_host("server", server, Impairments::default())?;
    let link = PortConfig { ingress: Impairments { loss, ..Impairments::default() }, ..PortConfig::default() };
    world.add_host_on("client", client, link)?;
    Ok(world)
}

fn server_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(SERVER_IP), PORT)
}

/// Listeners on every stack of `group`, stack `i`'s on application thread
/// `i`, serving with `serve`; returns a latch that opens once all listen.
fn spawn_servers<F, Fut>(group: &StackGroup, spawner: &Spawner, ledger: &Arc<Ledger>, serve: F) -> Arc<Latch>
where
    F: Fn(Api, Fd, Spawner, usize, Arc<Ledger>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = io::Result<()>> + Send + 'static,
{
    let listening = Latch::new(group.len());
    let clock: Arc<dyn stack::Clock> = Arc::new(RealClock::new());
    for home in 0..group.len() {
        let api = Api::new(group, home, Arc::clone(&clock));
        let (spawner2, ledger, latch, serve) =
            (spawner.clone(), Arc::clone(ledger), Arc::clone(&listening), serve.clone());
        spawner.spawn_daemon(home, format!("server@{home}"), async move {
            let fd = listen(&api, PORT).await?;
            latch.count_down();
            serve(api, fd, spawner2, home, ledger).await
        });
    }
    listening
}

/// Runs the world's tasks on threads; an error if any failed or timed
/// out, with each host's counters to show where frames stopped.
fn execute(world: &mut World, spawner: &Spawner) -> Result<(), String> {
    let outcome = exec::threads::run(world, spawner, TIMEOUT, DRAIN).map_err(|e| e.to_string())?;
    outcome.ok().map_err(|why| format!("{why}; {}", counters(world)))
}

/// Frames in and out of every host's stacks, frames lost for want of an
/// mbuf, and buffers in use.
fn counters(world: &World) -> String {
    let host = |h: &sim::world::Host| {
        let stats: Vec<_> = (0..h.group.len()).map(|i| h.group.stats(i)).collect();
        let sum = |f: fn(&stack::StackStats) -> u64| stats.iter().map(f).sum::<u64>();
        let (rx, tx, lost) = (sum(|s| s.nic_rx), sum(|s| s.nic_tx), sum(|s| s.device.tx_no_mbuf));
        format!("{}: nic_rx {rx} nic_tx {tx} tx_no_mbuf {lost} mbufs in use {}", h.name, h.pool.in_use())
    };
    world.hosts.iter().map(host).collect::<Vec<_>>().join(", ")
}

/// Goodput in Gbit/s of one `len`-byte bulk stream under thread model
/// `model`, with TCP segmentation offload if `tso` (see the module doc).
pub fn goodput(len: u64, model: ThreadModel, tso: bool) -> Result<f64, String> {
    lossy_goodput(len, model, tso, 0.0).map(|run| run.gbits)
}

/// A verified bulk stream over a lossy link.
#[derive(Clone, Copy, Debug)]
pub struct LossyRun {
    /// Goodput in Gbit/s.
    pub gbits: f64,
    /// Frames the client's link lost.
    pub lost: u64,
}

/// [`goodput`] with the client's frames lost with probability `loss`
/// (see [`lossy_world`]); every byte is still verified.
pub fn lossy_goodput(len: u64, model: ThreadModel, tso: bool, loss: f64) -> Result<LossyRun, String> {
    let bufs = BufSizes { rx: STREAM_BUF, tx: STREAM_BUF };
    let mut world = lossy_world(1, 1, bufs, model, tso, loss)?;
    let (spawner, ledger) = (Spawner::new(), Arc::new(Ledger::default()));
    let listening = spawn_servers(&world.hosts[0].group, &spawner, &ledger, bulk::server);
    let elapsed = Arc::new(Mutex::new(None));
    let api = Api::new(&world.hosts[1].group, 0, Arc::new(RealClock::new()));
    let timer = Arc::clone(&elapsed);
    spawner.spawn(1, "timed bulk client", async move {
        listening.wait().await;
        let took = timed_bulk(api, server_addr(), len).await?;
        *timer.lock().unwrap_or_else(PoisonError::into_inner) = Some(took);
        Ok(())
    });
    execute(&mut world, &spawner)?;
    let verified: u64 = ledger.side(Side::Server).iter().map(|r| r.bytes).sum();
    if verified != len {
        return Err(format!("the server verified {verified} of {len} bytes"));
    }
    let took = elapsed.lock().unwrap_or_else(PoisonError::into_inner).ok_or("the client recorded no time")?;
    let link = world.bridge.link_stats(world.hosts[1].bridge_port, Direction::Ingress);
    let lost = link.map_or(0, |l| l.drops.get(DropReason::Loss));
    Ok(LossyRun { gbits: len as f64 * 8.0 / took.as_secs_f64() / 1e9, lost })
}

/// One bulk stream (stream 0), returning the time from the end of
/// `connect` to the server's receipt of all `len` bytes.
pub(super) async fn timed_bulk(api: Api, server: SocketAddr, len: u64) -> io::Result<Duration> {
    let fd = api.socket(SockType::Stream)?;
    api.connect(fd, server).await?;
    let start = Instant::now();
    bulk::transfer(&api, fd, 0, len).await?;
    let took = start.elapsed();
    api.close(fd).await?;
    Ok(took)
}

/// First start and last end of the timed parts of several tasks.
#[derive(Default)]
struct Span(Mutex<Option<(Instant, Instant)>>);

impl Span {
    fn add(&self, start: Instant, end: Instant) {
        let mut span = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *span = Some(span.map_or((start, end), |(s, e)| (s.min(start), e.max(end))));
    }

    fn length(&self) -> Option<Duration> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).map(|(s, e)| e - s)
    }
}

/// Short connections per second over `conns` echo connections under
/// thread model `model` (see the module doc).
pub fn conn_rate(conns: u64, model: ThreadModel) -> Result<f64, String> {
    let bufs = GroupConfig::new(1, SERVER_MAC, SERVER_IP).bufs;
    let mut world = world(CONN_SERVER_STACKS, CONN_CLIENT_STACKS, bufs, model, false)?;
    let (spawner, ledger) = (Spawner::new(), Arc::new(Ledger::default()));
    let listening = spawn_servers(&world.hosts[0].group, &spawner, &ledger, echo::server);
    let span = Arc::new(Span::default());
    for worker in 0..CONN_WORKERS.min(conns) {
        let home = worker as usize % CONN_CLIENT_STACKS;
        let api = Api::new(&world.hosts[1].group, home, Arc::new(RealClock::new()));
        let ids = (worker..conns).step_by(CONN_WORKERS as usize);
        let (ledger, listening, span) = (Arc::clone(&ledger), Arc::clone(&listening), Arc::clone(&span));
        spawner.spawn(CONN_SERVER_STACKS + home, format!("echo worker {worker}"), async move {
            listening.wait().await;
            let start = Instant::now();
            for id in ids {
                echo::client(api.clone(), server_addr(), id, CONN_BYTES, Arc::clone(&ledger)).await?;
            }
            span.add(start, Instant::now());
            Ok(())
        });
    }
    execute(&mut world, &spawner)?;
    check_conns(&ledger, conns)?;
    let took = span.length().ok_or("no client recorded a time")?;
    Ok(conns as f64 / took.as_secs_f64())
}

/// Every connection was seen, with every byte, by both ends.
fn check_conns(ledger: &Ledger, conns: u64) -> Result<(), String> {
    for side in [Side::Client, Side::Server] {
        let records = ledger.side(side);
        let complete = records.iter().filter(|r| r.bytes == CONN_BYTES).count() as u64;
        if complete != conns {
            return Err(format!("{side:?}: {complete} complete connections of {conns}"));
        }
    }
    Ok(())
}
