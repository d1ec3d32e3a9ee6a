//! `client_server_mp`: a server polls the ports and hands each frame to one
//! of N clients through its ring; the clients forward out of the other port.
//!
//! As in DPDK's sample, the server (the primary) receives on both ports and
//! distributes to rings `MProc_Client_<n>_RX`, from pool
//! `MProc_pktmbuf_pool`; client n sends what it gets out of queue n of the
//! port the frame did not come in on. Distribution is round-robin over the
//! clients that are up, or by flow hash (the RSS hash the port computed),
//! which keeps every flow on one client.
//!
//! Each client beats a heartbeat word in the domain. A client whose beat
//! stops (it hangs, or is stopped) gets nothing more until it beats again;
//! a client whose ring is full costs a counted drop; a client that dies is
//! reclaimed (its ring is taken over, frames in transit kept for its heir,
//! its port queues and buffers freed), and a client started again with the
//! same number rejoins and receives again. The server plays the ports'
//! hosts ([`super::hosts`]) and accounts for every frame: arrived intact,
//! dropped and counted, or held by a dead client.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ethdev::dev::PortConf;
use ethdev::handover;
use ethdev::mbuf::Mbuf;
use ethdev::mempool::{MbufRef, Owner, PoolTable};
use ethdev::queue::{RxQueue, TxQueue};
use ethdev::shm::control::{ControlClient, ControlEvent, ControlServer};
use ethdev::shm::ring::{self, ShmConsumer, ShmProducer};
use ethdev::shm::{Domain, DomainOptions, Role, Zone};
use ethdev::EthDev;
use user_veth::shared::{SharedPort, SharedWire};

use super::hosts::{self, Hosts, BURST, PORTS, PRIMARY_OWNER};

/// The clients' heartbeat lines: per client, its owner id and its beat.
const STATUS: &str = "MProc_Client_status";
/// The word the server sets once all traffic is accounted for.
const DONE: &str = "client_server_mp.done";
/// Frames in flight per port at most: with the default ring size, fewer
/// than any client ring holds, so nothing is dropped while clients keep up.
const WINDOW: u64 = 128;
/// A client whose beat has not moved for this long gets nothing.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(100);
/// How long the server waits for its clients to arrive, and to finish.
const LINGER: Duration = Duration::from_secs(30);

/// DPDK's name for client `n`'s ring.
pub fn client_ring(n: u16) -> String {
    format!("MProc_Client_{n}_RX")
}

/// How the server picks a client for a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distribution {
    /// The next client that is up, in turn.
    RoundRobin,
    /// The client the frame's RSS hash names (the next one up, if it is not).
    FlowHash,
}

impl Distribution {
    /// The name `dtnet mp client-server --distribution` and scenarios use.
    pub fn name(self) -> &'static str {
        match self {
            Distribution::RoundRobin => "round-robin",
            Distribution::FlowHash => "flow-hash",
        }
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The domain's prefix.
    pub prefix: String,
    /// Runtime directory holding domains.
    pub base: PathBuf,
    /// Clients (DPDK's `-n`).
    pub clients: u16,
    /// Client only: its number (DPDK's `-n` of the client).
    pub client_id: Option<u16>,
    /// Server only: frames sent into each port.
    pub frames: u32,
    /// Server only: how frames are spread.
    pub distribution: Distribution,
    /// Server only: words in each client's ring (a power of two).
    pub ring_words: u32,
    /// How long a client waits for its server.
    pub wait: Duration,
}

/// What the server saw.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Frames sent into the ports.
    pub sent: u64,
    /// Frames that came back out intact.
    pub received: u64,
    /// Frames that came out damaged, unknown or twice (or out of flow order,
    /// under flow hash).
    pub bad: u64,
    /// Per client: frames handed to it.
    pub delivered: Vec<u64>,
    /// Per client: frames dropped because its ring was full.
    pub ring_full: Vec<u64>,
    /// Frames dropped because no client was up.
    pub no_client: u64,
    /// Frames dead clients held.
    pub lost: u64,
    /// Times a client's beat stopped, and times it came back.
    pub stalls: (u64, u64),
    /// Deaths reclaimed.
    pub deaths: u64,
    /// Pool buffers and queues still marked as a dead client's after its
    /// reclamation (0 unless reclamation missed something).
    pub dead_own: usize,
    /// Flows more than one client forwarded.
    pub split_flows: usize,
    /// Free slots missing from the free list, put back at the end after a
    /// death (see `hosts::sweep_after_deaths`).
    pub swept: usize,
    /// Pool buffers in use at the end.
    pub in_use: usize,
    /// From the first frame sent to the last one accounted for.
    pub elapsed: Duration,
}

impl Report {
    /// Frames forwarded per second through server and clients, in millions.
    pub fn mpps(&self) -> f64 {
        self.received as f64 / self.elapsed.as_secs_f64().max(1e-9) / 1e6
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sent {} received {} intact, bad {}, lost {}; ", self.sent, self.received, self.bad, self.lost)?;
        write!(f, "delivered {:?} ring full {:?} no client {}; ", self.delivered, self.ring_full, self.no_client)?;
        write!(
            f,
            "stalls {} resumed {} deaths {}; dead own {}; split flows {}; ",
            self.stalls.0, self.stalls.1, self.deaths, self.dead_own, self.split_flows
        )?;
        write!(f, "rate {:.3} Mpps; swept {}; {} in use {}", self.mpps(), self.swept, hosts::POOL, self.in_use)
    }
}

/// What a client did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Forwarded {
    /// Frames taken off its ring.
    pub received: u64,
    /// Frames it sent out.
    pub sent: u64,
    /// Ring words that named no buffer in transit.
    pub bad_refs: u64,
}

/// What a process of the sample did, by its role.
#[derive(Debug)]
pub enum Outcome {
    /// The server.
    Server(Report),
    /// A client.
    Client(Forwarded),
}

/// Runs the server (no client id) or client `opts.client_id`. `say` hears
/// the server's `ready`, `joined <pid>`, `died <pid>` and `stalled <n>`.
pub fn run(opts: &Options, say: impl FnMut(String)) -> Result<Outcome, String> {
    match opts.client_id {
        None => server(opts, say).map(Outcome::Server),
        Some(n) => client(opts, n).map(Outcome::Client),
    }
}

/// A client's heartbeat line: `[owner, beat]`.
fn status_line(status: &Zone, n: u16) -> Option<&[AtomicU64]> {
    status.u64s().get(usize::from(n) * 8..usize::from(n) * 8 + 2)
}

/// The server's view of one client.
struct Client {
    ring: ShmProducer,
    zone: Zone,
    /// The beat last read, and when it last moved.
    beat: u64,
    moved: Instant,
    up: bool,
}

/// The server's state between steps.
struct Server {
    clients: Vec<Client>,
    status: Zone,
    next: usize,
    report: Report,
    rx: Vec<Box<dyn RxQueue>>,
    table: PoolTable,
}

impl Server {
    /// Reads every heartbeat: a client is up while its beat moves.
    fn watch(&mut self, say: &mut impl FnMut(String)) {
        let now = Instant::now();
        for (n, c) in (0u16..).zip(&mut self.clients) {
            let Some([owner, beat]) = status_line(&self.status, n).map(|l| [&l[0], &l[1]]) else { continue };
            let beat = beat.load(Ordering::Acquire);
            if beat != c.beat {
                (c.beat, c.moved) = (beat, now);
            }
            let up = owner.load(Ordering::Acquire) != 0 && now - c.moved < HEARTBEAT_TIMEOUT;
            if c.up && !up {
                self.report.stalls.0 += 1;
                say(format!("stalled {n}"));
            } else if !c.up && up && self.report.delivered[usize::from(n)] > 0 {
                self.report.stalls.1 += 1;
            }
            c.up = up;
        }
    }

    /// The client for `frame`, if any is up.
    fn pick(&mut self, frame: &Mbuf, how: Distribution) -> Option<usize> {
        let count = self.clients.len();
        let start = match how {
            Distribution::RoundRobin => self.next,
            Distribution::FlowHash => frame.rss_hash() as usize % count,
        };
        let chosen = (0..count).map(|k| (start + k) % count).find(|&n| self.clients[n].up)?;
        if how == Distribution::RoundRobin {
            self.next = (chosen + 1) % count;
        }
        Some(chosen)
    }

    /// Polls both ports and hands each frame to a client; whether any came.
    fn distribute(&mut self, how: Distribution, hosts: &mut Hosts) -> bool {
        let mut frames = Vec::new();
        for (port, rx) in self.rx.iter_mut().enumerate() {
            let start = frames.len();
            rx.rx_burst(&mut frames, BURST);
            frames[start..].iter_mut().for_each(|m: &mut Mbuf| m.set_port(port as u16));
        }
        let mut batches: Vec<Vec<u64>> = vec![Vec::new(); self.clients.len()];
        for m in frames {
            match self.pick(&m, how) {
                Some(n) => batches[n].push(m.into_ref(0).to_word()),
                None => {
                    self.report.no_client += 1;
                    hosts.lost += 1;
                }
            }
        }
        let mut moved = false;
        for (n, words) in batches.iter().enumerate().filter(|(_, w)| !w.is_empty()) {
            let sent = self.clients[n].ring.enqueue_burst(words);
            self.report.delivered[n] += sent as u64;
            for &word in &words[sent..] {
                drop(self.table.claim(MbufRef::from_word(word), PRIMARY_OWNER));
            }
            let full = (words.len() - sent) as u64;
            self.report.ring_full[n] += full;
            hosts.lost += full;
            moved = true;
        }
        moved
    }

    /// Frees what is left in the clients' rings (all of them are gone).
    fn drain_rings(&self) {
        for c in &self.clients {
            drop(handover::drain(&c.zone, &self.table, PRIMARY_OWNER));
        }
    }

    /// Reclaims a dead client: its ring first (frames in transit kept for
    /// its heir), then its port queues and buffers; returns what it held.
    fn bury(&mut self, owner: Owner, dead: &ethdev::mempool::DeadOwner, wires: &mut [SharedWire]) -> u64 {
        let slot = (0u16..).zip(&mut self.clients).find(|(n, _)| {
            status_line(&self.status, *n).is_some_and(|l| l[0].load(Ordering::Acquire) == u64::from(owner.0))
        });
        if let Some((n, c)) = slot {
            let kept = handover::requeue(&c.zone, &mut c.ring, &self.table, PRIMARY_OWNER, 0);
            tracing::info!(client = n, ?kept, "took over a dead client's ring");
            if let Some(line) = status_line(&self.status, n) {
                // Only if no heir has written its own id meanwhile.
                let _ = line[0].compare_exchange(u64::from(owner.0), 0, Ordering::AcqRel, Ordering::Acquire);
            }
            c.up = false;
        }
        let reclaimed = SharedWire::reclaim(&mut wires.iter_mut().collect::<Vec<_>>(), dead);
        self.report.dead_own += reclaimed.left;
        (reclaimed.held + reclaimed.unsent + reclaimed.dropped) as u64
    }
}

fn domain_options(opts: &Options, wait: Duration) -> DomainOptions {
    DomainOptions { base: opts.base.clone(), wait, ..DomainOptions::default() }
}

fn server(opts: &Options, mut say: impl FnMut(String)) -> Result<Report, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let domain =
        Domain::open(&opts.prefix, Role::Primary, &domain_options(opts, Duration::ZERO)).map_err(|e| err(&e))?;
    let conf = PortConf { rx_queues: 1, tx_queues: opts.clients, rx_ring_size: 1024, ..PortConf::new(1) };
    let (ports, mut wires) = hosts::make_ports(&domain, &conf)?;
    let mut clients = Vec::new();
    for n in 0..opts.clients {
        let zone = domain.reserve(&client_ring(n), ring::ring_bytes(opts.ring_words)).map_err(|e| err(&e))?;
        ring::create(&zone, opts.ring_words).map_err(|e| err(&e))?;
        let ring = ShmProducer::attach(&zone).map_err(|e| err(&e))?;
        clients.push(Client { ring, zone, beat: 0, moved: Instant::now(), up: false });
    }
    let status = domain.reserve(STATUS, usize::from(opts.clients) * 64).map_err(|e| err(&e))?;
    let done = domain.reserve(DONE, 8).map_err(|e| err(&e))?;
    let mut control = ControlServer::bind(&domain).map_err(|e| err(&e))?;
    let rx = ports.iter().map(|p| p.rx_queue(0)).collect::<Result<_, _>>().map_err(|e| err(&e))?;
    let mut table = PoolTable::new();
    table.add(ports[0].pool().clone());
    let n = usize::from(opts.clients);
    let report = Report { delivered: vec![0; n], ring_full: vec![0; n], ..Report::default() };
    let mut server = Server { clients, status, next: 0, report, rx, table };
    let ordered = opts.distribution == Distribution::FlowHash;
    let mut hosts = Hosts::new(u64::from(opts.frames), WINDOW, ordered)?;
    say(format!("ready {}", std::process::id()));

    let (started, mut live, mut first, mut last) = (Instant::now(), 0u16, None, None);
    while live > 0 || server.clients.iter().any(|c| c.beat == 0) || !hosts.done() {
        for event in control.poll() {
            match event {
                ControlEvent::Registered(peer) => {
                    live += 1;
                    say(format!("joined {}", peer.pid));
                }
                ControlEvent::LoggedOut(_) => live -= 1,
                ControlEvent::Died(peer, dead) => {
                    hosts.lost += server.bury(peer.owner, &dead, &mut wires);
                    server.report.deaths += 1;
                    live -= 1;
                    say(format!("died {}", peer.pid));
                }
                ControlEvent::Refused { .. } => {}
            }
        }
        if started.elapsed() > LINGER {
            return Err(format!(
                "after {LINGER:?}: {live} clients attached; {} of {} frames accounted for",
                hosts.total_received() + hosts.lost,
                2 * opts.frames
            ));
        }
        server.watch(&mut say);
        let everyone = server.clients.iter().all(|c| c.beat > 0);
        let moved = (everyone && hosts.send(wires.as_mut_slice()))
            | server.distribute(opts.distribution, &mut hosts)
            | hosts.receive(wires.as_mut_slice());
        first = first.or(everyone.then(Instant::now));
        if hosts.done() && last.is_none() {
            last = Some(Instant::now());
            done.u64s()[0].store(1, Ordering::Release);
        }
        if !moved {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    server.drain_rings();
    let mut report = std::mem::take(&mut server.report);
    (report.sent, report.received, report.bad) = (hosts.total_sent(), hosts.total_received(), hosts.bad);
    (report.lost, report.split_flows) = (hosts.lost, hosts.split_flows());
    report.elapsed = last.zip(first).map_or(Duration::ZERO, |(last, first)| last - first);
    drop((server, wires, hosts));
    report.swept = hosts::sweep_after_deaths(ports[0].pool(), report.deaths as usize);
    report.in_use = ports[0].pool().in_use();
    Ok(report)
}

/// A client's ends: its ring, the ports' tx queue n, its counts.
struct ClientEnds {
    ring: ShmConsumer,
    table: PoolTable,
    tx: Vec<Box<dyn TxQueue>>,
    pending: [Vec<Mbuf>; 2],
    owner: Owner,
    mark: u32,
    counts: Forwarded,
}

impl ClientEnds {
    /// Takes a burst off the ring and sends each frame out of the other
    /// port; whether anything moved.
    fn step(&mut self) -> bool {
        let mut moved = false;
        if self.pending.iter().all(Vec::is_empty) {
            let (table, owner, pending, counts, mark) =
                (&self.table, self.owner, &mut self.pending, &mut self.counts, self.mark);
            let got = self.ring.consume(BURST, |word| match table.claim(MbufRef::from_word(word), owner) {
                Ok(mut m) => {
                    m.set_mark(mark);
                    counts.received += 1;
                    pending[usize::from(m.port() & 1) ^ 1].push(m);
                }
                Err(_) => counts.bad_refs += 1,
            });
            moved |= got > 0;
        }
        for (out, pending) in self.pending.iter_mut().enumerate() {
            let sent = self.tx[out].tx_burst(pending);
            self.counts.sent += sent as u64;
            moved |= sent > 0;
        }
        moved
    }
}

fn client(opts: &Options, n: u16) -> Result<Forwarded, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    if n >= opts.clients {
        return Err(format!("client {n} of {}: client numbers go from 0 to {}", opts.clients, opts.clients - 1));
    }
    let domain = Domain::open(&opts.prefix, Role::Secondary, &domain_options(opts, opts.wait)).map_err(|e| err(&e))?;
    let control = ControlClient::register(&domain, &format!("client-{n}")).map_err(|e| err(&e))?;
    let attach = |name: &&str| SharedPort::attach(&domain, name, control.owner()).map_err(|e| err(&e));
    let ports = PORTS.iter().map(attach).collect::<Result<Vec<_>, _>>()?;
    let tx = ports.iter().map(|p| p.tx_queue(n)).collect::<Result<_, _>>().map_err(|e| err(&e))?;
    let ring = ShmConsumer::attach(&domain.lookup(&client_ring(n)).map_err(|e| err(&e))?).map_err(|e| err(&e))?;
    let mut table = PoolTable::new();
    table.add(ports[0].pool().clone());
    let (status, done) = (domain.lookup(STATUS).map_err(|e| err(&e))?, domain.lookup(DONE).map_err(|e| err(&e))?);
    let line = status_line(&status, n).ok_or("the status zone is too small")?;
    line[0].store(u64::from(control.owner().0), Ordering::Release);
    let pending = [Vec::new(), Vec::new()];
    let mark = u32::from(n) + 1;
    let mut me = ClientEnds { ring, table, tx, pending, owner: control.owner(), mark, counts: Forwarded::default() };
    loop {
        line[1].fetch_add(1, Ordering::Release);
        if control.primary_gone() {
            return Err(format!("domain {:?}: the server died", opts.prefix));
        }
        let moved = me.step();
        let idle = me.pending.iter().all(Vec::is_empty) && me.ring.is_empty();
        if !moved && idle && done.u64s().first().is_some_and(|w| w.load(Ordering::Acquire) == 1) {
            break;
        }
        if !moved {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    let counts = me.counts.clone();
    drop(me);
    control.logout();
    Ok(counts)
}
