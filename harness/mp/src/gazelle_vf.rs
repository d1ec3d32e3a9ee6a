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
//! The primary's checks: every connection of every client served in full,
//! the switch dropped nothing and its counters add up, and once everyone
//! has left every VF pool is back to its baseline. A client's checks: every
//! connection echoed intact.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
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
use stack::{Api, GroupConfig, StackGroup, ThreadModel};
use user_vbridge::{Bridge, BridgeConfig};
use user_veth::shared::{PortSpec, SharedPort, SharedVeth};

use crate::bridged::{bridge_drops, BridgedWires};
use crate::hosts::PRIMARY_OWNER;

/// The word the primary sets once its server listens.
const LISTENING: &str = "gazelle_vf.listening";
/// The server's port.
const PORT: u16 = 7000;
/// Buffers of each VF's pool.
const VF_BUFFERS: u32 = 4096;
/// How long the whole run may take, and how long the stacks keep running
/// after their tasks to finish closing.
const LINGER: Duration = Duration::from_secs(60);
const DRAIN: Duration = Duration::from_millis(50);

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
    /// Connections served in full, and those expected.
    pub served: (usize, usize),
    /// Frames the NIC's switch carried between VFs.
    pub switched: u64,
    /// Frames it dropped.
    pub switch_drops: u64,
    /// Processes that died, with the buffers reclaimed from each.
    pub deaths: Vec<(u32, usize)>,
    /// Buffers in use in every VF pool once everyone left.
    pub in_use: usize,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (served, expected) = self.served;
        write!(f, "served {served} of {expected} connections in full; switched {}, ", self.switched)?;
        write!(f, "switch drops {}; deaths {}; vf pools in use {}", self.switch_drops, self.deaths.len(), self.in_use)
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
        seed: u64::from(n) + 1,
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

    /// Buffers in use over every VF pool.
    fn in_use(&self) -> usize {
        self.ports.iter().map(|p| p.pool().in_use()).sum()
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
    let server = group(opts, 0, own, PRIMARY_OWNER)?;
    let expected = usize::from(opts.procs - 1) * opts.conns as usize;
    let (spawner, ledger) = (Spawner::new(), Arc::new(Ledger::default()));
    spawn_server(&server, &spawner, &ledger, listening, expected);
    say(format!("ready {}", std::process::id()));

    let mut report = Report::default();
    let started = Instant::now();
    let served = std::thread::scope(|s| -> Result<usize, String> {
        let stacks = s.spawn(|| exec::threads::run_groups(std::slice::from_ref(&server), &spawner, LINGER, DRAIN));
        let (mut joined, mut live) = (0u16, 0u16);
        while !stacks.is_finished() || live > 0 || joined + 1 < opts.procs {
            for event in control.poll() {
                match event {
                    ControlEvent::Registered(peer) => {
                        (joined, live) = (joined + 1, live + 1);
                        say(format!("joined {}", peer.pid));
                    }
                    ControlEvent::LoggedOut(_) => live -= 1,
                    ControlEvent::Died(peer, dead) => {
                        let reclaimed = nic.wires.reclaim(&dead);
                        tracing::warn!(pid = peer.pid, ?reclaimed, "a process died; its VF was reclaimed");
                        report.deaths.push((peer.pid, reclaimed.held + reclaimed.cached + reclaimed.unsent));
                        live -= 1;
                        say(format!("died {}", peer.pid));
                    }
                    ControlEvent::Refused { .. } => {}
                }
            }
            if started.elapsed() > LINGER + Duration::from_secs(5) {
                return Err(format!(
                    "after {LINGER:?}: {joined} of {} clients joined, {live} attached",
                    opts.procs - 1
                ));
            }
            nic.switch.poll(ethdev::Instant::ZERO + started.elapsed());
            std::thread::yield_now();
        }
        let outcome = stacks.join().map_err(|_| "the server's stack threads panicked".to_string())?;
        outcome.ok().map_err(|why| format!("server: {why}"))?;
        Ok(ledger.side(Side::Server).iter().filter(|r| r.bytes == opts.bytes).count())
    })?;
    report.served = (served, expected);
    nic.switch.check_accounting()?;
    report.switched = nic.switch.switch_stats().switched;
    report.switch_drops = bridge_drops(&nic.switch);
    drop(server);
    report.in_use = nic.in_use();
    Ok(report)
}

/// The server task: listens, says so in `listening`, and serves exactly
/// `expected` connections, each in a task of its own.
fn spawn_server(server: &StackGroup, spawner: &Spawner, ledger: &Arc<Ledger>, listening: Zone, expected: usize) {
    let api = Api::new(server, 0, Arc::new(RealClock::new()));
    let (tasks, ledger) = (spawner.clone(), Arc::clone(ledger));
    spawner.spawn(0, "server", async move {
        let fd = listen(&api, PORT).await?;
        if let Some(word) = listening.u64s().first() {
            word.store(1, Ordering::Release);
        }
        for _ in 0..expected {
            let (conn, peer) = api.accept(fd).await?;
            tasks.spawn(0, format!("echo {peer}"), echo::handle(api.clone(), conn, peer, Arc::clone(&ledger)));
        }
        api.close(fd).await
    });
}

/// A client process: its connections, then how many came back intact.
fn client(opts: &Options, domain: &Domain) -> Result<(usize, usize), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let n = opts.proc_id;
    if n == 0 || n >= opts.procs {
        return Err(format!("--proc-id {n} of a client must be between 1 and {}", opts.procs - 1));
    }
    let control = ControlClient::register(domain, &format!("gazelle-vf-{n}")).map_err(|e| err(&e))?;
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
    drop(group);
    if control.primary_gone() {
        return Err(format!("domain {:?}: the primary process died", opts.prefix));
    }
    control.logout();
    outcome.ok().map_err(|why| format!("client {n}: {why}"))?;
    Ok((intact, opts.conns as usize))
}
