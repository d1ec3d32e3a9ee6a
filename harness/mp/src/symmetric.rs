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
//! The primary also plays two hosts, each on a bridge with one port's cable
//! ([`crate::lan`]): they send numbered UDP frames of many flows to each
//! other, through the ports, and check every frame's bytes and each flow's
//! order; the bridges must drop nothing. It
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

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ethdev::dev::PortConf;
use ethdev::mbuf::Mbuf;
use ethdev::packet::PacketMeta;
use ethdev::queue::{RxQueue, TxQueue};
use ethdev::rss::{Reta, RssConf};
use ethdev::shm::control::{ControlClient, ControlEvent, ControlServer};
use ethdev::shm::{Domain, Zone};
use ethdev::EthDev;
use user_veth::shared::{PortReclaim, SharedPort};

use super::hosts::{self, Hosts, BURST, FLOWS, POOL, PORTS};
use super::lan::Lan;
use super::place::Place;

/// The word the primary sets once all traffic has arrived.
const DONE: &str = "symmetric_mp.done";
/// Frames in flight per direction at most: fewer than one queue's rings
/// hold, so nothing can be dropped however RSS spreads them.
const WINDOW: u64 = 256;
/// How long the primary waits for the others to arrive, and then to finish.
const LINGER: Duration = Duration::from_secs(30);

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The domain, the processes sharing its ports, and this one's number.
    pub place: Place,
    /// Frames the primary sends into each port.
    pub frames: u32,
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
    pub deaths: Vec<(u32, PortReclaim)>,
    /// Free slots missing from the pool's free list, put back once the
    /// primary was alone after a death (`Mempool::sweep_lost`).
    pub swept: usize,
    /// Pool buffers in use at the end.
    pub in_use: usize,
    /// Frames the hosts' bridges switched (each frame twice).
    pub bridged: u64,
    /// Frames the hosts' bridges dropped.
    pub bridge_drops: u64,
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
        let left: usize = self.deaths.iter().map(|(_, r)| r.left).sum();
        let (deaths, swept, in_use) = (self.deaths.len(), self.swept, self.in_use);
        write!(f, "own {}; deaths {deaths}; dead own {left}; swept {swept}; ", self.own)?;
        write!(f, "bridged {}, bridge drops {}; {POOL} in use {in_use}", self.bridged, self.bridge_drops)
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

fn port_conf(procs: u16) -> PortConf {
    PortConf { rx_ring_size: 1024, tx_ring_size: 1024, ..PortConf::new(procs) }
}

/// Per process, frames RSS sends to its queue of each port.
fn predict(procs: u16, frames: u64) -> Vec<[u64; 2]> {
    let conf = port_conf(procs);
    let reta = Reta::new(usize::from(conf.reta_size), procs).expect("a valid RETA size");
    let rss = RssConf::from_parts(conf.rss_key, conf.rss_types, reta);
    let mut predicted = vec![[0; 2]; usize::from(procs)];
    for (port, _) in PORTS.iter().enumerate() {
        for flow in 0..FLOWS {
            let bytes = hosts::template(port, flow as u16);
            let queue = PacketMeta::parse(&bytes).ok().and_then(|meta| rss.queue_for(&meta)).map_or(0, |q| q.1);
            // Frames i < frames with i % FLOWS == flow.
            let count = frames / u64::from(FLOWS) + u64::from(u64::from(flow) < frames % u64::from(FLOWS));
            predicted[usize::from(queue)][port] += count;
        }
    }
    predicted
}

/// Runs process `opts.place.proc_id`: the primary if it is the first, else a
/// secondary. `say` hears `ready <pid>` once the primary's ports exist.
pub fn run(opts: &Options, say: impl FnMut(String)) -> Result<Outcome, String> {
    let domain = opts.place.open()?;
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
    opts.place.first()?;
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let (ports, wires) = hosts::make_ports(domain, &port_conf(opts.place.procs))?;
    let mut lan = Lan::new(wires)?;
    let done = domain.reserve(DONE, 8).map_err(|e| err(&e))?;
    let mut control = ControlServer::bind(domain).map_err(|e| err(&e))?;
    let mut own = Forwarder::new(&ports, 0)?;
    say(format!("ready {}", std::process::id()));

    let frames = u64::from(opts.frames);
    let mut hosts = Hosts::new(frames, WINDOW, true)?;
    let mut report = Report { predicted: predict(opts.place.procs, frames), ..Report::default() };
    let (started, mut joined, mut live) = (Instant::now(), 0u16, 0u16);
    while live > 0 || joined + 1 < opts.place.procs || !hosts.done() {
        for event in control.poll() {
            match event {
                ControlEvent::Registered(peer) => {
                    (joined, live) = (joined + 1, live + 1);
                    say(format!("joined {}", peer.pid));
                }
                ControlEvent::LoggedOut(_) => live -= 1,
                ControlEvent::Died(peer, dead) => {
                    let reclaimed = lan.reclaim(&dead);
                    tracing::warn!(pid = peer.pid, ?reclaimed, "a process died; its queues were reclaimed");
                    hosts.lost += (reclaimed.held + reclaimed.unsent + reclaimed.dropped) as u64;
                    report.deaths.push((peer.pid, reclaimed));
                    live -= 1;
                    say(format!("died {}", peer.pid));
                }
                ControlEvent::Refused { .. } => {}
            }
        }
        if started.elapsed() > LINGER {
            return Err(format!(
                "after {LINGER:?}: {joined} of {} processes joined, {live} still attached, {:?} of {frames} frames per port arrived",
                opts.place.procs - 1,
                hosts.received
            ));
        }
        let everyone = joined + 1 >= opts.place.procs;
        let moved = (everyone && hosts.send(&mut lan)) | own.step() | hosts.receive(&mut lan);
        if hosts.done() {
            done.u64s()[0].store(1, Ordering::Release);
        }
        if !moved {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    (report.sent, report.received, report.bad) = (hosts.sent, hosts.received, hosts.bad);
    (report.gaps, report.lost) = (hosts.gaps + hosts.missing_at_end(), hosts.lost);
    report.own = own.counts.clone();
    lan.check_accounting()?;
    (report.bridged, report.bridge_drops) = (lan.switched(), lan.drops());
    drop((own, lan, hosts));
    report.swept = hosts::sweep_after_deaths(ports[0].pool(), report.deaths.len());
    report.in_use = ports[0].pool().in_use();
    Ok(report)
}

fn secondary(opts: &Options, domain: &Domain) -> Result<Forwarded, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    opts.place.secondary()?;
    let client = ControlClient::register(domain, &format!("symmetric-{}", opts.place.proc_id)).map_err(|e| err(&e))?;
    let attach = |name: &&str| SharedPort::attach(domain, name, client.owner()).map_err(|e| err(&e));
    let ports = PORTS.iter().map(attach).collect::<Result<Vec<_>, _>>()?;
    let done: Zone = domain.lookup(DONE).map_err(|e| err(&e))?;
    let mut me = Forwarder::new(&ports, opts.place.proc_id)?;
    loop {
        if client.primary_gone() {
            return Err(format!("domain {:?}: the primary process died", opts.place.prefix));
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
