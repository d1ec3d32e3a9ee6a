//! `symmetric_mp`: N processes share two ports, each polling its own queue
//! of both and forwarding port p to port p^1.
//!
//! As in DPDK's sample, every process starts with `--proc-type auto`; the
//! first becomes the primary and configures every port with RSS over N
//! queues, and process n (the primary is process 0) receives on queue n of
//! each port and sends what it received out of queue n of the other. The
//! ports live in the domain ([`user_veth::shared`]) and share pool
//! `MProc_pktmbuf_pool`, so forwarding moves references, not bytes.
//!
//! The primary also plays the two hosts on the ports' cables: it sends
//! numbered UDP frames of many flows into each port, takes what the other
//! port transmits, and checks every frame's bytes and each flow's order. It
//! predicts, with its own Toeplitz hash, how many frames each queue gets;
//! each process reports what it received, and they must agree. Traffic is
//! paced so that no ring can overflow: every frame must arrive.
//!
//! A process killed mid-run loses exactly the frames it held: the primary
//! reclaims its queues and buffers (counting those frames as lost), keeps
//! the frames waiting in its rx rings for whoever takes the queue next, and
//! the sink must then see one gap in flow order per lost frame and no
//! other. A process restarted with the same `--proc-id` takes its queues
//! again and the run completes.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ethdev::dev::PortConf;
use ethdev::frame::FrameSpec;
use ethdev::mbuf::Mbuf;
use ethdev::mempool::{Mempool, MempoolConfig, Owner};
use ethdev::packet::{IpAddrs, PacketMeta};
use ethdev::queue::{RxQueue, TxQueue};
use ethdev::rss::{Reta, RssConf};
use ethdev::shm::control::{ControlClient, ControlEvent, ControlServer};
use ethdev::shm::{Domain, DomainOptions, Role, Zone};
use ethdev::{EthDev, Wire};
use user_veth::shared::{PortReclaim, PortSpec, SharedPort, SharedVeth, SharedWire};

/// DPDK's name for the sample's pool.
pub const POOL: &str = "MProc_pktmbuf_pool";
/// The ports' names.
pub const PORTS: [&str; 2] = ["port0", "port1"];
/// The word the primary sets once all traffic has arrived.
const DONE: &str = "symmetric_mp.done";
const POOL_BUFFERS: u32 = 4096;
const RING_WORDS: u32 = 256;
/// Frames in flight per direction at most: fewer than one queue's rings
/// hold, so nothing can be dropped however RSS spreads them.
const WINDOW: u64 = 256;
const BURST: usize = 32;
const FLOWS: u32 = 64;
const PRIMARY_OWNER: Owner = Owner(1);
/// How long the primary waits for the others to arrive, and then to finish.
const LINGER: Duration = Duration::from_secs(30);

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The domain's prefix.
    pub prefix: String,
    /// Runtime directory holding domains.
    pub base: PathBuf,
    /// Processes sharing the ports (DPDK's `--num-procs`).
    pub procs: u16,
    /// This process's number (DPDK's `--proc-id`); the primary is 0.
    pub proc_id: u16,
    /// Frames the primary sends into each port.
    pub frames: u32,
    /// How long a secondary waits for its primary.
    pub wait: Duration,
}

/// What one process forwarded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Forwarded {
    /// Frames received on its queue of each port.
    pub rx: [u64; 2],
    /// Frames it sent out of the other port.
    pub tx: [u64; 2],
}

impl std::fmt::Display for Forwarded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "port0 rx {} port1 rx {} forwarded {}", self.rx[0], self.rx[1], self.tx[0] + self.tx[1])
    }
}

/// What the primary saw.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Frames sent into each port.
    pub sent: [u64; 2],
    /// Frames that came out of the other port intact and in flow order.
    pub received: [u64; 2],
    /// Frames that came out damaged, unknown, repeated or out of order.
    pub bad: u64,
    /// Frames missing from flow order at the sink (each lost frame leaves one).
    pub gaps: u64,
    /// Frames dead processes held, by the reclaim's count.
    pub lost: u64,
    /// Per process, frames RSS sends to its queue of each port.
    pub predicted: Vec<[u64; 2]>,
    /// What the primary forwarded as process 0.
    pub own: Forwarded,
    /// Processes that died, and what was reclaimed from each.
    pub deaths: Vec<(u32, PortReclaim, PortReclaim)>,
    /// Pool buffers in use at the end.
    pub in_use: usize,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (sent, received) = (self.sent[0] + self.sent[1], self.received[0] + self.received[1]);
        write!(
            f,
            "sent {sent} received {received} intact, bad {}, gaps {}, lost {}; ",
            self.bad, self.gaps, self.lost
        )?;
        for (n, p) in self.predicted.iter().enumerate() {
            write!(f, "predicted proc {n}: port0 rx {} port1 rx {}; ", p[0], p[1])?;
        }
        write!(f, "own {}; deaths {}; {POOL} in use {}", self.own, self.deaths.len(), self.in_use)
    }
}

/// One process's queues: queue n of both ports, both ways.
struct Forwarder {
    rx: Vec<Box<dyn RxQueue>>,
    tx: Vec<Box<dyn TxQueue>>,
    pending: [Vec<Mbuf>; 2],
    counts: Forwarded,
}

impl Forwarder {
    fn new(ports: &[SharedPort], queue: u16) -> Result<Forwarder, String> {
        let rx = ports.iter().map(|p| p.rx_queue(queue)).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
        let tx = ports.iter().map(|p| p.tx_queue(queue)).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
        Ok(Forwarder { rx, tx, pending: [Vec::new(), Vec::new()], counts: Forwarded::default() })
    }

    /// Receives on each port and sends out of the other; whether anything moved.
    fn step(&mut self) -> bool {
        let mut moved = false;
        for port in 0..2 {
            let out = port ^ 1;
            let pending = &mut self.pending[out];
            if pending.is_empty() {
                let got = self.rx[port].rx_burst(pending, BURST);
                self.counts.rx[port] += got as u64;
                moved |= got > 0;
            }
            let sent = self.tx[out].tx_burst(pending);
            self.counts.tx[port] += sent as u64;
            moved |= sent > 0;
        }
        moved
    }

    fn idle(&self) -> bool {
        self.pending.iter().all(Vec::is_empty)
    }
}

fn domain_options(opts: &Options, wait: Duration) -> DomainOptions {
    DomainOptions { base: opts.base.clone(), wait, ..DomainOptions::default() }
}

fn port_conf(procs: u16) -> PortConf {
    PortConf { rx_ring_size: 1024, tx_ring_size: 1024, ..PortConf::new(procs) }
}

fn mac(port: usize) -> [u8; 6] {
    [2, 0, 0, 0, 0, 0x10 + port as u8]
}

/// Frame `i` of those sent into `port`: flow `i % FLOWS`, sequence `i / FLOWS`.
fn frame(port: usize, i: u64) -> Vec<u8> {
    let (flow, seq) = ((i % u64::from(FLOWS)) as u16, (i / u64::from(FLOWS)) as u32);
    let ip = IpAddrs::V4 { src: [10, 0, port as u8, 1], dst: [10, 0, port as u8, 2] };
    let spec = FrameSpec::udp(ip, 1000 + flow, 2000 + port as u16).macs([2, 0, 0, 0, 1, port as u8], mac(port));
    let mut payload = vec![port as u8];
    payload.extend_from_slice(&flow.to_be_bytes());
    payload.extend_from_slice(&seq.to_be_bytes());
    payload.resize(18, 0xa5);
    spec.build(&payload)
}

/// The primary's two hosts: what they sent and what they expect next.
struct Hosts {
    pool: Mempool,
    frames: u64,
    sent: [u64; 2],
    /// Per port the frames were sent into, the next sequence of each flow.
    next: [Vec<u32>; 2],
    received: [u64; 2],
    bad: u64,
    gaps: u64,
    /// Frames dead processes held, which will never arrive.
    lost: u64,
}

impl Hosts {
    /// Sends a burst into each port whose window has room.
    fn send(&mut self, wires: &mut [SharedWire]) -> bool {
        let mut moved = false;
        for (port, wire) in wires.iter_mut().enumerate() {
            let in_flight = (self.sent[port] - self.received[port]).saturating_sub(self.lost);
            let room = WINDOW.saturating_sub(in_flight).min(self.frames - self.sent[port]);
            let mut burst = Vec::new();
            for i in self.sent[port]..self.sent[port] + room.min(BURST as u64) {
                let Some(mut m) = self.pool.alloc(Owner::NONE) else { break };
                m.extend_from_slice(&frame(port, i));
                burst.push(m);
            }
            self.sent[port] += burst.len() as u64;
            moved |= !burst.is_empty();
            wire.put_rx(&mut burst);
        }
        moved
    }

    /// Takes what each port transmitted and checks it against what went
    /// into the other.
    fn receive(&mut self, wires: &mut [SharedWire]) -> bool {
        let mut moved = false;
        for (port, wire) in wires.iter_mut().enumerate() {
            let mut out = Vec::new();
            moved |= wire.take_tx(&mut out, BURST * 4) > 0;
            for m in out {
                self.check(port ^ 1, m.data());
            }
        }
        moved
    }

    fn check(&mut self, from: usize, bytes: &[u8]) {
        let payload = bytes.len().checked_sub(18).map(|at| &bytes[at..]);
        let Some(p) = payload.filter(|p| p[0] as usize == from) else {
            self.bad += 1;
            return;
        };
        let flow = u16::from_be_bytes([p[1], p[2]]);
        let seq = u32::from_be_bytes([p[3], p[4], p[5], p[6]]);
        let i = u64::from(seq) * u64::from(FLOWS) + u64::from(flow);
        let next = &mut self.next[from];
        let expected = next.get(usize::from(flow)).copied();
        match expected.filter(|&n| n <= seq && i < self.frames && frame(from, i) == bytes) {
            Some(n) => {
                self.gaps += u64::from(seq - n);
                next[usize::from(flow)] = seq + 1;
                self.received[from] += 1;
            }
            None => self.bad += 1,
        }
    }

    /// Every frame sent, and each arrived or held by a dead process.
    fn done(&self) -> bool {
        let received = self.received[0] + self.received[1];
        self.sent == [self.frames; 2] && received + self.lost + self.bad >= 2 * self.frames
    }
}

/// Per process, frames RSS sends to its queue of each port.
fn predict(procs: u16, frames: u64) -> Vec<[u64; 2]> {
    let conf = port_conf(procs);
    let reta = Reta::new(usize::from(conf.reta_size), procs).expect("a valid RETA size");
    let rss = RssConf::from_parts(conf.rss_key, conf.rss_types, reta);
    let mut predicted = vec![[0; 2]; usize::from(procs)];
    for (port, _) in PORTS.iter().enumerate() {
        for i in 0..frames {
            let bytes = frame(port, i);
            let queue = PacketMeta::parse(&bytes).ok().and_then(|meta| rss.queue_for(&meta)).map_or(0, |q| q.1);
            predicted[usize::from(queue)][port] += 1;
        }
    }
    predicted
}

/// Runs process `opts.proc_id`: the primary if it is the first, else a
/// secondary. `say` hears `ready <pid>` once the primary's ports exist.
pub fn run(opts: &Options, say: impl FnMut(String)) -> Result<Outcome, String> {
    let err = |e: ethdev::shm::ShmError| e.to_string();
    let domain = Domain::open(&opts.prefix, Role::Auto, &domain_options(opts, opts.wait)).map_err(err)?;
    if domain.is_primary() {
        primary(opts, &domain, say).map(Outcome::Primary)
    } else {
        secondary(opts, &domain).map(Outcome::Secondary)
    }
}

/// What a process of the sample did, by the role it got.
#[derive(Debug)]
pub enum Outcome {
    /// The first process: hosts, checks, and queue 0.
    Primary(Report),
    /// Any other: its queue.
    Secondary(Forwarded),
}

fn primary(opts: &Options, domain: &Domain, mut say: impl FnMut(String)) -> Result<Report, String> {
    if opts.proc_id != 0 {
        return Err(format!("process {} became the primary: start process 0 first", opts.proc_id));
    }
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let mut ports = Vec::new();
    let mut wires = Vec::new();
    for (i, name) in PORTS.iter().enumerate() {
        let spec = PortSpec {
            name: (*name).into(),
            mac: mac(i).into(),
            conf: port_conf(opts.procs),
            ring_words: RING_WORDS,
            pool: MempoolConfig::new(POOL, POOL_BUFFERS),
            owner: PRIMARY_OWNER,
        };
        let (port, wire) = SharedVeth::create(domain, &spec).map_err(|e| err(&e))?;
        port.start().map_err(|e| err(&e))?;
        ports.push(port);
        wires.push(wire);
    }
    let done = domain.reserve(DONE, 8).map_err(|e| err(&e))?;
    let mut control = ControlServer::bind(domain).map_err(|e| err(&e))?;
    let mut own = Forwarder::new(&ports, 0)?;
    say(format!("ready {}", std::process::id()));

    let frames = u64::from(opts.frames);
    let pool = Mempool::new(MempoolConfig::new("hosts", 2048)).map_err(|e| err(&e))?;
    let next = [vec![0; FLOWS as usize], vec![0; FLOWS as usize]];
    let mut hosts = Hosts { pool, frames, sent: [0; 2], next, received: [0; 2], bad: 0, gaps: 0, lost: 0 };
    let mut report = Report { predicted: predict(opts.procs, frames), ..Report::default() };
    let (started, mut joined, mut live) = (Instant::now(), 0u16, 0u16);
    while live > 0 || joined + 1 < opts.procs || !hosts.done() {
        for event in control.poll() {
            match event {
                ControlEvent::Registered(peer) => {
                    (joined, live) = (joined + 1, live + 1);
                    say(format!("joined {}", peer.pid));
                }
                ControlEvent::LoggedOut(_) => live -= 1,
                ControlEvent::Died(peer, dead) => {
                    let reclaimed = (wires[0].reclaim(&dead), wires[1].reclaim(&dead));
                    tracing::warn!(pid = peer.pid, ?reclaimed, "a process died; its queues were reclaimed");
                    hosts.lost +=
                        [reclaimed.0, reclaimed.1].iter().map(|r| r.held + r.unsent + r.dropped).sum::<usize>() as u64;
                    report.deaths.push((peer.pid, reclaimed.0, reclaimed.1));
                    live -= 1;
                    say(format!("died {}", peer.pid));
                }
                ControlEvent::Refused { .. } => {}
            }
        }
        if started.elapsed() > LINGER {
            return Err(format!(
                "after {LINGER:?}: {joined} of {} processes joined, {live} still attached, {:?} of {frames} frames per port arrived",
                opts.procs - 1,
                hosts.received
            ));
        }
        let everyone = joined + 1 >= opts.procs;
        let moved = (everyone && hosts.send(&mut wires)) | own.step() | hosts.receive(&mut wires);
        if hosts.done() {
            done.u64s()[0].store(1, Ordering::Release);
        }
        if !moved {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    (report.sent, report.received, report.bad) = (hosts.sent, hosts.received, hosts.bad);
    (report.gaps, report.lost) = (hosts.gaps, hosts.lost);
    report.own = own.counts.clone();
    drop((own, wires, hosts));
    report.in_use = ports[0].pool().in_use();
    Ok(report)
}

fn secondary(opts: &Options, domain: &Domain) -> Result<Forwarded, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    if opts.proc_id == 0 || opts.proc_id >= opts.procs {
        return Err(format!("--proc-id {} of a secondary must be between 1 and {}", opts.proc_id, opts.procs - 1));
    }
    let client = ControlClient::register(domain, &format!("symmetric-{}", opts.proc_id)).map_err(|e| err(&e))?;
    let attach = |name: &&str| SharedPort::attach(domain, name, client.owner()).map_err(|e| err(&e));
    let ports = PORTS.iter().map(attach).collect::<Result<Vec<_>, _>>()?;
    let done: Zone = domain.lookup(DONE).map_err(|e| err(&e))?;
    let mut me = Forwarder::new(&ports, opts.proc_id)?;
    loop {
        if client.primary_gone() {
            return Err(format!("domain {:?}: the primary process died", opts.prefix));
        }
        let moved = me.step();
        if !moved && me.idle() && done.u64s().first().is_some_and(|w| w.load(Ordering::Acquire) == 1) {
            break;
        }
        if !moved {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    let counts = me.counts.clone();
    drop(me);
    client.logout();
    Ok(counts)
}
