//! gazelle's "one VF per process" across real processes.
//!
//! gazelle's programmer guide runs each lstack process on its own virtual
//! function of an SR-IOV NIC, and the NIC's embedded L2 switch carries
//! traffic between VFs. Here the domain's primary plays the NIC: it makes
//! one shared port per process (`vf<n>`, MAC and pool `vf<n>_pool` of its
//! own, as each process's driver would have its own mempool) and switches
//! between their wire ends with a [`user_vbridge::Bridge`], copying a frame
//! into the receiving VF's pool as a NIC's DMA would. Every process, the
//! primary included, runs a gazelle-style stack on its VF
//! ([`StackGroup::on_configured_port`]): process 0 an echo server, every
//! other process `conns` echo clients of `bytes` each, checked chunk by
//! chunk, under either thread model. A secondary's stacks allocate under
//! the owner id the domain's control channel gave the process, so
//! reclamation after a death finds every buffer it held.
//!
//! A client killed mid-run (`kill -9`) loses its VF's queues and buffers to
//! the primary's reclamation, and a client restarted with the same
//! `--proc-id` takes the VF again. The server learns of the dead's
//! connections as a kernel would: its keep-alive probes go unanswered (or
//! the heir's fresh stack resets them) and `TCP_USER_TIMEOUT` aborts them.
//!
//! The primary's checks: every client process finished once (the first or
//! an heir), every connection the server accepted was served in full or
//! aborted after its client died (and only then), the switch dropped
//! nothing and its counters add up, nothing in any VF pool belongs to the
//! dead, and once everyone has left every VF pool is back to its baseline.
//! A client's checks: every connection echoed intact.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ethdev::dev::PortConf;
use ethdev::mempool::{MempoolConfig, Owner};
use ethdev::rss::{Reta, RssConf};
use ethdev::shm::control::{ControlClient, ControlEvent, ControlServer};
use ethdev::shm::{Domain, DomainOptions, Role, Zone};
use ethdev::{EthDev, MacAddr};
use sim::apps::{echo, listen, Ledger, Side};
use sim::exec::{self, RealClock, Spawner};
use sim::latch::Latch;
use stack::{Api, Fd, GroupConfig, SockOpt, StackGroup, ThreadModel};
use user_vbridge::{Bridge, BridgeConfig};
use user_veth::shared::{PortSpec, SharedPort, SharedVeth};

use crate::bridged::{bridge_drops, BridgedWires};
use crate::hosts::PRIMARY_OWNER;

/// The word the primary sets once its server listens.
const LISTENING: &str = "gazelle_vf.listening";
/// Client n registers on the control channel as this prefix and n; the
/// primary reads n back from the name when the client logs out.
const CLIENT_NAME: &str = "gazelle-vf-";
/// The server's port.
const PORT: u16 = 7000;
/// Buffers of each VF's pool.
const VF_BUFFERS: u32 = 4096;
/// How long the whole run may take, and how long the stacks keep running
/// after their tasks to finish closing.
const LINGER: Duration = Duration::from_secs(60);
const DRAIN: Duration = Duration::from_millis(50);
/// How long the server's connections wait for a vanished client that has
/// no heir (an heir's stack resets the dead's connections at once): well
/// above any stall a live client's process suffers on a loaded machine
/// (at 2 s, one trial in ~24 beside a busy loop on two cores left a live
/// connection unfinished; at 5 s, one broad stress run in three did).
const USER_TIMEOUT: Duration = Duration::from_secs(10);

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The domain's prefix.
    pub prefix: String,
    /// Runtime directory holding domains.
    pub base: PathBuf,
    /// Processes, one VF each; process 0 is the primary and the server.
    pub procs: u16,
    /// This process's number.
    pub proc_id: u16,
    /// Connections each client makes.
    pub conns: u32,
    /// Bytes echoed per connection.
    pub bytes: u64,
    /// Who polls the stacks.
    pub model: ThreadModel,
    /// How long a secondary waits for its primary.
    pub wait: Duration,
}

/// What the primary saw.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Connections served in full, and those expected (each client's).
    pub served: (usize, usize),
    /// Connections aborted because their client vanished.
    pub aborted: usize,
    /// Connections accepted.
    pub accepted: usize,
    /// Frames the NIC's switch carried between VFs.
    pub switched: u64,
    /// Frames it dropped.
    pub switch_drops: u64,
    /// Processes that died, with the buffers reclaimed from each.
    pub deaths: Vec<(u32, usize)>,
    /// Buffers and queues still marked as the dead's after reclamation.
    pub dead_own: usize,
    /// Buffers in use in every VF pool once everyone left.
    pub in_use: usize,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (served, expected) = self.served;
        write!(f, "served {served} of {expected} connections in full, ")?;
        write!(f, "aborted {} of {} accepted; switched {}, ", self.aborted, self.accepted, self.switched)?;
        write!(f, "switch drops {}; deaths {}, dead own {}; ", self.switch_drops, self.deaths.len(), self.dead_own)?;
        write!(f, "vf pools in use {}", self.in_use)
    }
}

/// What a process did, by the role it got.
#[derive(Debug)]
pub enum Outcome {
    /// Process 0: the NIC and the server.
    Primary(Report),
    /// A client: connections echoed intact, of those it made.
    Client(usize, usize),
}

/// VF `n`'s name, MAC, address and pool.
fn vf_name(n: u16) -> String {
    format!("vf{n}")
}

fn vf_mac(n: u16) -> MacAddr {
    MacAddr([2, 0, 0, 0, 2, n as u8])
}

fn vf_ip(n: u16) -> Ipv4Addr {
    Ipv4Addr::new(10, 2, 0, 1 + n as u8)
}

/// The port configuration of every VF: one queue pair (one stack).
fn vf_conf() -> PortConf {
    PortConf { rx_ring_size: 1024, tx_ring_size: 1024, ..PortConf::new(1) }
}

/// RSS as [`vf_conf`] sets it up, which a secondary cannot query.
fn vf_rss() -> Result<RssConf, String> {
    let conf = vf_conf();
    let reta = Reta::new(usize::from(conf.reta_size), 1).map_err(|e| e.to_string())?;
    Ok(RssConf::from_parts(conf.rss_key, conf.rss_types, reta))
}

/// Process `n`'s stack group on its VF `port`, allocating as `owner`.
fn group(opts: &Options, n: u16, port: SharedPort, owner: Owner) -> Result<StackGroup, String> {
    let config = GroupConfig {
        model: opts.model,
        owner_base: owner.0,
        // A new process picks new initial sequence numbers and ports, as
        // Linux's would: an heir must not reuse its predecessor's (the
        // server may still hold the dead's connections on those four-tuples).
        seed: u64::from(n) << 32 | u64::from(std::process::id()),
        ephemeral_offset: std::process::id() as u16,
        ..GroupConfig::new(1, vf_mac(n), vf_ip(n))
    };
    let pool = port.pool().clone();
    StackGroup::on_configured_port(Arc::new(port), pool, config, vf_rss()?).map_err(|e| e.to_string())
}

/// Runs process `opts.proc_id`: the primary if it is the first, else a
/// client. `say` hears `ready <pid>` once the primary's VFs exist.
pub fn run(opts: &Options, say: impl FnMut(String)) -> Result<Outcome, String> {
    let options = DomainOptions { base: opts.base.clone(), wait: opts.wait, ..DomainOptions::default() };
    let domain = Domain::open(&opts.prefix, Role::Auto, &options).map_err(|e| e.to_string())?;
    if domain.is_primary() {
        primary(opts, &domain, say).map(Outcome::Primary)
    } else {
        client(opts, &domain).map(|(ok, all)| Outcome::Client(ok, all))
    }
}

/// The NIC: every VF, started, its wire end on the switch.
struct Nic {
    ports: Vec<SharedPort>,
    switch: Bridge,
    wires: BridgedWires,
}

impl Nic {
    fn new(domain: &Domain, procs: u16) -> Result<Nic, String> {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let config = BridgeConfig { name: "nic-switch".into(), ..BridgeConfig::default() };
        let mut nic = Nic {
            ports: Vec::new(),
            switch: Bridge::new(config).map_err(|e| err(&e))?,
            wires: BridgedWires::default(),
        };
        for n in 0..procs {
            let spec = PortSpec {
                name: vf_name(n),
                mac: vf_mac(n),
                conf: vf_conf(),
                ring_words: 1024,
                pool: MempoolConfig::new(format!("vf{n}_pool"), VF_BUFFERS),
                owner: PRIMARY_OWNER,
            };
            let (port, wire) = SharedVeth::create(domain, &spec).map_err(|e| err(&e))?;
            port.start().map_err(|e| err(&e))?;
            nic.wires.plug(&mut nic.switch, wire, vf_name(n))?;
            nic.ports.push(port);
        }
        Ok(nic)
    }

    /// Takes the switch and the wire ends down (frames still waiting for
    /// processes that left go back to their pools) and returns the buffers
    /// in use over every VF pool.
    fn close(self) -> usize {
        let Nic { ports, switch, wires } = self;
        drop((switch, wires));
        ports.iter().map(|p| p.pool().in_use()).sum()
    }
}

fn primary(opts: &Options, domain: &Domain, mut say: impl FnMut(String)) -> Result<Report, String> {
    if opts.proc_id != 0 {
        return Err(format!("process {} became the primary: start process 0 first", opts.proc_id));
    }
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let mut nic = Nic::new(domain, opts.procs)?;
    let listening = domain.reserve(LISTENING, 8).map_err(|e| err(&e))?;
    let mut control = ControlServer::bind(domain).map_err(|e| err(&e))?;
    let own = SharedPort::attach(domain, &vf_name(0), PRIMARY_OWNER).map_err(|e| err(&e))?;
    let server = Server::start(group(opts, 0, own, PRIMARY_OWNER)?, listening, opts.bytes);
    say(format!("ready {}", std::process::id()));

    let mut report = Report::default();
    let started = Instant::now();
    let mut finished = vec![false; usize::from(opts.procs)];
    finished[0] = true;
    std::thread::scope(|s| -> Result<(), String> {
        let stacks =
            s.spawn(|| exec::threads::run_groups(std::slice::from_ref(&server.group), &server.spawner, LINGER, DRAIN));
        let mut live = 0u16;
        while !stacks.is_finished() {
            for event in control.poll() {
                match event {
                    ControlEvent::Registered(peer) => {
                        live += 1;
                        say(format!("joined {}", peer.pid));
                    }
                    ControlEvent::LoggedOut(peer) => {
                        live -= 1;
                        let n = peer.name.strip_prefix(CLIENT_NAME).and_then(|n| n.parse::<usize>().ok());
                        if let Some(done) = n.and_then(|n| finished.get_mut(n)) {
                            *done = true;
                        }
                    }
                    ControlEvent::Died(peer, dead) => {
                        let reclaimed = nic.wires.reclaim(&dead);
                        tracing::warn!(pid = peer.pid, ?reclaimed, "a process died; its VF was reclaimed");
                        report.deaths.push((peer.pid, reclaimed.held + reclaimed.cached + reclaimed.unsent));
                        report.dead_own += reclaimed.left;
                        live -= 1;
                        say(format!("died {}", peer.pid));
                    }
                    ControlEvent::Refused { .. } => {}
                }
            }
            if live == 0 && finished.iter().all(|&f| f) {
                server.release.count_down();
            }
            if started.elapsed() > LINGER + Duration::from_secs(5) {
                return Err(format!("after {LINGER:?}: clients finished {finished:?}, {live} attached"));
            }
            nic.switch.poll(ethdev::Instant::ZERO + started.elapsed());
            std::thread::yield_now();
        }
        let outcome = stacks.join().map_err(|_| "the server's stack threads panicked".to_string())?;
        outcome.ok().map_err(|why| format!("server: {why}; stack: {:?}", server.group.stats(0)))
    })?;
    let full = server.ledger.side(Side::Server).iter().filter(|r| r.bytes == opts.bytes).count();
    report.served = (full, usize::from(opts.procs - 1) * opts.conns as usize);
    report.aborted = server.aborted.load(Ordering::Acquire);
    report.accepted = server.accepted.load(Ordering::Acquire);
    nic.switch.check_accounting()?;
    report.switched = nic.switch.switch_stats().switched;
    report.switch_drops = bridge_drops(&nic.switch);
    drop(server);
    report.in_use = nic.close();
    Ok(report)
}

/// The primary's echo server on its own VF, and what it counts.
struct Server {
    group: StackGroup,
    spawner: Spawner,
    ledger: Arc<Ledger>,
    /// Counted down once every client has finished: the server may stop.
    release: Arc<Latch>,
    accepted: Arc<AtomicUsize>,
    aborted: Arc<AtomicUsize>,
}

impl Server {
    /// Spawns the server's tasks on `group`: a listener that says so in
    /// `listening` and serves every connection (`bytes` each) in a task of
    /// its own, and a
    /// task that ends when [`Server::release`] is counted down (the
    /// listener is a daemon, so the run ends once that task and every
    /// connection are done).
    fn start(group: StackGroup, listening: Zone, bytes: u64) -> Server {
        let server = Server {
            group,
            spawner: Spawner::new(),
            ledger: Arc::default(),
            release: Latch::new(1),
            accepted: Arc::default(),
            aborted: Arc::default(),
        };
        let release = Arc::clone(&server.release);
        server.spawner.spawn(0, "until every client is done", async move {
            release.wait().await;
            Ok(())
        });
        let api = Api::new(&server.group, 0, Arc::new(RealClock::new()));
        let (tasks, ledger) = (server.spawner.clone(), Arc::clone(&server.ledger));
        let (accepted, aborted) = (Arc::clone(&server.accepted), Arc::clone(&server.aborted));
        server.spawner.spawn_daemon(0, "listener", async move {
            let fd = listen(&api, PORT).await?;
            if let Some(word) = listening.u64s().first() {
                word.store(1, Ordering::Release);
            }
            loop {
                let (conn, peer) = api.accept(fd).await?;
                accepted.fetch_add(1, Ordering::AcqRel);
                let serve = serve(api.clone(), conn, peer, bytes, Arc::clone(&ledger), Arc::clone(&aborted));
                tasks.spawn(0, format!("echo {peer}"), serve);
            }
        });
        server
    }
}

/// Echoes one connection of `bytes`; one whose client vanished ends
/// early, aborted by `TCP_USER_TIMEOUT` or reset by the client's heir (or
/// cut short when the aborted socket reads as closed), and is counted.
async fn serve(
    api: Api,
    conn: Fd,
    peer: SocketAddr,
    bytes: u64,
    ledger: Arc<Ledger>,
    aborted: Arc<AtomicUsize>,
) -> std::io::Result<()> {
    api.setsockopt(conn, SockOpt::UserTimeout(Some(USER_TIMEOUT))).await?;
    match echo::handle(api.clone(), conn, peer, ledger).await {
        Ok(echoed) if echoed == bytes => {}
        Ok(echoed) => {
            tracing::info!(%peer, echoed, "a connection ended early");
            aborted.fetch_add(1, Ordering::AcqRel);
        }
        Err(e) => {
            tracing::info!(%peer, %e, "a connection ended without its client");
            aborted.fetch_add(1, Ordering::AcqRel);
            api.close(conn).await?;
        }
    }
    Ok(())
}

/// A client process: its connections, then how many came back intact.
fn client(opts: &Options, domain: &Domain) -> Result<(usize, usize), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let n = opts.proc_id;
    if n == 0 || n >= opts.procs {
        return Err(format!("--proc-id {n} of a client must be between 1 and {}", opts.procs - 1));
    }
    let control = ControlClient::register(domain, &format!("{CLIENT_NAME}{n}")).map_err(|e| err(&e))?;
    let port = SharedPort::attach(domain, &vf_name(n), control.owner()).map_err(|e| err(&e))?;
    let group = group(opts, n, port, control.owner())?;
    let listening: Zone = domain.lookup(LISTENING).map_err(|e| err(&e))?;
    let started = Instant::now();
    while listening.u64s().first().is_none_or(|w| w.load(Ordering::Acquire) == 0) {
        if control.primary_gone() || started.elapsed() > LINGER {
            return Err(format!("domain {:?}: the server never listened", opts.prefix));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let (spawner, ledger) = (Spawner::new(), Arc::new(Ledger::default()));
    let server = SocketAddr::from((vf_ip(0), PORT));
    for c in 0..opts.conns {
        let api = Api::new(&group, 0, Arc::new(RealClock::new()));
        let id = u64::from(n) << 32 | u64::from(c);
        spawner.spawn(0, format!("client {c}"), echo::client(api, server, id, opts.bytes, Arc::clone(&ledger)));
    }
    let outcome = exec::threads::run_groups(std::slice::from_ref(&group), &spawner, LINGER, DRAIN);
    let intact = ledger.side(Side::Client).iter().filter(|r| r.bytes == opts.bytes).count();
    // Where frames stopped, should the run fail.
    let stats = group.stats(0);
    drop(group);
    if control.primary_gone() {
        return Err(format!("domain {:?}: the primary process died", opts.prefix));
    }
    control.logout();
    outcome.ok().map_err(|why| format!("client {n}: {why}; stack: {stats:?}"))?;
    Ok((intact, opts.conns as usize))
}
